"""The instance on a real database (SQLite, and PostgreSQL when configured): workflow versions,
calendar data loading, the demo. Each test starts from an empty, migrated database."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bookwise import instance
from bookwise.accounts.models import CalendarRole, User
from bookwise.calendars.models import Calendar, Service, StaffMember, TimeOff, WorkingHours
from bookwise.config import Settings, load_settings
from bookwise.database import Database
from bookwise.db import NaiveDatetimeError
from bookwise.errors import ProblemsError
from bookwise.models import metadata
from bookwise.workflows.models import WorkflowRecord, WorkflowVersion
from bookwise.workflows.services import add_version, current_version, workflow_of
from tests.conftest import ROOT, TEST_NOW, base_config, write_config


def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to compare a database before and after."""
    with database.engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in metadata.sorted_tables
        }


@pytest.fixture
def own_workflows(tmp_path: Path, database_url: str) -> Settings:
    """Settings whose workflow folder is a copy the test may edit."""
    folder = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", folder)
    values = base_config(tmp_path, database_url) | {"workflows": str(folder)}
    return load_settings(write_config(tmp_path / "own.yaml", values), environ={})


def versions(session: Session, slug: str) -> list[tuple[int, str]]:
    return [
        (v.number, v.origin)
        for v in session.scalars(
            sa.select(WorkflowVersion)
            .join(WorkflowRecord)
            .where(WorkflowRecord.slug == slug)
            .order_by(WorkflowVersion.number)
        )
    ]


def test_workflow_files_become_versions(own_workflows: Settings, database: Database) -> None:
    report = instance.sync_workflows(own_workflows, database)
    assert sorted(report.created) == ["hr-interview", "patient-visit", "tutoring", "tutoring-group"]
    again = instance.sync_workflows(own_workflows, database)
    assert not again.changed

    path = own_workflows.workflows_dir / "tutoring.yaml"
    original = path.read_text()
    path.write_text(original.replace("duration: 1h", "duration: 50m"))
    report = instance.sync_workflows(own_workflows, database)
    assert report.new_versions == ["tutoring"]
    path.write_text(original)
    instance.sync_workflows(own_workflows, database)

    with database.sessions() as session:
        assert versions(session, "tutoring") == [(1, "file"), (2, "file"), (3, "file")]
        v1, v2, v3 = session.scalars(
            sa.select(WorkflowVersion)
            .join(WorkflowRecord)
            .where(WorkflowRecord.slug == "tutoring")
            .order_by(WorkflowVersion.number)
        )
        assert workflow_of(v2).duration.total_seconds() == 50 * 60
        assert v1.content_hash == v3.content_hash != v2.content_hash
        assert "duration: 50m" in v2.source_text
        assert v1.definition == v3.definition


def test_formatting_only_changes_add_no_version(
    own_workflows: Settings, database: Database
) -> None:
    instance.sync_workflows(own_workflows, database)
    path = own_workflows.workflows_dir / "tutoring.yaml"
    path.write_text("# reformatted\n" + path.read_text())
    assert not instance.sync_workflows(own_workflows, database).new_versions


def test_a_back_office_edit_survives_a_restart(own_workflows: Settings, database: Database) -> None:
    instance.sync_workflows(own_workflows, database)
    with database.sessions() as session, session.begin():
        record = session.scalar(sa.select(WorkflowRecord).where(WorkflowRecord.slug == "tutoring"))
        assert record is not None
        definition = dict(current_version(session, "tutoring").definition, capacity=2)
        add_version(
            session,
            record,
            source_text="edited",
            definition=definition,
            origin="admin",
            author="ann@example.org",
        )
    instance.sync_workflows(own_workflows, database)  # the file did not change
    with database.sessions() as session:
        assert versions(session, "tutoring") == [(1, "file"), (2, "admin")]
        assert workflow_of(current_version(session, "tutoring")).capacity == 2


def test_a_broken_workflow_stores_nothing(own_workflows: Settings, database: Database) -> None:
    (own_workflows.workflows_dir / "zz-broken.yaml").write_text("id: zz-broken\nname: X\n")
    before = snapshot(database)
    with pytest.raises(ProblemsError) as caught:
        instance.sync_workflows(own_workflows, database)
    assert "zz-broken.yaml:1:1: missing required key 'duration'" in str(caught.value)
    assert snapshot(database) == before


