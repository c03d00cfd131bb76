"""The OpenAPI 3.1 description of ``/api/v1``, made from the views' own schemas.

Each view is described next to itself with :func:`operation`: a summary, its query parameters,
the JSON Schema (2020-12) of its body and of each response. The same body schema validates the
request (:func:`validate_body`, called when the view reads its body), so the document and the
validation are one thing. :func:`document` builds the document from these descriptions and the
app's url_map: a ``/api/v1`` route without a description is an error, not a gap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

PREFIX = "/api/v1"
F = TypeVar("F", bound=Callable[..., Any])

# --- shared schemas -----------------------------------------------------------------------------

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "a stable code, listed per operation"},
                "message": {"type": "string", "description": "in the request's language"},
                "path": {
                    "type": "string",
                    "description": "the JSON pointer of the bad field of the body, if one",
                },
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "422 invalid: each field id and its problem",
                },
            },
            "additionalProperties": True,
        }
    },
}

MOMENT = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601 with its UTC offset, like 2026-12-01T09:30:00+01:00",
    "examples": ["2026-12-01T09:30:00+01:00"],
}
NULLABLE_TEXT = {"type": ["string", "null"]}

PATH_PARAMETERS = {
    "calendar": "the calendar's id (slug), like acme",
    "service": "the service's id: its workflow id, like consult",
    "token": "a manage token: of a booking, a series or a waitlist entry",
}


def header(name: str, description: str) -> dict[str, Any]:
    """A request header parameter."""
    return {"name": name, "in": "header", "description": description, "schema": {"type": "string"}}


IDEMPOTENCY_KEY = header(
    "Idempotency-Key",
    "1 to 255 printable ASCII characters; the same request again with the same key replays the "
    "first 201 (Idempotent-Replayed: true) instead of making a second one",
)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def query(
    name: str, description: str, schema: dict[str, Any], *, required: bool = False
) -> dict[str, Any]:
    """A query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


@dataclass(frozen=True)
class Reply:
    """A response: its description, the schema of its JSON (None: no JSON), the error codes
    it may carry, its media type."""

    description: str
    schema: dict[str, Any] | None = None
    codes: tuple[str, ...] = ()
    media_type: str = "application/json"
    headers: tuple[str, ...] = ()
    example: dict[str, Any] | None = None
    # Other media types the same answer may come as (text: a TSV or CSV file).
    also: tuple[str, ...] = ()


def error(description: str, *codes: str) -> Reply:
    return Reply(description, ref("Error"), codes)


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    description: str = ""
    parameters: tuple[dict[str, Any], ...] = ()
    body: dict[str, Any] | None = None
    body_required: bool = True
    body_example: dict[str, Any] | None = None
    # The error code of a bad value under a top-level key of the body (default invalid_request).
    body_codes: dict[str, str] = field(default_factory=dict)
    responses: dict[int, Reply] = field(default_factory=dict)
    # A personal API token is needed (Authorization: Bearer ..., bookwise.api.staff).
    bearer: bool = False


_OPERATIONS: dict[str, Operation] = {}
# Each registered operation's body validator, made once (the operations live as long as this).
_VALIDATORS: dict[int, Draft202012Validator] = {}


