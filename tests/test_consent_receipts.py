"""Consent receipts and withdrawal: the confirmation tells the client what they agreed to (text,
version, time in their time zone, how to withdraw), through a real SMTP server on loopback; the
client withdraws on the manage page or through the API, which is recorded, audited, told to
staff and, when the workflow requires consent, cancels a booking still to come."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from ruamel.yaml import YAML

from bookwise import instance
from bookwise.audit.models import AuditEntry
from bookwise.bookings.models import Booking, BookingEvent, ConsentRecord
from bookwise.bookings.services import manage_token
from bookwise.clock import Clock
from bookwise.config import Settings, load_settings
from bookwise.database import Database, open_database
from bookwise.db import unit_of_work
from bookwise.formatting import format_when
from bookwise.notifications.delivery import Dispatcher
from bookwise.notifications.models import Notification
from bookwise.testing import book_in
from tests.conftest import SCENARIO, Inbox, _mailing_config, write_config

MARKER = "Diabetes-type-1-e5b0"
ORIGIN = {"Origin": "http://localhost"}
CLIENT_ZONE = "America/New_York"
CONSENT_EN = "I agree that Acme processes my health note to prepare the visit."

WORKFLOW = f"""\
id: checkup
name: {{en: Check-up, fr: Bilan}}
duration: 30m
slot_step: 30m
booking_window: {{min_notice: 0m, max_ahead: 400d}}
cancellation: {{allowed: true, min_notice: 10d}}  # always too late to cancel online
staff: {{tags: [consultant], client_chooses: true}}
fields:
  - include: contact
  - {{id: topic, type: text, label: {{en: Topic, fr: Sujet}}}}
  - {{id: health, type: text, sensitive: true, label: {{en: Health note, fr: Note de santé}}}}
consent:
  required: {{required}}
  text: {{en: "{CONSENT_EN}", fr: "J'accepte qu'Acme traite ma note de santé."}}
  link: {{en: "https://acme.example/privacy"}}
notifications:
  - {{on: confirmed, to: [client, staff], channel: email}}
  - {{on: cancelled, to: [client, staff], channel: email}}
"""


@dataclass
class Practice:
    settings: Settings
    database: Database
    inbox: Inbox
    app: Any

    def send(self, at: datetime) -> int:
        return Dispatcher(self.settings, self.database, clock=lambda: at).drain()


def _practice(
    tmp_path: Path, database_url: str, inbox: Inbox, receiver: str, clock: Clock, required: bool
) -> Practice:
    workflows = tmp_path / "workflows"
    shutil.copytree(SCENARIO / "workflows", workflows)
    (workflows / "checkup.yaml").write_text(
        WORKFLOW.replace("{required}", "true" if required else "false"), encoding="utf-8"
    )
    yaml = YAML()
    calendars = yaml.load((SCENARIO / "calendars.yaml").read_text(encoding="utf-8"))
    calendars["calendars"][0]["services"].append({"workflow": "checkup"})
    with (tmp_path / "calendars.yaml").open("w", encoding="utf-8") as handle:
        yaml.dump(calendars, handle)
    values = _mailing_config(tmp_path, database_url, inbox.port, receiver)
    values["workflows"] = str(workflows)
    settings = load_settings(write_config(tmp_path / "practice.yaml", values), environ={})
    database = open_database(settings)
    instance.load_calendar_files(settings, database, [tmp_path / "calendars.yaml"])
    from bookwise.app import create_app

    app = create_app(settings, clock=clock)
    app.config.update(TESTING=True)
    return Practice(settings, database, inbox, app)


@pytest.fixture
def practice(
    tmp_path: Path, database_url: str, inbox: Inbox, receiver: str, clock: Clock
) -> Iterator[Practice]:
    """The scenario with a "checkup" service whose workflow requires consent to book."""
    made = _practice(tmp_path, database_url, inbox, receiver, clock, required=True)
    yield made
    made.app.extensions["bookwise"].database.engine.dispose()
    made.database.engine.dispose()


def _book(practice: Practice, now: datetime, days_ahead: int = 7) -> tuple[int, str]:
    with unit_of_work(practice.database.sessions, write=True) as session:
        booking = book_in(
            session,
            "acme",
            "checkup",
            {"topic": "Annual check", "health": MARKER},
            days_ahead=days_ahead,
            now=now,
            plugins=practice.database.plugins,
            timezone=CLIENT_ZONE,
        )
        return int(booking.id), manage_token(booking)


def _just_after(moment: datetime | None, now: datetime) -> bool:
    """The app's clock runs on from ``now``: a moment of this test."""
    return moment is not None and now <= moment < now + timedelta(minutes=5)


