"""The plugin platform: discovery through entry points, enabling, settings, isolation.

The throwaway plugin is a real distribution, written to a temporary folder and installed with
pip into this environment (then uninstalled), found through its entry point like any other.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bookwise.bookings.models import BookingEvent
from bookwise.hookspecs import hookimpl
from bookwise.notifications.models import Notification
from bookwise.plugins import (
    BookingData,
    Channel,
    ChannelError,
    FieldType,
    Meeting,
    MeetingProvider,
)
from bookwise.plugins.host import PluginHost, load_plugins
from bookwise.testing import book, make_instance
from tests.conftest import TEST_NOW

HR = {"position": "dev", "cv_url": "https://example.org/cv.pdf"}

THROWAWAY = '''
"""One of each: a channel, a field type, an assignment strategy, a meeting provider, listeners."""
import json
from pathlib import Path

from bookwise.plugins import Channel, FieldType, InvalidValue, Meeting, MeetingProvider, hookimpl

BOOKWISE_API = "1.0"
EVENTS = []


class FileChannel(Channel):
    name = "tofile"
    settings_schema = {
        "type": "object", "required": ["path"], "additionalProperties": False,
        "properties": {"path": {"type": "string"}},
    }

    def __init__(self, path):
        self.path = Path(path)

    def send(self, message):
        with self.path.open("a") as handle:
            handle.write(json.dumps({"to": message.recipient, "subject": message.subject}) + "\\n")
        return "line"


class Rating(FieldType):
    name = "rating"
    label = "Rating (stars)"
    settings_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {"max": {"type": "integer", "minimum": 2, "maximum": 10}},
    }

    def clean(self, value, spec):
        top = spec.settings.get("max", 5)
        try:
            stars = int(value)
        except (TypeError, ValueError):
            raise InvalidValue("Give a number of stars.") from None
        if not 1 <= stars <= top:
            raise InvalidValue(f"Give between 1 and {top} stars.")
        return stars

    def form_field(self, spec, options):
        from wtforms import RadioField
        from wtforms.fields.choices import SelectChoice

        top = spec.settings.get("max", 5)
        stars = [SelectChoice(str(n), "*" * n) for n in range(1, top + 1)]
        return RadioField(choices=stars, validate_choice=False, **options)

    def export(self, value):
        return f"{value} stars"


class FakeMeet(MeetingProvider):
    name = "fakemeet"

    @classmethod
    def from_settings(cls, context):  # the plugin's settings are the channel's, not needed here
        return cls()

    def create(self, booking):
        EVENTS.append(("meeting created", booking.uid))
        return Meeting(f"https://meet.invalid/{booking.uid}", booking.uid)

    def delete(self, meeting):
        EVENTS.append(("meeting deleted", meeting.id))


@hookimpl
def bookwise_register_channels():
    return [FileChannel]


@hookimpl
def bookwise_register_field_types():
    return [Rating()]


@hookimpl
def bookwise_register_assignment_strategies():
    return {"last_in_pool": lambda context: list(context.free)[-1]}


@hookimpl
def bookwise_register_meeting_providers():
    return [FakeMeet]


@hookimpl
def bookwise_booking_created(booking):
    EVENTS.append(("created", booking.uid))


@hookimpl
def bookwise_booking_rescheduled(booking, previous_start):
    EVENTS.append(("rescheduled", booking.uid, previous_start.isoformat()))


@hookimpl
def bookwise_booking_cancelled(booking, reason):
    EVENTS.append(("cancelled", booking.uid, reason))


@hookimpl
def bookwise_booking_changed(booking, change):
    EVENTS.append(("changed", booking.uid, change.action, change.from_state, booking.state))
'''


@pytest.fixture(scope="module")
def throwaway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Install the plugin ``bookwise-throwaway`` from a temporary folder; remove it after."""
    folder = tmp_path_factory.mktemp("throwaway")
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "bookwise-throwaway"
            version = "0.0.1"

            [project.entry-points."bookwise.plugins"]
            throwaway = "bookwise_throwaway"
            """
        )
    )
    (folder / "bookwise_throwaway.py").write_text(THROWAWAY)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", str(folder)], check=True)
    try:
        yield "throwaway"
    finally:
        subprocess.run([*pip, "uninstall", "-y", "bookwise-throwaway"], check=True)


@pytest.mark.slow
def test_an_installed_plugin_is_listed_enabled_and_used(tmp_path: Path, throwaway: str) -> None:
    out = tmp_path / "out.jsonl"
    bw = make_instance(tmp_path, plugins={"enabled": []})
    # Installed, not enabled: listed by `bookwise plugins`, not used.
    listing = subprocess.run(
        [
            str(Path(sys.executable).with_name("bookwise")),
            "--config",
            str(bw.settings.source),
            "plugins",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "throwaway" in listing.stdout and "installed, not enabled" in listing.stdout
    assert "tofile" not in load_plugins(bw.settings).channel_names

    workflows = tmp_path / "workflows"
    workflows.mkdir()
    from bookwise.testing import ROOT

    for path in (ROOT / "workflows").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if path.name == "hr-interview.yaml":
            text = text.replace(
                "{on: requested, to: client, channel: email}",
                "{on: requested, to: client, channel: [email, tofile]}",
            )
        (workflows / path.name).write_text(text, encoding="utf-8")
    plugins = {"enabled": [throwaway], throwaway: {"path": str(out)}}
    bw = make_instance(tmp_path / "on", plugins=plugins, workflows=str(workflows))
    booking = book(bw, "northwind-hr", "hr-interview", HR)
    bw.send_due()
    assert '"to": "zoe@example.org"' in out.read_text()
    import bookwise_throwaway  # type: ignore[import-not-found]

    assert ("created", booking.uid) in bookwise_throwaway.EVENTS


def rated_workflows(folder: Path, stars: int = 4) -> str:
    """The demo's workflows; tutoring asks a rating, assigns by the plugin's strategy and meets
    online through the plugin's provider."""
    from bookwise.testing import ROOT

    folder.mkdir(parents=True)
    for path in (ROOT / "workflows").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if path.name == "tutoring.yaml":
            text = text.replace(
                "staff: {tags: [tutor], client_chooses: true}",
                "staff: {tags: [tutor], assignment: last_in_pool}\n"
                "location: {type: online, provider: fakemeet}",
            ).replace(
                "  - include: contact\n",
                "  - include: contact\n"
                f"  - {{id: stars, type: rating, settings: {{max: {stars}}}, label: Rating}}\n",
            )
        (folder / path.name).write_text(text, encoding="utf-8")
    return str(folder)