def _key(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def operation(described: Operation) -> Callable[[F], F]:
    """Describe a view (put it under the route's decorator)."""
    if described.body is not None:
        Draft202012Validator.check_schema(described.body)
        _VALIDATORS[id(described)] = Draft202012Validator(described.body)

    def register(func: F) -> F:
        _OPERATIONS[_key(func)] = described
        return func

    return register


def operation_of(view: Callable[..., Any]) -> Operation | None:
    return _OPERATIONS.get(_key(view))


def _validator(described: Operation) -> Draft202012Validator | None:
    if described.body is None:
        return None
    return _VALIDATORS.get(id(described)) or Draft202012Validator(described.body)


@dataclass(frozen=True)
class BodyProblem:
    """Why a body does not match its schema: a code, a message, the JSON pointer of the field."""

    code: str
    message: str
    path: str


def validate_body(described: Operation, body: Any) -> BodyProblem | None:
    """The first problem of ``body`` against the operation's schema, or None when it fits."""
    validator = _validator(described)
    if validator is None:
        return None
    found = best_match(validator.iter_errors(body))
    if found is None:
        return None
    steps = [str(step) for step in found.absolute_path]
    if found.validator == "required":
        wanted: Any = found.validator_value
        missing = [k for k in wanted if k not in (found.instance or {})]
        steps.append(missing[0] if missing else "")
    elif found.validator == "additionalProperties" and isinstance(found.instance, dict):
        known = found.schema.get("properties", {}) if isinstance(found.schema, Mapping) else {}
        unknown = [k for k in found.instance if k not in known]
        if unknown:  # the key itself is at fault: its path names it
            steps.append(str(unknown[0]))
    top = steps[0] if steps else ""
    pointer = "/" + "/".join(s.replace("~", "~0").replace("/", "~1") for s in steps)
    code = described.body_codes.get(top, "invalid_request")
    return BodyProblem(code, _message(found, steps), pointer if steps else "")


def _message(found: ValidationError, steps: list[str]) -> str:
    where = ".".join(steps) or "the body"
    if found.validator == "required":
        return f"{where} is required"
    if found.validator == "type":
        value: Any = found.validator_value
        kinds: list[str] = value if isinstance(value, list) else [str(value)]
        words = {
            "string": "text",
            "boolean": "true or false",
            "object": "an object",
            "array": "a list",
            "integer": "a whole number",
            "null": "null",
            "number": "a number",
        }
        return f"{where} must be {' or '.join(words.get(k, k) for k in kinds)}"
    if found.validator == "maxLength":
        return f"{where} must be at most {found.validator_value} characters"
    if found.validator == "maxItems":
        return f"{where} must have at most {found.validator_value} items"
    schema: dict[str, Any] = dict(found.schema) if isinstance(found.schema, Mapping) else {}
    if found.validator == "additionalProperties":
        known = ", ".join(sorted(schema.get("properties", {})))
        key = steps[-1] if steps else ""
        return f"unknown key {key!r}" + (f"; the keys known here: {known}" if known else "")
    if found.validator == "pattern":
        return f"{where} must be {schema.get('description') or 'in the form documented'}"
    if found.validator in ("enum", "const"):
        value = found.validator_value
        allowed: list[Any] = list(value) if found.validator == "enum" else [value]
        return f"{where} must be one of: {', '.join(json.dumps(v) for v in allowed)}"
    return f"{where}: {found.message}"[:300]


# --- the document -------------------------------------------------------------------------------


def openapi_path(rule: str) -> str:
    """``/api/v1/manage/<token>/cancel`` as OpenAPI writes it, under the server's /api/v1."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.removeprefix(PREFIX)) or "/"


class Undescribed(Exception):
    """A route of /api/v1 without an :func:`operation` description."""


def _operation_json(
    described: Operation, endpoint: str, arguments: Iterable[str]
) -> dict[str, Any]:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": PATH_PARAMETERS.get(name, name),
            "schema": {"type": "string", "minLength": 1},
        }
        for name in sorted(arguments)
    ]
    out: dict[str, Any] = {
        "operationId": endpoint.replace(".", "_"),
        "summary": described.summary,
        "tags": [described.tag],
        "parameters": parameters
        + list(described.parameters)
        + [query("lang", "the language of labels and messages", {"type": "string"})],
        "responses": {},
    }
    if described.description:
        out["description"] = described.description
    if described.bearer:
        out["security"] = [{"bearerToken": []}]
        out["responses"]["401"] = _reply_json(
            error("no token, or an unknown or revoked one", "unauthorized")
        )
        out["responses"]["403"] = _reply_json(
            error("the token, or its user's role, does not allow it", "forbidden")
        )
    if described.body is not None:
        media: dict[str, Any] = {"schema": described.body}
        if described.body_example is not None:
            media["example"] = described.body_example
        out["requestBody"] = {
            "required": described.body_required,
            "content": {"application/json": media},
        }
    for status, reply in sorted(described.responses.items()):
        out["responses"][str(status)] = _reply_json(reply)
    # Every route may answer these (the app's own handlers, in the same error shape).
    out["responses"].setdefault("404", _reply_json(error("unknown calendar, service or token")))
    out["responses"].setdefault("413", _reply_json(error("the body is over 64 KiB", "too_large")))
    if described.body is not None:
        out["responses"].setdefault(
            "415", _reply_json(error("the body is not sent as JSON", "unsupported_media_type"))
        )
    out["responses"].setdefault("429", _reply_json(error("too many requests", "rate_limited")))
    out["responses"].setdefault("405", _reply_json(error("method not allowed")))
    return out


def _reply_json(reply: Reply) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": reply.description}
    if reply.codes:
        answer["description"] += " (codes: " + ", ".join(reply.codes) + ")"
    schema = reply.schema
    if schema is None and reply.media_type != "application/json":
        schema = {"type": "string"}
    if schema is not None:
        media: dict[str, Any] = {"schema": schema}
        if reply.example is not None:
            media["example"] = reply.example
        answer["content"] = {reply.media_type: media}
        for other in reply.also:
            answer["content"][other] = {}  # a file: no schema to check
    if reply.headers:
        answer["headers"] = {
            name: {"schema": {"type": "string"}, "description": name} for name in reply.headers
        }
    return answer


RACE = error("another request changed the same thing at the same moment: retry", "conflict")


def document(app: Flask, base_url: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every /api/v1 route of ``app``; :class:`Undescribed` for a
    route without a description."""
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, None] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        described = operation_of(app.view_functions[rule.endpoint])
        if described is None:
            raise Undescribed(f"{rule.rule} ({rule.endpoint}) has no OpenAPI description")
        tags[described.tag] = None
        item = paths.setdefault(openapi_path(rule.rule), {})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            item[method.lower()] = _operation_json(described, rule.endpoint, rule.arguments)
            if method != "GET":  # a uniqueness another request won at the same moment
                responses = item[method.lower()]["responses"]
                if "409" not in responses:
                    responses["409"] = _reply_json(RACE)
                elif "conflict" not in responses["409"]["description"]:
                    responses["409"]["description"] += (
                        "; or conflict, when another request changed the same thing at once"
                    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bookwise API",
            "version": version,
            "description": "The public JSON API: services, free slots, booking, waitlist, and "
            "the client's manage link; with a personal API token, a calendar's bookings, their "
            "lifecycle, its settings, services, staff, hours and time off, its workflows and its "
            "report. Every error is "
            '{"error": {"code", "message", ...}}.',
            "license": {"name": "see the project", "identifier": "AGPL-3.0-or-later"},
        },
        "servers": [{"url": base_url.rstrip("/") + PREFIX}],
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "bearerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a personal API token (bookwise tokens create, or the back "
                    "office's Settings, API tokens): bw_...",
                }
            },
        },
    }


