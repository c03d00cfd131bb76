"""Calendars round-trip: `bookwise export calendars` and the back office's download give back the
calendar data file that `bookwise load` accepts unchanged (docs/calendars.md, Export)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from bookwise import instance
from bookwise.audit.models import AuditEntry
from bookwise.calendars.data import (
    CalendarSpec,
    FeedSpec,
    HoursRange,
    ServiceSpec,
    StaffSpec,
    TimeOffSpec,
    check_calendar_data,
)
from bookwise.calendars.export import calendars_yaml
from bookwise.calendars.models import Calendar, CalendarSource, StaffMember
from bookwise.calendars.services import export_calendars
from bookwise.config import Settings
from bookwise.database import Database
from bookwise.db import make_engine, unit_of_work
from bookwise.documents import read_document
from bookwise.workflows.services import workflow_tags
from tests.admin.conftest import NOW, World, _seed_world, db, post
from tests.conftest import (
    SCENARIO,
    Loaded,
    Seeds,
    _empty_postgres,
    _postgres_layout,
    _scenario_config,
)

EXPORTED_AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
HOSTILE_REASON = "Congrès: « santé » # 2 \"quoted\" 'single' — عطلة"


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def world(scenario: Loaded, seeds: Seeds) -> Iterator[World]:
    """The back office's world (tests/admin/conftest.py): the scenario with a user per role."""
    from bookwise.app import create_app

    ids = dict(seeds.restore("world", scenario.database, _scenario_config, _seed_world))
    application = create_app(scenario.settings)
    application.config.update(TESTING=True)
    application.extensions["bookwise"].clock = lambda: NOW
    yield World(application, ids)
    application.extensions["bookwise"].database.engine.dispose()


def export(database: Database, slugs: list[str] | None = None) -> str:
    with database.sessions() as session:
        return export_calendars(session, slugs, instance="https://bookwise.test", now=EXPORTED_AT)


def snapshot(session: Session, slugs: list[str] | None = None) -> list[dict[str, Any]]:
    """What the file format carries of each calendar, as plain data: no ids, times of writing,
    origins or invitation states (the format has none of them)."""
    query = select(Calendar).order_by(Calendar.id)
    if slugs is not None:
        query = query.where(Calendar.slug.in_(slugs))
    out = []
    for calendar in session.scalars(query):
        staff = []
        for member in calendar.staff:
            if member.removed_at is not None:
                continue
            staff.append(
                {
                    "slug": member.slug,
                    "name": member.name,
                    "email": member.email,
                    "phone": member.phone,
                    "tags": list(member.tags),
                    "bookable": member.bookable,
                    "uses_calendar_hours": member.uses_calendar_hours,
                    "hours": [(h.weekday, h.start_minute, h.end_minute) for h in member.hours],
                    "time_off": [(t.start_at, t.end_at, t.reason) for t in member.time_off],
                    "sources": [(s.kind, s.url, s.account) for s in member.sources],
                }
            )
        out.append(
            {
                "slug": calendar.slug,
                "name": calendar.name,
                "description": dict(calendar.description),
                "timezone": calendar.timezone,
                "locale": calendar.default_locale,
                "address": calendar.address,
                "phone": calendar.phone,
                "reply_to": calendar.reply_to,
                "quiet_hours": calendar.quiet_hours,
                "published": calendar.published,
                "search_indexing": calendar.search_indexing,
                "sign_in_required": calendar.sign_in_required,
                "show_business_timezone": calendar.show_business_timezone,
                "embed_origins": list(calendar.embed_origins),
                "plugins": calendar.plugins,
                "hours": [(h.weekday, h.start_minute, h.end_minute) for h in calendar.hours],
                "staff": staff,
                "services": [
                    (
                        s.workflow.slug,
                        s.active,
                        s.pool_by_tags,
                        [link.staff_member.slug for link in s.staff_links],
                    )
                    for s in calendar.services
                ],
            }
        )
    return out


