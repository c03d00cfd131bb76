"""The waitlist in the JSON API (docs/api.md, "Waitlist"): joining a full time or day, and an
entry's manage link (its state, place in line and offer; accept; leave).

The routes live on the API's blueprint (:mod:`bookwise.api.views`), with its error handlers:
every refusal is ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, jsonify, request, url_for

from bookwise.api.spec import (
    CLIENT_BODY,
    IDEMPOTENCY_KEY,
    MOMENT,
    Operation,
    Reply,
    error,
    operation,
    ref,
)
from bookwise.api.views import (
    BODY_ERRORS,
    EMPTY_BODY,
    ApiError,
    _booking_json,
    _json_body,
    _moment,
    _optional_json_body,
    blueprint,
    client_body,
    created,
    idempotent_request,
    replayed,
)
from bookwise.bookings.idempotency import claim
from bookwise.bookings.models import WaitlistEntry
from bookwise.bookings.services import find_by_manage_token, find_service
from bookwise.bookings.waitlist import (
    NoOffer,
    WaitlistRequest,
    accept_offer,
    find_entry_by_token,
    is_waitlist_token,
    join_waitlist,
    leave_waitlist,
    position_in_line,
)
from bookwise.db import unit_of_work
from bookwise.errors import NotFound
from bookwise.metrics import booking_made
from bookwise.notifications.context import waitlist_url
from bookwise.timezones import FIRST_YEAR, LAST_YEAR
from bookwise.web import db_session, instance, now, plugin_host


def entry_json(entry: WaitlistEntry, position: int | None) -> dict[str, Any]:
    """An entry as its manage link shows it (contact details as given, never other clients')."""
    zone = ZoneInfo(entry.timezone)
    is_day = entry.wanted_from != entry.wanted_until
    wanted: dict[str, Any] = (
        {"day": entry.wanted_from.astimezone(ZoneInfo(entry.calendar.timezone)).date().isoformat()}
        if is_day
        else {"start": entry.wanted_from.astimezone(zone).isoformat()}
    )
    offer = None
    if entry.state in ("offered", "expired", "booked") and entry.offered_start is not None:
        assert entry.offer_expires_at is not None
        offer = {
            "start": entry.offered_start.astimezone(zone).isoformat(),
            "expires_at": entry.offer_expires_at.astimezone(zone).isoformat(),
        }
    return {
        "state": entry.state,
        "calendar": entry.calendar.slug,
        "service": entry.service.workflow.slug,
        **wanted,
        "timezone": entry.timezone,
        "position": position,
        "offer": offer,
        "client": {"name": entry.client.name, "email": entry.client.email},
        "manage_token": entry.manage_token,
        "manage_url": waitlist_url(instance().settings, entry.manage_token),
    }


def _day(value: Any) -> date:
    if not isinstance(value, str):
        raise ApiError(400, "invalid_date", "day must be a date, like 2027-03-29")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "invalid_date", f"day {value!r} is not a date (YYYY-MM-DD)") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ApiError(400, "invalid_date", f"day {value!r} is out of range")
    return day


