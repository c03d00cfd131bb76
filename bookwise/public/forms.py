"""The client's forms, built with WTForms from a workflow's fields.

The answers themselves are checked by :func:`bookwise.bookings.answers.check_answers` (one set of
rules for the pages, the API and the back office); WTForms renders the fields, with the HTML
attributes that let a browser help (required, maxlength, min, max, input types), and carries the
form token.

The token: public pages must work inside another site's frame, where the browser does not send
our cookies, so it cannot be tied to a session. It is signed by the instance, names what the form
is for (a service, a booking) and expires; together with the check that the request comes from
our own pages (:func:`same_origin`), it keeps other sites from submitting these forms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from flask import request
from flask_babel import lazy_gettext
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    EmailField,
    Form,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
    URLField,
)
from wtforms.csrf.core import CSRF
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError
from wtforms.widgets import CheckboxInput, DateInput, ListWidget, NumberInput

from bookwise.bookings.answers import InvalidAnswers
from bookwise.bookings.services import BookingRequest, routing_answers, routing_questions
from bookwise.config import secret_key_of
from bookwise.i18n import contact_label, gettext
from bookwise.web import instance
from bookwise.workflows.language import FIELD_TYPES, Field, Workflow, shown_fields

TOKEN_MAX_AGE = 6 * 3600  # a form left open longer is refused, with an invitation to reload


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key_of(instance().settings), salt="bookwise-form")


class SignedFormToken(CSRF):  # type: ignore[misc]
    """A form token signed by the instance, bound to the form's purpose, valid six hours."""

    def setup_form(self, form: Form) -> Any:
        self.purpose = str(form.meta.csrf_context)
        return super().setup_form(form)

    def generate_csrf_token(self, _field: Any) -> str:
        token: str = _serializer().dumps(self.purpose)
        return token

    def validate_csrf_token(self, _form: Form, field: Any) -> None:
        try:
            purpose = _serializer().loads(field.data or "", max_age=TOKEN_MAX_AGE)
        except BadSignature:
            purpose = None
        if purpose != self.purpose:
            raise ValidationError(gettext("This form has expired. Reload the page and try again."))


class PublicForm(Form):  # type: ignore[misc]
    class Meta:
        csrf = True
        csrf_class = SignedFormToken
        csrf_field_name = "form_token"


def same_origin() -> bool:
    """Whether a POST comes from our own pages (also inside a frame, whose documents are ours).

    Our pages are at the address the request reached, or at the instance's public address
    (``base_url``: behind a proxy that terminates TLS the two differ). Browsers send ``Origin``
    with form posts; an older one may send only ``Referer``; a request with neither is not a
    browser's form post from another site.
    """
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if origin is None:
        return True
    own = {request.host_url.rstrip("/"), instance().settings.base_url.rstrip("/")}
    return any(origin == site or origin.startswith(site + "/") for site in own)


def _text(text: Any, locale: str, fallback: str) -> str:
    return str(text.get(locale, fallback))


AUTOCOMPLETE = {"name": "name", "email": "email", "phone": "tel"}


def _field(spec: Field, locale: str, fallback: str) -> Any:
    label = _text(spec.label, locale, fallback) if spec.label else contact_label(spec.id)
    description = _text(spec.help, locale, fallback) if spec.help else ""
    options = [SelectChoice(str(o.value), _text(o.label, locale, fallback)) for o in spec.options]
    default = spec.default if spec.default != "today" else None
    common: dict[str, Any] = {
        "label": label,
        "description": description,
        "render_kw": _browser_hints(spec, locale, fallback),
    }
    build = _FIELD_BUILDERS.get(spec.type)
    if build is not None:
        return build(default, options, common)
    if spec.type not in FIELD_TYPES:
        return _plugin_field(spec, {"default": default, **common})
    return StringField(default=default, **common)


def _browser_hints(spec: Field, locale: str, fallback: str) -> dict[str, Any]:
    """The HTML attributes that let a browser check and fill the field before it is sent."""
    attrs: dict[str, Any] = {}
    if spec.required and spec.type != "multiselect":
        attrs["required"] = True
    elif spec.required:
        attrs["data-required"] = True  # no "required" on the boxes: one of them is enough
    if spec.max_length is not None and spec.type in ("text", "textarea", "email", "phone", "url"):
        attrs["maxlength"] = spec.max_length
    if spec.min_length is not None:
        attrs["minlength"] = spec.min_length
    if spec.placeholder:
        attrs["placeholder"] = _text(spec.placeholder, locale, fallback)
    if spec.id in AUTOCOMPLETE:
        attrs["autocomplete"] = AUTOCOMPLETE[spec.id]
    for bound in ("min", "max"):
        value = getattr(spec, bound)
        if value is not None and spec.type in ("number", "date") and value != "today":
            attrs[bound] = value
    return attrs