def rows(database: Database, slugs: list[str] | None = None) -> list[dict[str, Any]]:
    with database.sessions() as session:
        return snapshot(session, slugs)


def check_text(settings: Settings, database: Database, path: Path) -> None:
    """The file is valid calendar data: no error, no warning."""
    with database.sessions() as session:
        known = workflow_tags(session)
    _specs, problems = check_calendar_data(
        read_document(path, path.name), known, settings.default_locale, settings.locales
    )
    assert problems == [], [str(p) for p in problems]


def empty_database(request: pytest.FixtureRequest, database: Database) -> None:
    """Make the test's database new again (the migrated schema, no rows)."""
    url = database.engine.url
    database.engine.dispose()
    if url.get_backend_name() == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        assert url.database is not None
        shutil.copyfile(template, url.database)
        return
    schema: str = request.getfixturevalue("postgres_schema")
    engine = make_engine(url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        _empty_postgres(connection, schema)
        for sequence in _postgres_layout(connection, schema)[1]:
            connection.execute(sa.text("SELECT setval(:s, 1, false)"), {"s": sequence})
    engine.dispose()


def round_trip(
    request: pytest.FixtureRequest,
    loaded: Loaded,
    tmp_path: Path,
    slugs: list[str] | None = None,
) -> str:
    """Export, check, load the export where it came from (nothing changes), load it into a new
    database (the same rows), export again (the same text)."""
    settings, database = loaded.settings, loaded.database
    text = export(database, slugs)
    path = tmp_path / "exported.yaml"
    path.write_text(text, encoding="utf-8")
    check_text(settings, database, path)
    before = rows(database, slugs)

    empty_database(request, database)
    instance.sync_workflows(settings, database)
    report, warnings = instance.load_calendar_file(settings, database, path)
    assert warnings == []
    assert report.created.get("calendars") == len(before)
    assert rows(database, slugs) == before
    assert export(database, slugs) == text
    again, _ = instance.load_calendar_file(settings, database, path)
    assert again.summary() == "nothing changed"
    return text


# --- the pure function --------------------------------------------------------------------------


def _spec(time_off: tuple[TimeOffSpec, ...], zone: str = "Europe/Paris") -> CalendarSpec:
    member = StaffSpec(
        slug="nadia",
        name="نادية الحداد",
        email="nadia@example.org",
        phone="+33612345678",
        tags=("doctor", "arabic"),
        bookable=False,
        hours=(),
        time_off=time_off,
        calendar_feeds=(
            FeedSpec(
                url="https://dav.example.org/cal/nadia/", file=None, content=None, account="office"
            ),
            FeedSpec(
                url="https://calendar.example.org/cal.ics?token=S3CR3T", file=None, content=None
            ),
            FeedSpec(url=None, file="rota.ics", content="BEGIN:VCALENDAR"),
        ),
    )
    return CalendarSpec(
        slug="lilas",
        name="Cabinet d'O'Neil: # 1",
        description={"fr": "Médecine: générale", "en": "General practice"},
        timezone=zone,
        locale="fr",
        address=None,
        phone="+33142000000",
        reply_to=None,
        published=False,
        search_indexing=True,
        sign_in_required=True,
        show_business_timezone=False,
        embed_origins=("https://www.example.org",),
        hours=(HoursRange(0, 510, 720), HoursRange(0, 840, 1440), HoursRange(5, 540, 720)),
        staff=(member,),
        services=(
            ServiceSpec(workflow="patient-visit", staff=("nadia",), active=False),
            ServiceSpec(workflow="tutoring", staff=None, active=True),
        ),
        plugins=(),
    )


def test_the_text_gives_back_the_specs_it_was_made_of(tmp_path: Path) -> None:
    paris = ZoneInfo("Europe/Paris")
    time_off = (
        # Whole days, the end day included.
        TimeOffSpec(
            datetime(2026, 12, 24, tzinfo=paris).astimezone(UTC),
            datetime(2027, 1, 2, tzinfo=paris).astimezone(UTC),
            HOSTILE_REASON,
        ),
        # Local times, on the day the clocks go forward.
        TimeOffSpec(
            datetime(2027, 3, 28, 1, 0, tzinfo=UTC), datetime(2027, 3, 28, 9, 30, tzinfo=UTC), None
        ),
        # 02:30 happens twice on 2026-10-25: the second one needs its offset.
        TimeOffSpec(
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC), datetime(2026, 10, 25, 3, 0, tzinfo=UTC), "x"
        ),
    )
    spec = _spec(time_off)
    text = calendars_yaml([spec], instance="https://bookwise.test", exported_at=EXPORTED_AT)
    path = tmp_path / "out.yaml"
    path.write_text(text, encoding="utf-8")
    specs, problems = check_calendar_data(
        read_document(path, "out.yaml"), {"patient-visit": ["doctor"], "tutoring": ["arabic"]}
    )
    assert problems == [], [str(p) for p in problems]
    (back,) = specs
    wanted = spec.staff[0]
    # What the format carries comes back as it was; the address with its secret and the
    # uploaded file do not (see the header).
    assert back.staff[0].time_off == tuple(sorted(time_off, key=lambda o: o.start))
    assert back.staff[0].calendar_feeds == (wanted.calendar_feeds[0],)
    assert back.staff[0] == StaffSpec(
        **{
            **wanted.__dict__,
            "calendar_feeds": back.staff[0].calendar_feeds,
            "time_off": back.staff[0].time_off,
        }
    )
    assert back.__dict__ | {"staff": (), "plugin_places": ()} == spec.__dict__ | {"staff": ()}
    assert "S3CR3T" not in text and "token" not in text
    assert "lilas/nadia: the address of a calendar on calendar.example.org" in text
    assert "lilas/nadia: the uploaded calendar file rota.ics" in text
    assert "# Calendars exported from https://bookwise.test on 2026-12-07 12:00 UTC" in text
    # The style of demo/calendars.yaml.
    assert '      mon: ["08:30-12:00", "14:00-24:00"]\n' in text
    assert "        tags: [doctor, arabic]\n" in text
    assert "          - {start: 2026-12-24, end: 2027-01-01, reason:" in text
    assert '{start: "2026-10-25T02:30+01:00", end: "2026-10-25T04:00", reason: x}' in text
    assert "    description:\n      fr: 'Médecine: générale'\n      en: General practice\n" in text
    assert "        hours: {}\n" in text
    # With the addresses asked for, they are written as they are.
    full = calendars_yaml(
        [spec], instance="https://bookwise.test", exported_at=EXPORTED_AT, feed_addresses=True
    )
    assert "- url: https://calendar.example.org/cal.ics?token=S3CR3T" in full


