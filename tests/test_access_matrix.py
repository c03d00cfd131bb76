"""The access-control matrix: every route that reads the back office or changes data, as each role.

The routes come from the application's own URL map: every endpoint under ``/admin`` and
``/api``, every other endpoint that accepts POST (a public page that changes data) and every
secret link (``<token>``: a client's booking and its data, a calendar feed). Each has
a rule in ``RULES`` below saying who may use it; a route without a rule fails, with the words
saying where to add it. Each route is then asked, GET and POST alike, by each role:

- anonymous (signed out), ``staff`` (ana, a staff member of acme), ``viewer`` (of acme),
  ``other_admin`` (admin of the calendar "private" only), ``admin`` (of acme), ``superadmin``;
- the URL's values name real objects of acme (a booking, a staff member, a workflow, a time
  off, a message...), the ones a staff member may see being ana's own;
- POSTs carry the session's CSRF token, so that a refusal is about access, never about CSRF.

A role the rule allows gets an answer that is no refusal (not 401, 403, 404 nor a redirect to
sign in) and never a 5xx; a role it refuses gets 401, 403, 404 or a redirect to sign in, sees
none of acme's client data, and changes nothing. Routes that act on "the current calendar" (no
object in the URL) let the admin of the other calendar act on their own calendar; they must
show them nothing of acme's.

The world (tests/admin/conftest.py's, plus ana's time off and calendar file) is made once per
module and backend; a request that may have changed it (a POST a role may make) is followed by a
restore of the seeded database (a file copy on SQLite, one script on PostgreSQL).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.accounts.models import CalendarRole
from bookwise.audit.services import Actor
from bookwise.bookings.models import Booking, Client, WaitlistEntry
from bookwise.bookings.services import manage_token
from bookwise.calendars.editing import invitation_token
from bookwise.calendars.feeds import create_link
from bookwise.calendars.models import Calendar, Service, StaffMember, TimeOff
from bookwise.calendars.sources import add_file_source
from bookwise.config import Settings, load_settings, secret_key_of
from bookwise.database import Database, open_database
from bookwise.db import unit_of_work
from bookwise.models import metadata
from bookwise.notifications.rendering import TemplateParts
from bookwise.notifications.services import TemplateKey, save_template
from bookwise.notifications.webhooks import create_endpoint
from bookwise.workflows.models import WorkflowRecord as Workflow
from tests.admin.conftest import NOW, PASSWORD, _seed_world, token
from tests.conftest import (
    _SESSION_SCHEMAS,
    BACKENDS,
    POSTGRES_URL,
    Seeds,
    _postgres_schema,
    _scenario_config,
    _with_search_path,
    write_config,
)

pytestmark = pytest.mark.timeout(120)

ROLES = ("anonymous", "staff", "viewer", "other_admin", "admin", "superadmin")
USERS = {"staff": "ana", "viewer": "viewer", "other_admin": "other", "admin": "admin"}
USERS["superadmin"] = "super"

# Who may use an endpoint. Calendar roles: read (any role of the calendar; a staff member sees
# only their own bookings and time off), view (viewer or admin: the calendar's settings), staff
# (staff or admin: acting on bookings and one's own time), admin, superadmin.
PUBLIC = "public"  # anyone, signed in or not
SIGNED_IN = "any signed-in user"
READ = "any role of the calendar"
VIEW = "viewer or admin of the calendar"
STAFF = "staff (their own) or admin of the calendar"
ADMIN = "admin of the calendar"
SUPER = "superadmin"
TOKEN = "holder of the link's token"  # everyone with the right token, no one with a wrong one
NOBODY = "no user: a signed request of the SMS gateway"
BEARER = "a personal API token (a signed-in session is not enough; tests/admin/test_api_tokens.py)"

ALLOWED: dict[str, set[str]] = {
    PUBLIC: set(ROLES),
    SIGNED_IN: set(ROLES) - {"anonymous"},
    READ: {"staff", "viewer", "admin", "superadmin"},
    VIEW: {"viewer", "admin", "superadmin"},
    STAFF: {"staff", "admin", "superadmin"},
    ADMIN: {"admin", "superadmin"},
    SUPER: {"superadmin"},
    TOKEN: set(ROLES),
    NOBODY: set(),
    BEARER: set(),
}

# A rule is who may use the endpoint, or who may use each of its methods.
RULES: dict[str, str | dict[str, str]] = {
    # the back office: home, switcher, static files
    "admin.index": READ,
    "admin.static": PUBLIC,
    "admin.switch_calendar": READ,
    # bookings
    "bookings.index": READ,
    "bookings.grid": READ,
    "bookings.explain": READ,
    "bookings.details": READ,
    "bookings.create": ADMIN,
    "bookings.transition": STAFF,
    "bookings.series_transition": STAFF,
    "bookings.reassign": ADMIN,
    "bookings.reschedule": ADMIN,
    # staff and their calendars
    "staff.index": READ,
    "staff.create": ADMIN,
    "staff.details": {"GET": READ, "POST": ADMIN},
    "staff.hours": ADMIN,
    "staff.invite": ADMIN,
    "staff.remove": ADMIN,
    "staff.time_off": STAFF,
    "staff.delete_time_off": STAFF,
    "staff.add_calendar_address": STAFF,
    "staff.add_caldav_calendar": STAFF,
    "staff.upload_calendar": STAFF,
    "staff.refresh_calendar": STAFF,
    "staff.remove_calendar": STAFF,
    "staff.make_feed": STAFF,
    "staff.stop_feed": STAFF,
    # services, workflows
    "services.index": VIEW,
    "services.edit": {"GET": VIEW, "POST": ADMIN},
    "workflows.index": VIEW,
    "workflows.details": VIEW,
    "workflows.versions": VIEW,
    "workflows.version": VIEW,
    "workflows.export": VIEW,
    "workflows.preview": VIEW,
    "workflows.create": ADMIN,
    "workflows.guided": ADMIN,
    "workflows.import_file": ADMIN,
    "workflows.edit": ADMIN,
    "workflows.yaml": ADMIN,
    "workflows.offer": ADMIN,
    "workflows.publish": ADMIN,
    "workflows.draft_preview": ADMIN,
    "workflows.restore": ADMIN,
    # calendars
    "calendars.index": READ,
    "calendars.settings": {"GET": VIEW, "POST": ADMIN},
    "calendars.create": SUPER,
    "calendars.clone": SUPER,
    "calendars.hours": ADMIN,
    "calendars.export": ADMIN,
    "calendars.make_feed": ADMIN,
    "calendars.stop_feed": ADMIN,
    # reports, messages, audit, jobs, plugins
    "reports.index": VIEW,
    "reports.export": VIEW,
    "templates.index": ADMIN,
    "templates.edit": ADMIN,
    "templates.live_preview": ADMIN,
    "templates.reset": ADMIN,
    "templates.history": ADMIN,
    "templates.version": ADMIN,
    "templates.restore": ADMIN,
    "outbox.index": ADMIN,
    "outbox.retry": ADMIN,
    "audit.index": ADMIN,
    "jobs.index": SUPER,
    "plugins.index": SUPER,
    # users
    "users.index": SUPER,
    "users.create": SUPER,
    "users.details": SUPER,
    "users.toggle_active": SUPER,
    "users.remove_role": SUPER,
    # the waitlist: viewers read, admins take someone off the list
    "waitlist.index": VIEW,
    "waitlist.remove": ADMIN,
    "tokens.index": {"GET": READ, "POST": READ},
    "tokens.revoke": ADMIN,
    # the calendar's webhook endpoints: its admins only (URLs, secrets, deliveries)
    "webhooks.index": ADMIN,
    "webhooks.create": ADMIN,
    "webhooks.details": ADMIN,
    "webhooks.edit": ADMIN,
    "webhooks.rotate_secret": ADMIN,
    "webhooks.send_test": ADMIN,
    "webhooks.delete": ADMIN,
    # a client's data: look up, export, erase (the current calendar's clients)
    "clients.index": ADMIN,
    "clients.export": ADMIN,
    "clients.erase": ADMIN,
    # the JSON API (public today; the manage endpoints take the booking's token)
    "api.services": PUBLIC,
    "api.slots": PUBLIC,
    "api.explain": PUBLIC,
    "api.book": PUBLIC,
    "api.manage": TOKEN,
    "api.cancel": TOKEN,
    "api.reschedule": TOKEN,
    "api.client_data": TOKEN,
    "api.erase": TOKEN,
    "api.withdraw_consent": TOKEN,
    "api.list_bookings": BEARER,
    "api.get_booking": BEARER,
    "api.cancel_booking_by_token": BEARER,
    "api.export_bookings": BEARER,
    "api.transition_by_token": BEARER,
    "api.reschedule_by_token": BEARER,
    "api.list_workflows": BEARER,
    "api.get_workflow": BEARER,
    "api.validate_workflow": BEARER,
    "api.add_workflow_version": BEARER,
    "api.create_workflow_by_token": BEARER,
    "api.list_staff": BEARER,
    "api.list_time_off": BEARER,
    "api.add_time_off_by_token": BEARER,
    "api.remove_time_off_by_token": BEARER,
    "api.calendar_hours": BEARER,
    "api.set_calendar_hours": BEARER,
    "api.staff_hours": BEARER,
    "api.set_staff_hours": BEARER,
    "api.calendar_settings": BEARER,
    "api.change_calendar": BEARER,
    "api.service_settings": BEARER,
    "api.change_service": BEARER,
    "api.staff_member": BEARER,
    "api.add_staff_member": BEARER,
    "api.change_staff_member": BEARER,
    "api.remove_staff_member": BEARER,
    "api.join": PUBLIC,
    "public.waitlist_accept": TOKEN,
    "public.waitlist_join": PUBLIC,
    "embed.waitlist_join": PUBLIC,
    "public.waitlist_leave": TOKEN,
    "embed.waitlist_accept": TOKEN,
    "embed.waitlist_leave": TOKEN,
    "api.accept": TOKEN,
    # the API's own description and its browsable page (and the page's files)
    "api.openapi": PUBLIC,
    "api.docs": PUBLIC,
    "api.docs_asset": PUBLIC,
    # public pages that change data
    "public.book": PUBLIC,
    "public.cancel": TOKEN,
    "public.reschedule": TOKEN,
    "public.manage": TOKEN,
    "public.confirmation": TOKEN,
    "public.calendar_file": TOKEN,
    "public.client_data": TOKEN,
    "public.consent_withdraw": TOKEN,
    "public.erase": TOKEN,
    "embed.book": PUBLIC,
    "embed.cancel": TOKEN,
    "embed.reschedule": TOKEN,
    "embed.manage": TOKEN,
    "embed.confirmation": TOKEN,
    "embed.calendar_file": TOKEN,
    "embed.client_data": TOKEN,
    "feeds.subscribed": TOKEN,  # a staff member's bookings, as a calendar feed
    "embed.consent_withdraw": TOKEN,
    "embed.erase": TOKEN,
    "accounts.login": PUBLIC,
    "accounts.logout": PUBLIC,  # signed out already: nothing to end
    "accounts.change_password_page": SIGNED_IN,
    "accounts.staff_invitation": TOKEN,
    "plugin_sms_http_sms_http.inbound": NOBODY,
}

# URL values that name no object of a calendar: such pages act on the user's current calendar.
NEUTRAL = {"template", "audience", "channel", "locale", "kind", "filename"}
# Routes whose posted form, not their URL, names a calendar (the other calendar's admin is
# refused).
CALENDAR_IN_FORM = {"admin.switch_calendar", "workflows.import_file"}
# Routes that end the session they are asked in: each role asks them with a client of its own.
ENDS_SESSION = {"accounts.logout"}

# What only acme's back office would show (its clients and their answers; the e-mail address
# zoe@client.example is a client's of both calendars).
ACME_SECRETS = ("Zoé Client", "Diabetic", "HYPERLINK")
# What only the private calendar's pages would show.
PRIVATE_SECRETS = ("Secret Member", "Secret trip", "secret session", "private-client@")


def _matrix_app_routes() -> list[tuple[str, str, frozenset[str], tuple[str, ...]]]:
    """(endpoint, rule, methods, arguments) of every route the matrix covers, read from the URL
    map of an application made as the tests' (never started on a database)."""
    from bookwise.app import create_app

    folder = Path(tempfile.mkdtemp(prefix="bookwise-matrix-"))
    try:
        values = _scenario_config(folder, f"sqlite:///{folder / 'routes.db'}")
        settings = load_settings(write_config(folder / "config.yaml", values), environ={})
        app = create_app(settings)
        out = []
        for rule in app.url_map.iter_rules():
            methods = frozenset((rule.methods or set()) - {"HEAD", "OPTIONS"})
            covered = (
                rule.rule.startswith(("/admin", "/api"))
                or "POST" in methods
                or "token" in rule.arguments  # a secret link: a client's booking, a feed
            )
            if covered:
                out.append((rule.endpoint, rule.rule, methods, tuple(sorted(rule.arguments))))
        app.extensions["bookwise"].database.engine.dispose()
        return sorted(out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


ROUTES = _matrix_app_routes()


def _cases() -> list[Any]:
    cases = []
    for endpoint, _rule, _methods, _arguments in ROUTES:
        if endpoint not in RULES:
            cases.append(pytest.param(endpoint, "-", id=f"{endpoint}-NO-RULE"))
            continue
        for role in ROLES:
            cases.append(pytest.param(endpoint, role, id=f"{endpoint}-{role}"))
    return cases


def test_every_route_has_a_rule() -> None:
    missing = sorted({endpoint for endpoint, *_ in ROUTES} - set(RULES))
    assert not missing, "\n".join(
        f"add a rule for endpoint {e} in tests/test_access_matrix.py (RULES)" for e in missing
    )


def test_no_rule_outlives_its_route() -> None:
    # A plugin's routes exist only where it is enabled.
    known = {endpoint for endpoint, *_ in ROUTES}
    gone = sorted(e for e in set(RULES) - known if not e.startswith("plugin_"))
    assert not gone, f"rules for endpoints that no longer exist: {gone}; remove them from RULES"


# --- the world ----------------------------------------------------------------------------------


ANA_CALENDAR = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Bookwise tests//EN\r
BEGIN:VEVENT\r
UID:matrix-1@bw.example\r
DTSTAMP:20261101T000000Z\r
DTSTART:20261210T090000Z\r
DTEND:20261210T100000Z\r
SUMMARY:Dentist\r
END:VEVENT\r
END:VCALENDAR\r
"""


def _seed_matrix(settings: Settings, database: Database) -> dict[str, Any]:
    """The admin tests' world, plus a time off of ana's (acme)."""
    ids: dict[str, Any] = dict(_seed_world(settings, database))
    with unit_of_work(database.sessions) as session:
        off = TimeOff(
            staff_id=ids["staff_ana"],
            start_at=NOW + timedelta(days=30),
            end_at=NOW + timedelta(days=31),
            reason="Ana's holiday",
            origin="admin",
        )
        session.add(off)
        session.flush()
        ids["time_off_ana"] = off.id
        ana = session.get(StaffMember, ids["staff_ana"])
        assert ana is not None
        source = add_file_source(
            session, ana, "ana.ics", ANA_CALENDAR, actor=Actor("matrix"), now=NOW
        )
        ids["source_ana"] = source.id
        acme = session.get(Calendar, ids["acme"])
        assert acme is not None
        address = create_link(
            session, acme, ana, actor=Actor("matrix"), now=NOW, base_url="https://bw.example"
        )
        found = re.search(r"/feeds/([^/]+)\.ics$", address)
        assert found is not None, address
        ids["feed_token"] = found.group(1)
        # A client of acme waiting for a full time (the waitlist's page and its removal).
        consult = session.get(Booking, ids["acme_consult"])
        assert consult is not None
        waiting = Client(
            calendar_id=ids["acme"], name="Zoé Client", email="wait@client.example",
            locale="en", timezone="Europe/Paris",
        )  # fmt: skip
        entry = WaitlistEntry(
            calendar_id=ids["acme"], service_id=consult.service_id, client=waiting,
            wanted_from=consult.start_at, wanted_until=consult.start_at, state="waiting",
            answers={}, locale="en", timezone="Europe/Paris", manage_token="wl-matrix-entry",
            created_at=NOW,
        )  # fmt: skip
        session.add(entry)
        session.flush()
        ids["waitlist_acme"] = entry.id
        # An API token of acme's admin: only they and the calendar's admins revoke it.
        from bookwise.accounts.tokens import create_token

        ids["token_acme"] = create_token(session, "admin@bw.example", "acme", "read", "m", NOW)[
            0
        ].id
        # A webhook endpoint of acme (its page, edits, rotation, test event, deletion).
        hook, _secret = create_endpoint(
            session, ids["acme"], "https://hooks.example.org/in", ["booking.created"]
        )
        ids["webhook_acme"] = hook.id
        # A version of acme's own wording of a template: the history's URLs name version 1.
        save_template(
            session,
            TemplateKey("confirmed", "client", "email", "en"),
            TemplateParts(text="Confirmed, {{ client.name }}."),
            calendar_id=ids["acme"],
            author="matrix",
            now=NOW,
        )
    return ids


def _matrix_config(folder: Path, url: str) -> dict[str, Any]:
    """The scenario's configuration, with a CalDAV account (so that a staff member may add a
    CalDAV calendar) and no rate limits (the matrix asks far more than a person would)."""
    return _scenario_config(folder, url) | {
        "feeds": {
            "caldav_accounts": {
                "org": {"username": "bookwise", "password_env": "MATRIX_CALDAV_PASSWORD"}
            }
        },
        "security": {"rate_limits": {"enabled": False}},
    }


@dataclass
class Matrix:
    app: Any
    database: Database
    seeds: Seeds
    ids: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    clients: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def restore(self) -> None:
        self.seeds.restore("matrix", self.database, _scenario_config, _seed_matrix)

    def login(self, role: str) -> Any:
        client = self.app.test_client()
        if role == "anonymous":
            return client
        response = client.post(
            "/login",
            data={
                "email": f"{USERS[role]}@bw.example",
                "password": PASSWORD,
                "csrf_token": token(client, "/login"),
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
        return client

    def client(self, role: str) -> tuple[Any, str]:
        """The role's signed-in client (made once) and its session's CSRF token."""
        if role not in self.clients:
            self.clients[role] = self.login(role)
            self.tokens[role] = token(self.clients[role], "/login")
        return self.clients[role], self.tokens[role]

    def fingerprint(self) -> str:
        """A digest of every row but the audit log's (refusals are recorded there)."""
        digest = hashlib.sha256()
        with self.database.engine.connect() as connection:
            for table in metadata.sorted_tables:
                if table.name == "audit_log":
                    continue
                rows = connection.execute(sa.select(table)).all()
                digest.update(table.name.encode())
                digest.update(repr(sorted(map(repr, rows))).encode())
        return digest.hexdigest()


