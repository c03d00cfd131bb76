"""The API for a business's own systems (issue 19), authenticated by personal API tokens
(:mod:`bookwise.accounts.tokens`): ``Authorization: Bearer bw_...``.

Without a token, or with an unknown or revoked one: 401 ``unauthorized``. A token is for one
calendar: another calendar's URLs answer 404, as for a calendar that does not exist (nothing
tells that it does). A write with a read token, or by a user whose role only reads: 403
``forbidden``. A staff member's token sees their own bookings only.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, jsonify, request
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, selectinload

from bookwise.accounts.tokens import TokenAccess
from bookwise.api.spec import MOMENT, Operation, Reply, error, operation, query, ref
from bookwise.api.views import (
    ApiError,
    _booking_json,
    _date_param,
    _moment,
    _optional_json_body,
    blueprint,
    calendar_for,
    refuse_unstorable,
    token_access,
    without_client_links,
)
from bookwise.audit.services import Actor
from bookwise.availability.services import local_day_bounds
from bookwise.bookings.models import Booking
from bookwise.bookings.services import context_of, reschedule_booking, transition_booking
from bookwise.calendars.editing import (
    add_time_off,
    create_calendar_workflow,
    format_hours,
    parse_hours_text,
    remove_time_off,
    set_hours,
)
from bookwise.calendars.models import Calendar, StaffMember, TimeOff, WorkingHours
from bookwise.db import unit_of_work
from bookwise.errors import InvalidInput, NotFound, Problem
from bookwise.i18n import gettext
from bookwise.reports.services import ReportScope, export_rows, record_export, write_table
from bookwise.timezones import sane
from bookwise.web import db_session, instance, now, plugin_host
from bookwise.workflows.editing import check_text
from bookwise.workflows.lifecycle import Role
from bookwise.workflows.loader import CheckedWorkflow
from bookwise.workflows.models import WorkflowRecord
from bookwise.workflows.services import (
    calendars_of_workflow,
    current_version,
    find_workflow,
    save_version,
    workflow_of,
    workflows_of_calendars,
)
from bookwise.workflows.sources import check_context

PAGE, MAX_PAGE = 50, 200
DEFAULT_DAYS, MAX_DAYS = 120, 366

# --- their OpenAPI descriptions (bookwise.api.spec) ----------------------------------------------

CALENDAR = query("calendar", "the token's calendar (its slug)", {"type": "string"}, required=True)
DAYS = (
    query("from", "the first local day (default: today)", {"type": "string", "format": "date"}),
    query("to", "the last local day (default: 119 days after from)", {"type": "string"}),
)
BAD_QUERY = error(
    "a bad query",
    "invalid_request",
    "invalid_date",
    "invalid_range",
    "range_too_long",
    "invalid_cursor",
    "invalid_format",
    "invalid_status",
)
BOOKING_PAGE = {
    "type": "object",
    "required": ["bookings", "next_cursor", "calendar", "timezone"],
    "properties": {
        "bookings": {"type": "array", "items": ref("Booking")},
        "next_cursor": {"type": ["string", "null"]},
        "calendar": {"type": "string"},
        "timezone": {"type": "string"},
    },
}
REASON_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"reason": {"type": ["string", "null"], "maxLength": 500}},
}
SOURCE_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["source"],
    "properties": {
        "source": {"type": "string", "description": "the workflow's YAML"},
        "comment": {"type": ["string", "null"], "maxLength": 500},
    },
}
PROBLEMS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "line": {"type": ["integer", "null"]},
            "column": {"type": ["integer", "null"]},
            "severity": {"type": "string"},
            "message": {"type": "string"},
        },
    },
}
WORKFLOW_LIST = {
    "type": "object",
    "required": ["workflows", "calendar"],
    "properties": {
        "calendar": {"type": "string"},
        "workflows": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name", "version", "shared"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "per language",
                    },
                    "version": {"type": "integer"},
                    "shared": {
                        "type": "boolean",
                        "description": "another calendar offers it too (change it in the back "
                        "office)",
                    },
                },
            },
        },
    },
}
WORKFLOW_SAVED = {
    "type": "object",
    "required": ["id", "version", "created"],
    "properties": {
        "id": {"type": "string"},
        "version": {"type": "integer"},
        "created": {"type": "boolean", "description": "false: it said what it said already"},
    },
}
CHANGED = {
    200: Reply("the booking as it is now", ref("Booking")),
    400: error("a malformed body", "malformed_json", "invalid_request", "invalid_start"),
    409: error("not allowed now", "not_allowed", "slot_taken", "invalid_state", "forbidden"),
    422: error("refused", "invalid_reason", "not_a_slot", "in_the_past"),
}


BOOKING_PAGE_LOADS = (
    selectinload(Booking.client),
    selectinload(Booking.staff_member),
    selectinload(Booking.consent),
    selectinload(Booking.workflow_version),
    selectinload(Booking.service),
    defer(Booking.answers),
)


def _cursor(value: str | None) -> tuple[datetime, int] | None:
    """The position a ``next_cursor`` names (after which booking to go on)."""
    if not value:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(value.encode("ascii") + b"=="))
        start, booking_id = datetime.fromisoformat(raw["s"]), int(raw["i"])
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error):
        raise ApiError(400, "invalid_cursor", "this cursor is not one this API gave") from None
    if start.tzinfo is None or not sane(start):
        raise ApiError(400, "invalid_cursor", "this cursor is not one this API gave")
    return start, booking_id


def _next_cursor(booking: Booking) -> str:
    raw = json.dumps({"s": booking.start_at.isoformat(), "i": booking.id}).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _days(calendar: Calendar) -> tuple[date, date]:
    """The local days ``from`` to ``to`` asked for (by default today and the 119 days after:
    the report of the Microsoft Bookings FAQ); 400 when they make no sense."""
    first = _date_param("from") if request.args.get("from") else None
    last = _date_param("to") if request.args.get("to") else None
    today = now().astimezone(ZoneInfo(calendar.timezone)).date()
    first = first or (last - timedelta(days=DEFAULT_DAYS - 1) if last else today)
    last = last or first + timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise ApiError(400, "invalid_range", "'to' is before 'from'")
    if (last - first).days + 1 > MAX_DAYS:
        raise ApiError(400, "range_too_long", f"ask for at most {MAX_DAYS} days at a time")
    return first, last


def _actor(access: TokenAccess) -> Actor:
    """Who acted, as the audit log and the booking history name them."""
    return Actor(f"{access.actor} (API token {access.token_id})", user_id=access.user_id)


@blueprint.get("/bookings")
@operation(
    Operation(
        "A calendar's bookings, page by page",
        "bookings (token)",
        description="By start; pass next_cursor back as cursor for the next page.",
        parameters=(
            CALENDAR,
            *DAYS,
            query("limit", "bookings a page (1-200, default 50)", {"type": "string"}),
            query("cursor", "the next_cursor of the page before", {"type": "string"}),
            query("status", "only bookings in this state", {"type": "string"}),
        ),
        bearer=True,
        responses={200: Reply("a page", BOOKING_PAGE), 400: BAD_QUERY},
    )
)
def list_bookings() -> Response:
    """A calendar's bookings starting on the local days ``from`` to ``to`` (see :func:`_days`),
    by start, ``limit`` at a time (50; at most 200), with a ``next_cursor`` while more remain;
    ``status`` narrows."""
    access, calendar = calendar_for(request.args.get("calendar"))
    first, last = _days(calendar)
    zone = ZoneInfo(calendar.timezone)
    try:
        limit = int(request.args.get("limit", PAGE))
    except ValueError:
        raise ApiError(400, "invalid_request", "limit must be a number") from None
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, "invalid_request", f"limit must be from 1 to {MAX_PAGE}")
    low, high = local_day_bounds(first, last, zone)
    query = (
        select(Booking)
        # What _booking_json reads of each, in a query per relation rather than one per
        # booking; the answers (decrypted on load) are not shown here.
        .options(*BOOKING_PAGE_LOADS)
        .where(Booking.calendar_id == calendar.id, Booking.start_at >= low, Booking.start_at < high)
        .order_by(Booking.start_at, Booking.id)
        .limit(limit + 1)
    )
    if access.staff_id is not None:
        query = query.where(Booking.staff_id == access.staff_id)
    if request.args.get("status"):
        query = query.where(Booking.state == _known_state(calendar, request.args["status"]))
    after = _cursor(request.args.get("cursor"))
    if after is not None:
        start, booking_id = after
        query = query.where(
            or_(Booking.start_at > start, and_(Booking.start_at == start, Booking.id > booking_id))
        )
    found = list(db_session().scalars(query))
    page = found[:limit]
    items = [without_client_links(_booking_json(booking)) for booking in page]
    return jsonify(
        bookings=items,
        next_cursor=_next_cursor(page[-1]) if len(found) > limit else None,
        calendar=calendar.slug,
        timezone=calendar.timezone,
    )


def _known_state(calendar: Calendar, state: str) -> str:
    """``state`` when a booking of the calendar may be in it (a state of its workflows' current
    versions, or one its bookings hold); 400 naming them otherwise (a typo would list nothing)."""
    session = db_session()
    known = {
        name
        for service in calendar.services
        for name in workflow_of(current_version(session, service.workflow.slug)).lifecycle.states
    }
    if state in known:
        return state
    known |= set(
        session.scalars(select(Booking.state).where(Booking.calendar_id == calendar.id).distinct())
    )
    if state not in known:
        raise ApiError(
            400,
            "invalid_status",
            f"no booking of this calendar can be {state[:64]!r}; its states: "
            + ", ".join(sorted(known)),
        )
    return state


def _token_booking(uid: str, *, write: bool = False) -> tuple[TokenAccess, Booking]:
    """The booking ``uid`` of the token's calendar (and, for staff, their own): 404 otherwise."""
    access = token_access()
    booking = db_session().scalar(select(Booking).where(Booking.uid == uid[:64]))
    if (
        booking is None
        or booking.calendar_id != access.calendar_id
        or (access.staff_id is not None and booking.staff_id != access.staff_id)
    ):
        raise NotFound("no such booking")
    if write and not access.may_write:
        raise ApiError(403, "forbidden", "this token may only read")
    return access, booking