def test_a_listed_pool_whose_members_were_all_removed(tmp_path: Path) -> None:
    spec = _spec(())
    spec = CalendarSpec(
        **{
            **spec.__dict__,
            "services": (ServiceSpec(workflow="patient-visit", staff=(), active=True),),
        }
    )
    text = calendars_yaml([spec], instance="https://bookwise.test", exported_at=EXPORTED_AT)
    assert "staff: []" not in text
    assert "# - lilas: the staff list of patient-visit (everyone on it was removed)" in text
    path = tmp_path / "out.yaml"
    path.write_text(text, encoding="utf-8")
    specs, problems = check_calendar_data(read_document(path, "out.yaml"), None)
    assert problems == [] and specs[0].services[0].staff is None


# --- the database round trip --------------------------------------------------------------------


def test_the_demo_round_trips(request: pytest.FixtureRequest, demo: Loaded, tmp_path: Path) -> None:
    text = round_trip(request, demo, tmp_path)
    assert text.count("\n  - slug: ") == 3
    assert "indexing: false" in text  # northwind-hr
    assert '    quiet_hours: {from: "21:00", to: "08:00"}\n' in text  # clinique-des-lilas
    assert '{start: "2026-12-21T14:00", end: "2026-12-21T19:00", reason: Formation continue}' in (
        text
    )