def _text(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content()).replace("\u202f", " ")


def form_values(html: str) -> dict[str, str]:
    """The hidden inputs of a page, by name."""
    values = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and "hidden" in tag:
            values[name.group(1)] = unescape(value.group(1)) if value else ""
    return values


@pytest.mark.timeout(60)
def test_the_confirmation_is_a_receipt_of_the_consent(practice: Practice, now: datetime) -> None:
    booking_id, token = _book(practice, now)
    practice.send(now)

    [message] = practice.inbox.to("zoe@example.org")
    text = _text(message)
    with practice.database.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None and booking.consent is not None
        version = booking.workflow_version.number
        given = format_when(booking.consent.given_at, CLIENT_ZONE, "en").replace("\u202f", " ")
    digest = hashlib.sha256(CONSENT_EN.encode()).hexdigest()
    assert f'"{CONSENT_EN}"' in text  # the text as shown
    assert f"(version v{version}-{digest[:8]})" in text  # which text: workflow version and hash
    assert given in text  # when, in the client's time zone...
    assert "New York" in text or "EST" in text or "EDT" in text or "GMT-" in text  # ...said so
    assert "Details: https://acme.example/privacy" in text
    assert (
        f"withdraw your consent at any time on the same page: https://book.acme.example/manage/{token}"
        in text
    )
    # The staff's copy carries no sensitive answer (and the client's none at all).
    [staff] = [m for m in practice.inbox.messages if m["To"] != "zoe@example.org"]
    assert "Annual check" in _text(staff) and MARKER not in _text(staff)
    assert MARKER not in text


@pytest.mark.timeout(60)
def test_an_edited_template_without_the_receipt_still_works(
    practice: Practice, now: datetime
) -> None:
    """Templates edited before the receipt existed do not name ``consent``: they keep working."""
    from bookwise.notifications.rendering import TemplateParts, check_parts, render

    parts = TemplateParts(text="Hello {{ client.name }}", subject="Booked")
    assert check_parts(parts) == []
    assert render(parts, {"client": {"name": "Zoé"}}).text == "Hello Zoé"
    with_receipt = TemplateParts(text="{% if consent.text %}{{ consent.version }}{% endif %}x")
    assert check_parts(with_receipt) == []
    assert render(with_receipt, {"consent": {}}).text == "x"  # a booking without consent


def _withdraw_on_the_page(practice: Practice, token: str) -> tuple[str, Any]:
    web = practice.app.test_client()
    manage = web.get(f"/manage/{token}").get_data(as_text=True)
    assert "Your consent" in manage and CONSENT_EN in manage
    page = web.get(f"/manage/{token}/consent/withdraw").get_data(as_text=True)
    response = web.post(f"/manage/{token}/consent/withdraw", data=form_values(page), headers=ORIGIN)
    return page, response


