"""Calendar interoperability in the back office: a staff member's own calendars (read for busy
times, from an address served here on loopback or an uploaded file) and the private addresses of
the subscribable feeds, on the staff page and on the calendar's settings page."""

from __future__ import annotations

import dataclasses
import http.server
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from bookwise.audit.models import AuditEntry
from bookwise.calendars.models import BusyTime, Calendar, CalendarSource
from tests.admin.conftest import World, db, fetch, post
from tests.admin.test_calendars_admin import settings_form

# Four busy times after the world's clock (2026-11-25 09:00 UTC): one meeting and a weekly one
# held three times. Titles and attendees are there to check that none of them is kept.
CALENDAR = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Bookwise tests//Own calendar//EN\r
BEGIN:VEVENT\r
UID:therapy@tests.example\r
DTSTAMP:20261101T000000Z\r
DTSTART:20261127T090000Z\r
DTEND:20261127T100000Z\r
SUMMARY:Therapy with Mrs Secret\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:board@tests.example\r
DTSTAMP:20261101T000000Z\r
DTSTART:20261130T130000Z\r
DTEND:20261130T150000Z\r
RRULE:FREQ=WEEKLY;COUNT=3\r
SUMMARY:Board meeting\r
ATTENDEE:mailto:boss@tests.example\r
END:VEVENT\r
END:VCALENDAR\r
"""
BUSY = 4


@dataclass
class Answer:
    """What the calendar server answers to every GET (a test changes it to break the server)."""

    status: int = 200
    body: bytes = CALENDAR
    content_type: str = "text/calendar; charset=utf-8"


class CalendarHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        answer: Answer = self.server.answer  # type: ignore[attr-defined]
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class CalendarServer:
    url: str
    answer: Answer


@pytest.fixture
def calendar_server() -> Iterator[CalendarServer]:
    """A web server on loopback publishing one calendar, like Outlook's "Publish calendar"."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CalendarHandler)
    answer = Answer()
    server.answer = answer  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield CalendarServer(f"http://127.0.0.1:{server.server_port}/ana.ics", answer)
    server.shutdown()
    server.server_close()


@pytest.fixture
def feeds_world(world: World) -> World:
    """The world, its instance allowed to read calendars on loopback (feeds:
    allow_private_addresses, off by default so that an address cannot probe the intranet)."""
    bookwise = world.app.extensions["bookwise"]
    feeds = dataclasses.replace(bookwise.settings.feeds, allow_private_addresses=True, timeout=5)
    bookwise.settings = dataclasses.replace(bookwise.settings, feeds=feeds)
    return world


def staff_path(world: World, who: str, action: str = "") -> str:
    return f"/admin/staff/{world.ids[f'staff_{who}']}/{action}"