@blueprint.post("/calendars/<calendar>/services/<service>/waitlist")
@operation(
    Operation(
        "Join the waitlist of a full time, or of a day without a free time",
        "waitlist",
        parameters=(IDEMPOTENCY_KEY,),
        description="Give either start (a time) or day (a local date of the calendar).",
        body={
            "type": "object",
            "properties": {
                "start": {**MOMENT, "type": "string"},
                "day": {"type": "string", "format": "date"},
                **CLIENT_BODY,
            },
        },
        body_example={
            "start": "2027-03-29T17:00:00+02:00",
            "client": {"name": "Zoé Martin", "email": "zoe@example.org", "locale": "fr"},
            "consent": True,
        },
        body_codes={"start": "invalid_start", "day": "invalid_date"},
        responses={
            201: Reply("on the list", ref("WaitlistEntry"), headers=("Location",)),
            **BODY_ERRORS,
            400: error(
                "a malformed body",
                "malformed_json",
                "invalid_request",
                "invalid_start",
                "invalid_date",
                "invalid_locale",
                "invalid_timezone",
            ),
            409: error("a place is free, or already waiting", "slot_free", "already_waiting"),
            422: error("refused", "invalid", "not_a_slot", "waitlist_closed"),
            503: Reply("busy", ref("Error"), ("busy",), headers=("Retry-After",)),
        },
    )
)
def join(calendar: str, service: str) -> tuple[Response, int, dict[str, str]]:
    """Join the waitlist of a full ``start`` (or of a ``day`` without a free time)."""
    find_service(db_session(), calendar, service)  # 404 first
    db_session().close()
    body = _json_body()
    person = client_body(body)
    if ("start" in body) == ("day" in body):
        raise ApiError(400, "invalid_request", "give either start (a time) or day (a date)")
    start = _moment(body["start"]) if "start" in body else None
    day = _day(body["day"]) if "day" in body else None
    idempotent = idempotent_request(body)
    with unit_of_work(instance().database.sessions, write=True) as session:
        # The key first, in the entry's own transaction (bookwise.bookings.idempotency).
        stored = claim(session, idempotent, now()) if idempotent is not None else None
        if stored is not None:
            return replayed(stored)
        context = find_service(session, calendar, service)
        entry = join_waitlist(
            session,
            context,
            WaitlistRequest(
                values=person.values,
                start=start,
                day=day,
                consent=person.consent,
                locale=person.locale,
                timezone=person.timezone,
                sms_opt_in=person.sms_opt_in,
            ),
            now(),
            plugins=plugin_host(),
        )
        payload = entry_json(entry, position_in_line(session, entry))
        location = url_for("api.manage", token=payload["manage_token"])
        return created(session, idempotent, payload, location)


@blueprint.before_request
def _entry_links() -> Response | None:
    """A waitlist entry's token on the manage link's routes: ``GET /manage/{token}`` shows the
    entry, ``POST /manage/{token}/cancel`` leaves the list; other routes of the manage link do
    not know entries (404). A booking's token goes on to the booking's views."""
    token = (request.view_args or {}).get("token")
    if not isinstance(token, str) or not is_waitlist_token(token):
        return None
    if request.endpoint == "api.manage":
        session = db_session()
        entry = find_entry_by_token(session, token)
        return jsonify(entry_json(entry, position_in_line(session, entry)))
    if request.endpoint == "api.cancel":
        _optional_json_body()
        with unit_of_work(instance().database.sessions, write=True) as session:
            entry = find_entry_by_token(session, token)
            leave_waitlist(session, entry, now())
            payload = entry_json(entry, None)
        return jsonify(payload)
    if request.endpoint == "api.accept":
        return None
    raise NotFound("no such booking")  # a booking's other links do not know entries


@blueprint.post("/manage/<token>/accept")
@operation(
    Operation(
        "Take the place a waitlist entry is offered",
        "waitlist",
        body=EMPTY_BODY,
        body_required=False,
        responses={
            200: Reply(
                "booked: the entry, and the booking in booking",
                {"allOf": [ref("WaitlistEntry")], "required": ["booking"]},
            ),
            **BODY_ERRORS,
            409: error("nothing to take", "offer_expired", "offer_taken", "no_offer"),
            503: Reply("busy", ref("Error"), ("busy",), headers=("Retry-After",)),
        },
    )
)
def accept(token: str) -> Response:
    """Take the place on offer: books it; the entry is ``booked`` and names the booking."""
    _optional_json_body()
    if not is_waitlist_token(token):
        # A booking's link: nothing is on offer to it (a wrong token is 404 as everywhere).
        find_by_manage_token(db_session(), token)
        raise NoOffer("there is no place on offer for this link")
    with unit_of_work(instance().database.sessions, write=True) as session:
        entry = find_entry_by_token(session, token)
        booking = accept_offer(session, entry, now(), plugins=plugin_host())
        payload = entry_json(entry, None) | {"booking": _booking_json(booking)}
    booking_made("waitlist")
    return jsonify(payload)
