"""The public JSON API, ``/api/v1``: services, free slots, booking, and the client's manage link.

JSON in and out. Every error is ``{"error": {"code": "...", "message": "...", ...}}`` with a
4xx status; nothing is written when a request fails. Times are ISO 8601 with their UTC offset.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from flask_babel import get_locale
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bookwise.accounts.models import CalendarRole
from bookwise.accounts.tokens import TokenAccess, authenticate, needs_touch, touch
from bookwise.api.cors import init_cors
from bookwise.api.spec import (
    CLIENT_BODY,
    CLIENT_DATA,
    ERASED,
    IDEMPOTENCY_KEY,
    MOMENT,
    NULLABLE_TEXT,
    Operation,
    Reply,
    error,
    operation,
    operation_of,
    query,
    ref,
    validate_body,
)
from bookwise.availability.cache import Day, SlotCache
from bookwise.availability.engine import Reason, Slot
from bookwise.availability.reasons import reason_message
from bookwise.availability.services import (
    Availability,
    SlotSearch,
    explain_time,
    local_day_bounds,
    service_availability,
)
from bookwise.bookings.answers import InvalidAnswers
from bookwise.bookings.idempotency import (
    IdempotentRequest,
    InvalidKey,
    KeyReused,
    StoredResponse,
    check_key,
    claim,
    remember,
    request_hash,
)
from bookwise.bookings.messages import describe
from bookwise.bookings.models import Booking, BookingSeries
from bookwise.bookings.recurrence import Replacement, SeriesRequest
from bookwise.bookings.series import (
    book_series_from_answers,
    cancel_occurrences,
    find_series_by_manage_token,
    occurrence_position,
    series_manage_token,
    series_occurrences,
)
from bookwise.bookings.services import (
    CONSENT_REFUSALS,
    BookingContext,
    BookingError,
    BookingRequest,
    Busy,
    InvalidRequest,
    NotAllowed,
    NotASlot,
    OutsideWindow,
    Refused,
    SlotTaken,
    TooLate,
    cancel_booking,
    change_deadline,
    client_may_change,
    context_of,
    create_booking,
    find_by_manage_token,
    find_service,
    manage_token,
    reschedule_booking,
    routing_answers,
    routing_questions,
    withdrawal_cancels,
)
from bookwise.bookings.services import withdraw_consent as withdraw
from bookwise.bookings.waitlist import WaitlistClosed
from bookwise.calendars.models import Calendar
from bookwise.config import secret_key_of
from bookwise.db import unit_of_work
from bookwise.errors import NotFound
from bookwise.i18n import contact_label, gettext
from bookwise.metrics import booking_made
from bookwise.notifications.context import consent_version, manage_url, reference
from bookwise.privacy.clients import erase_booking_client, export_booking_client, record_export
from bookwise.text import UNSTORABLE, has_lone_surrogate
from bookwise.timezones import FIRST_YEAR, LAST_YEAR, parse_zone, sane
from bookwise.web import (
    csrf,
    db_session,
    instance,
    now,
    plugin_host,
    read_session,
    slot_cache,
)
from bookwise.workflows.language import Field, Workflow

logger = logging.getLogger(__name__)
blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(blueprint)  # JSON only (enforced below): a cross-site form cannot send it
init_cors(blueprint)  # a calendar's own websites may call it from the browser

MAX_DAYS = 93
STATUS = {
    SlotTaken: 409,
    TooLate: 409,
    NotAllowed: 409,
    NotASlot: 422,
    OutsideWindow: 422,
    InvalidRequest: 422,
    Refused: 422,
    WaitlistClosed: 422,
}

# --- the OpenAPI descriptions' shared parts (bookwise.api.spec) ----------------------------------

TZ_PARAMETER = query(
    "tz", "the IANA zone times are written in (default: the calendar's)", {"type": "string"}
)
ANSWERS_PARAMETER = {
    "name": "answers",
    "in": "query",
    "style": "deepObject",
    "explode": True,
    "description": "answers to the questions the service routes on: answers[ID]=value",
    "schema": {"type": "object", "additionalProperties": {"type": "string"}},
}
BODY_ERRORS = {
    400: error("a malformed body", "malformed_json", "invalid_request"),
    415: error("the body is not sent as JSON", "unsupported_media_type"),
}
EMPTY_BODY: dict[str, Any] = {"type": "object"}
BOOKING_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["start"],
    "properties": {
        "start": {**MOMENT, "type": "string"},
        "staff": {**NULLABLE_TEXT, "description": "when the workflow lets the client choose"},
        **CLIENT_BODY,
        "recurrence": {
            "type": ["object", "null"],
            "description": "book the same time every week or every few weeks",
            "properties": {"frequency": {"type": "string"}, "count": {"type": "integer"}},
            "required": ["count"],
            "additionalProperties": False,
        },
        "skip_unavailable": {"type": "boolean"},
        "replacements": {
            "type": ["array", "null"],
            "maxItems": 52,
            "items": {
                "type": "object",
                "required": ["replaces", "start"],
                "additionalProperties": False,
                "properties": {
                    "replaces": {"format": "date-time", "description": "an occurrence's start"},
                    "start": {"format": "date-time", "description": "the time booked instead"},
                },
            },
        },
    },
}
BOOKING_EXAMPLE: dict[str, Any] = {
    "id": "b542f1462caa40359351a3e6ebce1e69",
    "status": "confirmed",
    "calendar": "acme",
    "service": "consult",
    "start": "2026-12-01T09:00:00+01:00",
    "end": "2026-12-01T09:30:00+01:00",
    "timezone": "Europe/Paris",
    "staff": "ben",
    "client": {"name": "Zoé Martin", "email": "zoe@example.org"},
    "meeting_url": None,
    "can_change": True,
    "change_deadline": "2026-12-01T07:00:00+01:00",
    "manage_token": "b542f1462caa40359351a3e6ebce1e69-vc2-FJst",
    "manage_url": "https://bookings.example.org/manage/b542f1462caa40359351a3e6ebce1e69-vc2-FJst",
    "consent": None,
    "series": None,
}
CANCEL_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {**NULLABLE_TEXT, "maxLength": 500},
        "occurrence": {"type": ["string", "null"], "format": "date-time"},
        "from": {"type": ["string", "null"], "format": "date-time"},
        "rest": {"type": "boolean"},
    },
}


class ApiError(Exception):
    """A request the API refuses before any business rule: bad JSON, types, dates, zones."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra


