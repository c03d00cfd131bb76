"""A calendar's settings, services and staff, for a business's own systems (issue 19): the back
office's own functions (:mod:`bookwise.calendars.editing`) behind personal API tokens, checked
and audited the same way.

Reading needs a token of the calendar's admin or viewer (a staff member reads their own record);
changing needs a write token of its admin. A token is for one calendar: creating or deleting
calendars stays in the back office.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Response, jsonify, request

from bookwise.accounts.tokens import TokenAccess
from bookwise.api.spec import Operation, Reply, error, operation, query
from bookwise.api.staff import (
    BOOKABLE,
    INVITATION,
    TAKES_BOOKINGS,
    _actor,
    _member,
    takes_bookings,
    writing,
)
from bookwise.api.views import ApiError, _json_body, blueprint, calendar_for, refuse_unstorable
from bookwise.calendars.editing import (
    REMOVAL_MODES,
    CalendarSettings,
    CannotReassign,
    StaffValues,
    add_staff,
    plugins_needed,
    quiet_hours_values,
    remove_staff,
    settings_of,
    update_calendar,
    update_service,
    update_staff,
)
from bookwise.calendars.models import Calendar, Service, StaffMember
from bookwise.config import secret_key_of
from bookwise.errors import NotFound
from bookwise.i18n import gettext
from bookwise.web import db_session, instance, now, plugin_host
from bookwise.workflows.scenario_tests import run_cases
from bookwise.workflows.services import current_version, workflow_of

# --- the OpenAPI descriptions -------------------------------------------------------------------

TEXT = {"type": "string"}
FLAG = {"type": "boolean"}
CLOCK = {
    "type": "string",
    "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
    "description": "a time of day like 21:00 (24-hour clock, two digits each)",
    "examples": ["21:00"],
}
QUIET_HOURS = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["from", "to"],
    "properties": {
        "from": CLOCK,
        "to": CLOCK,
        "email": {**FLAG, "description": "e-mail waits too (otherwise only SMS and chat)"},
    },
    "description": "no message to a client between these local times (null: none)",
}
SETTINGS_FIELDS: dict[str, Any] = {
    "id": {
        "type": "string",
        "maxLength": 64,
        "description": "the booking page's address; changing it breaks links already shared",
    },
    "name": {"type": "string", "maxLength": 200},
    "timezone": {**TEXT, "examples": ["Europe/Paris"]},
    "default_locale": {**TEXT, "examples": ["en"]},
    "description": {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": 2000},
        "description": "per language; an empty text removes that language's",
    },
    "address": {"type": "string", "maxLength": 500},
    "phone": {"type": "string", "maxLength": 40},
    "reply_to": {"type": "string", "maxLength": 320},
    "published": FLAG,
    "search_indexing": FLAG,
    "sign_in_required": FLAG,
    "show_business_timezone": FLAG,
    "feed_client_names": FLAG,
    "embed_origins": {"type": "array", "maxItems": 20, "items": {"type": "string"}},
    "plugins": {
        "type": ["array", "null"],
        "items": TEXT,
        "description": "the optional plugins the calendar uses (null: every one enabled)",
    },
    "quiet_hours": QUIET_HOURS,
}
SERVICE_SUMMARY = {
    "type": "object",
    "required": ["id", "name", "active"],
    "properties": {"id": TEXT, "name": TEXT, "active": FLAG},
}
SETTINGS = {
    "type": "object",
    "required": [*SETTINGS_FIELDS, "services", "locales"],
    "properties": {
        **SETTINGS_FIELDS,
        "address": {"type": ["string", "null"]},
        "phone": {"type": ["string", "null"]},
        "reply_to": {"type": ["string", "null"]},
        "services": {"type": "array", "items": SERVICE_SUMMARY},
        "locales": {
            "type": "array",
            "items": TEXT,
            "description": "the instance's languages (read only): those description may have",
        },
        "changed": {"type": "array", "items": TEXT},
    },
}
SETTINGS_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": SETTINGS_FIELDS,
}
REFUSED = error("refused (fields: each field and its problem)", "invalid")
MALFORMED = error("a malformed body", "malformed_json", "invalid_request", "unsupported_media_type")

SERVICE = {
    "type": "object",
    "required": ["id", "name", "active", "pool_by_tags", "staff", "version"],
    "properties": {
        "id": TEXT,
        "name": TEXT,
        "active": {**FLAG, "description": "clients can book it"},
        "pool_by_tags": {
            **FLAG,
            "description": "the pool is every member with the workflow's staff tags",
        },
        "tags": {"type": "array", "items": TEXT},
        "staff": {
            "type": "array",
            "items": TEXT,
            "description": "the pool, in the order of priority when it is listed",
        },
        "version": {"type": "integer"},
    },
}
SERVICE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "active": {**FLAG, "description": "publish (true) or withdraw (false)"},
        "pool_by_tags": FLAG,
        "staff": {
            "type": "array",
            "maxItems": 500,
            "items": {"type": "string", "maxLength": 64},
            "description": "the pool, in order (sets pool_by_tags to false unless it is given)",
        },
    },
}

MEMBER = {
    "type": "object",
    "required": ["id", "name", "tags", "bookable", "invitation", "takes_bookings", "own_hours"],
    "properties": {
        "id": TEXT,
        "name": TEXT,
        "email": {
            "type": ["string", "null"],
            "description": "for the calendar's admins and viewers, and the member",
        },
        "phone": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": TEXT},
        "bookable": BOOKABLE,
        "invitation": INVITATION,
        "takes_bookings": TAKES_BOOKINGS,
        "own_hours": FLAG,
        "changed": {"type": "array", "items": TEXT},
    },
}
MEMBER_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "maxLength": 200},
    "email": {"type": "string", "maxLength": 320},
    "phone": {"type": ["string", "null"], "maxLength": 40, "description": "null: none"},
    "tags": {"type": "array", "maxItems": 50, "items": {"type": "string", "maxLength": 40}},
    "bookable": FLAG,
}
NEW_MEMBER_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "email"],
    "properties": MEMBER_FIELDS,
}
MEMBER_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": MEMBER_FIELDS,
}
REMOVAL = {
    "type": "object",
    "required": ["reassigned", "cancelled"],
    "properties": {
        "reassigned": {"type": "array", "items": TEXT},
        "cancelled": {"type": "array", "items": TEXT},
    },
}


# --- shared -------------------------------------------------------------------------------------


def _reader(access: TokenAccess) -> None:
    if access.role not in ("admin", "viewer"):
        raise ApiError(403, "forbidden", "a staff member's token does not read these settings")


def _admin(slug: str) -> tuple[TokenAccess, Calendar]:
    """The calendar, for a write token of its admin (403 otherwise)."""
    access, calendar = calendar_for(slug, write=True)
    if access.role != "admin":
        raise ApiError(403, "forbidden", "only the calendar's admins change it")
    return access, calendar


def _body() -> dict[str, Any]:
    """The request's JSON body, checked against the operation's schema, with no text that
    cannot be stored."""
    body = _json_body()
    refuse_unstorable(body)
    return body


# --- calendar settings --------------------------------------------------------------------------


def _settings_json(session: Any, calendar: Calendar) -> dict[str, Any]:
    quiet = quiet_hours_values(calendar)
    services = []
    for service in sorted(calendar.services, key=lambda s: s.workflow.slug):
        workflow = workflow_of(current_version(session, service.workflow.slug))
        services.append(
            {
                "id": service.workflow.slug,
                "name": workflow.name.get(calendar.default_locale),
                "active": service.active,
            }
        )
    return {
        "id": calendar.slug,
        "name": calendar.name,
        "timezone": calendar.timezone,
        "default_locale": calendar.default_locale,
        "description": dict(calendar.description or {}),
        "address": calendar.address,
        "phone": calendar.phone,
        "reply_to": calendar.reply_to,
        "published": calendar.published,
        "search_indexing": calendar.search_indexing,
        "sign_in_required": calendar.sign_in_required,
        "show_business_timezone": calendar.show_business_timezone,
        "feed_client_names": calendar.feed_client_names,
        "embed_origins": list(calendar.embed_origins or []),
        "plugins": None if calendar.plugins is None else list(calendar.plugins),
        "quiet_hours": (
            {"from": quiet["quiet_from"], "to": quiet["quiet_to"], "email": quiet["quiet_email"]}
            if quiet["quiet_from"]
            else None
        ),
        "services": services,
        "locales": list(instance().settings.locales),
    }


def _settings_from(
    current: CalendarSettings, body: dict[str, Any], locales: tuple[str, ...]
) -> CalendarSettings:
    """The settings a PATCH body asks for: the current ones with the keys it names changed."""
    changes = {key: value for key, value in body.items() if key not in ("id", "quiet_hours")}
    if "id" in body:
        changes["slug"] = body["id"].strip().lower()
    for key in ("address", "phone", "reply_to", "name"):
        if key in changes:
            changes[key] = changes[key].strip()
    if "embed_origins" in body:
        changes["embed_origins"] = tuple(o.strip().rstrip("/") for o in body["embed_origins"])
    if "plugins" in body and body["plugins"] is not None:
        changes["plugins"] = tuple(dict.fromkeys(body["plugins"]))
    if "description" in body:
        unknown = [code for code in body["description"] if code not in locales]
        if unknown:
            message = gettext(
                "Choose one of the languages of this instance: %(locales)s.",
                locales=", ".join(locales),
            )
            raise ApiError(
                422,
                "invalid",
                gettext("Some answers are missing or wrong."),
                fields={"description": message},
            )
        merged = {**current.description, **body["description"]}
        changes["description"] = {code: text for code, text in merged.items() if text.strip()}
    if "quiet_hours" in body:
        quiet = body["quiet_hours"] or {}
        changes["quiet_from"] = quiet.get("from", "")
        changes["quiet_to"] = quiet.get("to", "")
        changes["quiet_email"] = bool(quiet.get("email", False))
    return dataclasses.replace(current, **changes)


@blueprint.get("/calendars/<calendar>")
@operation(
    Operation(
        "The calendar's settings and its services",
        "calendars (token)",
        bearer=True,
        responses={200: Reply("the settings", SETTINGS)},
    )
)
def calendar_settings(calendar: str) -> Response:
    """The calendar's settings, as its settings page in the back office shows them, and the
    services it offers (published or not)."""
    access, found = calendar_for(calendar)
    _reader(access)
    return jsonify(_settings_json(db_session(), found))


@blueprint.patch("/calendars/<calendar>")
@operation(
    Operation(
        "Change the calendar's settings (the keys sent; the others stay)",
        "calendars (token)",
        body=SETTINGS_BODY,
        body_example={"name": "Acme Clinic", "quiet_hours": {"from": "21:00", "to": "08:00"}},
        bearer=True,
        responses={
            200: Reply("the settings; changed: the keys that changed", SETTINGS),
            400: MALFORMED,
            415: MALFORMED,
            422: REFUSED,
        },
    )
)
def change_calendar(calendar: str) -> Response:
    """Change some settings, checked as the back office's settings form checks them; nothing is
    saved when one is refused (422 naming each)."""
    access, found = _admin(calendar)
    body = _body()
    locales = tuple(instance().settings.locales)
    wanted = _settings_from(settings_of(found), body, locales)
    calendar_id = found.id
    host = plugin_host()
    rename = {"slug": "id", "quiet_from": "quiet_hours", "quiet_to": "quiet_hours"}
    rename.update({f"description_{code}": "description" for code in locales})
    with writing(lambda key: rename.get(key, key)) as session:
        saved = session.get(Calendar, calendar_id)
        assert saved is not None
        changes = update_calendar(
            session,
            saved,
            wanted,
            locales,
            _actor(access).name,
            request.remote_addr,
            offered_plugins=[info.name for info in host.optional()],
            needed_plugins=plugins_needed(session, saved, host.optional_meeting_owner),
        )
        payload = _settings_json(session, saved)
    payload["changed"] = sorted("id" if key == "slug" else key for key in changes)
    return jsonify(payload)


# --- services -----------------------------------------------------------------------------------


def _service(calendar: Calendar, slug: str) -> Service:
    found = next((s for s in calendar.services if s.workflow.slug == slug[:64]), None)
    if found is None:
        raise NotFound("no such service")
    return found


def _pool(calendar: Calendar, service: Service, tags: list[str]) -> list[StaffMember]:
    """The members who may take the service's bookings: listed in order, or chosen by tags."""
    if not service.pool_by_tags:
        return [link.staff_member for link in service.staff_links]
    members = [m for m in calendar.staff if m.removed_at is None and set(tags) <= set(m.tags)]
    return sorted(members, key=lambda m: (m.name.casefold(), m.id))


