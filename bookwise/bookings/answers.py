"""Checking a client's answers against a workflow's fields. Pure: no Flask, no database.

Each problem is a code with parameters; :meth:`FieldProblem.message` words it, through a
translation function when one is given (the messages are in the Babel catalogs).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from bookwise.errors import N_
from bookwise.plugins.api import InvalidValue
from bookwise.text import CONTROL, UNSTORABLE, unstorable_text
from bookwise.workflows.language import Field, Workflow, shown_fields

if TYPE_CHECKING:
    from bookwise.plugins.api import FieldType

log = logging.getLogger(__name__)

MESSAGES = {
    "required": N_("This field is required."),
    "unknown": N_("This question is not asked by this service."),
    "not_text": N_("Enter text."),
    "too_short": N_("Enter at least %(min)d characters."),
    "too_long": N_("Enter at most %(max)d characters."),
    "pattern": N_("This answer does not have the expected form."),
    "email": N_("Enter a valid e-mail address, like name@example.org."),
    "phone": N_("Enter a phone number in international format, like +33 6 12 34 56 78."),
    "number": N_("Enter a number."),
    "number_min": N_("Enter a number of at least %(min)s."),
    "number_max": N_("Enter a number of at most %(max)s."),
    "date": N_("Enter a date as YYYY-MM-DD."),
    "date_min": N_("Enter a date on or after %(min)s."),
    "date_max": N_("Enter a date on or before %(max)s."),
    "choice": N_("Choose one of the options."),
    "choices": N_("Choose among the options."),
    "checkbox": N_("Tick the box or leave it empty."),
    "url": N_("Enter a web address starting with https:// or http://."),
    "consent": N_("Your consent is needed to book."),
    "unchecked": N_("This answer could not be checked just now; please try again later."),
    "unstorable": UNSTORABLE,
    "control": CONTROL,
}
_TEXT_PROBLEMS = {UNSTORABLE: "unstorable", CONTROL: "control"}


@dataclass(frozen=True)
class FieldProblem:
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def message(
        self,
        translate: Callable[[str], str] = str,
        format_date: Callable[[str], str] | None = None,
    ) -> str:
        """The message, translated; dates (``YYYY-MM-DD``) written by ``format_date`` if given."""
        params = dict(self.params)
        if self.code == "custom":  # worded by a plugin's field type
            return str(params.get("message", ""))
        if format_date is not None and self.code in ("date_min", "date_max"):
            params = {k: format_date(v) for k, v in params.items()}
        return translate(MESSAGES[self.code]) % params


class InvalidAnswers(Exception):
    """Some answers are missing or wrong; ``problems`` maps each field id to its problem."""

    def __init__(self, problems: Mapping[str, FieldProblem]) -> None:
        self.problems = dict(problems)
        super().__init__(", ".join(f"{k}: {v.message()}" for k, v in self.problems.items()))


@dataclass(frozen=True)
class CleanAnswers:
    name: str
    email: str | None
    phone: str | None
    answers: dict[str, Any]


_BLANK: tuple[Any, ...] = (None, "", [])


def check_answers(
    workflow: Workflow,
    values: Mapping[str, Any],
    consent: bool | None,
    today: date,
    field_types: Mapping[str, FieldType] | None = None,
) -> CleanAnswers:
    """Check every field's value (contact details included) and the consent.

    Returns normalised values (an e-mail in its normal form, a phone in E.164); raises
    :class:`InvalidAnswers` naming every problem at once. ``field_types`` are the plugins' field
    types, by name.
    """
    problems: dict[str, FieldProblem] = {}
    clean: dict[str, Any] = {}
    unanswered: set[str] = set()  # required, blank: a problem if the field is asked
    known = {f.id for f in workflow.fields}
    for key in values:
        if key not in known:
            problems[key] = FieldProblem("unknown")
    for spec in workflow.fields:
        raw = values.get(spec.id)
        if isinstance(raw, str):
            raw = raw.strip()
        if spec.type == "checkbox" and raw not in _BLANK:
            try:
                raw = _checkbox(spec, raw, today)
            except _Refused as refused:
                problems[spec.id] = refused.problem
                continue
        if raw in _BLANK or (spec.type == "checkbox" and raw is False and spec.required):
            if spec.required:
                unanswered.add(spec.id)
            elif spec.type == "checkbox":
                clean[spec.id] = False
            continue
        try:
            clean[spec.id] = _storable(spec, _check(spec, raw, today, field_types or {}))
        except _Refused as refused:
            problems[spec.id] = refused.problem
    # A field whose show_if does not hold is not asked: not required, not stored, and whatever
    # was sent for it is dropped.
    asked = shown_fields(workflow.fields, clean)
    for fid in known - asked:
        clean.pop(fid, None)
        problems.pop(fid, None)
    problems.update({fid: FieldProblem("required") for fid in unanswered & asked})
    order = [*(key for key in values if key not in known), *(f.id for f in workflow.fields)]
    problems = {key: problems[key] for key in order if key in problems}
    if workflow.consent is not None and workflow.consent.required and consent is not True:
        problems["consent"] = FieldProblem("consent")
    if problems:
        raise InvalidAnswers(problems)
    contact = {key: clean.pop(key, None) for key in ("name", "email", "phone")}
    return CleanAnswers(
        name=contact["name"] or "",
        email=contact["email"],
        phone=contact["phone"],
        answers=clean,
    )


class _Refused(Exception):
    def __init__(self, code: str, **params: Any) -> None:
        self.problem = FieldProblem(code, params)


def _check(spec: Field, raw: Any, today: date, field_types: Mapping[str, FieldType]) -> Any:
    if spec.type in _CHECKS:
        return _CHECKS[spec.type](spec, raw, today)
    kind = field_types.get(spec.type)
    if kind is None:
        # The field's plugin is not enabled any more: keep the answer as text, do not refuse it.
        return _text(spec, raw if isinstance(raw, str) else str(raw), today)
    try:
        return kind.clean(raw, spec)
    except InvalidValue as exc:
        raise _Refused("custom", message=str(exc)) from None
    except Exception:  # a bug in the plugin: the client is told, the log says which plugin
        log.exception("field type %r failed to check the answer to %r", spec.type, spec.id)
        raise _Refused("unchecked") from None


def _storable(spec: Field, value: Any) -> Any:
    """``value`` if every text in it can be stored and shown as typed; one-line text (a name)
    keeps no control character at all, other answers (a textarea, a plugin's value) keep tabs
    and line breaks."""
    texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    if isinstance(value, dict):
        texts = [*value, *value.values()]
    for text in texts:
        if isinstance(text, list | dict):
            _storable(spec, text)
        elif isinstance(text, str):
            problem = unstorable_text(text, multiline=spec.type != "text")
            if problem is not None:
                raise _Refused(_TEXT_PROBLEMS[problem.text])
    return value


def _text(spec: Field, raw: Any, _today: date) -> str:
    if not isinstance(raw, str):
        raise _Refused("not_text")
    value = raw.replace("\x00", "")
    if spec.type == "text":
        value = " ".join(value.split())  # one line: no newlines or runs of spaces
    if spec.min_length is not None and len(value) < spec.min_length:
        raise _Refused("too_short", min=spec.min_length)
    if spec.max_length is not None and len(value) > spec.max_length:
        raise _Refused("too_long", max=spec.max_length)
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        raise _Refused("pattern")
    return value


def _email(spec: Field, raw: Any, _today: date) -> str:
    if not isinstance(raw, str) or len(raw) > (spec.max_length or 320):
        raise _Refused("email")
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        raise _Refused("email") from None


def _phone(_spec: Field, raw: Any, _today: date) -> str:
    if not isinstance(raw, str) or not raw.startswith("+") or len(raw) > 40:
        raise _Refused("phone")
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise _Refused("phone") from None
    if not phonenumbers.is_valid_number(number):
        raise _Refused("phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _number(spec: Field, raw: Any, _today: date) -> int | float:
    if isinstance(raw, bool):
        raise _Refused("number")
    value: int | float
    if isinstance(raw, int | float):
        value = raw
    elif isinstance(raw, str):
        try:
            value = float(raw.replace(",", ".")) if re.search(r"[.,]", raw) else int(raw)
        except ValueError:
            raise _Refused("number") from None
    else:
        raise _Refused("number")
    if not math.isfinite(value):
        raise _Refused("number")
    if isinstance(spec.min, int | float) and value < spec.min:
        raise _Refused("number_min", min=spec.min)
    if isinstance(spec.max, int | float) and value > spec.max:
        raise _Refused("number_max", max=spec.max)
    return value


def _date(spec: Field, raw: Any, today: date) -> str:
    if not isinstance(raw, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise _Refused("date")
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise _Refused("date") from None

    def bound(spec_value: Any) -> date | None:
        if spec_value == "today":
            return today
        return date.fromisoformat(spec_value) if isinstance(spec_value, str) else None

    low, high = bound(spec.min), bound(spec.max)
    if low is not None and value < low:
        raise _Refused("date_min", min=low.isoformat())
    if high is not None and value > high:
        raise _Refused("date_max", max=high.isoformat())
    return value.isoformat()


def _option(spec: Field, raw: Any) -> str | int | None:
    for option in spec.options:
        if raw == option.value or (isinstance(raw, str) and raw == str(option.value)):
            return option.value
    return None


def _select(spec: Field, raw: Any, _today: date) -> str | int:
    value = _option(spec, raw)
    if value is None or isinstance(raw, list | dict | bool):
        raise _Refused("choice")
    return value


def _multiselect(spec: Field, raw: Any, _today: date) -> list[str | int]:
    if not isinstance(raw, list):
        raise _Refused("choices")
    chosen = []
    for item in raw:
        value = _option(spec, item)
        if value is None or isinstance(item, list | dict | bool):
            raise _Refused("choices")
        if value not in chosen:
            chosen.append(value)
    return chosen


def _checkbox(_spec: Field, raw: Any, _today: date) -> bool:
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "on", "1", "yes"):
        return True
    if raw in ("false", "off", "0", "no"):
        return False
    raise _Refused("checkbox")


def _url(spec: Field, raw: Any, _today: date) -> str:
    if not isinstance(raw, str) or len(raw) > (spec.max_length or 2000) or " " in raw:
        raise _Refused("url")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _Refused("url")
    return raw


_CHECKS: dict[str, Callable[[Field, Any, date], Any]] = {
    "text": _text,
    "textarea": _text,
    "email": _email,
    "phone": _phone,
    "number": _number,
    "date": _date,
    "select": _select,
    "multiselect": _multiselect,
    "checkbox": _checkbox,
    "url": _url,
}