@pytest.fixture(scope="module", params=BACKENDS)
def matrix(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, seeds: Seeds
) -> Iterator[Matrix]:
    from bookwise.app import create_app

    folder = tmp_path_factory.mktemp(f"matrix-{request.param}")
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), folder / "bookwise.db")
        url = f"sqlite:///{folder / 'bookwise.db'}"
    else:
        schema = _postgres_schema(request.getfixturevalue("postgres_admin"))
        _SESSION_SCHEMAS.append(schema)
        url = _with_search_path(POSTGRES_URL, schema)
    settings = load_settings(
        write_config(folder / "config.yaml", _matrix_config(folder, url)),
        environ={"MATRIX_CALDAV_PASSWORD": "not-used"},
    )
    setup = open_database(settings)
    ids = dict(seeds.restore("matrix", setup, _scenario_config, _seed_matrix))
    setup.engine.dispose()
    _share_the_seeds_key(seeds, request.param, folder)
    application = create_app(settings)
    application.config.update(TESTING=True)
    application.extensions["bookwise"].clock = lambda: NOW
    database = application.extensions["bookwise"].database
    world = Matrix(application, database, seeds, ids)
    world.values = _acme_values(world, settings)
    yield world
    database.engine.dispose()


def _share_the_seeds_key(seeds: Seeds, backend: str, folder: Path) -> None:
    """The seed's instance key (answers are encrypted with it), for this module's instance."""
    made = seeds.folder / f"matrix-{backend}" / "instance"
    if made.is_dir():
        shutil.copytree(made, folder / "instance", dirs_exist_ok=True)