@pytest.mark.timeout(60)
def test_withdrawing_on_the_manage_page_cancels_a_booking_that_requires_it(
    practice: Practice, now: datetime
) -> None:
    booking_id, token = _book(practice, now)
    practice.send(now)
    practice.inbox.messages.clear()

    page, response = _withdraw_on_the_page(practice, token)
    # Said before the client confirms.
    assert "withdrawing it cancels the booking" in page
    assert "Withdraw my consent and cancel the booking" in page
    location = response.headers["Location"]
    assert response.status_code == 302 and location.endswith("done=withdrawn_cancelled")
    web = practice.app.test_client()
    after = web.get(location).get_data(as_text=True)
    assert "Your consent has been withdrawn, and so your booking has been cancelled." in after
    assert "You withdrew it on" in after

    with practice.database.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None and booking.consent is not None
        assert _just_after(booking.consent.withdrawn_at, now)
        assert booking.state == "cancelled" and not booking.holds_slot
        assert "health" not in booking.answers and booking.answers["topic"] == "Annual check"
        actions = [e.action for e in booking.history]
        assert actions[-2:] == ["cancel", "consent_withdrawn"]
        audit = session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "consent.withdrawn")
        ).one()
        assert audit.object_id == str(booking_id) and audit.details["cancelled"] is True
        events = set(
            session.scalars(
                sa.select(Notification.event).where(Notification.booking_id == booking_id)
            )
        )
        assert {"cancelled", "consent-withdrawn"} <= events
    with practice.database.engine.connect() as connection:
        raw = str(connection.exec_driver_sql("SELECT answers FROM bookings").scalar_one())
    assert MARKER not in raw

    practice.send(now + timedelta(minutes=5))  # the app's clock ran on from now
    staff = [m for m in practice.inbox.messages if "Consent withdrawn" in str(m["Subject"])]
    assert len(staff) == 1 and staff[0]["To"] != "zoe@example.org"
    assert "the booking has been cancelled" in _text(staff[0])
    assert practice.inbox.to("zoe@example.org")  # the client's cancellation, as for any

    # Twice is refused, in words.
    again = practice.app.test_client().post(f"/api/v1/manage/{token}/consent/withdraw", json={})
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "consent_withdrawn"


@pytest.mark.timeout(60)
def test_withdrawal_after_the_deadline_to_cancel_still_cancels(
    practice: Practice, now: datetime
) -> None:
    """A consent can always be withdrawn, even when it is too late to cancel online (the
    workflow allows cancelling up to 10 days ahead; the booking is a week ahead)."""
    booking_id, token = _book(practice, now)
    web = practice.app.test_client()
    refused = web.post(f"/api/v1/manage/{token}/cancel", json={})
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "too_late"

    response = web.post(f"/api/v1/manage/{token}/consent/withdraw")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["cancelled"] is True and body["status"] == "cancelled"
    with practice.database.sessions() as session:
        assert session.get(Booking, booking_id).state == "cancelled"  # type: ignore[union-attr]


@pytest.mark.timeout(60)
def test_withdrawal_through_the_api(practice: Practice, now: datetime) -> None:
    booking_id, token = _book(practice, now)
    web = practice.app.test_client()

    before = web.get(f"/api/v1/manage/{token}").get_json()
    assert before["consent"]["text"] == CONSENT_EN
    assert before["consent"]["withdrawn_at"] is None
    assert before["consent"]["withdrawal_cancels"] is True
    assert before["consent"]["version"].startswith("v")

    form = web.post(f"/api/v1/manage/{token}/consent/withdraw", data={"x": "1"})
    assert form.status_code == 415  # JSON or nothing, as the other manage actions

    response = web.post(f"/api/v1/manage/{token}/consent/withdraw", json={})
    assert response.status_code == 200
    body = response.get_json()
    assert body["cancelled"] is True and body["status"] == "cancelled"
    assert body["consent"]["withdrawn_at"] is not None
    assert body["consent"]["withdrawal_cancels"] is False
    assert response.headers["Cache-Control"].startswith(
        "no-store"
    ) or "private" in response.headers.get("Cache-Control", "")
    with practice.database.sessions() as session:
        record = session.scalars(
            sa.select(ConsentRecord).where(ConsentRecord.booking_id == booking_id)
        ).one()
        assert _just_after(record.withdrawn_at, now)
        assert record.text == CONSENT_EN  # what was agreed to stays

    unknown = web.post("/api/v1/manage/not-a-token/consent/withdraw", json={})
    assert unknown.status_code == 404


@pytest.mark.timeout(60)
def test_a_past_booking_is_kept_its_withdrawal_recorded_and_answers_erased(
    practice: Practice, now: datetime
) -> None:
    booking_id, token = _book(practice, now - timedelta(days=30))
    with practice.database.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None and booking.start_at < now

    page, response = _withdraw_on_the_page(practice, token)
    assert "cancels the booking" not in page
    assert response.status_code == 302

    with practice.database.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None and booking.consent is not None
        assert booking.state == "confirmed"
        assert _just_after(booking.consent.withdrawn_at, now)
        assert "health" not in booking.answers
        last = session.scalars(
            sa.select(BookingEvent)
            .where(BookingEvent.booking_id == booking_id)
            .order_by(BookingEvent.id.desc())
        ).first()
        assert last is not None and last.action == "consent_withdrawn"
        assert last.details == {"cancelled": False, "erased": ["health"]}