def error_response(status: int, code: str, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify(error={"code": code, "message": message, **extra}), status


@blueprint.before_request
def _keep_manage_answers_private() -> None:
    # A client's booking under its secret link: no cache may keep it (see bookwise.app).
    if request.view_args and "token" in request.view_args:
        g.private = True


@blueprint.errorhandler(ApiError)
def _api_error(error: ApiError) -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    body, status = error_response(error.status, error.code, str(error), **error.extra)
    if error.code == "unauthorized":  # RFC 6750: how to authenticate
        return body, status, {"WWW-Authenticate": 'Bearer realm="bookwise"'}
    return body, status


@blueprint.errorhandler(NotFound)
def _not_found(error: NotFound) -> tuple[Response, int]:
    return error_response(404, "not_found", str(error))


@blueprint.errorhandler(IntegrityError)
def _conflict(error: IntegrityError) -> tuple[Response, int]:
    # A uniqueness another request won at the same moment (an address, a period): nothing of
    # this request was written (its unit of work rolled back).
    logger.info("a change lost a race: %s", error.orig)
    return error_response(
        409,
        "conflict",
        "another request changed the same thing at the same moment: read it again, then retry",
    )


@blueprint.errorhandler(KeyReused)
def _key_reused(error: KeyReused) -> tuple[Response, int]:
    return error_response(422, "idempotency_key_reused", str(error))


@blueprint.errorhandler(BookingError)
def _booking_error(
    error: BookingError,
) -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    if isinstance(error, Busy):  # nothing written: the same request may be sent again
        body, status = error_response(503, error.code, describe(error.code, gettext, error.told))
        return body, status, {"Retry-After": str(error.retry_after)}
    status = next((s for kind, s in STATUS.items() if isinstance(error, kind)), 409)
    return error_response(
        status, error.code, describe(error.code, gettext, error.told), **error.details
    )


@blueprint.errorhandler(InvalidAnswers)
def _invalid(error: InvalidAnswers) -> tuple[Response, int]:
    fields = {key: problem.message(gettext) for key, problem in error.problems.items()}
    return error_response(
        422, "invalid", gettext("Some answers are missing or wrong."), fields=fields
    )


# --- reading the request ------------------------------------------------------------------------


def _why_not_json(raw: bytes) -> str | None:
    """What is wrong with a body that gave no JSON value: where the parser stopped, with its
    line and column; None when it is JSON after all (``null``: not an object)."""
    try:
        json.loads(raw)
    except RecursionError:
        return "the body is not valid JSON: it is nested too deeply"
    except UnicodeDecodeError:
        return "the body is not valid JSON: it is not UTF-8 text"
    except ValueError as error:
        return f"the body is not valid JSON: {error}"[:300]
    return None


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "send JSON with Content-Type: application/json"
        )
    body = request.get_json(silent=True)
    if body is None and (why := _why_not_json(request.get_data(cache=True))) is not None:
        raise ApiError(400, "malformed_json", why)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    # The body's schema, the one the OpenAPI document gives (bookwise.api.spec), before the
    # view's own checks: a value of the wrong type is refused with the path of its field.
    view = current_app.view_functions.get(request.endpoint or "")
    described = operation_of(view) if view is not None else None
    if described is not None:
        problem = validate_body(described, body)
        if problem is not None:
            raise ApiError(400, problem.code, problem.message, path=problem.path)
    return body


def refuse_unstorable(body: Any, where: str = "") -> None:
    """422 ``invalid`` naming the first text of a JSON body (a key or a value, at any depth) that
    holds a lone surrogate (``"\\ud800"``): no database can store it, and every page that read
    it back would fail. The changes made with API tokens check their whole body this way; the
    public booking form checks each answer itself (bookwise.bookings.answers)."""
    texts: list[tuple[str, Any]] = [(where, body)]
    while texts:
        path, value = texts.pop()
        if isinstance(value, dict):
            texts += [(f"{path}/{key}", key) for key in value]
            texts += [(f"{path}/{key}", item) for key, item in value.items()]
        elif isinstance(value, list):
            texts += [(f"{path}/{index}", item) for index, item in enumerate(value)]
        elif isinstance(value, str) and has_lone_surrogate(value):
            field = path.split("/")[1] if path.count("/") else "body"
            raise ApiError(
                422,
                "invalid",
                gettext("Some answers are missing or wrong."),
                fields={field: gettext(UNSTORABLE)},
                path=path,
            )


def _optional_json_body() -> dict[str, Any]:
    """The body of a POST that may be left out: nothing at all, or a JSON object. A body sent as
    anything else (a form, even an empty one or one of no stated length) is refused with 415."""
    if not request.get_data(cache=True) and (not request.mimetype or request.is_json):
        return {}
    return _json_body()


def _zone(name: str | None, default: str) -> tuple[str, ZoneInfo]:
    zone = parse_zone(name or default)
    if zone is None:
        raise ApiError(
            400,
            "invalid_timezone",
            f"unknown time zone {name!r}; use an IANA name like Europe/Paris",
        )
    return zone, ZoneInfo(zone)


def _date_param(name: str) -> date:
    value = request.args.get(name)
    if not value:
        raise ApiError(400, "invalid_request", f"the parameter {name!r} is required (YYYY-MM-DD)")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ApiError(
            400, "invalid_date", f"{name}={value!r} is not a date (YYYY-MM-DD)"
        ) from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ApiError(400, "invalid_date", f"{name}={value!r} is out of range")
    return day


def _moment(value: Any, name: str = "start") -> datetime:
    if not isinstance(value, str):
        raise ApiError(
            400,
            "invalid_start",
            f"{name} must be an ISO 8601 time with its offset, like 2026-12-01T09:30:00+01:00",
        )
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_start", f"{name} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ApiError(
            400, "invalid_start", f"{name} {value!r} needs its UTC offset, like +01:00 or Z"
        )
    if not sane(moment):
        raise ApiError(400, "invalid_start", f"{name} {value!r} is out of range")
    return moment