TUTORING = {"student_name": "Tom", "level": "high", "subjects": ["maths"]}


@pytest.mark.slow
def test_a_plugin_field_type_strategy_provider_and_events(tmp_path: Path, throwaway: str) -> None:
    import bookwise_throwaway

    from bookwise.bookings.models import Booking
    from bookwise.reports.services import ReportScope, export_rows

    plugins = {"enabled": [throwaway], throwaway: {"path": str(tmp_path / "out")}}
    bw = make_instance(tmp_path, plugins=plugins, workflows=rated_workflows(tmp_path / "wf"))
    client = bw.app().test_client()
    url = "/api/v1/calendars/bright-minds/services/tutoring"

    day = (TEST_NOW + timedelta(days=3)).date()
    found = client.get(f"{url}/slots?from={day}&to={day + timedelta(days=7)}").get_json()
    slots = found["slots"]
    assert slots, found

    # The public form asks the rating with the plugin's own field (four radio buttons).
    start = slots[0]["start"].replace("+", "%2B")
    form = client.get(f"/bright-minds/tutoring/book?start={start}").get_data(as_text=True)
    assert form.count('name="field_stars"') == 4 and 'value="4"' in form and "****" in form

    # The API checks the answer with the plugin's clean() and says what it said.
    body = {
        "start": slots[0]["start"],
        "client": {"name": "Zoe", "email": "zoe@example.org"},
        "answers": {**TUTORING, "stars": 9},
        "consent": True,
    }
    refused = client.post(f"{url}/bookings", json=body)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["fields"]["stars"] == "Give between 1 and 4 stars."
    made = client.post(f"{url}/bookings", json={**body, "answers": {**TUTORING, "stars": "3"}})
    assert made.status_code == 201, made.get_json()
    token = made.get_json()["manage_token"]
    assert made.get_json()["meeting_url"].startswith("https://meet.invalid/")
    with bw.database.sessions() as session:
        booking = session.scalars(select(Booking)).one()
        assert booking.answers["stars"] == 3
        # The plugin's strategy: the last free tutor of the pool.
        assert booking.staff_member.slug == "priya"
        assert booking.meeting_url == f"https://meet.invalid/{booking.uid}"
        calendar_id, uid = booking.calendar_id, booking.uid
        day = booking.start_at.date()
        scope = ReportScope(calendar_id, day, day, "UTC", "en", "en")
        header, rows = export_rows(
            session, scope, include_sensitive=True, field_types=bw.database.plugins.field_types
        )
        assert rows[0][header.index("Rating (stars)")] == "3 stars"

    # Cancelled by the client: the meeting is deleted, the listeners hear it after commit.
    cancelled = client.post(f"/api/v1/manage/{token}/cancel", json={"reason": "ill"})
    assert cancelled.status_code == 200, cancelled.get_json()
    events = [e for e in bookwise_throwaway.EVENTS if e[1] == uid]
    assert events == [
        ("meeting created", uid),
        ("created", uid),
        ("changed", uid, "created", None, "confirmed"),
        ("meeting deleted", uid),
        ("cancelled", uid, "ill"),
        ("changed", uid, "cancel", "confirmed", "cancelled"),
    ]