@blueprint.get("/bookings/<uid>")
@operation(
    Operation(
        "One booking of the token's calendar",
        "bookings (token)",
        bearer=True,
        responses={200: Reply("the booking", ref("Booking"))},
    )
)
def get_booking(uid: str) -> Response:
    """One booking of the token's calendar."""
    _access, booking = _token_booking(uid)
    return jsonify(without_client_links(_booking_json(booking)))


def _write_body() -> dict[str, Any]:
    """A write's JSON body (``{}`` when there is none), as every body of the API is read: sent
    as JSON (415 otherwise), checked against the operation's schema (400 with the path of the
    value at fault), with no text that cannot be stored (422)."""
    body = _optional_json_body()
    refuse_unstorable(body)
    return body


def _reason(body: dict[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        raise ApiError(422, "invalid_reason", "reason must be a text of at most 500 characters")
    return reason


def refused(invalid: InvalidInput, rename: Callable[[str], str] | None = None) -> ApiError:
    """422 ``invalid``: each field the back office's checks refused, with its problem in the
    request's language (``rename``: the API's name of a field the back office names otherwise)."""
    fields = {
        (rename(key) if rename else key): problem.translate(gettext)
        for key, problem in invalid.problems.items()
    }
    return ApiError(422, "invalid", gettext("Some answers are missing or wrong."), fields=fields)


@contextmanager
def writing(rename: Callable[[str], str] | None = None) -> Iterator[Session]:
    """A change's own write transaction, the request's read session closed first (a reader must
    not hold SQLite's lock while it waits for the writer's); what the back office's checks
    refuse is :func:`refused`, and nothing is written."""
    db_session().close()
    try:
        with unit_of_work(instance().database.sessions, write=True) as session:
            yield session
    except InvalidInput as invalid:
        raise refused(invalid, rename) from None


def _as_business(uid: str, change: Callable[[Session, Booking, Role, str], object]) -> Response:
    """Make ``change`` to the booking ``uid`` for the business (a write token: its user's role,
    staff or admin, as the workflow's lifecycle names who may do what), in one transaction; the
    booking as it is then."""
    access, booking = _token_booking(uid, write=True)
    booking_id = booking.id
    role: Role = "staff" if access.role == "staff" else "admin"
    with writing() as session:
        found = session.get(Booking, booking_id)
        assert found is not None
        change(session, found, role, _actor(access).name)
        payload = without_client_links(_booking_json(found))
    return jsonify(payload)


@blueprint.post("/bookings/<uid>/transitions/<name>")
@operation(
    Operation(
        "A move of the workflow's lifecycle, as the business (approve, decline, complete...)",
        "bookings (token)",
        body=REASON_BODY,
        body_required=False,
        bearer=True,
        responses=CHANGED,
    )
)
def transition_by_token(uid: str, name: str) -> Response:
    """Make one of the workflow's moves (``approve``, ``decline``, ``complete``, ``no_show``,
    ``cancel``, ...) as the business: 409 when the workflow does not allow it from the booking's
    state or for the token's user; an optional ``reason``."""
    reason = _reason(_write_body())

    def move(session: Session, booking: Booking, role: Role, actor: str) -> None:
        _may_move(booking, name[:64], role)
        transition_booking(
            session, booking, name[:64], role, actor, now(), reason, plugins=plugin_host()
        )

    return _as_business(uid, move)


def _may_move(booking: Booking, name: str, role: Role) -> None:
    """A move the workflow does not have is 404; one it has but not from the booking's state,
    or not for the token's user, 409: each says what may be done instead (an integrator reads
    these, not a client)."""
    lifecycle = context_of(booking).workflow.lifecycle
    names = sorted({t.name for t in lifecycle.transitions})
    if name not in names:
        raise ApiError(
            404,
            "unknown_transition",
            f"this booking's workflow has no action {name!r}; its actions: {', '.join(names)}",
        )
    here = [t.name for t in lifecycle.available(booking.state, role)]
    if name in here:
        return
    possible = ", ".join(here) or "none"
    if any(t.name == name for t in lifecycle.available(booking.state)):
        raise ApiError(
            409, "forbidden", f"{name!r} is not yours to do ({role}); yours now: {possible}"
        )
    raise ApiError(
        409,
        "invalid_state",
        f"{name!r} is not possible while the booking is {booking.state!r}; possible now: "
        f"{possible}",
    )


@blueprint.post("/bookings/<uid>/cancel")
@operation(
    Operation(
        "Cancel a booking, as the business",
        "bookings (token)",
        body=REASON_BODY,
        body_required=False,
        bearer=True,
        responses=CHANGED,
    )
)
def cancel_booking_by_token(uid: str) -> Response:
    """Cancel a booking for the business (its staff's cancellation: the workflow's rules for
    clients, such as a deadline, do not apply); an optional ``reason`` goes to its history and
    the client's message."""
    return transition_by_token(uid, "cancel")


@blueprint.post("/bookings/<uid>/reschedule")
@operation(
    Operation(
        "Move a booking, as the business",
        "bookings (token)",
        body={"type": "object", "required": ["start"], "properties": {"start": MOMENT}},
        body_codes={"start": "invalid_start"},
        bearer=True,
        responses=CHANGED,
    )
)
def reschedule_by_token(uid: str) -> Response:
    """Move a booking to ``start`` for the business (it keeps its staff member when free, else
    the workflow's assignment picks another): 409 when the time is taken."""
    start = _moment(_write_body().get("start"))
    return _as_business(
        uid,
        lambda session, booking, role, actor: reschedule_booking(
            session, booking, start, now(), role, actor, plugins=plugin_host()
        ),
    )


@blueprint.get("/reports/bookings")
@operation(
    Operation(
        "The report of 120 days (the Microsoft Bookings FAQ's), as TSV, CSV or JSON",
        "reports (token)",
        parameters=(
            CALENDAR,
            *DAYS,
            query("format", "tsv (default), csv or json", {"enum": ["tsv", "csv", "json"]}),
        ),
        bearer=True,
        responses={
            200: Reply(
                "the report (format=json; else the file)",
                {
                    "type": "object",
                    "required": ["columns", "rows", "calendar"],
                    "properties": {
                        "columns": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "in the calendar's language; a question's id in "
                            "brackets",
                        },
                        "rows": {
                            "type": "array",
                            "description": "one per booking (each participant of a group), "
                            "a cell per column",
                            "items": {"type": "array", "items": {"type": "string"}},
                        },
                        "calendar": {"type": "string"},
                    },
                },
                also=("text/tab-separated-values", "text/csv"),
            ),
            400: BAD_QUERY,
        },
    )
)
def export_bookings() -> Response:
    """The report of the Microsoft Bookings FAQ for the local days ``from`` to ``to`` (120 by
    default): one row per booking with its client, staff, times, state and answers (sensitive
    ones for the calendar's admins only), as ``format=tsv`` (the default), ``csv`` or ``json``.
    Audited as the back office's export is."""
    access, calendar = calendar_for(request.args.get("calendar"))
    kind = request.args.get("format", "tsv")
    if kind not in ("tsv", "csv", "json"):
        raise ApiError(400, "invalid_format", "format must be tsv, csv or json")
    first, last = _days(calendar)
    include_sensitive = access.role == "admin"
    scope = ReportScope(
        calendar.id,
        first,
        last,
        calendar.timezone,
        calendar.default_locale,
        calendar.default_locale,
        staff_id=access.staff_id,
    )
    header, rows = export_rows(
        db_session(),
        scope,
        include_sensitive=include_sensitive,
        translate=gettext,
        field_types=plugin_host().field_types,
    )
    with unit_of_work(instance().database.sessions, write=True) as session:
        name = record_export(
            session,
            _actor(access),
            scope,
            calendar.slug,
            rows=len(rows),
            kind=kind,
            sensitive=include_sensitive,
        )
    if kind == "json":
        return jsonify(columns=header, rows=rows, calendar=calendar.slug)
    return Response(
        write_table(header, rows, "\t" if kind == "tsv" else ","),
        mimetype="text/tab-separated-values" if kind == "tsv" else "text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- workflows ----------------------------------------------------------------------------------

MAX_SOURCE = 60_000  # characters of a workflow's YAML (as the back office's editor)


def _workflow_for(slug: str, *, write: bool = False) -> tuple[TokenAccess, WorkflowRecord]:
    """The workflow ``slug`` when it concerns the token's calendar (404 otherwise) and the
    token's user may read its settings (viewer or admin: 403); writing also needs a write token
    of an admin, and a workflow that concerns no other calendar (a new version reaches every
    calendar it concerns, beyond the token's scope)."""
    access = token_access()
    session = db_session()
    try:
        record = find_workflow(session, slug[:64])
    except NotFound:
        raise NotFound("no such workflow") from None
    concerned = calendars_of_workflow(session, record)
    if access.calendar_id not in concerned:
        raise NotFound("no such workflow")
    if access.role not in ("viewer", "admin"):
        raise ApiError(403, "forbidden", "a staff member's token does not read workflows")
    if write and not (access.may_write and access.role == "admin"):
        raise ApiError(403, "forbidden", "only a write token of the calendar's admin changes it")
    if write and concerned != {access.calendar_id}:
        raise ApiError(
            403,
            "forbidden",
            "this workflow is shared with other calendars: change it in the back office",
        )
    return access, record


def _source() -> tuple[str, str | None]:
    """The YAML a body carries (``{"source": "...", "comment": "..."}``)."""
    body = _write_body()
    source, comment = body.get("source"), body.get("comment")
    if not isinstance(source, str) or not source.strip():
        raise ApiError(422, "invalid_source", "source must be the workflow's YAML, as a text")
    if len(source) > MAX_SOURCE:
        raise ApiError(413, "too_large", f"a workflow is at most {MAX_SOURCE} characters")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 500):
        raise ApiError(422, "invalid_comment", "comment must be a text of at most 500 characters")
    return source, comment


def _problems_json(problems: list[Problem]) -> list[dict[str, Any]]:
    return [
        {"line": p.line, "column": p.column, "severity": p.severity, "message": p.message}
        for p in problems
    ]


def _checked(source: str, expected: str | None) -> tuple[CheckedWorkflow | None, list[Problem]]:
    bookwise = instance()
    context, _problems = check_context(bookwise.settings, plugins=bookwise.database.plugins)
    return check_text(source, f"{expected or 'workflow'}.yaml", context, expected_id=expected)


@blueprint.get("/workflows")
@operation(
    Operation(
        "The workflows the calendar offers or owns",
        "workflows (token)",
        parameters=(CALENDAR,),
        bearer=True,
        responses={200: Reply("the workflows", WORKFLOW_LIST), 400: BAD_QUERY},
    )
)
def list_workflows() -> Response:
    """The workflows the token's calendar offers or owns, with their current version."""
    access, calendar = calendar_for(request.args.get("calendar"))
    if access.role not in ("viewer", "admin"):
        raise ApiError(403, "forbidden", "a staff member's token does not read workflows")
    session = db_session()
    items = []
    for record in workflows_of_calendars(session, [calendar.id]):
        version = current_version(session, record.slug)
        workflow = workflow_of(version)
        items.append(
            {
                "id": record.slug,
                "name": dict(workflow.name.values),
                "version": version.number,
                "shared": calendars_of_workflow(session, record) != {calendar.id},
            }
        )
    return jsonify(workflows=items, calendar=calendar.slug)


@blueprint.get("/workflows/<slug>")
@operation(
    Operation(
        "A workflow's current version, as JSON or as its YAML",
        "workflows (token)",
        parameters=(query("format", "json (default) or yaml", {"enum": ["json", "yaml"]}),),
        bearer=True,
        responses={
            200: Reply(
                "the version (format=yaml: its YAML)",
                {
                    "type": "object",
                    "required": ["id", "version", "definition", "source"],
                    "properties": {
                        "id": {"type": "string"},
                        "version": {"type": "integer"},
                        "definition": {
                            "type": "object",
                            "description": "the checked document (the workflow language)",
                        },
                        "source": {"type": "string", "description": "its YAML as written"},
                    },
                },
                also=("application/yaml",),
            ),
            400: BAD_QUERY,
        },
    )
)
def get_workflow(slug: str) -> Response:
    """A workflow's current version: its YAML as written (``format=yaml``, the default for
    ``Accept: application/yaml``) or the checked document as JSON (``format=json``)."""
    _access, record = _workflow_for(slug)
    version = current_version(db_session(), record.slug)
    kind = request.args.get("format", "json")
    if kind == "yaml":
        return Response(version.source_text, mimetype="application/yaml")
    if kind != "json":
        raise ApiError(400, "invalid_format", "format must be json or yaml")
    return jsonify(
        id=record.slug,
        version=version.number,
        definition=version.definition,
        source=version.source_text,
    )


@blueprint.post("/workflows/validate")
@operation(
    Operation(
        "Check a workflow's YAML, saving nothing",
        "workflows (token)",
        body=SOURCE_BODY,
        bearer=True,
        responses={
            200: Reply(
                "the problems, each with its line",
                {
                    "type": "object",
                    "required": ["valid", "problems"],
                    "properties": {
                        "valid": {"type": "boolean"},
                        "id": {"type": ["string", "null"]},
                        "problems": PROBLEMS,
                    },
                },
            ),
            400: error("a malformed body", "malformed_json", "invalid_request"),
            413: error("too long", "too_large"),
            422: error("no YAML", "invalid_source", "invalid_comment"),
        },
    )
)
def validate_workflow() -> Response:
    """Check a workflow's YAML (``{"source": "..."}``) as the back office and ``bookwise
    validate`` do, saving nothing: every problem with its line, column and what to do."""
    token_access()
    source, _comment = _source()
    checked, problems = _checked(source, None)
    errors = [p for p in problems if p.severity == "error"]
    return jsonify(
        valid=checked is not None and not errors,
        id=checked.workflow.id if checked is not None else None,
        problems=_problems_json(problems),
    )


@blueprint.post("/workflows")
@operation(
    Operation(
        "Create a workflow in the calendar from its YAML (offered there, not yet published)",
        "workflows (token)",
        description=(
            "The new workflow belongs to the token's calendar, which offers it unpublished: "
            "publish it with PATCH /calendars/{calendar}/services/{service}/settings."
        ),
        parameters=(CALENDAR,),
        body=SOURCE_BODY,
        bearer=True,
        responses={
            201: Reply("created", WORKFLOW_SAVED),
            400: error("a malformed body", "malformed_json", "invalid_request"),
            409: error("a workflow has this id already", "workflow_exists"),
            413: error("too long", "too_large"),
            422: error("problems (in problems)", "invalid_workflow", "invalid_source"),
        },
    )
)
def create_workflow_by_token() -> tuple[Response, int]:
    """A new workflow of the token's calendar from its YAML, checked first (422 with its
    problems, nothing saved); offered in the calendar, unpublished."""
    access, found = calendar_for(request.args.get("calendar"), write=True)
    if access.role != "admin":
        raise ApiError(403, "forbidden", "only the calendar's admins create workflows")
    source, _comment = _source()
    checked, problems = _checked(source, None)
    if checked is None or any(p.severity == "error" for p in problems):
        raise ApiError(
            422, "invalid_workflow", "the workflow has problems", problems=_problems_json(problems)
        )
    slug, calendar_id = checked.workflow.id, found.id
    exists = ApiError(409, "workflow_exists", f"a workflow {slug!r} exists; choose another id")
    if db_session().scalar(select(WorkflowRecord.id).where(WorkflowRecord.slug == slug)):
        raise exists
    try:
        with writing() as session:
            owner = session.get(Calendar, calendar_id)
            assert owner is not None
            create_calendar_workflow(session, checked, owner, origin="api", actor=_actor(access))
    except IntegrityError:  # the same id, created at the same moment by another request
        raise exists from None
    return jsonify(id=slug, version=1, created=True), 201


@blueprint.post("/workflows/<slug>/versions")
@operation(
    Operation(
        "Save a new version of a workflow from its YAML",
        "workflows (token)",
        body=SOURCE_BODY,
        bearer=True,
        responses={
            200: Reply("nothing changed", WORKFLOW_SAVED),
            201: Reply("saved", WORKFLOW_SAVED),
            400: error("a malformed body", "malformed_json", "invalid_request"),
            413: error("too long", "too_large"),
            422: error("problems (in problems)", "invalid_workflow", "invalid_source"),
        },
    )
)
def add_workflow_version(slug: str) -> tuple[Response, int]:
    """A new version of a workflow from its YAML (``{"source": ..., "comment": ...}``),
    checked first (422 with its problems, nothing saved); 200 when it says what the current
    version already says."""
    access, record = _workflow_for(slug, write=True)
    source, comment = _source()
    checked, problems = _checked(source, record.slug)
    if checked is None or any(p.severity == "error" for p in problems):
        raise ApiError(
            422, "invalid_workflow", "the workflow has problems", problems=_problems_json(problems)
        )
    record_id = record.id
    with writing() as session:
        found = session.get(WorkflowRecord, record_id)
        assert found is not None
        version = save_version(
            session, found, checked, origin="api", author=_actor(access).name, comment=comment
        )
        number = version.number if version is not None else current_version(session, slug).number
    return jsonify(id=record.slug, version=number, created=version is not None), (
        201 if version is not None else 200
    )


# --- staff and their time off -------------------------------------------------------------------

TIME_OFF = {
    "type": "object",
    "required": ["id", "start", "end"],
    "properties": {
        "id": {"type": "integer"},
        "start": MOMENT,
        "end": MOMENT,
        "reason": {"type": ["string", "null"]},
        "origin": {"type": "string"},
    },
}
TIME_OFF_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["start", "end"],
    "properties": {
        "start": MOMENT,
        "end": MOMENT,
        "reason": {"type": ["string", "null"], "maxLength": 500},
    },
}