def _service_json(session: Any, calendar: Calendar, service: Service) -> dict[str, Any]:
    version = current_version(session, service.workflow.slug)
    workflow = workflow_of(version)
    tags = list(workflow.staff.tags)
    return {
        "id": service.workflow.slug,
        "name": workflow.name.get(calendar.default_locale),
        "active": service.active,
        "pool_by_tags": service.pool_by_tags,
        "tags": tags,
        "staff": [m.slug for m in _pool(calendar, service, tags)],
        "version": version.number,
    }


def _failing_checks(session: Any, service: Service) -> list[str]:
    """What the workflow's checks before publishing (``tests``) say fails (publishing waits)."""
    version = current_version(session, service.workflow.slug)
    results = run_cases(workflow_of(version), version.definition.get("tests") or [])
    return [message for result in results for message in result.messages()]


@blueprint.get("/calendars/<calendar>/services/<service>/settings")
@operation(
    Operation(
        "A service's settings: published or not, its staff pool",
        "calendars (token)",
        bearer=True,
        responses={200: Reply("the service", SERVICE)},
    )
)
def service_settings(calendar: str, service: str) -> Response:
    """A service of the calendar, published or not (the public list shows the published)."""
    access, found = calendar_for(calendar)
    _reader(access)
    return jsonify(_service_json(db_session(), found, _service(found, service)))