@pytest.mark.slow
def test_a_plugin_field_types_settings_are_checked_in_workflow_files(
    tmp_path: Path, throwaway: str
) -> None:
    from bookwise.errors import ProblemsError

    plugins = {"enabled": [throwaway], throwaway: {"path": str(tmp_path / "out")}}
    with pytest.raises(ProblemsError) as raised:
        make_instance(tmp_path, plugins=plugins, workflows=rated_workflows(tmp_path / "wf", 50))
    # Where the field is written (its settings), with the plugin's schema's words: the line
    # of the rating question in the workflow as written (it moves as tutoring.yaml grows).
    written = (tmp_path / "wf" / "tutoring.yaml").read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(written, 1) if "type: rating" in text)
    expected = f"tutoring.yaml:{line}:41: fields[1].settings: settings of the rating field: max: "
    assert expected + "must be at most 10, got 50" in str(raised.value)


# --- isolation, with plugins given as entry points of this module -------------------------


class Broken(Exception):
    pass


class ExplodingChannel(Channel):
    name = "boom"

    def send(self, message: Any) -> str:
        raise Broken("the channel's bug")


class RefusingChannel(Channel):
    name = "refuse"

    def send(self, message: Any) -> str:
        raise ChannelError("no route", temporary=True)


class ExplodingProvider(MeetingProvider):
    name = "jitsi"  # what the demo's HR workflow asks for

    def create(self, booking: BookingData) -> Meeting:
        raise Broken("the provider's bug")


class Channels:
    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_register_channels(self) -> list[type[Channel]]:
        return [ExplodingChannel, RefusingChannel]


class Provider:
    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_register_meeting_providers(self) -> list[type[MeetingProvider]]:
        return [ExplodingProvider]


SEEN: list[str] = []


class Listeners:
    BOOKWISE_API = "1.0"

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    @hookimpl
    def bookwise_booking_created(self, booking: BookingData) -> None:
        if self.fail:
            raise Broken("the listener's bug")
        SEEN.append(booking.uid)


class Old:
    BOOKWISE_API = "0.9"


class Unversioned:
    pass


RECORDED: list[tuple[Any, ...]] = []


class RecordingProvider(MeetingProvider):
    name = "jitsi"

    @classmethod
    def from_settings(cls, context: Any) -> RecordingProvider:
        return cls()

    def create(self, booking: BookingData) -> Meeting:
        RECORDED.append(("meeting created", booking.uid))
        return Meeting(f"https://meet.invalid/{booking.uid}", booking.uid)

    def delete(self, meeting: Meeting) -> None:
        RECORDED.append(("meeting deleted", meeting.id))