_ANSWER_PARAM = re.compile(r"^answers\[([^\]]{1,64})\]$")


def _answer_params(workflow: Workflow) -> dict[str, Any] | None:
    """The answers given as ``answers[ID]=value`` query parameters (repeated for a multiselect),
    checked as the booking checks them; None when none is given. Only the questions the
    workflow routes on count: an answer to another question is refused, not ignored silently."""
    given: dict[str, Any] = {}
    for key in request.args:
        match = _ANSWER_PARAM.match(key)
        if match is None:
            continue
        fid = match.group(1)
        spec = workflow.field(fid)
        values = request.args.getlist(key)
        given[fid] = values[:100] if spec is not None and spec.type == "multiselect" else values[0]
    if not given:
        return None
    routed = set(workflow.routing_fields)
    asked = {f.id for f in routing_questions(workflow)}
    others = sorted(set(given) - asked)
    if others:
        hint = f"; it routes on {', '.join(sorted(routed))}" if routed else "; it does not route"
        raise ApiError(
            400,
            "invalid_request",
            f"this service does not route on {', '.join(repr(o) for o in others)}{hint}",
        )
    return routing_answers(workflow, given, now().date(), field_types=plugin_host().field_types)


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, "invalid_request", f"{key} must be text")
    return value


def idempotent_request(
    body: dict[str, Any], token_id: int | None = None
) -> IdempotentRequest | None:
    """The request's ``Idempotency-Key`` (docs/api.md, "Idempotency") with its scope (the method
    and path) and the hash of the request; None without the header; 400
    ``invalid_idempotency_key`` for a key that is not 1 to 255 printable ASCII characters."""
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    try:
        key = check_key(value)
    except InvalidKey as exc:
        raise ApiError(400, "invalid_idempotency_key", str(exc)) from None
    scope = f"{request.method} {request.path}"
    if token_id is not None:  # a business's key is its own, apart from the public's
        scope += f" token:{token_id}"
    return IdempotentRequest(scope, key, request_hash(request.method, request.path, body))


def replayed(stored: StoredResponse) -> tuple[Response, int, dict[str, str]]:
    """A key's stored response, sent again, saying so (``Idempotent-Replayed: true``)."""
    return jsonify(stored.body), stored.status, {**stored.headers, "Idempotent-Replayed": "true"}


def created(
    session: Session, asked: IdempotentRequest | None, body: dict[str, Any], location: str
) -> tuple[Response, int, dict[str, str]]:
    """The 201 of a creation, its response first stored with its key (in the creation's
    transaction, before the commit) when the request came with one."""
    headers = {"Location": location}
    if asked is not None:
        remember(session, asked, 201, headers, body)
    return jsonify(body), 201, headers


# --- presenting ---------------------------------------------------------------------------------


def _field_json(spec: Field, locale: str, fallback: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": spec.id,
        "type": spec.type,
        "label": spec.label.get(locale, fallback) or contact_label(spec.id),
        "required": spec.required,
    }
    if spec.help:
        data["help"] = spec.help.get(locale, fallback)
    if spec.options:
        data["options"] = [
            {"value": o.value, "label": o.label.get(locale, fallback)} for o in spec.options
        ]
    for key in ("min", "max", "min_length", "max_length", "pattern"):
        if getattr(spec, key) is not None:
            data[key] = getattr(spec, key)
    return data