@pytest.mark.timeout(60)
def test_optional_consent_withdrawn_keeps_the_booking(
    tmp_path: Path,
    database_url: str,
    inbox: Inbox,
    receiver: str,
    clock: Clock,
    now: datetime,
) -> None:
    practice = _practice(tmp_path, database_url, inbox, receiver, clock, required=False)
    try:
        booking_id, token = _book(practice, now)
        response = practice.app.test_client().post(
            f"/api/v1/manage/{token}/consent/withdraw", json={}
        )
        assert response.status_code == 200
        assert response.get_json()["cancelled"] is False
        with practice.database.sessions() as session:
            booking = session.get(Booking, booking_id)
            assert booking is not None and booking.state == "confirmed"
            assert "health" not in booking.answers
    finally:
        practice.app.extensions["bookwise"].database.engine.dispose()
        practice.database.engine.dispose()


@pytest.mark.timeout(60)
def test_the_admin_page_shows_the_consent_state(practice: Practice, now: datetime) -> None:
    booking_id, token = _book(practice, now)
    practice.app.test_client().post(f"/api/v1/manage/{token}/consent/withdraw", json={})
    from bookwise.accounts.services import create_user

    password = "correct horse battery staple"
    with unit_of_work(practice.database.sessions) as session:
        create_user(session, "root@acme.example", password, superadmin=True)
    web = practice.app.test_client()
    login = web.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login)
    assert csrf is not None
    signed_in = web.post(
        "/login",
        data={"email": "root@acme.example", "password": password, "csrf_token": csrf.group(1)},
    )
    assert signed_in.status_code == 302
    page = web.get(f"/admin/bookings/{booking_id}").get_data(as_text=True)
    assert CONSENT_EN in page
    assert "The client withdrew this consent on" in page
    assert "Consent withdrawn" in page  # the history line
    assert MARKER not in page  # erased with the withdrawal


@pytest.mark.timeout(60)
def test_lists_and_searches_of_the_back_office_show_no_answer(
    practice: Practice, now: datetime
) -> None:
    """Answers, encrypted, appear in no list nor search result: only on the booking's page, to
    the roles allowed."""
    from bookwise.accounts.services import create_user

    booking_id, _token = _book(practice, now)
    password = "correct horse battery staple"
    with unit_of_work(practice.database.sessions) as session:
        create_user(session, "root@acme.example", password, superadmin=True)
    web = practice.app.test_client()
    login = web.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login)
    assert csrf is not None
    web.post(
        "/login",
        data={"email": "root@acme.example", "password": password, "csrf_token": csrf.group(1)},
    )
    day = (now + timedelta(days=7)).date()
    for url in (
        "/admin/bookings/",
        f"/admin/bookings/?q=Zoe&start={day - timedelta(days=2)}&end={day + timedelta(days=30)}",
        f"/admin/bookings/grid?date={day}&view=week",
        "/admin/",
    ):
        response = web.get(url)
        assert response.status_code == 200, url
        page = response.get_data(as_text=True)
        assert MARKER not in page, url
        if "q=Zoe" in url:
            assert "Zoe Client" in page  # the booking is listed: the check above could fail
    details = web.get(f"/admin/bookings/{booking_id}").get_data(as_text=True)
    assert MARKER in details  # the booking's page shows it to an admin, as before


@pytest.mark.timeout(60)
def test_two_withdrawals_at_once_make_one(practice: Practice, now: datetime) -> None:
    import threading

    booking_id, token = _book(practice, now)
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def withdraw() -> None:
        web = practice.app.test_client()
        barrier.wait()
        statuses.append(web.post(f"/api/v1/manage/{token}/consent/withdraw").status_code)

    threads = [threading.Thread(target=withdraw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 409, 409, 409]
    with practice.database.sessions() as session:
        lines = session.scalars(
            sa.select(BookingEvent.action).where(
                BookingEvent.booking_id == booking_id, BookingEvent.action == "consent_withdrawn"
            )
        ).all()
        audits = session.scalars(
            sa.select(AuditEntry.id).where(AuditEntry.action == "consent.withdrawn")
        ).all()
    assert len(lines) == 1 and len(audits) == 1