def test_the_demo_export_changes_nothing_where_it_came_from(demo: Loaded, tmp_path: Path) -> None:
    path = tmp_path / "exported.yaml"
    path.write_text(export(demo.database), encoding="utf-8")
    before = rows(demo.database)
    report, warnings = instance.load_calendar_file(demo.settings, demo.database, path)
    assert (report.summary(), warnings) == ("nothing changed", [])
    assert rows(demo.database) == before


def test_the_scenario_round_trips(
    request: pytest.FixtureRequest, scenario: Loaded, tmp_path: Path
) -> None:
    text = round_trip(request, scenario, tmp_path)
    assert "      sign_in_required: true\n" in text  # the private club
    # The scenario's file, loaded where its export came from, still changes nothing.
    report, _ = instance.load_calendar_file(
        scenario.settings, scenario.database, SCENARIO / "calendars.yaml"
    )
    assert report.summary() == "nothing changed"


def test_one_calendar_of_several(scenario: Loaded) -> None:
    text = export(scenario.database, ["private"])
    assert "slug: private" in text and "slug: acme" not in text


# --- a calendar edited in the back office ---------------------------------------------------------


def test_a_calendar_edited_in_the_back_office_round_trips(
    request: pytest.FixtureRequest, world: World, tmp_path: Path
) -> None:
    client = world.login("admin")
    acme = world.ids["acme"]
    hours = post(client, f"/admin/calendars/{acme}/hours", {"day_0": "09:00-12:00, 13:30-24:00"})
    assert hours.status_code == 302
    for name, email in (("ليلى حداد", "leila@acme.example"), ("Seán O'Brien", "sean@acme.example")):
        added = post(
            client, "/admin/staff/new", {"name": name, "email": email, "tags": "consultant"}
        )
        assert added.status_code == 302, added.get_data(as_text=True)[:500]
    off = post(
        client,
        f"/admin/staff/{world.ids['staff_ana']}/time-off",
        {"start": "2026-12-28T08:00", "end": "2026-12-30T18:30", "reason": HOSTILE_REASON},
    )
    assert off.status_code == 302
    settings = world.app.extensions["bookwise"].settings
    database = world.app.extensions["bookwise"].database
    text = round_trip(request, Loaded(settings, database), tmp_path, ["acme"])
    assert "ليلى حداد" in text and "Seán O'Brien" in text and "عطلة" in text
    assert '      mon: ["09:00-12:00", "13:30-24:00"]\n' in text


def test_removed_staff_are_left_out(scenario: Loaded) -> None:
    with unit_of_work(scenario.database.sessions) as session:
        ben = session.scalar(select(StaffMember).where(StaffMember.slug == "ben"))
        assert ben is not None
        ben.bookable, ben.removed_at = False, EXPORTED_AT
    text = export(scenario.database, ["acme"])
    assert "id: ben" not in text and "id: cleo" in text


# --- the back office's download -----------------------------------------------------------------


def _add_sources(world: World) -> None:
    with db(world) as session, session.begin():
        ana = session.get(StaffMember, world.ids["staff_ana"])
        assert ana is not None
        ana.sources.append(
            CalendarSource(
                kind="url",
                url="https://calendar.example.org/ana/basic.ics?key=T0PS3CRET",
                label="calendar.example.org/ana/basic.ics",
                origin="admin",
            )
        )
        ana.sources.append(
            CalendarSource(
                kind="caldav",
                url="https://dav.example.org/calendars/ana/work/",
                account="office",
                label="dav.example.org/calendars/ana/work/",
                origin="admin",
            )
        )