@blueprint.patch("/calendars/<calendar>/services/<service>/settings")
@operation(
    Operation(
        "Publish or withdraw a service, or set its staff pool",
        "calendars (token)",
        description=(
            "Withdrawing stops new bookings; those made stay. Publishing runs the workflow's "
            "checks before publishing (its tests) first: 422 checks_failed when one fails."
        ),
        body=SERVICE_BODY,
        body_example={"active": True, "staff": ["ana", "bob"]},
        bearer=True,
        responses={
            200: Reply("the service as it is now", SERVICE),
            400: MALFORMED,
            415: MALFORMED,
            422: error("refused", "invalid", "checks_failed"),
        },
    )
)
def change_service(calendar: str, service: str) -> Response:
    """Change what the body names: ``active``, ``pool_by_tags``, ``staff`` (member ids in order
    of priority); the rest stays."""
    access, found = _admin(calendar)
    offered = _service(found, service)
    body = _body()
    members = {m.slug: m.id for m in found.staff if m.removed_at is None}
    staff = body.get("staff")
    unknown = [slug for slug in staff or [] if slug not in members]
    if unknown:
        raise ApiError(
            422,
            "invalid",
            gettext("Some answers are missing or wrong."),
            fields={"staff": f"no staff member {unknown[0]!r} in this calendar"},
        )
    active = body.get("active", offered.active)
    pool_by_tags = body.get("pool_by_tags", offered.pool_by_tags if staff is None else False)
    if staff is None:
        staff_ids = [link.staff_id for link in offered.staff_links]
    else:
        staff_ids = [members[slug] for slug in staff]
    if active and not offered.active:
        failures = _failing_checks(db_session(), offered)
        if failures:
            message = gettext(
                "The checks before publishing fail; correct the workflow or its checks first: "
                "%(failures)s",
                failures="; ".join(failures),
            )
            raise ApiError(422, "checks_failed", message, failures=failures)
    calendar_id, service_id = found.id, offered.id
    with writing() as session:
        saved = session.get(Service, service_id)
        assert saved is not None
        update_service(
            session,
            saved,
            active=active,
            pool_by_tags=pool_by_tags,
            staff_ids=staff_ids,
            actor=_actor(access).name,
            ip=request.remote_addr,
        )
        session.flush()
        session.expire(saved)
        owner = session.get(Calendar, calendar_id)
        assert owner is not None
        payload = _service_json(session, owner, saved)
    return jsonify(payload)


