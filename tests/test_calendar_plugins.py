"""Plugins per calendar in calendar data files: ``plugins: [...]`` stored on the calendar, and a
plugin the instance does not enable refused by the loader, naming the file, the calendar and the
plugins it does enable. (The back office's side: tests/admin/test_calendar_plugins_admin.py.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bookwise import instance
from bookwise.calendars.models import Calendar
from bookwise.config import Settings
from bookwise.database import Database, open_database
from bookwise.errors import ProblemsError
from tests.test_instance import snapshot

FILE = """\
calendars:
  - slug: acme
    name: Acme
    timezone: Europe/Paris
    plugins: [jitsi]
  - slug: plain
    name: Plain
    timezone: Europe/Paris
"""


@pytest.fixture
def jitsi_instance(settings: Settings) -> Iterator[tuple[Settings, Database]]:
    """An instance that enables the jitsi plugin (installed with the repository's plugins)."""
    enabled = dataclasses.replace(
        settings,
        plugins={"enabled": ["jitsi"], "jitsi": {"server": "https://meet.example.org"}},
    )
    database = open_database(enabled)
    assert database.plugins.plugins["jitsi"].state == "loaded"
    yield enabled, database
    database.engine.dispose()


def stored(database: Database) -> dict[str, list[str] | None]:
    with database.sessions() as session:
        return {c.slug: c.plugins for c in session.scalars(sa.select(Calendar))}


def test_a_calendar_file_chooses_its_plugins(
    jitsi_instance: tuple[Settings, Database], tmp_path: Path
) -> None:
    settings, database = jitsi_instance
    path = tmp_path / "calendars.yaml"
    path.write_text(FILE)
    report, warnings = instance.load_calendar_file(settings, database, path)
    assert warnings == [] and report.created == {"calendars": 2}
    # Left out: every plugin the instance enables (stored as SQL NULL).
    assert stored(database) == {"acme": ["jitsi"], "plain": None}
    with database.sessions() as session:
        acme = session.scalars(sa.select(Calendar).where(Calendar.slug == "acme")).one()
        assert acme.uses_plugin("jitsi") and not acme.uses_plugin("sms_http")
    again, _ = instance.load_calendar_file(settings, database, path)
    assert not again.changed
    # An empty list: none; the key removed: every plugin again.
    path.write_text(FILE.replace("plugins: [jitsi]", "plugins: []"))
    report, _ = instance.load_calendar_file(settings, database, path)
    assert report.updated == {"calendars": 1}
    assert stored(database) == {"acme": [], "plain": None}
    path.write_text(FILE.replace("    plugins: [jitsi]\n", ""))
    instance.load_calendar_file(settings, database, path)
    assert stored(database) == {"acme": None, "plain": None}


@pytest.mark.parametrize("name", ["jitsy", "sms_http", "email"])
def test_a_plugin_the_instance_does_not_enable_is_refused_and_nothing_written(
    jitsi_instance: tuple[Settings, Database], tmp_path: Path, name: str
) -> None:
    """A typo, a plugin installed but not enabled, a core plugin (always used: not to choose)."""
    settings, database = jitsi_instance
    good = tmp_path / "good.yaml"
    good.write_text(FILE.replace("acme", "other").replace("plain", "simple"))
    bad = tmp_path / "calendars.yaml"
    bad.write_text(FILE.replace("plugins: [jitsi]", f"plugins: [jitsi, {name}]"))
    before = snapshot(database)
    with pytest.raises(ProblemsError) as caught:
        instance.load_calendar_files(settings, database, [good, bad])
    [problem] = caught.value.problems
    assert problem.file.endswith("calendars.yaml") and problem.line == 5
    assert problem.message == (
        f"calendars[0].plugins[1]: calendar acme: plugin {name!r} is not enabled on this "
        "instance (enabled: jitsi); enable it under plugins.enabled in config.yaml or remove it"
    )
    assert snapshot(database) == before  # neither file, nor the workflows


def test_without_plugins_on_the_instance_a_calendar_may_name_none(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "calendars.yaml"
    path.write_text(FILE)
    with pytest.raises(ProblemsError, match=r"\(enabled: none\)"):
        instance.load_calendar_file(settings, database, path)
    path.write_text(FILE.replace("plugins: [jitsi]", "plugins: []"))
    instance.load_calendar_file(settings, database, path)
    assert stored(database) == {"acme": [], "plain": None}


def test_a_calendar_cannot_leave_out_the_plugin_of_its_video_links(tmp_path: Path) -> None:
    from bookwise.calendars.editing import CalendarSettings, plugins_needed, update_calendar
    from bookwise.errors import InvalidInput
    from bookwise.testing import make_instance

    bw = make_instance(tmp_path)  # the demo: Northwind's interviews are online, with jitsi
    with bw.database.sessions() as session:
        calendar = session.scalar(sa.select(Calendar).where(Calendar.slug == "northwind-hr"))
        assert calendar is not None
        needed = plugins_needed(session, calendar, lambda p: "jitsi" if p == "jitsi" else None)
        assert needed == {"jitsi": "Candidate interview"}
        values = CalendarSettings(
            name=calendar.name,
            slug=calendar.slug,
            timezone=calendar.timezone,
            default_locale=calendar.default_locale,
            description={},
            plugins=(),
        )
        with pytest.raises(InvalidInput) as refused:
            update_calendar(
                session,
                calendar,
                values,
                bw.settings.locales,
                "admin",
                None,
                offered_plugins=["jitsi"],
                needed_plugins=needed,
            )
        assert "Candidate interview makes its video links with jitsi: tick jitsi" in str(
            refused.value
        )
        kept = dataclasses.replace(values, plugins=("jitsi",))
        update_calendar(
            session,
            calendar,
            kept,
            bw.settings.locales,
            "admin",
            None,
            offered_plugins=["jitsi"],
            needed_plugins=needed,
        )
        assert calendar.plugins == ["jitsi"]
        # A calendar whose services make no video links needs no plugin.
        assert plugins_needed(session, calendar, lambda p: None) == {}