# --- the privacy answers (bookwise.privacy.clients) ---------------------------------------------

INSTANT = {"type": ["string", "null"], "format": "date-time", "description": "UTC, ISO 8601"}
COUNT = {"type": "integer", "minimum": 0}
TEXTS = {"type": "array", "items": {"type": "string"}}


def _closed(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly these keys: a key added to the answer must be described."""
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


_EXPORTED_BOOKING = _closed(
    ["id", "calendar", "service", "start", "end", "state", "answers", "history", "messages"],
    {
        "id": {"type": "string"},
        "client_id": {"type": "integer"},
        "calendar": {"type": "string"},
        "service": {"type": "string"},
        "staff": {"type": "string"},
        "start": INSTANT,
        "end": INSTANT,
        "state": {"type": "string"},
        "source": {"type": ["string", "null"]},
        "locale": {"type": ["string", "null"]},
        "timezone": {"type": ["string", "null"]},
        "created_at": INSTANT,
        "sms_opt_in": {"type": ["boolean", "null"]},
        "answers": {"type": "object", "description": "each question's id and the answer"},
        "answers_erased_at": INSTANT,
        "consent": {
            "oneOf": [
                {"type": "null"},
                _closed(
                    ["text", "given_at"],
                    {
                        "text": {"type": "string"},
                        "text_sha256": {"type": ["string", "null"]},
                        "link": {"type": ["string", "null"]},
                        "locale": {"type": ["string", "null"]},
                        "given_at": INSTANT,
                        "withdrawn_at": INSTANT,
                    },
                ),
            ]
        },
        "history": {
            "type": "array",
            "items": _closed(
                ["at", "action"],
                {
                    "at": INSTANT,
                    "action": {"type": "string"},
                    "from_state": {"type": ["string", "null"]},
                    "to_state": {"type": ["string", "null"]},
                    "by": {"type": ["string", "null"]},
                    "details": {"type": "object"},
                },
            ),
        },
        "messages": {
            "type": "array",
            "description": "each message sent or due (its text is not kept)",
            "items": _closed(
                ["channel", "state"],
                {
                    "channel": {"type": "string"},
                    "event": {"type": ["string", "null"]},
                    "template": {"type": ["string", "null"]},
                    "to": {"type": ["string", "null"]},
                    "state": {"type": "string"},
                    "due_at": INSTANT,
                    "sent_at": INSTANT,
                    "subject": {"type": "null"},
                    "body": {"type": "null"},
                },
            ),
        },
    },
)
CLIENT_DATA = _closed(
    ["schema", "version", "generated_at", "email", "calendars", "clients", "bookings", "notes"],
    {
        "schema": {"const": "bookwise.client-data"},
        "version": {"const": 1},
        "generated_at": INSTANT,
        "email": {"type": "string"},
        "calendars": TEXTS,
        "clients": {
            "type": "array",
            "items": _closed(
                ["id", "calendar", "name", "email"],
                {
                    "id": {"type": "integer"},
                    "calendar": {"type": "string"},
                    "name": {"type": ["string", "null"]},
                    "email": {"type": ["string", "null"]},
                    "phone": {"type": ["string", "null"]},
                    "locale": {"type": ["string", "null"]},
                    "timezone": {"type": ["string", "null"]},
                    "created_at": INSTANT,
                    "erased_at": INSTANT,
                },
            ),
        },
        "bookings": {"type": "array", "items": _EXPORTED_BOOKING},
        "notes": TEXTS,
    },
)
ERASED = _closed(
    ["erased"],
    {
        "erased": _closed(
            [
                "calendars",
                "clients",
                "pseudonyms",
                "bookings",
                "answers_erased",
                "bookings_cancelled",
                "bookings_not_cancelled",
                "messages_purged",
            ],
            {
                "calendars": TEXTS,
                "clients": COUNT,
                "pseudonyms": TEXTS,
                "bookings": COUNT,
                "answers_erased": COUNT,
                "bookings_cancelled": COUNT,
                "bookings_not_cancelled": {
                    **TEXTS,
                    "description": "bookings kept in their state (ask the calendar)",
                },
                "messages_purged": COUNT,
            },
        )
    },
)

# The shared schemas of the responses (bodies are inline: they are validated on their own).
COMPONENTS: dict[str, Any] = {"Error": ERROR}

TEXT = {"type": "string"}
_CLIENT_OUT = {
    "type": "object",
    "required": ["name", "email"],
    "properties": {"name": NULLABLE_TEXT, "email": NULLABLE_TEXT},
}
_REASON = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": TEXT, "message": TEXT},
}

COMPONENTS.update(
    {
        "Booking": {
            "type": "object",
            "required": ["id", "status", "calendar", "service", "start", "end", "timezone"],
            "properties": {
                "id": TEXT,
                "status": TEXT,
                "calendar": TEXT,
                "service": TEXT,
                "start": MOMENT,
                "end": MOMENT,
                "timezone": TEXT,
                "staff": TEXT,
                "client": _CLIENT_OUT,
                "meeting_url": NULLABLE_TEXT,
                "can_change": {"type": "boolean"},
                "change_deadline": MOMENT,
                "reference": {
                    **TEXT,
                    "description": "BW- and six characters: as the client and the report name it",
                },
                "manage_token": TEXT,
                "manage_url": TEXT,
                "consent": {
                    "type": ["object", "null"],
                    "properties": {
                        "text": TEXT,
                        "link": NULLABLE_TEXT,
                        "version": TEXT,
                        "text_sha256": TEXT,
                        "given_at": MOMENT,
                        "withdrawn_at": {"type": ["string", "null"], "format": "date-time"},
                        "withdrawal_cancels": {"type": "boolean"},
                    },
                },
                "series": {
                    "type": ["object", "null"],
                    "properties": {
                        "id": TEXT,
                        "frequency": TEXT,
                        "occurrence": {"type": "integer"},
                        "of": {"type": "integer"},
                        "manage_token": TEXT,
                        "manage_url": TEXT,
                    },
                },
            },
        },
        "Series": {
            "type": "object",
            "required": ["id", "calendar", "service", "frequency", "occurrences", "manage_token"],
            "properties": {
                "id": TEXT,
                "calendar": TEXT,
                "service": TEXT,
                "frequency": TEXT,
                "count": {"type": "integer"},
                "timezone": TEXT,
                "client": _CLIENT_OUT,
                "occurrences": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["start", "state"],
                        "properties": {
                            "start": MOMENT,
                            "state": TEXT,
                            "booking": TEXT,
                            "staff": TEXT,
                            "can_change": {"type": "boolean"},
                            "manage_token": TEXT,
                        },
                    },
                },
                "manage_token": TEXT,
                "manage_url": TEXT,
            },
        },
        "SeriesAnswer": {
            "type": "object",
            "required": ["series"],
            "properties": {"series": ref("Series")},
        },
        "WaitlistEntry": {
            "type": "object",
            "required": ["state", "calendar", "service", "timezone", "manage_token"],
            "properties": {
                "state": {"enum": ["waiting", "offered", "expired", "booked", "left"]},
                "calendar": TEXT,
                "service": TEXT,
                "start": MOMENT,
                "day": {"type": "string", "format": "date"},
                "timezone": TEXT,
                "position": {"type": ["integer", "null"]},
                "offer": {
                    "type": ["object", "null"],
                    "properties": {"start": MOMENT, "expires_at": MOMENT},
                },
                "client": _CLIENT_OUT,
                "manage_token": TEXT,
                "manage_url": TEXT,
                "booking": ref("Booking"),
            },
        },
        "Services": {
            "type": "object",
            "required": ["calendar", "services"],
            "properties": {
                "calendar": {
                    "type": "object",
                    "properties": {"id": TEXT, "name": TEXT, "timezone": TEXT},
                },
                "services": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "name", "duration_minutes", "fields"],
                        "properties": {
                            "id": TEXT,
                            "name": TEXT,
                            "description": NULLABLE_TEXT,
                            "duration_minutes": {"type": "integer"},
                            "capacity": {"type": "integer"},
                            "location": {"type": "object"},
                            "staff_choice": {"type": "boolean"},
                            "fields": {"type": "array", "items": {"type": "object"}},
                            "routing_fields": {"type": "array", "items": TEXT},
                            "consent": {"type": ["object", "null"]},
                            "recurrence": {"type": ["object", "null"]},
                        },
                    },
                },
            },
        },
        "Slots": {
            "type": "object",
            "required": ["timezone", "slots", "routed", "routing_fields"],
            "properties": {
                "timezone": TEXT,
                "slots": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["start", "end", "remaining"],
                        "properties": {
                            "start": MOMENT,
                            "end": MOMENT,
                            "remaining": {"type": "integer", "minimum": 0},
                            "staff": {"type": "array", "items": TEXT},
                        },
                    },
                },
                "routed": {"type": "boolean"},
                "routing_fields": {"type": "array", "items": TEXT},
            },
        },
        "Explanation": {
            "type": "object",
            "required": ["start", "timezone", "offered", "remaining", "reasons", "staff"],
            "properties": {
                "start": MOMENT,
                "timezone": TEXT,
                "offered": {"type": "boolean"},
                "remaining": {"type": "integer"},
                "reasons": {"type": "array", "items": _REASON},
                "staff": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "free", "reasons"],
                        "properties": {
                            "id": TEXT,
                            "name": TEXT,
                            "free": {"type": "boolean"},
                            "reasons": {"type": "array", "items": _REASON},
                        },
                    },
                },
            },
        },
    }
)

# The client part of a booking's or a waitlist's body (views.client_body reads it).
CLIENT_BODY: dict[str, Any] = {
    "client": {
        "type": "object",
        "description": "the client's contact details, language and time zone",
        "properties": {
            "name": {"description": "checked with the workflow's fields (422 invalid)"},
            "email": {"description": "checked with the workflow's fields (422 invalid)"},
            "phone": {"description": "checked with the workflow's fields (422 invalid)"},
            "locale": {**NULLABLE_TEXT, "description": "one of the instance's languages"},
            "timezone": {"description": "an IANA zone, like Europe/Paris"},
        },
    },
    "answers": {
        "type": "object",
        "description": "the answers to the workflow's fields, by field id",
    },
    "consent": {"type": ["boolean", "null"]},
    "sms_opt_in": {"type": "boolean"},
}
CLIENT_CODES = {"client": "invalid_request"}