BOOKABLE = {"type": "boolean", "description": "the setting: may be booked (see takes_bookings)"}
INVITATION = {
    "enum": ["pending", "accepted", "declined"],
    "description": "a member added takes bookings once they accept the e-mailed invitation",
}
TAKES_BOOKINGS = {
    "type": "boolean",
    "description": "bookable, and their invitation accepted: clients can book them now",
}


def takes_bookings(member: StaffMember) -> bool:
    """Whether clients can be given this member now: bookable, invitation accepted, not
    removed (what the availability engine's pool keeps)."""
    return member.bookable and member.invitation == "accepted" and member.removed_at is None


def _member(calendar: Calendar, slug: str) -> StaffMember:
    member = db_session().scalar(
        select(StaffMember).where(
            StaffMember.calendar_id == calendar.id,
            StaffMember.slug == slug[:64],
            StaffMember.removed_at.is_(None),
        )
    )
    if member is None:
        raise NotFound("no such staff member")
    return member


def _may_see_reasons(access: TokenAccess, member: StaffMember) -> bool:
    """A time off's reason is the member's private life: for the calendar's admins and viewers,
    and the member themselves."""
    return access.role in ("admin", "viewer") or access.staff_id == member.id


def _time_off_json(time_off: TimeOff, zone: str, reasons: bool) -> dict[str, Any]:
    tz = ZoneInfo(zone)
    return {
        "id": time_off.id,
        "start": time_off.start_at.astimezone(tz).isoformat(),
        "end": time_off.end_at.astimezone(tz).isoformat(),
        "reason": time_off.reason if reasons else None,
        "origin": time_off.origin,
    }


