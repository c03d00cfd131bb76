"""The clients' answers encrypted at rest (bookwise.crypto): never in clear in the database, read
back as plain dicts, keys rotated, a missing or wrong key a clear error at start-up."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from bookwise.bookings.models import Booking
from bookwise.config import load_settings
from bookwise.crypto import KEY_FILE, EncryptionKeyError, generate_key
from bookwise.database import Database, open_database
from bookwise.db import unit_of_work
from bookwise.errors import ConfigError
from bookwise.testing import book_in
from tests.conftest import Loaded

MARKER = "Allergic-to-penicillin-7f3a"
TOPIC = "Knee-pain-topic-91c2"


def _book(database: Database, now: datetime) -> int:
    with unit_of_work(database.sessions, write=True) as session:
        booking = book_in(session, "acme", "visit", {"topic": TOPIC, "health": MARKER}, now=now)
        return int(booking.id)


def _raw_answers(database: Database) -> list[str]:
    """The answers column as the database holds it, read with plain SQL."""
    with database.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT answers FROM bookings").all()
    return [str(value) for (value,) in rows]


def _reopen(loaded: Loaded, keys: list[str] | None) -> Database:
    environ = {"BOOKWISE_ENCRYPTION_KEYS": ",".join(keys)} if keys else {}
    settings = load_settings(loaded.settings.source, environ=environ)
    return open_database(settings)


def _answers_of(database: Database, booking_id: int) -> dict[str, Any]:
    with database.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None
        return dict(booking.answers)


def test_the_database_never_holds_an_answer_in_clear(scenario: Loaded, now: datetime) -> None:
    booking_id = _book(scenario.database, now)

    raw = _raw_answers(scenario.database)
    assert len(raw) == 1
    assert MARKER not in raw[0] and TOPIC not in raw[0]
    assert "$fernet" in raw[0]
    # The code reads plain answers, through the ORM and through Core selects alike.
    assert _answers_of(scenario.database, booking_id)["health"] == MARKER
    with scenario.database.engine.connect() as connection:
        answers = connection.execute(sa.select(Booking.answers)).scalar_one()
    assert answers["topic"] == TOPIC


@pytest.fixture
def unkeyed(scenario: Loaded, tmp_path: Path) -> Iterator[Loaded]:
    """The scenario's database, opened by an instance that configures no key (a new instance:
    its key is generated in its folder)."""
    from tests.conftest import _scenario_config, write_config

    values = _scenario_config(tmp_path, str(scenario.settings.database_url))
    values.pop("privacy")
    settings = load_settings(write_config(tmp_path / "unkeyed.yaml", values), environ={})
    assert settings.encryption_keys == ()
    database = open_database(settings)
    yield Loaded(settings, database)
    database.engine.dispose()


def test_a_new_instance_generates_its_key_readable_by_its_owner_only(
    unkeyed: Loaded, now: datetime
) -> None:
    key_file = unkeyed.settings.instance_dir / KEY_FILE
    # Made at start (so that a folder it cannot be written to is said at once), owner only.
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    Fernet(key_file.read_text().strip())  # a valid key
    booking_id = _book(unkeyed.database, now)

    assert MARKER not in _raw_answers(unkeyed.database)[0]
    again = open_database(unkeyed.settings)
    try:
        assert _answers_of(again, booking_id)["health"] == MARKER
    finally:
        again.engine.dispose()


def test_a_lost_key_stops_the_start_saying_what_to_set(unkeyed: Loaded, now: datetime) -> None:
    _book(unkeyed.database, now)
    (unkeyed.settings.instance_dir / KEY_FILE).unlink()

    with pytest.raises(EncryptionKeyError) as error:
        open_database(unkeyed.settings)
    assert "BOOKWISE_ENCRYPTION_KEYS" in str(error.value)
    assert "privacy.encryption_keys" in str(error.value)
    # Nothing was generated in its place: putting the backup back is all it takes.
    assert not (unkeyed.settings.instance_dir / KEY_FILE).exists()


def test_keys_rotate_from_a_to_b(
    scenario: Loaded, now: datetime, bookwise_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_a, key_b = generate_key(), generate_key()
    with_a = _reopen(scenario, [key_a])
    booking_id = _book(with_a, now)
    with_a.engine.dispose()

    # B added first: new writes use B, rows of A still read.
    with_both = _reopen(scenario, [key_b, key_a])
    assert _answers_of(with_both, booking_id)["health"] == MARKER
    with_both.engine.dispose()
    # B alone cannot read them yet: a clear error at start, not a page failing later.
    with pytest.raises(EncryptionKeyError, match="BOOKWISE_ENCRYPTION_KEYS"):
        _reopen(scenario, [key_b])

    monkeypatch.setenv("BOOKWISE_ENCRYPTION_KEYS", f"{key_b},{key_a}")
    result = bookwise_cli("--config", scenario.settings.source, "keys", "rotate", "--batch", "1")
    assert result.exit_code == 0, result.stderr
    assert "1 booking(s): 1 re-encrypted" in result.stdout

    with_b = _reopen(scenario, [key_b])
    try:
        assert _answers_of(with_b, booking_id) == {"topic": TOPIC, "health": MARKER}
        raw = _raw_answers(with_b)
        assert MARKER not in raw[0]
    finally:
        with_b.engine.dispose()
    with pytest.raises(EncryptionKeyError, match="not among the keys"):
        _reopen(scenario, [key_a])


def test_rows_written_before_encryption_still_read_and_rotation_encrypts_them(
    scenario: Loaded, now: datetime, bookwise_cli: Any
) -> None:
    booking_id = _book(scenario.database, now)
    plain = sa.table("bookings", sa.column("id"), sa.column("answers", sa.JSON))
    with scenario.database.engine.begin() as connection:  # as an older Bookwise wrote it
        connection.execute(sa.update(plain).values(answers={"topic": TOPIC, "health": MARKER}))
    assert MARKER in _raw_answers(scenario.database)[0]
    assert _answers_of(scenario.database, booking_id)["health"] == MARKER

    result = bookwise_cli("--config", scenario.settings.source, "keys", "rotate")
    assert result.exit_code == 0, result.stderr
    assert "1 encrypted for the first time" in result.stdout
    assert MARKER not in _raw_answers(scenario.database)[0]
    assert _answers_of(scenario.database, booking_id)["health"] == MARKER


def test_a_malformed_key_is_refused_with_what_to_do(scenario: Loaded) -> None:
    with pytest.raises(ConfigError, match="bookwise keys generate"):
        load_settings(scenario.settings.source, environ={"BOOKWISE_ENCRYPTION_KEYS": "not-a-key"})


def test_keys_in_the_configuration_file(tmp_path: Path, scenario: Loaded, now: datetime) -> None:
    from tests.conftest import _scenario_config, write_config

    key = generate_key()
    values = _scenario_config(tmp_path, str(scenario.settings.database_url))
    values["privacy"] = {"encryption_keys": [key]}
    settings = load_settings(write_config(tmp_path / "keyed.yaml", values), environ={})
    assert settings.encryption_keys == (key,)
    database = open_database(settings)
    try:
        booking_id = _book(database, now)
        with database.engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT answers FROM bookings").scalar_one()
        token = (json.loads(stored) if isinstance(stored, str) else stored)["$fernet"]
        assert MARKER in Fernet(key).decrypt(token.encode()).decode()
        assert _answers_of(database, booking_id)["health"] == MARKER
    finally:
        database.engine.dispose()


def test_keys_generate_prints_a_key(bookwise_cli: Any) -> None:
    result = bookwise_cli("keys", "generate")
    assert result.exit_code == 0
    Fernet(result.stdout.strip())


def test_no_text_message_nor_chat_post_carries_a_sensitive_answer(
    scenario: Loaded, now: datetime
) -> None:
    """Every shipped template, for both audiences, on the text-message and chat channels (a chat
    uses the e-mail's wording), in every language, rendered for a booking whose sensitive answer
    is a marker: the marker is never there (the answers of a staff e-mail are the only answers a
    message shows, and sensitive ones are left out of them too)."""
    from bookwise.notifications.context import message_context
    from bookwise.notifications.models import Notification
    from bookwise.notifications.rendering import file_template, render
    from bookwise.notifications.templates import SHIPPED_TEMPLATES, template_names

    booking_id = _book(scenario.database, now)
    rendered = 0
    with scenario.database.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None
        not_about_a_booking = {"calendar-feed-failing", "staff-invitation", "time-off"}
        not_about_a_booking |= {"waitlist_offer", "waitlist_joined"}  # the entry's (test_waitlist)
        for name in sorted(template_names([SHIPPED_TEMPLATES]) - not_about_a_booking):
            for audience in ("client", "staff"):
                for channel in ("sms", "chat", "email"):
                    for locale in ("en", "fr", "de", "es"):
                        parts = file_template(
                            [SHIPPED_TEMPLATES], name, audience, channel, locale, "en"
                        ) or file_template(
                            [SHIPPED_TEMPLATES], name, audience, "email", locale, "en"
                        )
                        if parts is None:
                            continue
                        row = Notification(
                            booking_id=booking.id,
                            event=name,
                            channel=channel,
                            recipient_kind=audience,
                            locale=locale,
                            timezone="Europe/Paris",
                            payload={},
                        )
                        context = message_context(session, row, scenario.settings)
                        assert context["answers"] or audience == "client" or name != "confirmed"
                        message = render(parts, context)
                        assert MARKER not in f"{message.subject}\n{message.text}\n{message.html}"
                        rendered += 1
    assert rendered > 100
    # The staff's e-mail does show the answers that are not sensitive: the check above can fail.
    with scenario.database.sessions() as session:
        row = Notification(
            booking_id=booking_id,
            event="confirmed",
            channel="email",
            recipient_kind="staff",
            locale="en",
            timezone="Europe/Paris",
            payload={},
        )
        staff_email = file_template([SHIPPED_TEMPLATES], "confirmed", "staff", "email", "en", "en")
        assert staff_email is not None
        text = render(staff_email, message_context(session, row, scenario.settings)).text
    assert TOPIC in text and MARKER not in text


def test_a_viewers_export_leaves_sensitive_answers_out(scenario: Loaded, now: datetime) -> None:
    """The export reads answers with a Core select: it gets plain answers back, the sensitive
    ones only for roles that may read them."""
    from bookwise.reports.services import ReportScope, export_rows

    booking_id = _book(scenario.database, now)
    with scenario.database.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None
        day = booking.start_at.date()
        scope = ReportScope(
            booking.calendar_id, day - timedelta(days=1), day + timedelta(days=1), "UTC", "en", "en"
        )
        _header, viewer_rows = export_rows(session, scope, include_sensitive=False)
        _header, admin_rows = export_rows(session, scope, include_sensitive=True)
    assert any(TOPIC in cell for row in viewer_rows for cell in row)
    assert not any(MARKER in cell for row in viewer_rows for cell in row)
    assert any(MARKER in cell for row in admin_rows for cell in row)