def _select_field(default: Any, options: list[SelectChoice], common: dict[str, Any]) -> Any:
    empty = [SelectChoice("", gettext("Choose…"))]
    return SelectField(
        choices=empty + options,
        validate_choice=False,
        default="" if default is None else str(default),
        **common,
    )


def _multiselect_field(default: Any, options: list[SelectChoice], common: dict[str, Any]) -> Any:
    return SelectMultipleField(
        choices=options,
        validate_choice=False,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        default=[str(v) for v in default or []],
        **common,
    )


# The WTForms field of each built-in field type, from its default, its options and what every
# field gets (label, description, HTML attributes). Text and types without one: a text line.
_FIELD_BUILDERS: dict[str, Callable[[Any, list[SelectChoice], dict[str, Any]], Any]] = {
    "textarea": lambda default, _options, common: TextAreaField(default=default, **common),
    "email": lambda default, _options, common: EmailField(default=default, **common),
    "phone": lambda default, _options, common: TelField(default=default, **common),
    "url": lambda default, _options, common: URLField(default=default, **common),
    "number": lambda default, _options, common: StringField(
        widget=NumberInput(step="any"), default=default, **common
    ),
    "date": lambda default, _options, common: StringField(
        widget=DateInput(), default=default, **common
    ),
    "select": _select_field,
    "multiselect": _multiselect_field,
    "checkbox": lambda default, _options, common: BooleanField(default=bool(default), **common),
}


def _plugin_field(spec: Field, options: dict[str, Any]) -> Any:
    """A field type a plugin adds builds its own WTForms field; one that fails (or whose plugin
    is no longer enabled) is asked as a line of text, and the failure is reported."""
    plugins = instance().database.plugins
    kind = plugins.field_types.get(spec.type)
    if kind is not None:
        try:
            return kind.form_field(spec, options)
        except Exception as exc:
            plugins.failed(plugins.field_type_owner(spec.type), "form_field", exc)
    return StringField(**options)


def booking_form(
    workflow: Workflow, locale: str, fallback: str, base: type[Form] = PublicForm
) -> type[PublicForm]:
    """A form class with the workflow's fields, in order, then the consent box. ``base`` gives
    the form its token (the back office's forms carry the session's)."""
    attributes: dict[str, Any] = {
        "start": HiddenField(),
        "tz": HiddenField(),
        "staff": HiddenField(),
    }
    for spec in workflow.fields:
        attributes[f"field_{spec.id}"] = _field(spec, locale, fallback)
    if workflow.texts_client:
        # Asked on every booking: agreeing once does not mean agreeing for good.
        attributes["sms_opt_in"] = BooleanField(
            label=lazy_gettext(
                "Send me text messages about this booking (confirmation, reminders). "
                "Reply STOP to stop them."
            )
        )
    if workflow.consent is not None:
        attributes["consent"] = BooleanField(
            label=_text(workflow.consent.text, locale, fallback),
            render_kw={"required": True} if workflow.consent.required else {},
        )
    return type("BookingForm", (base,), attributes)


def answers_of(form: PublicForm, workflow: Workflow) -> dict[str, Any]:
    """The submitted answers, by field id, as :func:`check_answers` takes them."""
    return {spec.id: form[f"field_{spec.id}"].data for spec in workflow.fields}


# --- conditional questions without JavaScript: a second step ----------------------------------
#
# A question with ``show_if`` is on the page (not ``hidden``) when its condition holds for the
# answers the page was built with. Without the script, a client whose answers make such a question
# apply has not seen it: the form comes back with it instead of booking. The page says which
# conditional questions it showed in a hidden input (ASKED_INPUT); booking.js adds to it each one
# it shows.

ASKED_INPUT = "asked"


def conditional_questions(workflow: Workflow) -> list[str]:
    """The ids of the fields asked only if another's answer fits, in the form's order."""
    return [spec.id for spec in workflow.fields if spec.show_if is not None]


def questions_asked(form: Any, workflow: Workflow) -> set[str]:
    """The conditional questions that apply to the answers in ``form`` (posted, or the defaults
    of a new form), read as :func:`check_answers` reads them for a condition."""
    conditional = conditional_questions(workflow)
    if not conditional:
        return set()
    values = {spec.id: _as_checked(spec, form[f"field_{spec.id}"].data) for spec in workflow.fields}
    return shown_fields(workflow.fields, values) & set(conditional)