@blueprint.get("/calendars/<calendar>/staff")
@operation(
    Operation(
        "The calendar's staff members",
        "staff (token)",
        bearer=True,
        responses={
            200: Reply(
                "the staff",
                {
                    "type": "object",
                    "required": ["staff", "calendar"],
                    "properties": {
                        "calendar": {"type": "string"},
                        "staff": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id", "name", "tags", "bookable", "takes_bookings"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "name": {"type": "string"},
                                    "tags": {"type": "array", "items": {"type": "string"}},
                                    "bookable": BOOKABLE,
                                    "invitation": INVITATION,
                                    "takes_bookings": TAKES_BOOKINGS,
                                },
                            },
                        },
                    },
                },
            )
        },
    )
)
def list_staff(calendar: str) -> Response:
    """The calendar's staff members: their id (slug), name, tags and whether they take
    bookings."""
    _access, found = calendar_for(calendar)
    members = db_session().scalars(
        select(StaffMember)
        .where(StaffMember.calendar_id == found.id, StaffMember.removed_at.is_(None))
        .order_by(StaffMember.name, StaffMember.id)
    )
    return jsonify(
        staff=[
            {
                "id": m.slug,
                "name": m.name,
                "tags": list(m.tags or []),
                "bookable": m.bookable,
                "invitation": m.invitation,
                "takes_bookings": takes_bookings(m),
            }
            for m in members
        ],
        calendar=found.slug,
    )