def test_loading_calendars_twice_changes_nothing(settings: Settings, database: Database) -> None:
    instance.sync_workflows(settings, database)
    report, warnings = instance.load_calendar_file(settings, database, ROOT / "demo/calendars.yaml")
    assert warnings == []
    assert report.created == {"calendars": 3, "staff": 8, "services": 4, "time off": 2}
    after_first = snapshot(database)
    report, _ = instance.load_calendar_file(settings, database, ROOT / "demo/calendars.yaml")
    assert not report.changed and report.summary() == "nothing changed"
    assert snapshot(database) == after_first


def test_loaded_calendars_hold_the_file(settings: Settings, database: Database) -> None:
    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, ROOT / "demo/calendars.yaml")
    with database.sessions() as session:
        clinic = session.scalar(sa.select(Calendar).where(Calendar.slug == "clinique-des-lilas"))
        assert clinic is not None
        assert clinic.timezone == "Europe/Paris" and clinic.default_locale == "fr"
        assert [(h.weekday, h.start_minute, h.end_minute) for h in clinic.hours][:2] == [
            (0, 510, 720),
            (0, 840, 1140),
        ]
        haddad = session.scalar(sa.select(StaffMember).where(StaffMember.slug == "dr-haddad"))
        assert haddad is not None and not haddad.uses_calendar_hours
        assert haddad.time_off[0].start_at == datetime(2026, 12, 21, 13, 0, tzinfo=UTC)
        hr = session.scalar(sa.select(Calendar).where(Calendar.slug == "northwind-hr"))
        assert hr is not None and hr.embed_origins == ["https://careers.northwind.example"]
        assert not hr.search_indexing


def test_a_changed_file_updates_only_what_changed(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, ROOT / "demo/calendars.yaml")
    changed = tmp_path / "calendars.yaml"
    changed.write_text(
        (ROOT / "demo/calendars.yaml")
        .read_text()
        .replace("name: Tom Becker", "name: Thomas Becker")
        .replace('mon: ["15:00-20:00"]', 'mon: ["14:00-20:00"]')
    )
    report, _ = instance.load_calendar_file(settings, database, changed)
    assert report.updated == {"staff": 1, "calendars": 1}
    assert report.created == {}
    with database.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WorkingHours)) > 0
        assert (
            session.scalar(sa.select(StaffMember.name).where(StaffMember.slug == "tom"))
            == "Thomas Becker"
        )