def _service_json(context: BookingContext, locale: str) -> dict[str, Any]:
    workflow: Workflow = context.workflow
    fallback = context.calendar.default_locale
    data: dict[str, Any] = {
        "id": workflow.id,
        "name": workflow.name.get(locale, fallback),
        "description": workflow.description.get(locale, fallback) or None,
        "duration_minutes": int(workflow.duration.total_seconds() // 60),
        "capacity": workflow.capacity,
        "location": {"type": workflow.location.type},
        "staff_choice": workflow.staff.client_chooses,
        "fields": [_field_json(f, locale, fallback) for f in workflow.fields],
        # Asked before the slots (``answers[ID]`` of the slots endpoint): who serves depends on
        # them.
        "routing_fields": [f.id for f in routing_questions(workflow)],
        "consent": None,
        # Whether a series may be booked (``recurrence`` of the booking request), and how.
        "recurrence": {
            "max_occurrences": workflow.recurrence.max_occurrences,
            "frequencies": list(workflow.recurrence.frequencies),
        }
        if workflow.recurrence.allowed
        else None,
    }
    if workflow.consent is not None:
        data["consent"] = {
            "required": workflow.consent.required,
            "text": workflow.consent.text.get(locale, fallback),
            "link": workflow.consent.link.get(locale, fallback) or None,
        }
    return data


def _booking_json(booking: Booking) -> dict[str, Any]:
    zone = ZoneInfo(booking.timezone)
    context = context_of(booking)
    workflow = context.workflow
    token = manage_token(booking)
    deadline = change_deadline(workflow, booking)
    return {
        "id": booking.uid,
        # What the client reads on the phone and the report's first column: BW-1A2B3C.
        "reference": reference(booking),
        "status": booking.state,
        "calendar": booking.calendar.slug,
        "service": workflow.id,
        "start": booking.start_at.astimezone(zone).isoformat(),
        "end": booking.end_at.astimezone(zone).isoformat(),
        "timezone": booking.timezone,
        "staff": booking.staff_member.slug,
        "client": {"name": booking.client.name, "email": booking.client.email},
        # An online meeting's link (from the workflow's meeting provider, or its fixed url).
        "meeting_url": booking.meeting_url or workflow.location.url or None,
        "can_change": client_may_change(workflow, booking, now()),
        "change_deadline": deadline.astimezone(zone).isoformat(),
        "manage_token": token,
        "manage_url": manage_url(instance().settings, booking),
        "consent": _consent_json(booking),
        "series": _series_link_json(booking),
    }


CLIENT_LINKS = frozenset({"manage_token", "manage_url"})


def without_client_links(answer: Any) -> Any:
    """``answer`` without its manage tokens and links, at any depth: a manage link is the
    client's own key (it cancels, moves, erases), sent to them alone; the answers given to a
    business's API token never carry one."""
    if isinstance(answer, dict):
        return {k: without_client_links(v) for k, v in answer.items() if k not in CLIENT_LINKS}
    if isinstance(answer, list):
        return [without_client_links(item) for item in answer]
    return answer


def _series_link_json(booking: Booking) -> dict[str, Any] | None:
    """An occurrence of a series: the series, where the occurrence stands in it (from 1, of
    how many), and the series' manage token; None for a single booking."""
    found = occurrence_position(booking)
    if found is None:
        return None
    series, index, count = found
    token = series_manage_token(series)
    return {
        "id": series.uid,
        "frequency": series.frequency,
        "occurrence": index,
        "of": count,
        "manage_token": token,
        "manage_url": f"{instance().settings.base_url}/manage/{token}",
    }


def _series_json(series: BookingSeries) -> dict[str, Any]:
    """A series and its occurrences (each with its own booking's id and state, or ``skipped``
    when it was not free when booked), for its manage link."""
    zone = ZoneInfo(series.timezone)
    token = series_manage_token(series)
    occurrences = []
    for occurrence in series_occurrences(series):
        item: dict[str, Any] = {
            "start": occurrence.start.astimezone(zone).isoformat(),
            "state": occurrence.state,
        }
        if occurrence.booking is not None:
            booking = occurrence.booking
            item["booking"] = booking.uid
            item["staff"] = booking.staff_member.slug
            item["can_change"] = client_may_change(context_of(booking).workflow, booking, now())
            item["manage_token"] = manage_token(booking)  # the occurrence's own link
        occurrences.append(item)
    return {
        "id": series.uid,
        "calendar": series.calendar.slug,
        "service": series.service.workflow.slug,
        "frequency": series.frequency,
        "count": series.count,
        "timezone": series.timezone,
        "client": {"name": series.client.name, "email": series.client.email},
        "occurrences": occurrences,
        "manage_token": token,
        "manage_url": f"{instance().settings.base_url}/manage/{token}",
    }


def _series_request(body: dict[str, Any]) -> SeriesRequest | None:
    """``recurrence: {frequency, count}`` and ``skip_unavailable`` of a booking request."""
    recurrence = body.get("recurrence")
    skip = body.get("skip_unavailable", False)
    if not isinstance(skip, bool):
        raise ApiError(400, "invalid_request", "skip_unavailable must be true or false")
    if recurrence is None:
        if skip or body.get("replacements") is not None:
            raise ApiError(
                400, "invalid_request", "skip_unavailable and replacements need a recurrence"
            )
        return None
    if not isinstance(recurrence, dict) or set(recurrence) - {"frequency", "count"}:
        raise ApiError(
            400,
            "invalid_recurrence",
            'recurrence must be an object like {"frequency": "weekly", "count": 6}',
        )
    frequency, count = recurrence.get("frequency", "weekly"), recurrence.get("count")
    if not isinstance(frequency, str):
        raise ApiError(400, "invalid_recurrence", "recurrence.frequency must be text")
    if not isinstance(count, int) or isinstance(count, bool):
        raise ApiError(400, "invalid_recurrence", "recurrence.count must be a whole number")
    return SeriesRequest(frequency, count, skip, _replacements(body.get("replacements")))


def _replacements(value: Any) -> tuple[Replacement, ...]:
    """``replacements: [{"replaces": START, "start": START}, ...]`` of a series request: the
    times to book instead of some occurrences."""
    if value is None:
        return ()
    shape = 'replacements must be a list like [{"replaces": START, "start": START}]'
    if not isinstance(value, list) or len(value) > 52:  # a series has at most 52 occurrences
        raise ApiError(400, "invalid_replacement", shape)
    found = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"replaces", "start"}:
            raise ApiError(400, "invalid_replacement", shape)
        replaces = _moment(item["replaces"], "replacements[].replaces")
        found.append(Replacement(replaces, _moment(item["start"], "replacements[].start")))
    return tuple(found)


def _consent_json(booking: Booking) -> dict[str, Any] | None:
    """The consent given on the booking (None without one): what, which version, when, whether
    it was withdrawn, and whether withdrawing it would cancel the booking."""
    consent = booking.consent
    if consent is None:
        return None
    zone = ZoneInfo(booking.timezone)
    return {
        "text": consent.text,
        "link": consent.link,
        "version": consent_version(booking),
        "text_sha256": consent.text_hash,
        "given_at": consent.given_at.astimezone(zone).isoformat(),
        "withdrawn_at": consent.withdrawn_at.astimezone(zone).isoformat()
        if consent.withdrawn_at is not None
        else None,
        "withdrawal_cancels": consent.withdrawn_at is None and withdrawal_cancels(booking, now()),
    }


def _on_behalf(calendar: str) -> TokenAccess | None:
    """With ``Authorization: Bearer``: the write token's access, the business booking for a
    client, as its staff does on the phone (the booking window does not apply, a staff member
    may be named); None without a token (a client booking)."""
    if "Authorization" not in request.headers:
        return None
    access, _calendar = calendar_for(calendar, write=True)
    return access


# --- personal API tokens (their routes: bookwise.api.staff) ---------------------------------------


def token_access() -> TokenAccess:
    """The access of the request's bearer token (401 without a valid one), read in the
    request's session; its last use is written in a short transaction of its own, at most once a
    minute."""
    found = getattr(g, "token_access", None)
    if isinstance(found, TokenAccess):
        return found
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "unauthorized", "send a personal API token: Authorization: Bearer ...")
    try:
        access = authenticate(db_session(), secret.strip())
    except NotFound:
        raise ApiError(401, "unauthorized", "this API token is unknown or revoked") from None
    if needs_touch(access, now()):
        # A write of its own, once a minute at most: reads must not take the writer's lock.
        db_session().close()
        with unit_of_work(instance().database.sessions, write=True) as session:
            touch(session, access.token_id, now())
    g.token_access = access
    return access


