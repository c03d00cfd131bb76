"""Operations on a whole instance: the database, the workflow files, calendar data, the demo.

Used by the CLI and at start-up. Files are checked before the database is touched, and every
operation that writes data is one transaction: a failure anywhere writes nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from bookwise.accounts.models import User
from bookwise.accounts.services import create_user, find_user, grant_role
from bookwise.calendars.data import check_calendar_data
from bookwise.calendars.models import Calendar
from bookwise.calendars.services import LoadReport, load_calendars
from bookwise.config import Settings
from bookwise.database import Database
from bookwise.db import unit_of_work, utcnow
from bookwise.documents import DocumentError, read_document
from bookwise.errors import Problem, ProblemsError, errors_only
from bookwise.notifications.services import seed_templates
from bookwise.notifications.templates import SHIPPED_TEMPLATES
from bookwise.plugins.host import PluginHost
from bookwise.workflows.loader import CheckedWorkflow, display_path
from bookwise.workflows.services import SyncReport, sync_workflow_files, workflow_tags
from bookwise.workflows.sources import check_instance_workflows

DEMO_ADMIN_EMAIL = "admin@bookwise.test"
log = logging.getLogger(__name__)


def checked_workflows(
    settings: Settings, plugins: PluginHost | None = None
) -> dict[str, CheckedWorkflow]:
    """Every workflow file, checked; :class:`ProblemsError` when any is broken."""
    checked, problems = check_instance_workflows(settings, plugins=plugins)
    if errors_only(problems):
        raise ProblemsError(problems)
    return checked


def sync_workflows(settings: Settings, database: Database, actor: str = "system") -> SyncReport:
    """Check every workflow file and store the changed ones in one transaction."""
    checked = checked_workflows(settings, database.plugins)
    with unit_of_work(database.sessions) as session:
        return sync_workflow_files(session, checked, actor)


@dataclass
class LoadResult:
    reports: list[tuple[Path, LoadReport]] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    workflows: SyncReport | None = None


def load_into(
    session: Session,
    settings: Settings,
    paths: Sequence[Path],
    actor: str,
    checked: dict[str, CheckedWorkflow] | None = None,
    *,
    plugin_names: frozenset[str] | None = None,
) -> LoadResult:
    """In the caller's transaction: store the workflow files, then check every calendar file and,
    when none has an error, load them all. :class:`ProblemsError` lists every problem found.
    ``plugin_names``: the non-core plugins a calendar may name (None: not checked)."""
    result = LoadResult()
    result.workflows = sync_workflow_files(
        session, checked if checked is not None else checked_workflows(settings), actor
    )
    known = workflow_tags(session)
    problems: list[Problem] = []
    documents = []
    for path in paths:
        try:
            documents.append((path, read_document(path, display_path(path))))
        except DocumentError as exc:
            problems.append(exc.problem)
    loaded = []
    for path, document in documents:
        specs, found = check_calendar_data(
            document, known, settings.default_locale, settings.locales
        )
        problems.extend(found)
        loaded.append((path, specs))
    if errors_only(problems):
        raise ProblemsError(problems)
    result.warnings = problems
    for path, specs in loaded:
        result.reports.append(
            (path, load_calendars(session, specs, actor, plugin_names=plugin_names))
        )
    return result


def load_calendar_files(
    settings: Settings, database: Database, paths: Sequence[Path], actor: str = "cli"
) -> LoadResult:
    """Store the workflows and load calendar data files, all in one transaction."""
    checked = checked_workflows(settings, database.plugins)
    plugin_names = frozenset(info.name for info in database.plugins.optional())
    with unit_of_work(database.sessions) as session:
        return load_into(session, settings, paths, actor, checked, plugin_names=plugin_names)


def load_calendar_file(
    settings: Settings, database: Database, path: Path, actor: str = "cli"
) -> tuple[LoadReport, list[str]]:
    """Load one calendar data file (see :func:`load_calendar_files`): its report and warnings."""
    result = load_calendar_files(settings, database, [path], actor)
    return result.reports[0][1], [str(p) for p in result.warnings]


# --- start-up and the demo ----------------------------------------------------------------------


@dataclass
class StartReport:
    workflows: SyncReport
    demo_loaded: bool = False
    warnings: list[Problem] = field(default_factory=list)


def is_empty(session: Session) -> bool:
    """No calendar and no user yet: a new instance."""
    return (
        session.scalar(select(Calendar.id).limit(1)) is None
        and session.scalar(select(User.id).limit(1)) is None
    )


def start_instance(
    settings: Settings,
    database: Database,
    checked: dict[str, CheckedWorkflow],
    demo: bool,
    actor: str = "system",
    now: datetime | None = None,
) -> StartReport:
    """Store the workflows and, when ``demo`` and the instance is new, load the demo calendars
    with their administrator; all in one transaction, so a failure leaves the instance new and
    the next start tries again. The demo's sample bookings are made around ``now`` (by default
    the system's time)."""
    with unit_of_work(database.sessions) as session:
        seed_templates(session, [SHIPPED_TEMPLATES])
        if demo and settings.demo_data is not None and is_empty(session):
            result = load_into(session, settings, [settings.demo_data], "demo", checked)
            assert result.workflows is not None
            email, password = demo_credentials(settings)
            user = create_user(
                session, email, password, name="Demo administrator", superadmin=True, actor="demo"
            )
            for calendar in session.scalars(select(Calendar)):
                grant_role(session, user, calendar.id, "admin", actor="demo")
            report = StartReport(result.workflows, demo_loaded=True, warnings=result.warnings)
        else:
            return StartReport(sync_workflow_files(session, checked, actor))
    _seed_demo_bookings(database, now or utcnow())
    return report


def _seed_demo_bookings(database: Database, now: datetime) -> None:
    """Sample bookings for the demo; without them the demo still works, so a failure is logged."""
    from bookwise.demo import seed_demo_bookings

    try:
        with unit_of_work(database.sessions, write=True) as session:
            count = seed_demo_bookings(session, now)
        log.info("demo: %d sample bookings", count)
    except Exception:
        log.exception("demo: the sample bookings could not be made")


def ensure_admin(
    database: Database, email: str, password: str, actor: str = "cli"
) -> tuple[User, bool]:
    """Create the superadmin ``email`` unless a user with that e-mail exists. (user, created)."""
    with unit_of_work(database.sessions) as session:
        existing = find_user(session, email)
        if existing is not None:
            return existing, False
        user = create_user(
            session, email, password, name="Administrator", superadmin=True, actor=actor
        )
        return user, True


def demo_credentials(settings: Settings) -> tuple[str, str]:
    """The demo admin's e-mail and password: generated once, kept in the instance folder."""
    path = settings.instance_dir / "demo-admin.txt"
    if path.is_file():
        email, _, password = path.read_text(encoding="utf-8").strip().partition(" ")
        if email and password:
            return email, password
    password = secrets.token_urlsafe(12)
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{DEMO_ADMIN_EMAIL} {password}\n", encoding="utf-8")
    path.chmod(0o600)
    return DEMO_ADMIN_EMAIL, password


def demo_login(settings: Settings, database: Database) -> tuple[str | None, str | None]:
    """The demo administrator's login when the demo was set up and its password still works."""
    path = settings.instance_dir / "demo-admin.txt"
    if not path.is_file():
        return None, None
    email, password = demo_credentials(settings)
    with database.sessions() as session:
        user = find_user(session, email)
        if user is None or not check_password_hash(user.password_hash, password):
            return None, None
    return email, password
