"""A client's rights: everything held about an address exported (and nothing of anyone else),
and erased, by the command line, the back office (by role), the API and the manage page; after
an erasure the address and the name are found in no column of any table, the audit log
included (which records the erasure with client ids and a pseudonym)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.accounts.services import create_user, grant_role
from bookwise.audit.models import AuditEntry
from bookwise.audit.services import record
from bookwise.bookings.models import Booking
from bookwise.bookings.services import manage_token
from bookwise.calendars.models import Calendar, StaffMember
from bookwise.db import unit_of_work
from bookwise.notifications.models import Notification
from bookwise.privacy.clients import ClientNotFound, export_client
from tests.admin.conftest import PASSWORD, World, post, token
from tests.conftest import Loaded
from tests.test_public import ORIGIN, form_values
from tests.test_retention import book_as, day_at

pytestmark = pytest.mark.clock

ZOE = ("zoe@example.org", "Zoé Martin", "+33612345678")


def find_everywhere(engine: sa.Engine, *needles: str) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text or JSON value of every table that contains one of
    ``needles`` (without regard to case; JSON compared decoded, so escapes hide nothing)."""
    found = []
    metadata = sa.MetaData()
    metadata.reflect(bind=engine)
    lowered = [n.casefold() for n in needles]
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name == "alembic_version":
                continue
            for row in connection.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if isinstance(value, dict | list):
                        text = json.dumps(value, ensure_ascii=False)
                    elif isinstance(value, str):
                        text = value
                        if value[:1] in "{[":
                            with contextlib.suppress(ValueError):
                                text = json.dumps(json.loads(value), ensure_ascii=False)
                    else:
                        continue
                    if any(n in text.casefold() for n in lowered):
                        found.append((table.name, column, text[:200]))
    return found


def uid_token(loaded: Loaded, uid: str) -> str:
    with loaded.database.sessions() as session:
        return manage_token(session.scalars(sa.select(Booking).where(Booking.uid == uid)).one())


def audit_entries(loaded: Loaded, action: str) -> list[AuditEntry]:
    with loaded.database.sessions() as session:
        return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


@pytest.fixture
def people(scenario: Loaded, now: Any) -> dict[str, str]:
    """Zoé: a visit (day 3) and a consultation (day 4, her address typed with capitals) in
    acme, a consultation in private; Luc: a visit in acme."""
    return {
        "visit": book_as(scenario, now, day_at(now, 3)),
        "consult": book_as(
            scenario, now, day_at(now, 4), service="consult", email="Zoe@Example.ORG"
        ),
        "private": book_as(scenario, now, day_at(now, 4), service="consult", calendar="private"),
        "luc": book_as(
            scenario,
            now,
            day_at(now, 3, 11),
            name="Luc Petit",
            email="luc@example.org",
            health="broken arm",
            phone="+33798765432",
        ),
    }


# --- export --------------------------------------------------------------------------------------


def test_the_export_holds_everything_and_nothing_of_anyone_else(
    scenario: Loaded, people: dict[str, str], now: Any
) -> None:
    with scenario.database.sessions() as session:
        acme = session.scalars(sa.select(Calendar).where(Calendar.slug == "acme")).one()
        data = export_client(session, acme, " ZOE@example.org ", now)
        everywhere = export_client(session, None, "zoe@example.org", now)
        with pytest.raises(ClientNotFound, match=r"no client with the address nobody@example\.org"):
            export_client(session, acme, "nobody@example.org", now)
    assert (data["schema"], data["version"], data["calendars"]) == (
        "bookwise.client-data", 1, ["acme"])  # fmt: skip
    assert {b["id"] for b in data["bookings"]} == {people["visit"], people["consult"]}
    assert len(data["clients"]) == 2
    visit = next(b for b in data["bookings"] if b["id"] == people["visit"])
    assert visit["answers"]["health"] == "asthma"
    assert visit["start"].endswith("Z") and visit["history"][0]["action"] == "created"
    assert {m["channel"] for m in visit["messages"]} == {"email"}
    assert all(m["to"] == "zoe@example.org" for m in visit["messages"])
    consult = next(b for b in data["bookings"] if b["id"] == people["consult"])
    assert consult["consent"]["text"] == "I agree that my answers are kept for a year."
    assert (
        consult["consent"]["given_at"].endswith("Z") and consult["consent"]["withdrawn_at"] is None
    )
    text = json.dumps(data, ensure_ascii=False)
    assert (
        "luc" not in text.casefold() and "broken arm" not in text and people["private"] not in text
    )
    assert everywhere["calendars"] == ["acme", "private"] and len(everywhere["bookings"]) == 3


