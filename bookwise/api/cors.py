"""Cross-origin requests to the public API (CORS), per calendar.

A business's own website may call the public API from the visitor's browser (list the free
times, book, let a client cancel) when its origin is one of the calendar's
``booking_page.embed_origins``: the sites the business lets show its booking page, and call its
API. The answer then carries ``Access-Control-Allow-Origin`` with that origin (never ``*``: a
calendar's bookings are not for every site), ``Vary: Origin``, and the headers a script may
read (``Location``, ``Retry-After``, ``Idempotent-Replayed``). A preflight (``OPTIONS``) gets the
methods and request headers the API takes. An origin not listed gets no CORS header at all:
the browser then keeps the answer from the script, as it does for any other site.

The calendar is the one the URL names (``/calendars/<calendar>/...``), or, on a client's manage
link (``/manage/<token>``), the one of the booking, series or waitlist entry the token opens.
No credentials are allowed: the public API uses no cookies.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from sqlalchemy import select

from bookwise.bookings.series import find_series_by_manage_token
from bookwise.bookings.services import find_by_manage_token
from bookwise.bookings.waitlist import find_entry_by_token, is_waitlist_token
from bookwise.calendars.models import Calendar
from bookwise.errors import NotFound
from bookwise.web import db_session

METHODS = "GET, POST, OPTIONS"
REQUEST_HEADERS = "Content-Type, Idempotency-Key, Accept-Language"
EXPOSED = "Location, Retry-After, Idempotent-Replayed"
MAX_AGE = "600"  # seconds a browser may keep a preflight's answer


def calendar_origins() -> tuple[str, ...]:
    """The origins the calendar of this request allows (none when the URL names no calendar
    that exists, or a token that opens nothing)."""
    args = request.view_args or {}
    session = db_session()
    if isinstance(args.get("calendar"), str):
        calendar = session.scalar(select(Calendar).where(Calendar.slug == args["calendar"]))
        return tuple(calendar.embed_origins or ()) if calendar is not None else ()
    token = args.get("token")
    if not isinstance(token, str):
        return ()
    try:
        if is_waitlist_token(token):
            owner = find_entry_by_token(session, token).calendar
        else:
            try:
                owner = find_by_manage_token(session, token).calendar
            except NotFound:
                owner = find_series_by_manage_token(session, token).calendar
    except NotFound:
        return ()
    return tuple(owner.embed_origins or ())


def add_cors_headers(response: Response) -> Response:
    """The CORS headers of an answer to an allowed origin (see the module)."""
    origin = request.headers.get("Origin")
    response.vary.add("Origin")
    if not origin or origin.rstrip("/").lower() not in calendar_origins():
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = METHODS
        response.headers["Access-Control-Allow-Headers"] = REQUEST_HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE
    return response


def init_cors(blueprint: Blueprint) -> None:
    """Answer cross-origin requests to ``blueprint``'s routes as the module says."""
    blueprint.after_request(add_cors_headers)
