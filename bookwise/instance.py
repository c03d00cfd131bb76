"""Operations on a whole instance: the database, the workflow files, calendar data, the demo.

Used by the CLI and at start-up; each operation is one transaction, so a failure writes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash

from bookwise import migrate
from bookwise.accounts.models import User
from bookwise.accounts.services import create_user, find_user, grant_role
from bookwise.calendars.data import check_calendar_data
from bookwise.calendars.models import Calendar
from bookwise.calendars.services import LoadReport, load_calendars
from bookwise.config import Settings
from bookwise.db import make_engine, make_session_factory, unit_of_work
from bookwise.documents import DocumentError, read_document
from bookwise.errors import BookwiseError, ProblemsError, errors_only
from bookwise.workflows.loader import display_path
from bookwise.workflows.models import WorkflowRecord, WorkflowVersion
from bookwise.workflows.services import SyncReport, sync_workflow_files, workflow_of
from bookwise.workflows.sources import check_instance_workflows

DEMO_ADMIN_EMAIL = "admin@bookwise.test"


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]


def open_database(settings: Settings) -> Database:
    """Connect to the configured database (creating the SQLite folder when needed)."""
    if settings.database_url.startswith("sqlite:///"):
        path = settings.database_url.removeprefix("sqlite:///").split("?")[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    return Database(engine, make_session_factory(engine))


def prepare_schema(database: Database) -> str:
    """Create or upgrade the schema; return what was there before (``empty``, ``outdated`` ...)."""
    try:
        state = migrate.schema_state(database.engine)
    except Exception as exc:  # the driver's own errors vary; all mean "cannot reach it"
        raise BookwiseError(f"cannot open the database: {_first_line(exc)}") from None
    if state == "foreign":
        raise BookwiseError(
            "the database holds tables that are not Bookwise's; point database_url at an "
            "empty database"
        )
    if state != "current":
        migrate.upgrade(database.engine)
    return state


def sync_workflows(settings: Settings, database: Database, actor: str = "system") -> SyncReport:
    """Check every workflow file and store the changed ones; :class:`ProblemsError` if any is
    broken (then nothing is stored)."""
    checked, problems = check_instance_workflows(settings)
    if errors_only(problems):
        raise ProblemsError(problems)
    with unit_of_work(database.sessions) as session:
        return sync_workflow_files(session, checked, actor)


def load_calendar_file(
    settings: Settings, database: Database, path: Path, actor: str = "cli"
) -> tuple[LoadReport, list[str]]:
    """Check and load a calendar data file in one transaction. Returns the report and warnings."""
    try:
        document = read_document(path, display_path(path))
    except DocumentError as exc:
        raise ProblemsError([exc.problem]) from None
    with unit_of_work(database.sessions) as session:
        known = _workflow_tags(session)
        specs, problems = check_calendar_data(document, known, settings.default_locale)
        if errors_only(problems):
            raise ProblemsError(problems)
        report = load_calendars(session, specs, actor)
    return report, [str(p) for p in problems]


def _workflow_tags(session: Session) -> dict[str, tuple[str, ...]]:
    """Each stored workflow's id with the staff tags of its current version."""
    out: dict[str, tuple[str, ...]] = {}
    for record_ in session.scalars(select(WorkflowRecord)):
        version = session.scalar(
            select(WorkflowVersion)
            .where(WorkflowVersion.workflow_id == record_.id)
            .order_by(WorkflowVersion.number.desc())
            .limit(1)
        )
        if version is not None:
            out[record_.slug] = workflow_of(version).staff.tags
    return out


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


def set_up_demo(settings: Settings, database: Database) -> tuple[str, str]:
    """Load the demo calendars (when configured) and the demo admin, who administers them all."""
    if settings.demo_data is not None:
        load_calendar_file(settings, database, settings.demo_data, actor="demo")
    email, password = demo_credentials(settings)
    ensure_admin(database, email, password, actor="demo")
    with unit_of_work(database.sessions) as session:
        user = find_user(session, email)
        assert user is not None
        for calendar in session.scalars(select(Calendar)):
            if not any(r.calendar_id == calendar.id for r in user.roles):
                grant_role(session, user, calendar.id, "admin", actor="demo")
    return email, password


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