@blueprint.get("/calendars/<calendar>/staff/<staff>/time-off")
@operation(
    Operation(
        "A staff member's time off",
        "staff (token)",
        parameters=DAYS,
        bearer=True,
        responses={
            200: Reply(
                "their time off in the days asked for (120 from today by default)",
                {
                    "type": "object",
                    "properties": {"time_off": {"type": "array", "items": TIME_OFF}},
                },
            ),
            400: BAD_QUERY,
        },
    )
)
def list_time_off(calendar: str, staff: str) -> Response:
    """A member's time off meeting the local days ``from`` to ``to``; the reasons for the
    calendar's admins and viewers and the member themselves."""
    access, found = calendar_for(calendar)
    member = _member(found, staff)
    first, last = _days(found)
    low, high = local_day_bounds(first, last, ZoneInfo(found.timezone))
    periods = db_session().scalars(
        select(TimeOff)
        .where(TimeOff.staff_id == member.id, TimeOff.end_at > low, TimeOff.start_at < high)
        .order_by(TimeOff.start_at, TimeOff.id)
    )
    reasons = _may_see_reasons(access, member)
    return jsonify(
        time_off=[_time_off_json(t, found.timezone, reasons) for t in periods],
        staff=member.slug,
    )


def _may_change_time_off(access: TokenAccess, member: StaffMember) -> None:
    """A write token of the calendar's admin, or of the member themselves (403 otherwise)."""
    if not access.may_write or not (access.role == "admin" or access.staff_id == member.id):
        raise ApiError(403, "forbidden", "only the calendar's admins or the member change it")