def calendar_for(slug: str | None, *, write: bool = False) -> tuple[TokenAccess, Calendar]:
    """The calendar ``slug`` names, when the token is for it (404 otherwise, as for one that
    does not exist); 403 for a write the token or its user may not make."""
    access = token_access()
    if not slug:
        raise ApiError(400, "invalid_request", "the parameter 'calendar' is required")
    calendar = db_session().get(Calendar, access.calendar_id)
    if calendar is None or calendar.slug != slug:
        raise NotFound("no such calendar")
    if write and not access.may_write:
        raise ApiError(403, "forbidden", "this token may only read")
    return access, calendar


def _check_sign_in(context: BookingContext) -> None:
    if context.calendar.sign_in_required and not current_user.is_authenticated:
        raise ApiError(
            401, "sign_in_required", "this calendar only takes bookings from signed-in users"
        )


# --- endpoints ----------------------------------------------------------------------------------


@blueprint.get("/calendars/<calendar>/services")
@operation(
    Operation(
        "List a calendar's services, with their fields",
        "services",
        responses={200: Reply("the calendar and its active services", ref("Services"))},
    )
)
def services(calendar: str) -> Response:
    session = db_session()
    locale = str(get_locale())
    from bookwise.calendars.services import get_calendar

    found = get_calendar(session, calendar)
    if not found.published:
        raise NotFound(f"no calendar {calendar!r}")
    contexts = [
        find_service(session, calendar, service.workflow.slug)
        for service in found.services
        if service.active
    ]
    return jsonify(
        calendar={"id": found.slug, "name": found.name, "timezone": found.timezone},
        services=[_service_json(c, locale) for c in contexts],
    )


@blueprint.get("/calendars/<calendar>/services/<service>/slots")
@operation(
    Operation(
        "List the free slots of a service between two days",
        "services",
        parameters=(
            query(
                "from", "the first day (in tz)", {"type": "string", "format": "date"}, required=True
            ),
            query(
                "to",
                "the last day, at most 93 days on",
                {"type": "string", "format": "date"},
                required=True,
            ),
            TZ_PARAMETER,
            query(
                "staff",
                "only the slots this member can take (when the client chooses)",
                {"type": "string"},
            ),
            ANSWERS_PARAMETER,
        ),
        responses={
            200: Reply(
                "the free slots",
                ref("Slots"),
                example={
                    "timezone": "Europe/Paris",
                    "routed": False,
                    "routing_fields": [],
                    "slots": [
                        {
                            "start": "2026-12-01T09:00:00+01:00",
                            "end": "2026-12-01T09:30:00+01:00",
                            "remaining": 1,
                        }
                    ],
                },
            ),
            400: error(
                "a bad parameter",
                "invalid_request",
                "invalid_date",
                "invalid_range",
                "range_too_long",
                "invalid_timezone",
            ),
            422: error("answers that route are missing or wrong", "invalid"),
        },
    )
)
def slots(calendar: str, service: str) -> Response:
    session = read_session()  # the replica's, when there is one
    context = find_service(session, calendar, service)
    first, last = _date_param("from"), _date_param("to")
    if first > last:
        raise ApiError(400, "invalid_range", "from must not be after to")
    if (last - first).days + 1 > MAX_DAYS:
        raise ApiError(400, "range_too_long", f"ask for at most {MAX_DAYS} days at a time")
    name, zone = _zone(request.args.get("tz"), context.calendar.timezone)
    # Filtering by one staff member is for services where the client chooses; elsewhere it would
    # only reveal one person's diary.
    staff_slug = request.args.get("staff") if context.workflow.staff.client_chooses else None
    window_start, window_end = local_day_bounds(first, last, zone)
    answers = _answer_params(context.workflow)
    search = SlotSearch(answers=answers, cache=slot_cache())
    found = service_availability(
        session,
        context.calendar,
        context.service,
        context.workflow,
        window_start,
        window_end,
        now(),
        search,
    )
    choose = context.workflow.staff.client_chooses
    routing_fields = [f.id for f in routing_questions(context.workflow)]
    # Routed: the slots are those of the staff the answers route to; without answers, of the
    # whole pool (a booking then goes only to a routed staff member, and may be refused).
    routed = bool(routing_fields) and answers is not None
    cache = search.cache
    if found.days and cache is not None and staff_slug is None and _compact_json():
        return _slots_from_days(cache, found, (name, zone), choose, routed, routing_fields)
    out = []
    for slot in found.slots:
        remaining = slot.remaining
        # The staff's names only where the client chooses (a pool's whole diary otherwise).
        members = [found.slug_of(s) for s in slot.staff] if choose else []
        if staff_slug is not None:
            if staff_slug not in members:
                continue
            remaining = slot.remaining_by_staff[slot.staff[members.index(staff_slug)]]
        out.append(_slot_json(slot, zone, remaining, members if choose else None))
    return jsonify(timezone=name, slots=out, routed=routed, routing_fields=routing_fields)


def _slot_json(
    slot: Slot, zone: ZoneInfo, remaining: int, staff: list[str] | None
) -> dict[str, Any]:
    """A slot as the API gives it: in the client's zone, with its staff where they choose."""
    item: dict[str, Any] = {
        "start": slot.start.astimezone(zone).isoformat(),
        "end": slot.end.astimezone(zone).isoformat(),
        "remaining": remaining,
    }
    if staff is not None:
        item["staff"] = staff
    return item


def _compact_json() -> bool:
    """Whether ``jsonify`` writes compact JSON (not indented: debug mode, JSON_COMPACT off)."""
    compact = getattr(current_app.json, "compact", None)
    return compact is True or (compact is None and not current_app.debug)