def sources_of(world: World, who: str) -> list[tuple[int, str, int]]:
    """(id, label, busy_count) of a member's calendars."""
    with db(world) as session:
        rows = session.execute(
            select(CalendarSource.id, CalendarSource.label, CalendarSource.busy_count)
            .where(CalendarSource.staff_id == world.ids[f"staff_{who}"])
            .order_by(CalendarSource.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def busy_count(world: World, who: str) -> int:
    with db(world) as session:
        return session.scalar(
            select(func.count())
            .select_from(BusyTime)
            .where(BusyTime.staff_id == world.ids[f"staff_{who}"])
        )


def upload(client: Any, path: str, data: bytes, name: str) -> Any:
    return post(client, path, {"file": (io.BytesIO(data), name)})


# --- own calendars ---------------------------------------------------------------------------


def test_an_address_is_added_and_read_at_once(
    feeds_world: World, calendar_server: CalendarServer
) -> None:
    world = feeds_world
    client = world.login("admin")
    page = client.get(staff_path(world, "ben")).get_data(as_text=True)
    assert 'id="calendars"' in page and "Secret address in iCal format" in page
    assert "never titles, places or attendees" in page
    response = post(
        client, staff_path(world, "ben", "calendars/address"), {"url": calendar_server.url}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("#calendars")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Calendar added: 127.0.0.1/ana.ics." in page
    assert f"Read: {BUSY} busy times." in page
    assert "Working" in page
    assert "Therapy with Mrs Secret" not in page and "Board meeting" not in page
    [(source_id, label, busy)] = sources_of(world, "ben")
    assert (label, busy) == ("127.0.0.1/ana.ics", BUSY)
    with db(world) as session:
        rows = session.scalars(select(BusyTime).where(BusyTime.source_id == source_id)).all()
        assert len(rows) == BUSY and all(row.summary is None for row in rows)
        source = session.get(CalendarSource, source_id)
        assert source is not None and "Mrs Secret" not in (source.content or "")
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.action == "staff.calendar_added")
        )
        assert entry is not None and entry.actor == "admin@bw.example"
    # The day view shows the time as taken, without its title.
    grid = client.get("/admin/bookings/grid?date=2026-11-27").get_data(as_text=True)
    assert "Busy elsewhere" in grid and "Therapy" not in grid
    # The same address again is refused, beside the field.
    again = post(
        client, staff_path(world, "ben", "calendars/address"), {"url": calendar_server.url}
    )
    assert again.status_code == 422
    assert "already one of this person&#39;s calendars" in again.get_data(as_text=True)
    assert len(sources_of(world, "ben")) == 1


def test_an_address_that_is_not_a_web_address_is_refused(feeds_world: World) -> None:
    client = feeds_world.login("admin")
    response = post(client, staff_path(feeds_world, "ben", "calendars/address"), {"url": "ftp://x"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'id="url-error">This is not a web address: it must start with https://', page)
    assert sources_of(feeds_world, "ben") == []
    empty = post(client, staff_path(feeds_world, "ben", "calendars/address"), {"url": ""})
    assert empty.status_code == 422
    assert sources_of(feeds_world, "ben") == []


def test_a_failing_address_keeps_its_busy_times_and_says_why(
    feeds_world: World, calendar_server: CalendarServer
) -> None:
    world = feeds_world
    client = world.login("admin")
    post(client, staff_path(world, "ben", "calendars/address"), {"url": calendar_server.url})
    [(source_id, _label, _busy)] = sources_of(world, "ben")
    calendar_server.answer.status = 404
    calendar_server.answer.body = b"gone"
    response = post(client, staff_path(world, "ben", "calendars/refresh"), {"source_id": source_id})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        "There is no calendar at this address any more (the server answered 404)" in page
    )  # the flash, and the row's status
    assert "Failing since" in page
    assert busy_count(world, "ben") == BUSY  # garbage never frees anyone's time
    # The calendar's home tells its admins, with the way to the staff page; not its viewers.
    home = client.get("/admin/").get_data(as_text=True)
    assert "A staff calendar cannot be read" in home
    assert f"{staff_path(world, 'ben')}#calendars" in home
    viewer_home = world.login("viewer").get("/admin/").get_data(as_text=True)
    assert "cannot be read" not in viewer_home
    calendar_server.answer.status = 200
    calendar_server.answer.body = CALENDAR
    response = post(client, staff_path(world, "ben", "calendars/refresh"), {"source_id": source_id})
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Read: {BUSY} busy times." in page and "Failing since" not in page


def test_an_address_that_cannot_be_read_is_added_with_its_problem(
    feeds_world: World, calendar_server: CalendarServer
) -> None:
    calendar_server.answer.status = 404
    client = feeds_world.login("admin")
    response = post(
        client,
        staff_path(feeds_world, "ben", "calendars/address"),
        {"url": calendar_server.url},
        follow_redirects=True,
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert (
        "Calendar added" in page
        and "There is no calendar at this address any more (the server answered 404)" in page
    )
    assert [busy for _id, _label, busy in sources_of(feeds_world, "ben")] == [0]


def test_upload_a_calendar_file(feeds_world: World) -> None:
    client = feeds_world.login("admin")
    path = staff_path(feeds_world, "cleo", "calendars/file")
    response = upload(client, path, CALENDAR, "Cléo's agenda.ics")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Read: {BUSY} busy times." in page and "Uploaded file" in page
    assert sources_of(feeds_world, "cleo")[0][1:] == ("Cléo's agenda.ics", BUSY)
    assert busy_count(feeds_world, "cleo") == BUSY
    # Exported calendars are often larger than the 64 KiB the other forms may send.
    padding = b"".join(
        b"BEGIN:VEVENT\r\nUID:pad-%d@tests.example\r\nDTSTAMP:20261101T000000Z\r\n"
        b"DTSTART:20200101T090000Z\r\nDTEND:20200101T100000Z\r\nSUMMARY:%s\r\nEND:VEVENT\r\n"
        % (n, b"x" * 60)
        for n in range(800)
    )
    large = CALENDAR.replace(b"END:VCALENDAR", padding + b"END:VCALENDAR")
    assert len(large) > 100_000
    assert upload(client, path, large, "year.ics").status_code == 302
    assert [busy for _id, _label, busy in sources_of(feeds_world, "cleo")] == [BUSY, BUSY]


def test_a_file_that_is_not_a_calendar_is_refused(feeds_world: World) -> None:
    client = feeds_world.login("admin")
    path = staff_path(feeds_world, "cleo", "calendars/file")
    html = b"<!doctype html><html><body><h1>My calendar</h1></body></html>"
    response = upload(client, path, html, "calendar.html")
    assert response.status_code == 422
    assert "This is not an iCalendar file" in response.get_data(as_text=True)
    nothing = post(client, path, {})
    assert nothing.status_code == 422
    assert "Choose a file to upload." in nothing.get_data(as_text=True)
    assert sources_of(feeds_world, "cleo") == []
    assert busy_count(feeds_world, "cleo") == 0


def test_remove_a_calendar_frees_its_busy_times(feeds_world: World) -> None:
    client = feeds_world.login("admin")
    upload(client, staff_path(feeds_world, "cleo", "calendars/file"), CALENDAR, "work.ics")
    [(source_id, _label, _busy)] = sources_of(feeds_world, "cleo")
    response = post(
        client, staff_path(feeds_world, "cleo", "calendars/remove"), {"source_id": source_id}
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "work.ics removed: its busy times are free again." in page
    assert sources_of(feeds_world, "cleo") == []
    assert busy_count(feeds_world, "cleo") == 0
    with db(feeds_world) as session:
        assert session.scalar(
            select(AuditEntry).where(AuditEntry.action == "staff.calendar_removed")
        )


def test_a_staff_member_adds_their_own_calendar(
    feeds_world: World, calendar_server: CalendarServer
) -> None:
    client = feeds_world.login("ana")
    page = client.get(staff_path(feeds_world, "ana")).get_data(as_text=True)
    assert 'id="calendars"' in page and 'id="subscribe"' in page
    response = post(
        client, staff_path(feeds_world, "ana", "calendars/address"), {"url": calendar_server.url}
    )
    assert response.status_code == 302
    assert [busy for _id, _label, busy in sources_of(feeds_world, "ana")] == [BUSY]
    # Not someone else's, though: neither adding nor touching theirs.
    other = post(
        client, staff_path(feeds_world, "ben", "calendars/address"), {"url": calendar_server.url}
    )
    assert other.status_code == 403
    admin = feeds_world.login("admin")
    upload(admin, staff_path(feeds_world, "ben", "calendars/file"), CALENDAR, "ben.ics")
    [(ben_source, _label, _busy)] = sources_of(feeds_world, "ben")
    for action in ("refresh", "remove"):
        # Ben's calendar through Ana's page is refused too.
        path = staff_path(feeds_world, "ana", f"calendars/{action}")
        assert post(client, path, {"source_id": ben_source}).status_code == 403
    assert len(sources_of(feeds_world, "ben")) == 1


def test_viewers_and_admins_of_other_calendars_are_refused(
    feeds_world: World, calendar_server: CalendarServer
) -> None:
    admin = feeds_world.login("admin")
    upload(admin, staff_path(feeds_world, "ben", "calendars/file"), CALENDAR, "ben.ics")
    [(source_id, _label, _busy)] = sources_of(feeds_world, "ben")
    for who in ("viewer", "other"):
        client = feeds_world.login(who)
        for action, data in (
            ("calendars/address", {"url": calendar_server.url}),
            ("calendars/refresh", {"source_id": source_id}),
            ("calendars/remove", {"source_id": source_id}),
            ("subscribe", {}),
            ("subscribe/stop", {}),
        ):
            response = post(client, staff_path(feeds_world, "ben", action), data)
            assert response.status_code == 403, (who, action)
        assert (
            upload(
                client, staff_path(feeds_world, "ben", "calendars/file"), CALENDAR, "x.ics"
            ).status_code
            == 403
        )
    viewer = feeds_world.login("viewer")
    page = viewer.get(staff_path(feeds_world, "ben")).get_data(as_text=True)
    assert 'id="calendars"' not in page and 'id="subscribe"' not in page
    assert "ben.ics" not in page
    assert admin.get(staff_path(feeds_world, "ben", "calendars/address")).status_code == 405
    assert len(sources_of(feeds_world, "ben")) == 1
    with db(feeds_world) as session:
        denied = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "access.denied")
        )
        assert denied and denied >= 12


# --- subscribed feeds ------------------------------------------------------------------------

FEED = re.compile(r"https?://[^\"<\s]+/feeds/([A-Za-z0-9_-]+)\.ics")


def made_address(response: Any) -> tuple[str, str]:
    """The address a "make" answer shows once, and its token."""
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    found = FEED.search(page)
    assert found, "no feed address on the page"
    assert f'href="webcal://{found.group(0).split("://", 1)[1]}"' in page
    assert "It is shown only now" in page
    return found.group(0), found.group(1)


def test_a_staff_members_feed_is_shown_once_then_replaced_then_stopped(world: World) -> None:
    client = world.login("ana")
    visitor = world.app.test_client()
    page = client.get(staff_path(world, "ana")).get_data(as_text=True)
    assert "Subscribe to Ana's bookings" in page and "Make a private address" in page
    address, first = made_address(post(client, staff_path(world, "ana", "subscribe")))
    later = client.get(staff_path(world, "ana")).get_data(as_text=True)
    assert first not in later
    assert "never used yet" in later and "Stop this address" in later
    feed = visitor.get(f"/feeds/{first}.ics")
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    assert b"BEGIN:VCALENDAR" in feed.data
    assert "last used" in client.get(staff_path(world, "ana")).get_data(as_text=True)
    _address, second = made_address(post(client, staff_path(world, "ana", "subscribe")))
    assert second != first
    assert visitor.get(f"/feeds/{first}.ics").status_code == 404
    assert visitor.get(f"/feeds/{second}.ics").status_code == 200
    stopped = post(client, staff_path(world, "ana", "subscribe/stop"))
    assert stopped.status_code == 302 and stopped.headers["Location"].endswith("#subscribe")
    assert visitor.get(f"/feeds/{second}.ics").status_code == 404
    page = client.get(stopped.headers["Location"]).get_data(as_text=True)
    assert "The address is stopped" in page and "Make a private address" in page
    assert address.startswith(world.app.extensions["bookwise"].settings.base_url)


def test_the_calendars_feed_and_whether_it_names_the_clients(world: World) -> None:
    client = world.login("admin")
    path = f"/admin/calendars/{world.ids['acme']}/"
    page = client.get(path).get_data(as_text=True)
    assert "Subscribe to Acme Advice's bookings" in page
    assert "Show clients' names in subscribed calendars" in page
    _address, token = made_address(post(client, path + "subscribe"))
    assert token not in client.get(path).get_data(as_text=True)
    visitor = world.app.test_client()
    feed = visitor.get(f"/feeds/{token}.ics")
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    unfolded = feed.get_data(as_text=True).replace("\r\n ", "")
    assert "Ana" in unfolded and "Zoé Client" not in unfolded  # off by default
    saved = post(client, path, settings_form(world, feed_client_names="y"))
    assert saved.status_code == 302
    assert fetch(world, Calendar, world.ids["acme"]).feed_client_names
    with db(world) as session:
        entry = session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == "calendar.updated")
            .order_by(AuditEntry.id.desc())
        )
        assert entry is not None and "feed_client_names" in entry.details["changed"]
    named = visitor.get(f"/feeds/{token}.ics").get_data(as_text=True).replace("\r\n ", "")
    assert "Zoé Client" in named
    # Unticked again, the names go.
    post(client, path, settings_form(world))
    assert not fetch(world, Calendar, world.ids["acme"]).feed_client_names
    stopped = post(client, path + "subscribe/stop")
    assert stopped.status_code == 302 and stopped.headers["Location"].endswith("#subscribe")
    assert visitor.get(f"/feeds/{token}.ics").status_code == 404