# --- staff members ------------------------------------------------------------------------------


def _member_json(member: StaffMember, private: bool) -> dict[str, Any]:
    return {
        "id": member.slug,
        "name": member.name,
        "email": member.email if private else None,
        "phone": member.phone if private else None,
        "tags": list(member.tags or []),
        "bookable": member.bookable,
        "invitation": member.invitation,
        "takes_bookings": takes_bookings(member),
        "own_hours": not member.uses_calendar_hours,
    }


def _private(access: TokenAccess, member: StaffMember) -> bool:
    """A member's e-mail and phone: for the calendar's admins and viewers, and the member."""
    return access.role in ("admin", "viewer") or access.staff_id == member.id


def _staff_values(body: dict[str, Any], current: StaffMember | None = None) -> StaffValues:
    def text(key: str, before: str | None) -> str:
        if key not in body:
            return (before or "").strip()
        return (body[key] or "").strip()  # null: none (the phone)

    tags = body.get("tags")
    return StaffValues(
        name=text("name", current.name if current else None),
        email=text("email", current.email if current else None),
        phone=text("phone", current.phone if current else None),
        tags=(
            tuple(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))
            if tags is not None
            else tuple(current.tags or ())
            if current
            else ()
        ),
        bookable=body.get("bookable", current.bookable if current else True),
    )


def _inviting() -> dict[str, Any]:
    """What inviting a member by e-mail needs (their links are signed with the instance's key)."""
    settings = instance().settings
    return {"secret": secret_key_of(settings), "base_url": settings.base_url, "now": now()}


