"""Message templates: where they come from, how they are checked, how they are rendered. Pure.

Templates are Jinja2 rendered in an ``ImmutableSandboxedEnvironment``: a template edited in the
back office can read the documented variables and nothing else of the application (no
attribute starting with ``_``, no method that changes data). Text parts are rendered as text,
HTML parts with autoescape on.

Each template is a folder named after it with one ``<locale>.yaml`` per language; each file maps
an audience (``client`` or ``staff``) to its channels (``email``, ``sms``, ...) and their parts
(``subject``, ``text``, optionally ``html``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Template, TemplateError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from ruamel.yaml import YAML

from bookwise.errors import N_

# The variables a template may use, documented in docs/notifications.md.
VARIABLES: dict[str, str] = {
    "calendar": N_("the business: .name, .address, .phone, .reply_to"),
    "service": N_("what is booked: .name, .duration (written out, like '45 minutes')"),
    "booking": N_(
        "the booking: .start (day and time, with the time zone when it is not the business's), "
        ".end (time), .when (day, start and end, with the time zone), .date, .time, .timezone, "
        ".state, .location, .meeting_url, .reference; for staff, .admin_url (the booking in the "
        "back office) and .approved (true when staff approved the request)"
    ),
    "previous": N_("for rescheduled: .start, the time before the change"),
    "client": N_("the client: .name, .email, .phone"),
    "staff": N_("the staff member: .name, .email"),
    "manage_url": N_("the client's link to see, move or cancel the booking"),
    "booking_url": N_("the service's booking page, to book again"),
    "reason": N_("the reason given for a decline, a cancellation or time off (may be empty)"),
    "answers": N_("the client's answers, each with .label and .value (sensitive ones left out)"),
    "time_off": N_("for time-off: .start, .end"),
    "invitation": N_("for staff-invitation: .accept_url, .decline_url"),
    "source": N_(
        "for calendar-feed-failing: .name (the calendar that cannot be read), .since, .problem "
        "(what is wrong, in words), .admin_url (the staff member's page in the back office)"
    ),
}
AUDIENCES = ("client", "staff")
PARTS = ("subject", "text", "html")


class _Blank(Undefined):
    """A value the message does not have (no meeting link, no reason) renders as nothing."""

    def __str__(self) -> str:
        return ""


@cache
def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        autoescape=autoescape, undefined=_Blank, keep_trailing_newline=False
    )


@lru_cache(maxsize=2048)
def _compiled(source: str, autoescape: bool) -> Template:
    """A template compiled once per text (compiling costs more than rendering)."""
    return _environment(autoescape).from_string(source)


@dataclass(frozen=True)
class TemplateParts:
    """The parts of one template for one audience, channel and language."""

    text: str
    subject: str | None = None
    html: str | None = None


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str = ""
    html: str | None = None


class TemplateProblem(Exception):
    """A template that cannot be used: a syntax error, an unknown variable, a sandbox refusal."""


def check_parts(parts: TemplateParts) -> list[str]:
    """Problems of a template, worded for the person editing it (empty when it is fine)."""
    problems: list[str] = []
    for name in PARTS:
        source = getattr(parts, name)
        if source is None:
            continue
        try:
            tree = _environment(name == "html").parse(source)
        except TemplateError as exc:
            number = getattr(exc, "lineno", None)
            line = f" (line {number})" if number else ""
            problems.append(f"{name}: {exc.message}{line}")
            continue
        private = sorted(
            {node.attr for node in tree.find_all(nodes.Getattr) if node.attr.startswith("_")}
            | {
                str(node.arg.value)
                for node in tree.find_all(nodes.Getitem)
                if isinstance(node.arg, nodes.Const) and str(node.arg.value).startswith("_")
            }
        )
        if private:
            problems.append(f"{name}: not allowed in a template: {', '.join(private)}")
            continue
        unknown = sorted(meta.find_undeclared_variables(tree) - set(VARIABLES) - {"a", "loop"})
        if unknown:
            problems.append(
                f"{name}: unknown variable {', '.join(unknown)}; available: {', '.join(VARIABLES)}"
            )
    if not problems:
        try:
            render(parts, sample_context())
        except TemplateProblem as exc:
            problems.append(str(exc))
    return problems


def render(parts: TemplateParts, context: Mapping[str, Any]) -> Rendered:
    """Render ``parts`` with ``context``; :class:`TemplateProblem` when the template fails."""
    try:
        text = _compiled(parts.text, False).render(context)
        subject = _compiled(parts.subject, False).render(context) if parts.subject else ""
        page = _compiled(parts.html, True).render(context) if parts.html else None
    except SecurityError as exc:
        raise TemplateProblem(f"not allowed in a template: {exc}") from None
    except TemplateError as exc:
        raise TemplateProblem(f"the template does not render: {exc}") from None
    except Exception as exc:
        raise TemplateProblem(
            f"the template does not render: {type(exc).__name__}: {exc}"
        ) from None
    return Rendered(text=_tidy(text), subject=" ".join(subject.split()), html=page)


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, no blank lines at either end."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out)


_URL = re.compile(r"(https?://[^\s<>\"']+)")


def text_to_html(text: str) -> str:
    """An HTML body for an e-mail that has only text: paragraphs, line breaks, links."""
    paragraphs = []
    for block in text.split("\n\n"):
        escaped = html.escape(block)
        linked = _URL.sub(r'<a href="\1">\1</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    body = "\n".join(paragraphs)
    return (
        '<!doctype html><html><body style="font-family: Arial, Helvetica, sans-serif; '
        f'font-size: 15px; line-height: 1.5; color: #1f2933">\n{body}\n</body></html>'
    )


# --- the shipped templates -----------------------------------------------------------------------


def _yaml() -> YAML:
    return YAML(typ="safe", pure=True)


_FILES: dict[Path, tuple[float, dict[str, Any]]] = {}


def read_template_file(path: Path) -> dict[str, Any]:
    """A template file's content (audience -> channel -> parts), read again when it changes."""
    modified = path.stat().st_mtime
    cached = _FILES.get(path)
    if cached is None or cached[0] != modified:
        data: dict[str, Any] = _yaml().load(path.read_text(encoding="utf-8")) or {}
        cached = _FILES[path] = (modified, data)
    return cached[1]