def test_a_broken_calendar_file_writes_nothing(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    instance.sync_workflows(settings, database)
    broken = tmp_path / "calendars.yaml"
    # The first two calendars are fine; the third names an unknown time zone.
    broken.write_text(
        (ROOT / "demo/calendars.yaml").read_text().replace("America/New_York", "America/Nowhere")
    )
    before = snapshot(database)
    with pytest.raises(ProblemsError) as caught:
        instance.load_calendar_file(settings, database, broken)
    assert "calendars[2].timezone: unknown time zone 'America/Nowhere'" in str(caught.value)
    assert snapshot(database) == before


def test_service_pool_by_tags_and_by_list(demo: Any) -> None:
    from bookwise.calendars.services import service_pool

    with demo.database.sessions() as session:
        services = {s.workflow.slug: s for s in session.scalars(sa.select(Service))}
        group_pool = service_pool(session, services["tutoring-group"])
        assert [m.slug for m in group_pool] == ["maya", "priya"]
        member = session.scalar(sa.select(StaffMember).where(StaffMember.slug == "priya"))
        assert member is not None
        member.bookable = False
        assert [m.slug for m in service_pool(session, services["tutoring-group"])] == ["maya"]


def test_a_new_instance_gets_the_demo_and_its_administrator(
    settings: Settings, database: Database
) -> None:
    checked = instance.checked_workflows(settings)
    started = instance.start_instance(settings, database, checked, demo=True, now=TEST_NOW)
    assert started.demo_loaded and sorted(started.workflows.created)[0] == "hr-interview"
    email, password = instance.demo_login(settings, database)
    assert email == "admin@bookwise.test" and password
    assert (settings.instance_dir / "demo-admin.txt").stat().st_mode & 0o777 == 0o600
    with database.sessions() as session:
        user = session.scalar(sa.select(User).where(User.email == email))
        assert user is not None and user.is_superadmin
        roles = session.scalars(sa.select(CalendarRole).where(CalendarRole.user_id == user.id))
        assert sorted(r.role for r in roles) == ["admin", "admin", "admin"]
    # Started again, the instance is not new: nothing is loaded twice, the login stays.
    again = instance.start_instance(settings, database, checked, demo=True, now=TEST_NOW)
    assert not again.demo_loaded and not again.workflows.changed
    assert instance.demo_login(settings, database) == (email, password)


def test_a_failed_first_start_leaves_the_instance_new(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    """A broken demo file writes nothing; once fixed, the next start loads the demo."""
    broken = tmp_path / "demo.yaml"
    broken.write_text(
        (ROOT / "demo/calendars.yaml").read_text().replace("Europe/Paris", "Europe/Nowhere")
    )
    checked = instance.checked_workflows(settings)
    broken_settings = dataclasses.replace(settings, demo_data=broken)
    before = snapshot(database)
    with pytest.raises(ProblemsError):
        instance.start_instance(broken_settings, database, checked, demo=True, now=TEST_NOW)
    assert snapshot(database) == before
    assert instance.start_instance(settings, database, checked, demo=True, now=TEST_NOW).demo_loaded


def test_no_demo_and_no_administrator_without_demo_data(
    settings: Settings, database: Database
) -> None:
    plain = dataclasses.replace(settings, demo_data=None)
    started = instance.start_instance(plain, database, instance.checked_workflows(plain), True)
    assert not started.demo_loaded
    with database.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_loading_several_files_is_one_transaction(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    good = ROOT / "demo/calendars.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("calendars:\n  - {slug: x, name: X, timezone: Mars/Olympus}\n")
    before = snapshot(database)
    with pytest.raises(ProblemsError) as caught:
        instance.load_calendar_files(settings, database, [good, bad])
    assert "unknown time zone 'Mars/Olympus'" in str(caught.value)
    assert snapshot(database) == before  # neither the good file nor the workflows


def test_datetimes_are_stored_in_utc_and_naive_ones_refused(demo: Any) -> None:
    with demo.database.sessions() as session:
        member = session.scalar(sa.select(StaffMember).where(StaffMember.slug == "tom"))
        assert member is not None
        from zoneinfo import ZoneInfo

        paris = datetime(2026, 7, 1, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
        session.add(
            TimeOff(
                staff_id=member.id, start_at=paris, end_at=paris.replace(hour=10), reason="dentist"
            )
        )
        session.commit()
        session.expire_all()
        stored = session.scalar(sa.select(TimeOff).where(TimeOff.reason == "dentist"))
        assert stored is not None
        assert stored.start_at == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
        assert stored.start_at.tzinfo is not None
        session.add(
            TimeOff(
                staff_id=member.id,
                start_at=datetime(2026, 7, 2, 9, 0),
                end_at=datetime(2026, 7, 2, 10, 0, tzinfo=UTC),
            )
        )
        with pytest.raises(sa.exc.StatementError) as caught:
            session.flush()
        assert isinstance(caught.value.orig, NaiveDatetimeError)


def test_the_file_manages_what_it_loaded(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    """Editing time off in the file moves it; staff and services the file drops are retired;
    what the back office added is kept."""
    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, ROOT / "demo/calendars.yaml")
    with database.sessions() as session, session.begin():
        tom = session.scalar(sa.select(StaffMember).where(StaffMember.slug == "tom"))
        assert tom is not None
        session.add(
            TimeOff(
                staff_id=tom.id,
                start_at=datetime(2027, 2, 1, tzinfo=UTC),
                end_at=datetime(2027, 2, 2, tzinfo=UTC),
                reason="back office",
                origin="admin",
            )
        )
    edited = tmp_path / "calendars.yaml"
    edited.write_text(
        (ROOT / "demo/calendars.yaml")
        .read_text()
        .replace("{start: 2026-12-24, end: 2027-01-01", "{start: 2026-12-26, end: 2027-01-02")
        .replace(
            "      - {id: leo, name: Léo Dubois, email: leo@brightminds.example, tags: [tutor]}\n",
            "",
        )
        .replace("      - workflow: tutoring-group\n", "")
    )
    report, _ = instance.load_calendar_file(settings, database, edited)
    assert report.created == {"time off": 1}
    assert report.removed == {"time off": 1, "staff": 1, "services": 1}
    with database.sessions() as session:
        sara = session.scalar(sa.select(StaffMember).where(StaffMember.slug == "sara"))
        assert sara is not None
        assert [t.start_at.date().isoformat() for t in sara.time_off] == ["2026-12-25"]
        leo = session.scalar(sa.select(StaffMember).where(StaffMember.slug == "leo"))
        assert leo is not None and not leo.bookable
        group = session.scalar(
            sa.select(Service).join(Service.workflow).where(WorkflowRecord.slug == "tutoring-group")
        )
        assert group is not None and not group.active
        tom = session.scalar(sa.select(StaffMember).where(StaffMember.slug == "tom"))
        assert tom is not None and [t.reason for t in tom.time_off] == ["back office"]
    again, _ = instance.load_calendar_file(settings, database, edited)
    assert not again.changed