def _slots_from_days(
    cache: SlotCache,
    found: Availability,
    timezone: tuple[str, ZoneInfo],
    choose: bool,
    routed: bool,
    routing_fields: list[str],
) -> Response:
    """The slots reply of a search read through the slot cache, the same bytes as ``jsonify``
    gives: each day's slots are turned into JSON once per time zone (and staff, where clients
    choose) and kept beside the day, then cut at the booking window. A 31-day reply from the
    cache costs about a tenth of what turning each slot again did (docs/performance.md)."""

    def dumps(value: Any) -> str:
        return current_app.json.dumps(value, separators=(",", ":"))

    name, zone = timezone
    staff = tuple(m.slug for m in found.pool) if choose else None
    slugs = found.slug_of

    def render(day: Day) -> list[str]:
        return [
            dumps(
                _slot_json(
                    slot, zone, slot.remaining, [slugs(s) for s in slot.staff] if choose else None
                )
            )
            for slot in day.slots
        ]

    texts = [
        text
        for day, low, high in found.days
        for text in cache.rendered(day, (name, staff), render)[low:high]
    ]
    # The keys in jsonify's order (sorted).
    body = (
        f'{{"routed":{dumps(routed)},"routing_fields":{dumps(routing_fields)},'
        f'"slots":[{",".join(texts)}],"timezone":{dumps(name)}}}\n'
    )
    return current_app.response_class(body, mimetype="application/json")


@blueprint.get("/calendars/<calendar>/services/<service>/explain")
@operation(
    Operation(
        "Explain why a time is, or is not, offered",
        "services",
        parameters=(
            query("start", "the time asked about, with its offset", MOMENT, required=True),
            TZ_PARAMETER,
            ANSWERS_PARAMETER,
        ),
        responses={
            200: Reply(
                "the engine's reasons, for the service and each staff member", ref("Explanation")
            ),
            400: error("a bad parameter", "invalid_start", "invalid_timezone", "invalid_request"),
            401: error("the calendar requires sign-in", "sign_in_required"),
            422: error("answers that route are missing or wrong", "invalid"),
        },
    )
)
def explain(calendar: str, service: str) -> Response:
    """Why a time is or is not offered: the engine's reasons for the whole service (booking
    window, a full group) and for each staff member, in the request's language."""
    session = db_session()
    context = find_service(session, calendar, service)
    _check_sign_in(context)
    start = _moment(request.args.get("start"))
    name, _zone_info = _zone(request.args.get("tz"), context.calendar.timezone)
    found = explain_time(
        session,
        context.calendar,
        context.service,
        context.workflow,
        start,
        now(),
        SlotSearch(answers=_answer_params(context.workflow)),
    )
    told = found.explanation
    private = _sees_staff_details(context.calendar.id)
    locale = str(get_locale())

    def words(reasons: tuple[Reason, ...]) -> list[dict[str, str]]:
        return [
            {"code": r.code, "message": reason_message(r, name, locale, gettext, private)}
            for r in reasons
        ]

    return jsonify(
        start=start.isoformat(),
        timezone=name,
        offered=told.offered,
        remaining=told.remaining,
        reasons=words(told.reasons),
        staff=[
            {
                "id": found.member(verdict.staff_id).slug,
                "name": found.member(verdict.staff_id).name,
                "free": verdict.free,
                "reasons": words(verdict.reasons),
            }
            for verdict in told.staff
        ],
    )


def _sees_staff_details(calendar_id: int) -> bool:
    """Whether the caller may read why a staff member is away (a time off's reason, which of
    their calendars is busy, which booking): a superadmin, or an admin or viewer of the
    calendar. Clients, and staff about their colleagues, read only that they are unavailable."""
    if not current_user.is_authenticated:
        return False
    if current_user.is_superadmin:
        return True
    role = db_session().scalar(
        select(CalendarRole.role).where(
            CalendarRole.user_id == current_user.id, CalendarRole.calendar_id == calendar_id
        )
    )
    return role in ("admin", "viewer")


@dataclass(frozen=True)
class ClientBody:
    """What a booking's or a waitlist's body says of the client: the values the form would
    hold (contact details and answers), consent, language, time zone, text messages."""

    values: dict[str, Any]
    consent: bool | None
    locale: str | None
    timezone: str | None
    sms_opt_in: bool


def client_body(body: dict[str, Any]) -> ClientBody:
    """The client part of a POST body (``client``, ``answers``, ``consent``, ``sms_opt_in``),
    its types checked; :class:`ApiError` for a wrong one."""
    client = body.get("client", {})
    answers = body.get("answers", {})
    if not isinstance(client, dict):
        raise ApiError(400, "invalid_request", "client must be an object")
    if not isinstance(answers, dict):
        raise ApiError(400, "invalid_request", "answers must be an object")
    consent = body.get("consent")
    if consent is not None and not isinstance(consent, bool):
        raise ApiError(400, "invalid_request", "consent must be true or false")
    sms_opt_in = body.get("sms_opt_in", False)
    if not isinstance(sms_opt_in, bool):
        raise ApiError(400, "invalid_request", "sms_opt_in must be true or false")
    locale = _optional_text(client, "locale")
    settings = instance().settings
    if locale is not None and locale not in settings.locales:
        raise ApiError(
            400, "invalid_locale", f"locale must be one of {', '.join(settings.locales)}"
        )
    values = {k: v for k, v in client.items() if k in ("name", "email", "phone")}
    duplicated = set(values) & set(answers)
    if duplicated:
        raise ApiError(
            400,
            "invalid_request",
            f"give {', '.join(sorted(duplicated))} in client, not in answers",
        )
    values.update(answers)
    timezone = client.get("timezone")
    if timezone is not None:
        timezone, _ = _zone(timezone if isinstance(timezone, str) else "?", "UTC")
    return ClientBody(values, consent, locale, timezone, sms_opt_in)