def _acme_values(world: Matrix, settings: Settings) -> dict[str, Any]:
    """URL values naming acme's objects (a staff member's own where a staff member may see it)."""
    ids = world.ids
    with world.database.sessions() as session:
        service_id = session.scalar(
            sa.select(Service.id)
            .join(Workflow, Workflow.id == Service.workflow_id)
            .where(Service.calendar_id == ids["acme"], Workflow.slug == "review")
        )
        role_id = session.scalar(
            sa.select(CalendarRole.id).where(CalendarRole.user_id == ids["viewer"])
        )
        consult = session.get(Booking, ids["acme_consult"])
        ana = session.get(StaffMember, ids["staff_ana"])
        assert consult is not None and ana is not None and service_id and role_id
        return {
            "booking_id": ids["acme_review_ana"],
            "staff_id": ids["staff_ana"],
            "service_id": service_id,
            "calendar_id": ids["acme"],
            "slug": "review",
            "number": 1,
            "message_id": ids["message_acme"],
            "user_id": ids["viewer"],
            "role_id": role_id,
            "time_off_id": ids["time_off_ana"],
            "staff": "ana",
            "source_id": ids["source_ana"],
            "template": "confirmed",
            "audience": "client",
            "channel": "email",
            "locale": "en",
            "kind": "tsv",
            "filename": "admin/js/actions.js",
            "calendar": "acme",
            "service": "consult",
            "calendar_slug": "acme",
            "service_slug": "consult",
            "token": manage_token(consult),
            "invitation": invitation_token(secret_key_of(settings), ana),
            "feed": ids["feed_token"],
            "answer": "accept",
            "entry_id": ids["waitlist_acme"],
            "token_id": ids["token_acme"],
            "uid": consult.uid,
            "endpoint_id": ids["webhook_acme"],
            "name": "swagger-ui.css",
        }