def locale_chain(locale: str, fallback: str) -> list[str]:
    """The languages to try, in order: ``fr_CA`` -> ``fr_CA``, ``fr``, the fallback, ``en``."""
    chain = [
        locale,
        locale.split("_", maxsplit=1)[0],
        fallback,
        fallback.split("_", maxsplit=1)[0],
        "en",
    ]
    return list(dict.fromkeys(c for c in chain if c))


def file_template(
    folders: Iterable[Path], name: str, audience: str, channel: str, locale: str, fallback: str
) -> TemplateParts | None:
    """The template ``name`` from the first folder that has it, in the best language available.

    A staff message without a staff version uses the client version.
    """
    for folder in folders:
        base = folder / name
        if not base.is_dir():
            continue
        for candidate in locale_chain(locale, fallback):
            path = base / f"{candidate}.yaml"
            if not path.is_file():
                continue
            content = read_template_file(path)
            for who in (audience, "client") if audience != "client" else ("client",):
                parts = (content.get(who) or {}).get(channel)
                if parts and parts.get("text"):
                    return TemplateParts(
                        text=parts["text"], subject=parts.get("subject"), html=parts.get("html")
                    )
    return None


def sample_context(locale: str = "fr") -> dict[str, Any]:
    """Values of every documented variable, to check and preview templates (dates and times
    written in ``locale``)."""
    from datetime import UTC, datetime, timedelta

    from bookwise.formatting import (
        format_clock,
        format_day,
        format_when,
        human_duration,
        zone_note,
    )

    zone = "Europe/Paris"
    start = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)
    end = start + timedelta(minutes=20)
    try:
        when = format_when(start, zone, locale)
    except Exception:  # an unknown locale: the preview still shows something readable
        locale = "en"
        when = format_when(start, zone, locale)
    return {
        "calendar": {
            "name": "Cabinet médical des Lilas",
            "address": "12 rue des Lilas, Paris",
            "phone": "+33 1 42 00 00 00",
            "reply_to": "secretariat@example.org",
        },
        "service": {
            "name": "Consultation",
            "duration": human_duration(end - start, locale),
        },
        "booking": {
            "start": when,
            "end": format_clock(end, zone, locale),
            "date": format_day(start.astimezone(_paris()), locale),
            "time": format_clock(start, zone, locale),
            "timezone": zone,
            "state": "confirmed",
            "location": "12 rue des Lilas, Paris",
            "meeting_url": "",
            "reference": "BW-7K2Q9A",
            "when": f"{when} \u2013 {format_clock(end, zone, locale)} ({zone_note(zone, start)})",
            "approved": False,
            "admin_url": "https://bookings.example.org/admin/bookings/42",
        },
        "previous": {
            "start": format_when(start - timedelta(days=1, hours=3, minutes=30), zone, locale)
        },
        "client": {"name": "Zoé Martin", "email": "zoe@example.org", "phone": "+33612345678"},
        "staff": {"name": "Dr Claire Moreau", "email": "c.moreau@example.org"},
        "manage_url": "https://bookings.example.org/manage/abc",
        "booking_url": "https://bookings.example.org/clinique-des-lilas/patient-visit",
        "reason": "",
        "answers": [{"label": "Motif", "value": "Contrôle annuel"}],
        "time_off": {
            "start": format_when(datetime(2026, 12, 24, 7, tzinfo=UTC), zone, locale),
            "end": format_when(datetime(2027, 1, 1, 18, tzinfo=UTC), zone, locale),
        },
        "invitation": {
            "accept_url": "https://bookings.example.org/staff/accept",
            "decline_url": "https://bookings.example.org/staff/decline",
        },
        "source": {
            "name": "outlook.office365.com/owa/calendar/.../calendar.ics",
            "since": format_when(datetime(2026, 12, 2, 8, tzinfo=UTC), zone, locale),
            "problem": "There is no calendar at this address any more (the server answered 404).",
            "admin_url": "https://bookings.example.org/admin/staff/7/",
        },
    }


def _paris() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Paris")