@blueprint.post("/calendars/<calendar>/services/<service>/bookings")
@operation(
    Operation(
        "Book a time, or a series of times",
        "bookings",
        parameters=(IDEMPOTENCY_KEY,),
        description='201 with the booking (or {"series": ...} with recurrence); Location is '
        "its manage URL. Nothing is written when it fails. With a write API token "
        "(Authorization: Bearer), the business books for a client as its staff does: the "
        "booking window does not apply (403 with a read token, 404 for another calendar).",
        body=BOOKING_BODY,
        body_example={
            "start": "2026-12-01T09:00:00+01:00",
            "client": {"name": "Zoé Martin", "email": "zoe@example.org", "locale": "fr"},
            "answers": {"topic": "Taxes"},
            "consent": True,
        },
        body_codes={
            "start": "invalid_start",
            "recurrence": "invalid_recurrence",
            "replacements": "invalid_replacement",
        },
        responses={
            201: Reply(
                "booked",
                {"anyOf": [ref("Booking"), ref("SeriesAnswer")]},
                headers=("Location",),
                example=BOOKING_EXAMPLE,
            ),
            **BODY_ERRORS,
            400: error(
                "a malformed body",
                "malformed_json",
                "invalid_request",
                "invalid_start",
                "invalid_locale",
                "invalid_timezone",
                "invalid_recurrence",
                "invalid_replacement",
            ),
            401: error("the calendar requires sign-in", "sign_in_required", "unauthorized"),
            403: error("a token that may only read", "forbidden"),
            409: error("not free any more", "slot_taken", "series_conflict", "not_allowed"),
            422: error(
                "refused by the workflow",
                "invalid",
                "not_a_slot",
                "in_the_past",
                "too_soon",
                "too_far",
                "staff_not_choosable",
                "unknown_staff",
                "series_not_allowed",
                "invalid_frequency",
                "invalid_count",
                "invalid_replacement",
            ),
            503: Reply(
                "busy: send the same request again",
                ref("Error"),
                ("busy",),
                headers=("Retry-After",),
            ),
        },
    )
)
def book(calendar: str, service: str) -> tuple[Response, int, dict[str, str]]:
    try:
        business = _on_behalf(calendar)
        body = _json_body()
        person = client_body(body)
        start = _moment(body.get("start"))
        series = _series_request(body)
        staff = _optional_text(body, "staff")
        idempotent = idempotent_request(body, business.token_id if business is not None else None)
    except ApiError:
        # An unknown service is 404 before the token or the body is judged. Read only here: a
        # good request reads the service once, in its write transaction.
        find_service(db_session(), calendar, service)
        raise
    finally:
        # Give the request's connection back before the write transaction takes one: a request
        # must never hold two, or many concurrent bookings would wait on each other for them.
        db_session().close()
    database = instance().database
    asked = BookingRequest(
        start=start,
        values=person.values,
        consent=person.consent,
        staff=staff,
        locale=person.locale,
        timezone=person.timezone,
        source="api",
        actor=business.actor if business is not None else "client",
        sms_opt_in=person.sms_opt_in,
        by_staff=business is not None,
    )
    with unit_of_work(database.sessions, write=True) as session:
        # The key first, in the booking's own transaction (bookwise.bookings.idempotency).
        stored = claim(session, idempotent, now()) if idempotent is not None else None
        if stored is not None:
            return replayed(stored)
        # The service, read once in the write transaction (what a page read before may have
        # changed); a client of a calendar that needs signing in must be signed in.
        context = find_service(session, calendar, service)
        if business is None:
            _check_sign_in(context)
        if series is not None:
            booked = book_series_from_answers(
                session, calendar, service, asked, series, now(), plugins=plugin_host()
            )
            made = {"series": _series_json(booked)}
            count = len(booked.occurrences)
            if business is None:
                answer = created(session, idempotent, made, made["series"]["manage_url"])
            else:
                first = next(o["booking"] for o in made["series"]["occurrences"] if "booking" in o)
                location = url_for("api.get_booking", uid=first)
                answer = created(session, idempotent, without_client_links(made), location)
        else:
            booking = create_booking(session, context, asked, now(), plugins=plugin_host())
            payload = _booking_json(booking)
            count = 1
            if business is not None:
                location = url_for("api.get_booking", uid=booking.uid)
                answer = created(session, idempotent, without_client_links(payload), location)
            else:
                location = url_for("api.manage", token=payload["manage_token"])
                answer = created(session, idempotent, payload, location)
    booking_made("api", count)  # committed
    return answer


@blueprint.get("/manage/<token>")
@operation(
    Operation(
        "Read a booking, a series or a waitlist entry by its manage token",
        "manage",
        responses={
            200: Reply(
                "the booking, the series or the waitlist entry",
                {"anyOf": [ref("Booking"), ref("SeriesAnswer"), ref("WaitlistEntry")]},
            )
        },
    )
)
def manage(token: str) -> Response:
    try:
        return jsonify(_booking_json(find_by_manage_token(db_session(), token)))
    except NotFound:
        return jsonify(series=_series_json(find_series_by_manage_token(db_session(), token)))


@blueprint.post("/manage/<token>/reschedule")
@operation(
    Operation(
        "Move a booking to another time",
        "manage",
        body={
            "type": "object",
            "required": ["start"],
            "properties": {"start": {**MOMENT, "type": "string"}},
        },
        body_example={"start": "2026-12-02T10:00:00+01:00"},
        body_codes={"start": "invalid_start"},
        responses={
            200: Reply("the booking moved", ref("Booking")),
            **BODY_ERRORS,
            400: error("a malformed body", "malformed_json", "invalid_request", "invalid_start"),
            409: error("refused", "slot_taken", "too_late", "invalid_state", "not_allowed"),
            422: error(
                "not a time the service offers", "not_a_slot", "in_the_past", "too_soon", "too_far"
            ),
            503: Reply(
                "busy: send the same request again",
                ref("Error"),
                ("busy",),
                headers=("Retry-After",),
            ),
        },
    )
)
def reschedule(token: str) -> Response:
    body = _json_body()
    start = _moment(body.get("start"))
    database = instance().database
    with unit_of_work(database.sessions, write=True) as session:
        booking = find_by_manage_token(session, token)
        reschedule_booking(session, booking, start, now(), plugins=plugin_host())
        payload = _booking_json(booking)
    return jsonify(payload)