@pytest.mark.parametrize("who", ["admin", "super"])
def test_the_admin_downloads_the_calendar(world: World, who: str) -> None:
    _add_sources(world)
    client = world.login(who)
    page = client.get(f"/admin/calendars/{world.ids['acme']}/").get_data(as_text=True)
    assert "Download as YAML" in page
    response = client.get(f"/admin/calendars/{world.ids['acme']}/export.yaml")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="acme.yaml"'
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    assert "  - slug: acme\n" in text and "slug: private" not in text
    assert "T0PS3CRET" not in text and "basic.ics" not in text
    assert "acme/ana: the address of a calendar on calendar.example.org" in text
    assert "- caldav: https://dav.example.org/calendars/ana/work/\n" in text
    with db(world) as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "calendar.exported"))
        assert entry is not None and entry.calendar_id == world.ids["acme"]


@pytest.mark.parametrize("who", ["viewer", "ana", "other"])
def test_others_may_not_download_it(world: World, who: str) -> None:
    client = world.login(who)
    page = client.get(f"/admin/calendars/{world.ids['acme']}/")
    assert "Download as YAML" not in page.get_data(as_text=True)
    response = client.get(f"/admin/calendars/{world.ids['acme']}/export.yaml")
    assert response.status_code in (302, 403, 404)
    assert "slug: acme" not in response.get_data(as_text=True)
    with db(world) as session:
        assert (
            session.scalar(select(AuditEntry).where(AuditEntry.action == "calendar.exported"))
            is None
        )


def test_signed_out_is_sent_to_sign_in(world: World) -> None:
    response = world.app.test_client().get(f"/admin/calendars/{world.ids['acme']}/export.yaml")
    assert response.status_code in (302, 401)
    assert "slug: acme" not in response.get_data(as_text=True)


# --- the command --------------------------------------------------------------------------------


def test_the_command(bookwise_cli: Any, config_file: Path, demo: Loaded, tmp_path: Path) -> None:
    config = str(config_file)
    out = bookwise_cli("export", "calendars", "--config", config, "--at", "2026-12-07T13:00Z")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.startswith(
        "# Calendars exported from http://127.0.0.1:5000 on 2026-12-07 13:00 UTC"
    )
    body = out.stdout.index("\ncalendars:\n")
    assert (
        out.stdout[body:] == export(demo.database)[export(demo.database).index("\ncalendars:\n") :]
    )
    target = tmp_path / "lilas.yaml"
    written = bookwise_cli(
        "export", "calendars", "--config", config, "clinique-des-lilas", "--output", str(target)
    )
    assert written.exit_code == 0, written.stderr
    assert written.stdout == ""
    assert "clinique-des-lilas" in target.read_text(encoding="utf-8")
    valid = bookwise_cli("validate", "--config", config, str(target))
    assert valid.exit_code == 0, valid.stdout + valid.stderr
    loaded = bookwise_cli("load", "--config", config, str(target))
    assert loaded.stdout.strip().endswith("nothing changed"), loaded.stdout


def test_the_command_names_an_unknown_calendar(
    bookwise_cli: Any, config_file: Path, demo: Loaded
) -> None:
    result = bookwise_cli("export", "calendars", "--config", str(config_file), "northwind")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no calendar 'northwind'; did you mean 'northwind-hr'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_writes_addresses_only_when_asked(
    bookwise_cli: Any, config_file: Path, demo: Loaded
) -> None:
    with unit_of_work(demo.database.sessions) as session:
        sara = session.scalar(select(StaffMember).where(StaffMember.slug == "sara"))
        assert sara is not None
        sara.sources.append(
            CalendarSource(
                kind="url",
                url="https://calendar.example.org/sara.ics?key=T0PS3CRET",
                label="calendar.example.org/sara.ics",
                origin="admin",
            )
        )
    config = str(config_file)
    plain = bookwise_cli("export", "calendars", "--config", config, "northwind-hr")
    assert "T0PS3CRET" not in plain.stdout
    full = bookwise_cli(
        "export", "calendars", "--config", config, "northwind-hr", "--include-feed-addresses"
    )
    assert "- url: https://calendar.example.org/sara.ics?key=T0PS3CRET\n" in full.stdout