def test_only_the_calendars_admins_make_its_feed(world: World) -> None:
    path = f"/admin/calendars/{world.ids['acme']}/"
    viewer = world.login("viewer")
    assert 'id="subscribe"' not in viewer.get(path).get_data(as_text=True)
    for who in ("viewer", "other", "ana"):
        client = world.login(who)
        assert post(client, path + "subscribe").status_code == 403, who
        assert post(client, path + "subscribe/stop").status_code == 403, who
    with db(world) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "feed.created")
            )
            == 0
        )


# --- a calendar on the organisation's CalDAV server ---------------------------------------------


@pytest.fixture
def caldav_calendar(tmp_path: Any) -> Iterator[str]:
    """A Radicale on loopback (tests/test_caldav.py) with Ana's calendar holding one meeting
    after the world's clock; the address of that calendar."""
    caldav = pytest.importorskip("caldav")
    from tests.test_caldav import start_radicale

    process, base = start_radicale(tmp_path)
    try:
        with caldav.DAVClient(
            url=base, username="ana", password="ana-secret", enable_rfc6764=False
        ) as client:
            calendar = client.principal().make_calendar(name="Personal", cal_id="personal")
            calendar.save_event(
                CALENDAR.decode().split("BEGIN:VEVENT\r\nUID:board")[0] + "END:VCALENDAR\r\n"
            )
        yield f"{base}ana/personal/"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_caldav_calendar_is_added_with_a_configured_account(
    feeds_world: World, caldav_calendar: str
) -> None:
    from bookwise.config import CaldavAccount
    from tests.test_caldav import SERVICE_PASSWORD, SERVICE_USER

    world = feeds_world
    client = world.login("admin")
    page = client.get(staff_path(world, "ben")).get_data(as_text=True)
    assert "Add a calendar from the CalDAV server" not in page  # no account configured
    bookwise = world.app.extensions["bookwise"]
    accounts = {"org": CaldavAccount(SERVICE_USER, SERVICE_PASSWORD, "ORG_CALDAV")}
    feeds = dataclasses.replace(bookwise.settings.feeds, caldav_accounts=accounts)
    bookwise.settings = dataclasses.replace(bookwise.settings, feeds=feeds)
    page = client.get(staff_path(world, "ben")).get_data(as_text=True)
    assert "Add a calendar from the CalDAV server" in page
    assert '<option value="org">org</option>' in page
    assert SERVICE_PASSWORD not in page

    path = staff_path(world, "ben", "calendars/caldav")
    response = post(client, path, {"url": caldav_calendar, "account": "org"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Calendar added: 127.0.0.1/ana/personal/." in page
    assert "Read: 1 busy time." in page
    assert "CalDAV (org)" in page and "Refresh now" in page
    assert "Therapy with Mrs Secret" not in page
    [(source_id, _label, busy)] = sources_of(world, "ben")
    assert busy == 1
    refreshed = post(
        client, staff_path(world, "ben", "calendars/refresh"), {"source_id": source_id}
    )
    assert "Read: 1 busy time." in client.get(refreshed.headers["Location"]).get_data(as_text=True)

    again = post(client, path, {"url": caldav_calendar, "account": "org"})
    assert again.status_code == 422
    assert "already one of this person&#39;s calendars" in again.get_data(as_text=True)
    unknown = post(client, path, {"url": caldav_calendar + "x/", "account": "other"})
    assert unknown.status_code == 422
    assert len(sources_of(world, "ben")) == 1