# --- asking -------------------------------------------------------------------------------------


def _path(endpoint: str, rule: str, values: dict[str, Any], wrong_token: bool = False) -> str:
    path = rule
    for name in re.findall(r"<(?:[a-z]+:)?(\w+)>", rule):
        value = values[name]
        if name == "token":
            if endpoint == "accounts.staff_invitation":
                value = values["invitation"]
            elif endpoint == "feeds.subscribed":
                value = values["feed"]
            if wrong_token:
                value = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
        path = re.sub(rf"<(?:[a-z]+:)?{name}>", str(value), path)
    if endpoint == "api.slots":
        day = NOW.date() + timedelta(days=3)
        path += f"?from={day.isoformat()}&to={day.isoformat()}"
    if endpoint == "api.explain":
        path += "?start=" + (NOW + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return path


def _ask(client: Any, method: str, path: str, csrf: str, values: dict[str, Any]) -> Any:
    if method == "GET":
        return client.get(path)
    if method == "DELETE":
        return client.delete(path)
    if method == "PUT":
        return client.put(path, json={"hours": {}})
    if method == "PATCH":
        return client.patch(path, json={"name": "Changed by the matrix"})
    if path.startswith("/api/"):  # a body the API reads, so that the token is what is judged
        start = (NOW + timedelta(days=5)).replace(hour=9, minute=0).isoformat()
        return client.post(path, json={"start": start, "confirm": True})
    return client.post(
        path,
        data={
            "csrf_token": csrf,
            "calendar_id": values["calendar_id"],
            "source_id": values["source_id"],
            "transition": "cancel",
            "staff_id": values["staff_id"],
            "name": "Changed by the matrix",
            "email": "zoe@client.example",  # a client of both calendars
            "text": "id: review\nname: Changed\nduration: 10m\n",
            "mode": "cancel",
        },
    )


def _refusal(response: Any) -> bool:
    if response.status_code in (401, 403, 404):
        return True
    location = response.headers.get("Location", "")
    return response.status_code in (302, 303) and "/login" in location


def _who(endpoint: str, method: str) -> str:
    rule = RULES[endpoint]
    return rule if isinstance(rule, str) else rule[method]


def _role_allowed(endpoint: str, method: str, arguments: tuple[str, ...], role: str) -> bool:
    who = _who(endpoint, method)
    if role == "other_admin" and who in (READ, VIEW, STAFF, ADMIN):
        # The admin of the other calendar: on pages of their current calendar they act on their
        # own; a URL (or posted form) naming an acme object is not theirs.
        in_form = method == "POST" and endpoint in CALENDAR_IN_FORM
        return not (set(arguments) - NEUTRAL or in_form)
    return role in ALLOWED[who]


@pytest.mark.parametrize(("endpoint", "role"), _cases())
def test_access(matrix: Matrix, endpoint: str, role: str) -> None:
    if endpoint not in RULES:
        pytest.fail(f"add a rule for endpoint {endpoint} in tests/test_access_matrix.py (RULES)")
    (_, rule, methods, arguments) = next(r for r in ROUTES if r[0] == endpoint)
    values = matrix.values
    for method in sorted(methods):
        who = _who(endpoint, method)
        allowed = _role_allowed(endpoint, method, arguments, role)
        where = f"{method} {rule} as {role} ({who})"
        if endpoint in ENDS_SESSION:
            client = matrix.login(role)
            csrf = token(client, "/login")
        else:
            client, csrf = matrix.client(role)
        before = matrix.fingerprint() if method != "GET" and not allowed else None
        try:
            response = _ask(client, method, _path(endpoint, rule, values), csrf, values)
            body = response.get_data(as_text=True)
            assert response.status_code < 500, f"{where}: {response.status_code}\n{body[:500]}"
            if allowed:
                assert not _refusal(response), f"{where}: refused with {response.status_code}"
                assert response.status_code != 429, f"{where}: rate-limited"
            else:
                assert _refusal(response), f"{where}: answered {response.status_code}, not refused"
                leaked = [s for s in ACME_SECRETS if s in body]
                assert not leaked, f"{where}: a refusal shows {leaked}"
            if role not in ("superadmin", "other_admin"):
                leaked = [s for s in PRIVATE_SECRETS if s in body]
                assert not leaked, f"{where}: shows the private calendar's {leaked}"
            if role == "other_admin" and who not in (TOKEN, PUBLIC):
                leaked = [s for s in ACME_SECRETS if s in body]
                assert not leaked, f"{where}: shows acme's {leaked} to another calendar's admin"
            if before is not None and matrix.fingerprint() != before:
                matrix.restore()
                pytest.fail(f"{where}: refused, yet data changed")
            if who == TOKEN:
                wrong = _path(endpoint, rule, values, wrong_token=True)
                answer = _ask(client, method, wrong, csrf, values)
                assert answer.status_code == 404, f"{where}, wrong token: {answer.status_code}"
        finally:
            if method == "POST" and allowed:
                matrix.restore()