@blueprint.post("/calendars/<calendar>/staff/<staff>/time-off")
@operation(
    Operation(
        "Record time off (the member is told by e-mail)",
        "staff (token)",
        body=TIME_OFF_BODY,
        body_codes={"start": "invalid_start", "end": "invalid_end"},
        bearer=True,
        responses={
            201: Reply(
                "recorded; clashes lists the bookings already in it (they are not moved)",
                {
                    "type": "object",
                    "properties": {
                        "time_off": TIME_OFF,
                        "clashes": {"type": "array", "items": {"type": "string"}},
                    },
                },
            ),
            400: error(
                "a malformed body",
                "malformed_json",
                "invalid_request",
                "invalid_start",
                "invalid_end",
            ),
            422: error("refused (fields: each field and its problem)", "invalid"),
        },
    )
)
def add_time_off_by_token(calendar: str, staff: str) -> tuple[Response, int]:
    """Time off for a member, through the back office's own service (checked the same way)."""
    access, found = calendar_for(calendar)
    member = _member(found, staff)
    _may_change_time_off(access, member)
    body = _write_body()
    start, end = _moment(body.get("start")), _moment(body.get("end"), "end")
    reason = body.get("reason") or ""
    if not isinstance(reason, str):
        raise ApiError(422, "invalid", "reason must be a text", fields={"reason": "a text"})
    member_id, zone = member.id, found.timezone
    with writing() as session:
        owner = session.get(StaffMember, member_id)
        assert owner is not None
        time_off, clashes = add_time_off(
            session, owner, start, end, reason, now=now(), actor=_actor(access).name, ip=None
        )
        payload = {
            "time_off": _time_off_json(time_off, zone, True),
            "clashes": [booking.uid for booking in clashes],
        }
    return jsonify(payload), 201