def questions_seen(posted: str | None, workflow: Workflow) -> set[str]:
    """The conditional questions a posted page says it showed (its ASKED_INPUT: ids separated
    by spaces). Whatever is not one of the workflow's conditional questions is ignored; the list
    decides nothing but whether a question was on the page."""
    if not posted:
        return set()
    return set(posted.split()) & set(conditional_questions(workflow))


def _as_checked(spec: Field, raw: Any) -> Any:
    """An answer as a condition tests it: text without its surrounding spaces, a number as a
    number (``1,5`` too) and no answer for one that is not a number, as check_answers keeps it."""
    if not isinstance(raw, str):
        return raw
    value = raw.strip()
    if spec.type != "number" or not value:
        return value
    try:
        number = float(value.replace(",", ".")) if "." in value or "," in value else int(value)
    except ValueError:  # also an integer of more digits than Python reads
        return None
    return number if math.isfinite(number) else None


# --- answers in a link: the routing questions, asked before the times -------------------------
#
# A workflow with ``route`` asks the questions it routes on before the times (the public page,
# the back office's booking for a client); the answers then travel in the links as the booking
# form's own names (``field_<id>``), with ROUTED_INPUT saying they were given.

ROUTED_INPUT = "routed"
LINK_VALUES = 50  # values read of one name in a link (a list's choices); the rest is ignored


def routing_form(workflow: Workflow, locale: str, fallback: str, formdata: Any) -> Any:
    """The routing questions (and those they depend on) as a form without a token: it is sent
    with GET, and changes nothing."""
    part = replace(workflow, fields=routing_questions(workflow), consent=None, notifications=())
    return booking_form(part, locale, fallback, base=Form)(formdata)


def prefill(form: Any, workflow: Workflow, args: MultiDict[str, str]) -> list[str]:
    """Fill the fields of ``form`` that ``args`` (a link's query) carries answers for, read as
    posted values are; the others keep their defaults. Only the workflow's own fields are read.
    The ids filled, in the form's order."""
    filled = []
    for spec in workflow.fields:
        name = f"field_{spec.id}"
        if name in args and name in form:
            form[name].process(MultiDict([(name, v) for v in args.getlist(name)[:LINK_VALUES]]))
            filled.append(spec.id)
    return filled


def routed_answers(
    form: Any,
    workflow: Workflow,
    today: date,
    field_types: Mapping[str, Any] | None = None,
    mark: bool = False,
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The checked answers to the routing questions in ``form`` (:func:`routing_answers`), and
    the link parameters that carry them on; ``(None, {})`` when the workflow does not route or
    one of them is wrong or missing (the links then carry none: the questions are asked again).
    ``mark``: put the problems beside their fields."""
    if not workflow.route:
        return None, {}
    questions = routing_questions(workflow)
    values = {q.id: form[f"field_{q.id}"].data for q in questions if f"field_{q.id}" in form}
    try:
        answers = routing_answers(workflow, values, today, field_types=field_types)
    except InvalidAnswers as invalid:
        if mark:
            mark_answer_problems(form, invalid)
        return None, {}
    params: dict[str, Any] = {ROUTED_INPUT: "1"}
    for q in questions:
        if f"field_{q.id}" in form:
            params[f"field_{q.id}"] = _link_values(form[f"field_{q.id}"])
    return answers, params


def _link_values(field: Any) -> list[str]:
    """A field's answer as a browser sends it (a box ticked: ``y``; a list: each choice)."""
    data = field.data
    if field.type == "BooleanField":
        return ["y"] if data else []
    if isinstance(data, list | tuple):
        return [str(v) for v in data]
    return [] if data is None or data == "" else [str(data)]


def booking_request(form: Any, workflow: Workflow, **details: Any) -> BookingRequest:
    """The request of a booking form (the public one or the back office's): its answers,
    consent and text-message choice, with ``details`` (start, staff, locale, source...)."""
    return BookingRequest(
        values=answers_of(form, workflow),
        consent=bool(form.consent.data) if workflow.consent else None,
        sms_opt_in=bool(form.sms_opt_in.data) if "sms_opt_in" in form else False,
        **details,
    )


def mark_answer_problems(
    form: Any, invalid: InvalidAnswers, format_date: Callable[[str], str] | None = None
) -> None:
    """Put each problem of ``invalid`` beside its field of ``form``, in the page's language
    (the same words the API gives under ``fields``); ``format_date`` writes dates for the
    reader."""
    for key, problem in invalid.problems.items():
        name = "consent" if key == "consent" else f"field_{key}"
        if name in form:
            form[name].errors = [problem.message(gettext, format_date=format_date)]


class ActionForm(PublicForm):
    """A form with nothing but its token: confirming a cancellation or a reschedule."""

    reason = TextAreaField(lazy_gettext("Reason (optional)"), render_kw={"maxlength": 500})