class Recorder:
    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_register_meeting_providers(self) -> list[type[MeetingProvider]]:
        return [RecordingProvider]

    @hookimpl
    def bookwise_booking_changed(self, booking: BookingData, change: Any) -> None:
        RECORDED.append((change.action, booking.uid, booking.state))


class NotAList:
    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_register_meeting_providers(self) -> Any:
        return RecordingProvider  # forgot the list


class StrategiesAsList:
    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_register_assignment_strategies(self) -> Any:
        return ["fair"]


class NumberedChannel(ExplodingChannel):
    name = 42  # type: ignore[assignment]


class BadName:
    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_register_channels(self) -> Any:
        return [NumberedChannel]


class BadPatternChannel(RefusingChannel):
    name = "badpattern"
    settings_schema = {"type": "object", "properties": {"x": {"type": "string", "pattern": "(["}}}


class BadSchema:
    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_register_channels(self) -> Any:
        return [BadPatternChannel]


class UnstartableChannel(RefusingChannel):
    name = "unstartable"

    def __init__(self) -> None:
        raise OSError("no such device")


class Unstartable:
    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_register_channels(self) -> Any:
        return [UnstartableChannel]


class SlowProvider(RecordingProvider):
    timeout = 0.2

    def create(self, booking: BookingData) -> Meeting:
        time.sleep(0.6)
        return super().create(booking)


class Slow:
    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_register_meeting_providers(self) -> list[type[MeetingProvider]]:
        return [SlowProvider]


class SlowToMoveProvider(RecordingProvider):
    timeout = 0.2

    def update(self, meeting: Meeting, booking: BookingData) -> Meeting:
        time.sleep(0.6)
        RECORDED.append(("meeting moved late", booking.uid))
        return meeting


class SlowToMove:
    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_register_meeting_providers(self) -> list[type[MeetingProvider]]:
        return [SlowToMoveProvider]


PLUGINS = {
    "slow": Slow(),
    "slow_to_move": SlowToMove(),
    "unstartable": Unstartable(),
    "notalist": NotAList(),
    "strategies_as_list": StrategiesAsList(),
    "bad_name": BadName(),
    "bad_schema": BadSchema(),
    "recorder": Recorder(),
    "channels": Channels(),
    "provider": Provider(),
    "bad_listener": Listeners(fail=True),
    "good_listener": Listeners(fail=False),
    "old": Old(),
    "unversioned": Unversioned(),
}


def entry(name: str) -> EntryPoint:
    return EntryPoint(name, f"{__name__}:PLUGINS", "bookwise.plugins")