@blueprint.delete("/calendars/<calendar>/staff/<staff>/time-off/<int:time_off_id>")
@operation(
    Operation(
        "Remove time off",
        "staff (token)",
        bearer=True,
        responses={204: Reply("removed", None)},
    )
)
def remove_time_off_by_token(calendar: str, staff: str, time_off_id: int) -> tuple[str, int]:
    access, found = calendar_for(calendar)
    member = _member(found, staff)
    _may_change_time_off(access, member)
    time_off = db_session().get(TimeOff, time_off_id)
    if time_off is None or time_off.staff_id != member.id:
        raise NotFound("no such time off")
    with writing() as session:
        found_off = session.get(TimeOff, time_off_id)
        if found_off is not None:
            remove_time_off(session, found_off, _actor(access).name, None)
    return "", 204


# --- working hours ------------------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        day: {
            "type": "array",
            "maxItems": 12,
            "items": {"type": "string", "examples": ["09:00-12:30"]},
        }
        for day in WEEKDAYS
    },
    "description": "per weekday, ranges of local time like 09:00-12:30 (a day left out: closed)",
}


def _hours_json(rows: list[WorkingHours]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {day: [] for day in WEEKDAYS}
    for row in sorted(rows, key=lambda r: (r.weekday, r.start_minute)):
        out[WEEKDAYS[row.weekday]].append(format_hours([(row.start_minute, row.end_minute)]))
    return out


def _hours_of(calendar: Calendar, member: StaffMember | None) -> dict[str, Any]:
    query = select(WorkingHours).where(WorkingHours.calendar_id == calendar.id)
    if member is None or member.uses_calendar_hours:
        query = query.where(WorkingHours.staff_id.is_(None))
    else:
        query = query.where(WorkingHours.staff_id == member.id)
    return {
        "hours": _hours_json(list(db_session().scalars(query))),
        "own_hours": member is not None and not member.uses_calendar_hours,
        "timezone": calendar.timezone,
    }


def _read_hours(body: dict[str, Any]) -> list[tuple[int, int, int]]:
    """``{"mon": ["09:00-12:00"], ...}`` as (weekday, start, end) minutes; 422 naming the day."""
    hours = body.get("hours")
    if not isinstance(hours, dict) or any(key not in WEEKDAYS for key in hours):
        raise ApiError(
            422, "invalid", "hours must be an object of weekdays (mon ... sun)", fields={}
        )
    ranges: list[tuple[int, int, int]] = []
    for day, texts in hours.items():
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ApiError(422, "invalid", f"{day}: a list of ranges", fields={day: "a list"})
        try:
            found = parse_hours_text(", ".join(texts))
        except (ValueError, IndexError):
            message = 'ranges like "09:00-12:30"'
            raise ApiError(422, "invalid", f"{day}: {message}", fields={day: message}) from None
        ranges += [(WEEKDAYS.index(day), start, end) for start, end in found]
    return ranges


def _set_hours(access: TokenAccess, found: Calendar, member: StaffMember | None) -> Response:
    ranges = _read_hours(_write_body())
    calendar_id, member_id = found.id, member.id if member is not None else None

    def weekday(key: str) -> str:  # the back office's day_0 ... day_6
        return WEEKDAYS[int(key.removeprefix("day_"))] if key.startswith("day_") else key

    with writing(weekday) as session:
        calendar = session.get(Calendar, calendar_id)
        owner = session.get(StaffMember, member_id) if member_id is not None else None
        assert calendar is not None
        set_hours(session, calendar, owner, ranges, _actor(access).name, None)
    refreshed = db_session().get(Calendar, calendar_id)
    assert refreshed is not None
    again = db_session().get(StaffMember, member_id) if member_id is not None else None
    return jsonify(_hours_of(refreshed, again))


HOURS_ANSWER = Reply(
    "the hours",
    {
        "type": "object",
        "properties": {
            "hours": HOURS,
            "own_hours": {"type": "boolean"},
            "timezone": {"type": "string"},
        },
    },
)
HOURS_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["hours"],
    "properties": {"hours": HOURS},
}
HOURS_CHANGED = {
    200: HOURS_ANSWER,
    400: error("a malformed body", "malformed_json", "invalid_request"),
    422: error("a range that cannot be read, ends before it starts or overlaps", "invalid"),
}