@blueprint.get("/calendars/<calendar>/staff/<staff>")
@operation(
    Operation(
        "A staff member",
        "staff (token)",
        bearer=True,
        responses={200: Reply("the member (e-mail and phone: see their description)", MEMBER)},
    )
)
def staff_member(calendar: str, staff: str) -> Response:
    access, found = calendar_for(calendar)
    member = _member(found, staff)
    return jsonify(_member_json(member, _private(access, member)))


@blueprint.post("/calendars/<calendar>/staff")
@operation(
    Operation(
        "Add a staff member (invited by e-mail; they take bookings once they accept)",
        "staff (token)",
        body=NEW_MEMBER_BODY,
        body_example={"name": "Ana Lima", "email": "ana@example.org", "tags": ["nurse"]},
        bearer=True,
        responses={
            201: Reply("added, the invitation on its way", MEMBER),
            400: MALFORMED,
            415: MALFORMED,
            422: REFUSED,
        },
    )
)
def add_staff_member(calendar: str) -> tuple[Response, int]:
    """A new member, checked as the back office checks one; their id is made from the name."""
    access, found = _admin(calendar)
    values = _staff_values(_body())
    calendar_id = found.id
    with writing() as session:
        owner = session.get(Calendar, calendar_id)
        assert owner is not None
        member = add_staff(
            session,
            owner,
            values,
            **_inviting(),
            actor=_actor(access).name,
            ip=request.remote_addr,
        )
        payload = _member_json(member, True)
    return jsonify(payload), 201


@blueprint.patch("/calendars/<calendar>/staff/<staff>")
@operation(
    Operation(
        "Change a staff member (a new e-mail address is invited again)",
        "staff (token)",
        body=MEMBER_BODY,
        body_example={"tags": ["nurse", "night"]},
        bearer=True,
        responses={
            200: Reply("the member; changed: the keys that changed", MEMBER),
            400: MALFORMED,
            415: MALFORMED,
            422: REFUSED,
        },
    )
)
def change_staff_member(calendar: str, staff: str) -> Response:
    access, found = _admin(calendar)
    member = _member(found, staff)
    values = _staff_values(_body(), member)
    member_id = member.id
    with writing() as session:
        saved = session.get(StaffMember, member_id)
        assert saved is not None
        changes = update_staff(
            session,
            saved,
            values,
            **_inviting(),
            actor=_actor(access).name,
            ip=request.remote_addr,
        )
        payload = {**_member_json(saved, True), "changed": sorted(changes)}
    return jsonify(payload)


@blueprint.delete("/calendars/<calendar>/staff/<staff>")
@operation(
    Operation(
        "Remove a staff member, without orphaning a booking",
        "staff (token)",
        description=(
            "Their future bookings are given to someone free (bookings=reassign, the default: "
            "409 cannot_reassign listing those no one can take, and nothing changes), cancelled "
            "with notice to the client (cancel), or given where possible and cancelled "
            "otherwise (reassign_or_cancel)."
        ),
        parameters=(
            query("bookings", "what happens to their bookings", {"enum": list(REMOVAL_MODES)}),
            query("reason", "told to clients whose booking is cancelled", {"type": "string"}),
        ),
        bearer=True,
        responses={
            200: Reply("removed: the bookings given to others and those cancelled", REMOVAL),
            400: error("a bad query", "invalid_request"),
            409: error("no one else is free (bookings: their ids)", "cannot_reassign"),
        },
    )
)
def remove_staff_member(calendar: str, staff: str) -> Response:
    access, found = _admin(calendar)
    member = _member(found, staff)
    mode = request.args.get("bookings", "reassign")
    if mode not in REMOVAL_MODES:
        raise ApiError(
            400, "invalid_request", "bookings must be one of " + ", ".join(REMOVAL_MODES)
        )
    reason = (request.args.get("reason") or "").strip()[:500] or None
    member_id = member.id
    actor = _actor(access)
    with writing() as session:
        saved = session.get(StaffMember, member_id)
        assert saved is not None
        try:
            result = remove_staff(
                session,
                saved,
                mode,
                now=now(),
                actor=actor,
                booking_actor=actor.name,
                reason=reason,
                plugins=plugin_host(),
            )
        except CannotReassign as cannot:  # nothing is written: the unit of work rolls back
            raise ApiError(
                409,
                "cannot_reassign",
                gettext(
                    "No one else is free for these bookings. Nothing was changed: choose to "
                    "cancel them, or move them first."
                ),
                bookings=[booking.uid for booking in cannot.bookings],
            ) from None
        payload = {
            "reassigned": [b.uid for b in result.reassigned],
            "cancelled": [b.uid for b in result.cancelled],
        }
    return jsonify(payload)