def test_the_command_exports_to_a_file_and_audits_it(
    scenario: Loaded, people: dict[str, str], bookwise_cli: Any, tmp_path: Any
) -> None:
    config = str(tmp_path / "scenario.yaml")
    out = tmp_path / "zoe.json"
    result = bookwise_cli("client", "export", "ZOE@example.org", "--calendar", "acme",
                          "--output", str(out), "--config", config)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith(f"written to {out}")
    assert len(json.loads(out.read_text(encoding="utf-8"))["bookings"]) == 2
    [entry] = audit_entries(scenario, "client.exported")
    assert entry.actor == "cli" and entry.details["bookings"] == 2
    assert "zoe" not in json.dumps(entry.details).casefold()
    missing = bookwise_cli("client", "export", "nobody@example.org", "--config", config)
    assert missing.exit_code == 1
    assert missing.stderr.strip() == (
        "error: no client with the address nobody@example.org in any calendar"
    )


# --- erasure by the command line ----------------------------------------------------------------


def test_erasure_asks_first_and_needs_a_scope(
    scenario: Loaded, people: dict[str, str], bookwise_cli: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    config = str(tmp_path / "scenario.yaml")
    neither = bookwise_cli("client", "erase", "zoe@example.org", "--config", config)
    assert neither.exit_code == 2 and "--calendar SLUG or --all-calendars" in neither.stderr
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    refused = bookwise_cli("client", "erase", "zoe@example.org", "--calendar", "acme",
                           "--config", config)  # fmt: skip
    assert refused.exit_code == 130
    assert "2 client record(s), 2 booking(s) (2 to come" in refused.stdout
    assert "Erase?" in refused.stdout
    assert find_everywhere(scenario.database.engine, ZOE[0])  # nothing was erased
    unknown = bookwise_cli("client", "erase", "nobody@example.org", "--calendar", "acme",
                           "--yes", "--config", config)  # fmt: skip
    assert unknown.exit_code == 1
    assert "no client with the address nobody@example.org in the calendar 'acme'" in (
        unknown.stderr
    )


def test_erasure_in_one_calendar_cancels_tells_staff_and_leaves_the_other(
    scenario: Loaded, people: dict[str, str], bookwise_cli: Any, tmp_path: Any
) -> None:
    config = str(tmp_path / "scenario.yaml")
    result = bookwise_cli("client", "erase", "zoe@EXAMPLE.org", "--calendar", "acme", "--yes",
                          "--config", config)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "erased in acme: 2 client record(s) now Erased client " in result.stdout
    with scenario.database.sessions() as session:
        rows = {b.uid: b for b in session.scalars(sa.select(Booking))}
        visit, consult, private = (
            rows[people["visit"]],
            rows[people["consult"]],
            rows[people["private"]],
        )
        assert (visit.state, consult.state, private.state) == (
            "cancelled",
            "cancelled",
            "confirmed",
        )
        assert visit.answers == {} and visit.answers_erased_at is not None
        assert visit.client.email is None and visit.client.erased_at is not None
        assert visit.client.name == consult.client.name  # one pseudonym for one person
        assert private.client.email == "zoe@example.org" and private.answers == {"topic": "Taxes"}
        cancelled = session.scalars(
            sa.select(Notification).where(
                Notification.booking_id == visit.id, Notification.event == "cancelled"
            )
        ).all()
        # The staff member is told; the client, whose address is erased, is not.
        assert [(n.recipient_kind, n.recipient, n.state) for n in cancelled] == [
            ("staff", "ana@acme.example", "pending")
        ]
        unsent = session.scalars(
            sa.select(Notification).where(
                Notification.booking_id == visit.id,
                Notification.recipient_kind == "client",
                Notification.state.in_(("pending", "failed", "sending")),
            )
        ).all()
        assert unsent == []
    [entry] = audit_entries(scenario, "client.erased")
    assert entry.actor == "cli" and sorted(entry.details["clients"]) == sorted(
        [visit.client_id, consult.client_id]
    )
    assert entry.details["pseudonyms"] == [visit.client.name] and entry.details["cancelled"] == 2
    # Found in the other calendar only.
    assert {table for table, _c, _v in find_everywhere(scenario.database.engine, ZOE[0])} <= {
        "clients", "outbox"}  # fmt: skip


def test_after_erasure_everywhere_nothing_names_the_client(
    scenario: Loaded, people: dict[str, str], bookwise_cli: Any, tmp_path: Any
) -> None:
    # An entry that names the client (a plugin's, or one made by the client: the audit log's
    # actor may be a client's address).
    with unit_of_work(scenario.database.sessions) as session:
        acme = session.scalars(sa.select(Calendar).where(Calendar.slug == "acme")).one()
        record(session, "booking.noted", "Zoe@example.org", calendar_id=acme.id,
               details={"about": "Zoé Martin, zoe@example.org", "n": 1})  # fmt: skip
        record(session, "booking.noted", "ana@acme.example", calendar_id=acme.id,
               details={"notes": ["called Zoé Martin back"]})  # fmt: skip
    before = find_everywhere(scenario.database.engine, *ZOE)
    assert "audit_log" in {t for t, _c, _v in before}
    assert {t for t, _c, _v in before} >= {"clients", "outbox"}
    result = bookwise_cli("client", "erase", "zoe@example.org", "--all-calendars", "--yes",
                          "--config", str(tmp_path / "scenario.yaml"))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert find_everywhere(scenario.database.engine, *ZOE) == []
    assert answers_of(scenario, people["visit"]) == answers_of(scenario, people["private"]) == {}
    # Luc is untouched.
    assert find_everywhere(scenario.database.engine, "luc@example.org")
    assert len(audit_entries(scenario, "client.erased")) == 2  # one per calendar
    with scenario.database.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 4


# --- the back office, by role --------------------------------------------------------------------


@pytest.fixture
def office(scenario: Loaded, people: dict[str, str], clock: Any) -> Iterator[World]:
    """The scenario's back office with a user of each role: super (superadmin), admin and
    viewer (of acme), ana (staff of acme, the staff member ana), other (admin of private)."""
    from bookwise.app import create_app

    ids: dict[str, int] = {}
    with unit_of_work(scenario.database.sessions) as session:
        calendars = {c.slug: c.id for c in session.scalars(sa.select(Calendar))}
        ana_staff = session.scalars(sa.select(StaffMember).where(StaffMember.slug == "ana")).first()
        assert ana_staff is not None
        for who, calendar, role in (("super", None, None), ("admin", "acme", "admin"),
                                    ("viewer", "acme", "viewer"), ("ana", "acme", "staff"),
                                    ("other", "private", "admin")):  # fmt: skip
            user = create_user(session, f"{who}@bw.example", PASSWORD, superadmin=who == "super")
            if calendar is not None:
                grant = grant_role(session, user, calendars[calendar], role)
                if who == "ana":
                    grant.staff_id = ana_staff.id
            session.flush()
            ids[who] = user.id
        ids.update(calendars)
    application = create_app(scenario.settings, clock=clock)
    application.config.update(TESTING=True)
    yield World(application, ids)
    application.extensions["bookwise"].database.engine.dispose()


def answers_of(loaded: Loaded, uid: str) -> dict[str, Any]:
    with loaded.database.sessions() as session:
        return dict(session.scalars(sa.select(Booking).where(Booking.uid == uid)).one().answers)


@pytest.mark.parametrize("who", ["viewer", "ana"])
def test_viewers_and_staff_can_neither_look_up_export_nor_erase(
    office: World, scenario: Loaded, who: str
) -> None:
    client = office.login(who)
    assert client.get("/admin/clients/").status_code == 403
    for path in ("/admin/clients/", "/admin/clients/export", "/admin/clients/erase"):
        response = client.post(
            path, data={"email": ZOE[0], "confirmed": "yes", "csrf_token": token(client)}
        )
        assert response.status_code == 403, path
    denied = audit_entries(scenario, "access.denied")
    assert len(denied) >= 4 and all(ZOE[0] not in json.dumps(e.details) for e in denied)
    assert find_everywhere(scenario.database.engine, ZOE[0])


def test_an_admin_looks_up_exports_and_erases_in_their_calendar(
    office: World, scenario: Loaded, people: dict[str, str]
) -> None:
    client = office.login("admin")
    page = post(client, "/admin/clients/", {"email": "ZOE@example.org"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Client records: 2" in html and "Erase…" in html
    missing = post(client, "/admin/clients/", {"email": "nobody@example.org"})
    assert missing.status_code == 404
    assert "No client with the address nobody@example.org in the calendar Acme" in missing.get_data(
        as_text=True
    )
    exported = post(client, "/admin/clients/export", {"email": ZOE[0]})
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"] == (
        'attachment; filename="client-data-acme.json"'
    )
    data = json.loads(exported.get_data(as_text=True))
    assert data["calendars"] == ["acme"] and len(data["bookings"]) == 2
    assert people["private"] not in exported.get_data(as_text=True)
    assert [e.actor for e in audit_entries(scenario, "client.exported")] == ["admin@bw.example"]
    # Without the CSRF token: refused, nothing erased.
    forged = client.post("/admin/clients/erase", data={"email": ZOE[0], "confirmed": "yes"})
    assert forged.status_code == 400
    step = post(client, "/admin/clients/erase", {"email": ZOE[0]})
    assert step.status_code == 200 and "Erase for good?" in step.get_data(as_text=True)
    assert answers_of(scenario, people["visit"])  # not yet
    done = post(client, "/admin/clients/erase", {"email": ZOE[0], "confirmed": "yes"})
    assert done.status_code == 302
    assert answers_of(scenario, people["visit"]) == {}
    # What is left is the other calendar's client, which an acme admin cannot erase.
    found = find_everywhere(scenario.database.engine, *ZOE)
    assert found and {t for t, _c, _v in found} <= {"clients", "outbox"}
    assert answers_of(scenario, people["private"]) == {"topic": "Taxes"}
    [entry] = audit_entries(scenario, "client.erased")
    assert entry.actor == "admin@bw.example" and entry.user_id == office.ids["admin"]
    assert entry.calendar_id == office.ids["acme"]


def test_a_superadmin_erases_in_every_calendar(
    office: World, scenario: Loaded, people: dict[str, str]
) -> None:
    client = office.login("super")
    step = post(client, "/admin/clients/erase", {"email": ZOE[0], "everywhere": "y"})
    assert "Client records: 3" in step.get_data(as_text=True)
    done = post(client, "/admin/clients/erase",
                {"email": ZOE[0], "everywhere": "y", "confirmed": "yes"})  # fmt: skip
    assert done.status_code == 302
    assert find_everywhere(scenario.database.engine, *ZOE) == []
    assert answers_of(scenario, people["private"]) == {}
    assert answers_of(scenario, people["luc"])["health"] == "broken arm"


# --- the client's own link: the API and the manage page -----------------------------------------


def test_the_api_exports_and_erases_with_the_manage_token(
    scenario: Loaded, scenario_app: Any, people: dict[str, str]
) -> None:
    web = scenario_app.test_client()
    token = uid_token(scenario, people["visit"])
    data = web.get(f"/api/v1/manage/{token}/data")
    assert data.status_code == 200 and "no-store" in data.headers["Cache-Control"]
    body = data.get_json()
    # The link holds one booking: not the other bookings made with the same address.
    assert [b["id"] for b in body["bookings"]] == [people["visit"]]
    assert body["bookings"][0]["answers"]["health"] == "asthma"
    assert [e.actor for e in audit_entries(scenario, "client.exported")] == ["client"]
    unconfirmed = web.post(f"/api/v1/manage/{token}/erase", json={})
    assert unconfirmed.status_code == 400
    assert unconfirmed.get_json()["error"]["code"] == "confirm_required"
    erased = web.post(f"/api/v1/manage/{token}/erase", json={"confirm": True})
    assert erased.status_code == 200, erased.get_data(as_text=True)
    report = erased.get_json()["erased"]
    assert (report["calendars"], report["clients"], report["bookings_cancelled"]) == (
        ["acme"],
        1,
        1,
    )
    assert web.post(f"/api/v1/manage/{token}/erase", json={"confirm": True}).status_code == 404
    assert web.get(f"/api/v1/manage/{token}").status_code == 404
    with scenario.database.sessions() as session:
        rows = {b.uid: b for b in session.scalars(sa.select(Booking))}
        assert rows[people["visit"]].client.email is None
        assert rows[people["consult"]].client.email == "Zoe@example.org"


def test_the_manage_page_downloads_and_erases_after_confirmation(
    scenario: Loaded, scenario_app: Any, people: dict[str, str]
) -> None:
    web = scenario_app.test_client()
    token = uid_token(scenario, people["visit"])
    page = web.get(f"/manage/{token}").get_data(as_text=True)
    assert "Your data" in page and f"/manage/{token}/data.json" in page
    download = web.get(f"/manage/{token}/data.json")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == 'attachment; filename="my-data.json"'
    assert json.loads(download.get_data(as_text=True))["bookings"][0]["id"] == people["visit"]
    confirm = web.get(f"/manage/{token}/erase").get_data(as_text=True)
    assert "Yes, erase my data" in confirm
    expired = web.post(f"/manage/{token}/erase", data={}, headers=ORIGIN)
    assert expired.status_code == 409
    assert answers_of(scenario, people["visit"])["health"] == "asthma"
    done = web.post(f"/manage/{token}/erase", data=form_values(confirm), headers=ORIGIN)
    assert done.status_code == 200 and "Your data has been erased" in done.get_data(as_text=True)
    assert web.get(f"/manage/{token}").status_code == 404
    assert answers_of(scenario, people["visit"]) == {}