@blueprint.get("/calendars/<calendar>/hours")
@operation(
    Operation(
        "The calendar's working hours", "hours (token)", bearer=True, responses={200: HOURS_ANSWER}
    )
)
def calendar_hours(calendar: str) -> Response:
    _access, found = calendar_for(calendar)
    return jsonify(_hours_of(found, None))


@blueprint.put("/calendars/<calendar>/hours")
@operation(
    Operation(
        "Replace the calendar's working hours",
        "hours (token)",
        body=HOURS_BODY,
        bearer=True,
        responses=HOURS_CHANGED,
    )
)
def set_calendar_hours(calendar: str) -> Response:
    access, found = calendar_for(calendar, write=True)
    if access.role != "admin":
        raise ApiError(403, "forbidden", "only the calendar's admins change its hours")
    return _set_hours(access, found, None)


@blueprint.get("/calendars/<calendar>/staff/<staff>/hours")
@operation(
    Operation(
        "A staff member's working hours (the calendar's when they have none of their own)",
        "hours (token)",
        bearer=True,
        responses={200: HOURS_ANSWER},
    )
)
def staff_hours(calendar: str, staff: str) -> Response:
    _access, found = calendar_for(calendar)
    return jsonify(_hours_of(found, _member(found, staff)))


@blueprint.put("/calendars/<calendar>/staff/<staff>/hours")
@operation(
    Operation(
        "Replace a staff member's own working hours ({} for none: the calendar's apply)",
        "hours (token)",
        body=HOURS_BODY,
        bearer=True,
        responses=HOURS_CHANGED,
    )
)
def set_staff_hours(calendar: str, staff: str) -> Response:
    access, found = calendar_for(calendar, write=True)
    member = _member(found, staff)
    _may_change_time_off(access, member)  # the admins, or the member for their own
    return _set_hours(access, found, member)