@blueprint.post("/manage/<token>/cancel")
@operation(
    Operation(
        "Cancel a booking, occurrences of a series, or leave a waitlist",
        "manage",
        description="No body, or a JSON object. A series' token takes one of "
        '{"occurrence": START}, {"rest": true} or {"from": START}.',
        body=CANCEL_BODY,
        body_required=False,
        body_example={"reason": "I am ill"},
        body_codes={"occurrence": "invalid_start", "from": "invalid_start"},
        responses={
            200: Reply(
                "cancelled (or left the list)",
                {"anyOf": [ref("Booking"), ref("SeriesAnswer"), ref("WaitlistEntry")]},
            ),
            **BODY_ERRORS,
            400: error("a malformed body", "malformed_json", "invalid_request", "invalid_start"),
            409: error("refused", "too_late", "invalid_state", "nothing_to_cancel", "not_allowed"),
            503: Reply(
                "busy: send the same request again",
                ref("Error"),
                ("busy",),
                headers=("Retry-After",),
            ),
        },
    )
)
def cancel(token: str) -> Response:
    body = _optional_json_body()
    reason = _optional_text(body, "reason")
    if reason is not None and len(reason) > 500:
        raise ApiError(400, "invalid_request", "reason must be at most 500 characters")
    database = instance().database
    with unit_of_work(database.sessions, write=True) as session:
        try:
            booking = find_by_manage_token(session, token)
        except NotFound:
            series = find_series_by_manage_token(session, token)
            occurrence, rest_from = _occurrences_to_cancel(body)
            cancel_occurrences(
                session,
                series,
                now(),
                occurrence=occurrence,
                rest_from=rest_from,
                reason=reason,
                plugins=plugin_host(),
            )
            return jsonify(series=_series_json(series))
        cancel_booking(session, booking, now(), reason=reason, plugins=plugin_host())
        payload = _booking_json(booking)
    return jsonify(payload)


def _occurrences_to_cancel(body: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """A series' cancel request: ``{"occurrence": START}`` (one), ``{"rest": true}`` (every
    occurrence still to come) or ``{"from": START}`` (the rest from that one on)."""
    rest = body.get("rest", False)
    if not isinstance(rest, bool):
        raise ApiError(400, "invalid_request", "rest must be true or false")
    given = [key for key in ("occurrence", "from") if body.get(key) is not None] + (
        ["rest"] if rest else []
    )
    if len(given) != 1:
        raise ApiError(
            400,
            "invalid_request",
            'give one of {"occurrence": START}, {"rest": true} or {"from": START}',
        )
    if given[0] == "occurrence":
        return _moment(body["occurrence"], "occurrence"), None
    if given[0] == "from":
        return None, _moment(body["from"], "from")
    return None, now()


# --- the client's own data (docs/privacy.md, "A client's rights") --------------------------------


def _may_erase_now(booking: Booking) -> None:
    """A booking still to come that the client may no longer cancel online is not erased by its
    link (that would cancel it behind the deadline): :class:`TooLate`, ask the calendar."""
    if booking.holds_slot and booking.start_at > now():
        client_may_change(context_of(booking).workflow, booking, now(), raise_if_not=True)


@blueprint.get("/manage/<token>/data")
@operation(
    Operation(
        "Export everything held about this booking's client",
        "privacy",
        responses={200: Reply("the export (bookwise.client-data, version 1)", CLIENT_DATA)},
    )
)
def client_data(token: str) -> Response:
    """Everything held about the client of this booking, as JSON (audited)."""
    database = instance().database
    with unit_of_work(database.sessions, write=True) as session:
        booking = find_by_manage_token(session, token)
        data = export_booking_client(session, booking, now())
        record_export(session, data, "client")
    response = jsonify(data)
    response.headers["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@blueprint.post("/manage/<token>/erase")
@operation(
    Operation(
        "Erase this booking's client",
        "privacy",
        body={
            "type": "object",
            "required": ["confirm"],
            "properties": {"confirm": {"const": True}},
        },
        body_example={"confirm": True},
        body_codes={"confirm": "confirm_required"},
        responses={
            200: Reply("what was erased", ERASED),
            **BODY_ERRORS,
            400: error(
                "a malformed body or no confirmation",
                "malformed_json",
                "invalid_request",
                "confirm_required",
            ),
            409: error("inside the cancellation notice: ask the calendar", "too_late"),
            503: Reply(
                "busy: send the same request again",
                ref("Error"),
                ("busy",),
                headers=("Retry-After",),
            ),
        },
    )
)
def erase(token: str) -> Response:
    """Erase the client of this booking: ``{"confirm": true}`` is required. The link stops
    working: a second call is 404."""
    body = _json_body()
    if body.get("confirm") is not True:
        raise ApiError(
            400, "confirm_required", 'send {"confirm": true} to erase your data for good'
        )
    database = instance().database
    with unit_of_work(database.sessions, write=True) as session:
        booking = find_by_manage_token(session, token)
        _may_erase_now(booking)
        report = erase_booking_client(
            session,
            booking,
            "client",
            now(),
            secret=secret_key_of(instance().settings),
            plugins=plugin_host(),
        )
    return jsonify(erased=report.as_dict())


@blueprint.post("/manage/<token>/consent/withdraw")
@operation(
    Operation(
        "Withdraw the consent given when booking",
        "privacy",
        body=EMPTY_BODY,
        body_required=False,
        responses={
            200: Reply(
                "the booking, and whether it was cancelled",
                {
                    "allOf": [ref("Booking")],
                    "required": ["cancelled"],
                    "properties": {"cancelled": {"type": "boolean"}},
                },
            ),
            **BODY_ERRORS,
            409: error(
                "refused", "consent_withdrawn", "no_consent", "invalid_state", "not_allowed"
            ),
            503: Reply(
                "busy: send the same request again",
                ref("Error"),
                ("busy",),
                headers=("Retry-After",),
            ),
        },
    )
)
def withdraw_consent(token: str) -> Response | tuple[Response, int]:
    """The client withdraws the consent given on the booking (docs/api.md); when the workflow
    requires it, a booking still to come is cancelled."""
    _optional_json_body()
    database = instance().database
    try:
        with unit_of_work(database.sessions, write=True) as session:
            booking = find_by_manage_token(session, token)
            result = withdraw(session, booking, now(), plugins=plugin_host())
            payload = _booking_json(booking) | {"cancelled": result.cancelled}
    except NotAllowed as refused:
        if refused.code not in CONSENT_REFUSALS:
            raise
        return error_response(409, refused.code, gettext(CONSENT_REFUSALS[refused.code]))
    return jsonify(payload)