@pytest.fixture
def host_for(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Load the given test plugins (each an "entry point" of this module) into an instance."""
    real_load = EntryPoint.load
    monkeypatch.setattr(EntryPoint, "load", lambda self: PLUGINS.get(self.name) or real_load(self))

    def make(bw: Any, *names: str) -> PluginHost:
        settings = dataclasses.replace(bw.settings, plugins={"enabled": list(names)})
        host = PluginHost(settings, bw.database.sessions)
        core = [e for e in entry_points(group="bookwise.plugins") if e.dist.name == "bookwise"]
        host.load([*core, *(entry(name) for name in names)])

        bw.database.plugins = host
        return host

    return make


def test_a_plugin_that_cannot_load_is_reported_and_the_rest_starts(
    tmp_path: Path, host_for: Any
) -> None:
    bw = make_instance(tmp_path)
    host = host_for(bw, "old", "unversioned", "channels")
    assert host.plugins["old"].state == "failed"
    assert "written for plugin API 0.9" in host.plugins["old"].problems[0]
    assert 'BOOKWISE_API = "1.0"' in host.plugins["unversioned"].problems[0]
    assert host.plugins["channels"].state == "loaded"
    assert {"boom", "refuse"} <= host.channel_names


def test_a_failing_listener_does_not_stop_the_booking_or_the_others(
    tmp_path: Path, host_for: Any
) -> None:
    bw = make_instance(tmp_path)
    host = host_for(bw, "bad_listener", "good_listener")
    booking = book(bw, "northwind-hr", "hr-interview", HR)
    assert booking.uid in SEEN
    assert host.plugins["bad_listener"].errors == 1
    assert "the listener's bug" in (host.plugins["bad_listener"].last_error or "")


def test_a_failing_meeting_provider_leaves_the_booking_without_a_link(
    tmp_path: Path, host_for: Any
) -> None:
    bw = make_instance(tmp_path)
    host = host_for(bw, "provider")
    booking = book(bw, "northwind-hr", "hr-interview", HR)
    assert booking.meeting_url is None and booking.state == "requested"
    with bw.database.sessions() as session:
        (event,) = session.scalars(
            select(BookingEvent).where(
                BookingEvent.booking_id == booking.id, BookingEvent.action == "meeting_failed"
            )
        )
        assert "the provider's bug" in event.details["error"]
    assert host.plugins["provider"].errors == 1


def test_a_failing_channel_marks_its_message_failed_for_a_retry(
    tmp_path: Path, host_for: Any
) -> None:
    bw = make_instance(tmp_path)
    host = host_for(bw, "channels")
    book(bw, "northwind-hr", "hr-interview", HR)
    with bw.database.sessions() as session, session.begin():
        # The client's "requested" e-mail, also on the two test channels.
        (email,) = session.scalars(
            select(Notification).where(
                Notification.event == "requested", Notification.recipient_kind == "client"
            )
        )
        for channel in ("boom", "refuse"):
            copy = {
                column.key: getattr(email, column.key)
                for column in Notification.__table__.columns
                if column.key not in ("id", "message_uid")  # a new message, a new identity
            }
            copy.update(channel=channel, idempotency_key=f"{email.idempotency_key}:{channel}")
            session.add(Notification(**copy))
    bw.send_due()
    with bw.database.sessions() as session:
        rows = {
            row.channel: row
            for row in session.scalars(
                select(Notification).where(Notification.event == "requested")
            )
            if row.recipient_kind == "client"
        }
    assert rows["email"].state == "sent"  # the others went on
    assert rows["boom"].state == "failed" and "Broken: the channel's bug" in rows["boom"].last_error
    assert rows["refuse"].state == "failed" and rows["refuse"].last_error == "no route"
    assert host.plugins["channels"].errors == 1


def test_settings_of_an_enabled_plugin_are_checked(tmp_path: Path) -> None:
    bw = make_instance(tmp_path, plugins={"enabled": ["jitsi"], "jitsi": {"servr": "x"}})
    host = load_plugins(bw.settings)
    problem = host.problems()[0]
    assert "plugins.jitsi" in problem and "servr" in problem


def test_the_core_channels_come_through_the_entry_points(tmp_path: Path) -> None:
    bw = make_instance(tmp_path)
    host = load_plugins(bw.settings)
    assert {"email", "log"} <= host.channel_names
    assert {host.plugins[name].core for name in ("email", "log", "webhook")} == {True}
    assert host.plugins["webhook"].state == "not configured"


def test_the_admin_lists_plugins_and_their_problems(tmp_path: Path) -> None:
    from bookwise.accounts.services import create_user
    from bookwise.db import unit_of_work
    from tests.admin.conftest import token

    bw = make_instance(tmp_path, plugins={"enabled": ["jitsi"], "jitsi": {"server": "nope"}})
    with unit_of_work(bw.database.sessions) as session:
        create_user(session, "root@example.org", "a long password 1", superadmin=True)
    client = bw.app().test_client()
    signed_in = client.post(
        "/login",
        data={
            "email": "root@example.org",
            "password": "a long password 1",
            "csrf_token": token(client, "/login"),
        },
    )
    assert signed_in.status_code == 302
    text = client.get("/admin/plugins/").get_data(as_text=True)
    assert "jitsi" in text and "https:// address of a Jitsi" in text
    banner = client.get("/admin/bookings/").get_data(as_text=True)
    assert "1 plugin is not working" in banner


def test_the_plugins_command_says_what_is_wrong(tmp_path: Path, bookwise_cli: Any) -> None:
    bw = make_instance(tmp_path, plugins={"enabled": ["jitsi"], "jitsi": {"server": "nope"}})
    result = bookwise_cli("--config", str(bw.settings.source), "plugins")
    assert result.exit_code == 1
    assert "jitsi" in result.stdout and "failed" in result.stdout
    assert "plugins.jitsi.server: server must be the https:// address" in result.stderr
    fine = make_instance(
        tmp_path / "ok",
        plugins={"enabled": ["jitsi"], "jitsi": {"server": "https://meet.example.org"}},
    )
    result = bookwise_cli("--config", str(fine.settings.source), "plugins")
    assert result.exit_code == 0 and "meeting providers: jitsi" in result.stdout


# --- only what is committed reaches plugins -------------------------------------------------


def cancel_in(session: Any, booking_id: int, plugins: Any) -> None:
    from bookwise.bookings.models import Booking
    from bookwise.bookings.services import cancel_booking

    booking = session.get(Booking, booking_id)
    cancel_booking(session, booking, TEST_NOW, role="staff", actor="admin", plugins=plugins)


def test_a_released_savepoint_is_not_a_commit(tmp_path: Path, host_for: Any) -> None:
    from bookwise.db import unit_of_work

    bw = make_instance(tmp_path)
    host_for(bw, "recorder")
    booking = book(bw, "northwind-hr", "hr-interview", HR)
    RECORDED.clear()
    with pytest.raises(RuntimeError), unit_of_work(bw.database.sessions, write=True) as session:
        with session.begin_nested():
            cancel_in(session, booking.id, bw.database.plugins)
        raise RuntimeError("the outer transaction fails")
    assert RECORDED == []  # nothing happened: no event, the meeting kept


def test_a_rolled_back_savepoint_forgets_only_its_own(tmp_path: Path, host_for: Any) -> None:
    from bookwise.db import unit_of_work

    bw = make_instance(tmp_path)
    host_for(bw, "recorder")
    first = book(bw, "northwind-hr", "hr-interview", HR)
    second = book(bw, "northwind-hr", "hr-interview", HR, days_ahead=9)
    RECORDED.clear()
    with unit_of_work(bw.database.sessions, write=True) as session:
        cancel_in(session, first.id, bw.database.plugins)
        with pytest.raises(RuntimeError), session.begin_nested():
            cancel_in(session, second.id, bw.database.plugins)
            raise RuntimeError("this part fails")
    assert [
        ("meeting deleted", first.uid),
        ("cancel", first.uid, "cancelled"),
    ] == RECORDED


def test_a_meeting_made_in_a_rolled_back_transaction_is_deleted(
    tmp_path: Path, host_for: Any
) -> None:
    from bookwise.bookings.models import Booking
    from bookwise.db import unit_of_work
    from bookwise.testing import book_in

    bw = make_instance(tmp_path)
    host_for(bw, "recorder")
    RECORDED.clear()
    with pytest.raises(RuntimeError), unit_of_work(bw.database.sessions, write=True) as session:
        book_in(session, "northwind-hr", "hr-interview", HR, plugins=bw.database.plugins)
        raise RuntimeError("something after the booking fails: the transaction rolls back")
    with bw.database.sessions() as session:
        assert session.scalars(select(Booking)).all() == []
    (created, deleted) = RECORDED
    assert created[0] == "meeting created" and deleted == ("meeting deleted", created[1])


@pytest.mark.parametrize(
    ("plugin", "problem"),
    [
        ("notalist", "registered something unusable: TypeError"),
        ("strategies_as_list", "registered something unusable: ValueError"),
        ("bad_name", "its channel has no valid name (42"),
        ("bad_schema", "its settings_schema is not a valid JSON Schema"),
        ("unstartable", "channel 'unstartable' could not start: OSError: no such device"),
    ],
)
def test_a_plugin_registering_nonsense_is_left_out_with_a_reason(
    tmp_path: Path, host_for: Any, plugin: str, problem: str
) -> None:
    bw = make_instance(tmp_path)
    host = host_for(bw, plugin)
    assert host.plugins[plugin].state == "failed"
    assert problem in host.problems()[0], host.problems()
    assert "email" in host.channel_names  # the rest works


def test_settings_that_are_not_a_mapping(tmp_path: Path) -> None:
    bw = make_instance(
        tmp_path, plugins={"enabled": ["jitsi"], "jitsi": "https://meet.example.org"}
    )
    (problem,) = load_plugins(bw.settings).problems()
    assert "plugins.jitsi must be a mapping of settings" in problem


# --- the workflow language with plugins' field types -----------------------------------------


class BuggyRating(FieldType):
    name = "rating"
    settings_schema = {"type": "object", "properties": {"max": {"type": "integer"}}}

    def clean(self, value: Any, spec: Any) -> Any:
        raise ZeroDivisionError("the plugin's bug")


RATED = """
id: rated
name: Rated
duration: 30m
fields:
  - {id: stars, type: rating, settings: {max: 4}, label: Stars}
"""


def checked(text: str, **context: Any) -> Any:
    from bookwise.documents import parse_document
    from bookwise.workflows.loader import CheckContext, check_workflow

    return check_workflow(parse_document(text, "w.yaml"), CheckContext(**context))


def test_a_field_type_that_raises_refuses_the_answer_and_says_so() -> None:
    from bookwise.bookings.answers import InvalidAnswers, check_answers

    workflow = checked(RATED, field_types={"rating": BuggyRating.settings_schema})[0].workflow
    values = {"name": "Zoe", "email": "zoe@example.org", "stars": "3"}
    with pytest.raises(InvalidAnswers) as raised:
        check_answers(workflow, values, None, TEST_NOW.date(), {"rating": BuggyRating()})
    assert raised.value.problems["stars"].message() == (
        "This answer could not be checked just now; please try again later."
    )


def test_an_unknown_field_type_is_a_warning_when_a_plugin_failed() -> None:
    workflow, problems = checked(RATED)
    assert workflow is None and "unknown field type 'rating'" in str(problems[0])
    workflow, problems = checked(RATED, plugins_failed=True)
    assert workflow is not None  # the instance starts; the field is asked as text
    assert problems[0].severity == "warning" and "failed to load" in problems[0].message


def test_field_sets_may_use_a_plugins_field_type(tmp_path: Path) -> None:
    from bookwise.workflows.loader import CheckContext, read_field_sets

    (tmp_path / "rated.yaml").write_text(
        "fields:\n  - {id: stars, type: rating, settings: {max: 4}, label: Stars}\n"
    )
    _, problems = read_field_sets(tmp_path)
    assert "unknown field type 'rating'" in str(problems[0])
    sets, problems = read_field_sets(
        tmp_path, CheckContext(field_types={"rating": BuggyRating.settings_schema})
    )
    assert problems == [] and "rated" in sets


def test_a_slow_meeting_provider_does_not_hold_the_booking(tmp_path: Path, host_for: Any) -> None:
    bw = make_instance(tmp_path)
    host = host_for(bw, "slow")
    RECORDED.clear()
    booking = book(bw, "northwind-hr", "hr-interview", HR)
    assert booking.meeting_url is None  # the booking went on without waiting for the provider
    with bw.database.sessions() as session:
        (event,) = session.scalars(
            select(BookingEvent).where(BookingEvent.action == "meeting_failed")
        )
        assert "no answer within 0.2 s" in event.details["error"]
    assert host.plugins["slow"].errors == 1
    # The meeting the provider made afterwards is deleted.
    for _ in range(50):
        if ("meeting deleted", booking.uid) in RECORDED:
            break
        time.sleep(0.05)
    assert [("meeting created", booking.uid), ("meeting deleted", booking.uid)] == RECORDED


def test_a_provider_slow_to_move_a_meeting_does_not_hold_the_reschedule(
    tmp_path: Path, host_for: Any
) -> None:
    from bookwise.bookings.models import Booking
    from bookwise.bookings.services import context_of, reschedule_booking
    from bookwise.db import unit_of_work
    from bookwise.testing import free_starts

    bw = make_instance(tmp_path)
    host = host_for(bw, "slow_to_move")
    RECORDED.clear()
    booking = book(bw, "northwind-hr", "hr-interview", HR)
    link = booking.meeting_url
    assert link is not None
    began = time.monotonic()
    with unit_of_work(bw.database.sessions, write=True) as session:
        row = session.get(Booking, booking.id)
        assert row is not None
        later = [s for s in free_starts(session, context_of(row), bw.now(), 9) if s != row.start_at]
        reschedule_booking(session, row, later[0], bw.now(), plugins=bw.database.plugins)
    assert time.monotonic() - began < 0.55  # the provider's 0.6 s were not waited for
    with bw.database.sessions() as session:
        moved = session.get(Booking, booking.id)
        assert moved is not None and moved.start_at == later[0]
        assert moved.meeting_url == link  # kept: most providers keep the link anyway
        (event,) = session.scalars(
            select(BookingEvent).where(BookingEvent.action == "meeting_failed")
        )
        assert "no answer within 0.2 s" in event.details["error"]
    assert host.plugins["slow_to_move"].errors == 1


# --- plugins per calendar ----------------------------------------------------------------------


class Gate:
    """Checks bookings and hears of them: to see which calendars reach it."""

    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_validate_booking(self, booking: BookingData) -> str | None:
        RECORDED.append(("checked", booking.calendar))
        return None

    @hookimpl
    def bookwise_booking_changed(self, booking: BookingData, change: Any) -> None:
        RECORDED.append(("heard", booking.calendar, change.action))


PLUGINS["gate"] = Gate()


def _use_plugins(bw: Any, calendar: str, plugins: list[str] | None) -> None:
    from bookwise.calendars.models import Calendar

    with bw.database.sessions() as session, session.begin():
        row = session.scalar(select(Calendar).where(Calendar.slug == calendar))
        assert row is not None
        row.plugins = plugins


def test_a_calendar_that_does_not_use_a_plugin_tells_it_nothing(
    tmp_path: Path, host_for: Any
) -> None:
    bw = make_instance(tmp_path)
    host_for(bw, "recorder", "gate", "channels")
    _use_plugins(bw, "northwind-hr", ["gate"])  # not the recorder's meetings, not its channels
    RECORDED.clear()
    booking = book(bw, "northwind-hr", "hr-interview", HR)
    # The gate checked the booking and heard of it; the recorder made no meeting.
    assert RECORDED == [("checked", "northwind-hr"), ("heard", "northwind-hr", "created")]
    assert booking.meeting_url is None
    with bw.database.sessions() as session:
        (failed,) = session.scalars(
            select(BookingEvent).where(
                BookingEvent.booking_id == booking.id, BookingEvent.action == "meeting_failed"
            )
        )
        assert "does not use the plugin 'recorder'" in failed.details["error"]
        # A message on the channel of a plugin the calendar does not use is skipped, with why.
        email = session.scalars(
            select(Notification).where(
                Notification.booking_id == booking.id, Notification.channel == "email"
            )
        ).first()
        assert email is not None
        copy = {c.key: getattr(email, c.key) for c in Notification.__table__.columns}
        del copy["id"], copy["message_uid"]  # a new message, a new identity
        copy.update(channel="refuse", idempotency_key=f"{email.idempotency_key}:refuse")
        session.add(Notification(**copy))
        session.commit()
    bw.send_due()
    with bw.database.sessions() as session:
        refused = session.scalar(select(Notification).where(Notification.channel == "refuse"))
        assert refused is not None and refused.state == "skipped"
        assert "does not use the plugin 'channels'" in (refused.last_error or "")

    # Back to every plugin of the instance: the recorder makes the meeting again.
    _use_plugins(bw, "northwind-hr", None)
    RECORDED.clear()
    again = book(bw, "northwind-hr", "hr-interview", HR, days_ahead=9)
    assert again.meeting_url == f"https://meet.invalid/{again.uid}"
    assert ("heard", "northwind-hr", "created") in RECORDED
    assert ("created", again.uid, again.state) in RECORDED  # the recorder heard it too


def test_no_calendar_uses_a_plugin_when_its_list_is_empty(tmp_path: Path, host_for: Any) -> None:
    bw = make_instance(tmp_path)
    host_for(bw, "gate")
    _use_plugins(bw, "northwind-hr", [])
    RECORDED.clear()
    book(bw, "northwind-hr", "hr-interview", HR)
    assert RECORDED == []
