"""Seeing a scenario before publishing it: beside the preview of its booking form, the messages a
sample booking would get (a timeline: when, to whom, through which channel, in which language,
their subject and text), and a live preview that follows the structured editor as the user types.

The timeline is :func:`bookwise.notifications.simulation.simulate` (what ``bookwise simulate``
prints) worded for a business user: the sample booking starts next Monday at 10:00 in the
calendar's time zone, counted from the application's clock. A template that cannot be written is
a warning line of the timeline, never an error page.

This module imports :mod:`bookwise.admin.views.workflows` inside its functions: that module's view
class is built on :class:`PreviewMixin`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.units import format_unit
from flask import request, url_for
from flask_admin import expose
from flask_babel import get_locale, lazy_gettext

from bookwise.admin.base import AdminView
from bookwise.admin.display import channel_name, event_label
from bookwise.documents import DocumentError
from bookwise.errors import errors_only
from bookwise.formatting import format_when, human_duration
from bookwise.i18n import gettext, language_name
from bookwise.notifications.rendering import TemplateProblem
from bookwise.notifications.simulation import SimulatedMessage, simulate
from bookwise.notifications.templates import SHIPPED_TEMPLATES
from bookwise.web import instance, now
from bookwise.workflows.editing import load_map, write
from bookwise.workflows.language import Workflow
from bookwise.workflows.lifecycle import FOLLOW_UP, REMINDER, RESCHEDULED
from bookwise.workflows.services import latest_version

# Who a message goes to, as a business user says it; any other recipient is an address.
RECIPIENT_LABELS = {
    "client": lazy_gettext("The client"),
    "staff": lazy_gettext("The staff member"),
    "calendar_admins": lazy_gettext("The calendar's administrators"),
}
SAMPLE_TIME = time(10, 0)  # the sample booking: next Monday at 10:00


@dataclass(frozen=True)
class SampleBooking:
    """The booking the timeline follows: made at ``made``, starting at ``start`` in ``zone``; the
    client reads ``client_locale``, staff and other recipients the calendar's ``staff_locale``."""

    made: datetime
    start: datetime
    zone: str
    client_locale: str
    staff_locale: str


@dataclass(frozen=True)
class TimelineMessage:
    """One message of the timeline, in words (``when`` is empty for a message sent only if
    something happens, such as a cancellation)."""

    when: str
    moment: str
    recipient: str
    channel: str
    locale: str
    language: str
    subject: str
    text: str
    problem: str | None


@dataclass(frozen=True)
class Timeline:
    """The messages of a sample booking, as a preview shows them."""

    start: str  # the sample booking's start, in words
    messages: list[TimelineMessage] = field(default_factory=list)
    problem: str | None = None  # the messages could not be read at all


def next_monday(moment: datetime, zone: str) -> datetime:
    """Next Monday at 10:00 in ``zone`` after ``moment`` (a week later on a Monday), aware."""
    local = moment.astimezone(ZoneInfo(zone))
    days = (7 - local.weekday()) % 7 or 7
    return datetime.combine(local.date() + timedelta(days=days), SAMPLE_TIME, ZoneInfo(zone))


def sample_booking(
    made: datetime, zone: str, client_locale: str, staff_locale: str
) -> SampleBooking:
    """A booking made at ``made`` for next Monday at 10:00 in ``zone``."""
    return SampleBooking(made, next_monday(made, zone), zone, client_locale, staff_locale)


def message_timeline(
    workflow: Workflow,
    sample: SampleBooking,
    folders: Sequence[Path],
    channel_name: Callable[[str], str],
    event_name: Callable[[str], str],
) -> Timeline:
    """Every message of ``workflow`` for ``sample``, in time order (those sent only if something
    happens come last), worded in the request's language; ``channel_name`` and ``event_name``
    name a channel and a state in words."""
    ui = str(get_locale())
    start = format_when(sample.start, sample.zone, ui)
    try:
        by_locale = {
            code: simulate(workflow, sample.start, sample.zone, code, folders)
            for code in dict.fromkeys((sample.client_locale, sample.staff_locale))
        }
    except (DocumentError, TemplateProblem, OSError) as exc:
        return Timeline(start, problem=str(exc))
    dated: list[tuple[datetime | None, int, TimelineMessage]] = []
    # Each locale's simulation lists the same messages in the same order.
    for index, message in enumerate(by_locale[sample.client_locale]):
        locale = sample.client_locale if message.recipient == "client" else sample.staff_locale
        due = message.due or (sample.made if message.event == workflow.lifecycle.initial else None)
        when = format_when(due, sample.zone, ui) if due is not None else ""
        if message.held is not None and due is not None:
            when = gettext(
                "%(when)s (held for quiet hours; due %(due)s)",
                when=format_when(message.held, sample.zone, ui),
                due=when,
            )
            due = message.held
        moment = _moment(message, workflow, sample, ui, event_name)
        worded = _worded(by_locale[locale][index], when, moment, locale, ui, channel_name)
        dated.append((due, index, worded))
    dated.sort(key=lambda item: (item[0] is None, item[0] or sample.made, item[1]))
    return Timeline(start, [message for _due, _index, message in dated])


def _moment(
    message: SimulatedMessage,
    workflow: Workflow,
    sample: SampleBooking,
    ui: str,
    event_name: Callable[[str], str],
) -> str:
    """When a message goes, relative to the booking: "at booking", "24 hours before"."""
    if message.event == REMINDER and message.due is not None:
        return gettext("%(span)s before", span=_span(sample.start - message.due, ui))
    if message.event == FOLLOW_UP and message.due is not None:
        end = sample.start + workflow.duration
        return gettext("%(span)s after the end", span=_span(message.due - end, ui))
    if message.event == workflow.lifecycle.initial:
        return gettext("at booking")
    if message.event == RESCHEDULED:
        return gettext("if it is moved to another time")
    return gettext("if it becomes “%(state)s”", state=event_name(message.event))


def _span(value: timedelta, locale: str) -> str:
    """A delay as the author wrote it: "24 hours" (not "1 day") up to two days, whole hours."""
    minutes = int(value.total_seconds() // 60)
    if minutes % 60 == 0 and 0 < minutes <= 48 * 60:
        return str(format_unit(minutes // 60, "duration-hour", length="long", locale=locale))
    return human_duration(value, locale)


def _worded(
    message: SimulatedMessage,
    when: str,
    moment: str,
    locale: str,
    ui: str,
    channel_name: Callable[[str], str],
) -> TimelineMessage:
    rendered = message.rendered
    recipient = RECIPIENT_LABELS.get(message.recipient)
    return TimelineMessage(
        when=when,
        moment=moment,
        recipient=str(recipient) if recipient is not None else message.recipient,
        channel=channel_name(message.channel),
        locale=locale,
        language=language_name(locale, ui),
        subject=(rendered.subject or "") if rendered else "",
        text=rendered.text if rendered else "",
        problem=message.problem if rendered is None else None,
    )


def template_folders() -> list[Path]:
    """Where the instance's message templates are, as the workers read them."""
    return [instance().settings.templates_dir, SHIPPED_TEMPLATES]


def _form_problems(fields: Iterable[Any]) -> list[str]:
    """The messages of a posted form's inputs (rows included), each after its input's label."""
    problems: list[str] = []
    for field_ in fields:
        if hasattr(field_, "entries"):  # a list of rows
            problems += _form_problems(field_.entries)
        elif hasattr(field_, "form"):  # a row
            problems += _form_problems(field_.form)
        else:
            problems += [f"{field_.label.text}: {error}" for error in field_.errors]
    return problems


# --- the view ---------------------------------------------------------------------------------


class PreviewMixin(AdminView):
    """The scenarios view's previews (a base of
    :class:`~bookwise.admin.views.workflows.WorkflowsView`, whose helpers it calls: ``_record``,
    ``_editable``, ``_editor_form``, ``_check``, ``_preview_values``)."""

    def render(self, template: str, **kwargs: Any) -> Any:
        """Every page that shows a preview (the editors', the preview page, the live preview)
        shows its messages too: the timeline joins the preview the view built."""
        preview = kwargs.get("preview")
        if isinstance(preview, dict) and "workflow" in preview and "timeline" not in preview:
            kwargs["preview"] = {**preview, "timeline": self._timeline(preview)}
        return super().render(template, **kwargs)

    def _timeline(self, preview: dict[str, Any]) -> Timeline:
        calendar = self.calendar
        sample = sample_booking(
            now(), calendar.timezone, preview["locale"], calendar.default_locale
        )
        return message_timeline(
            preview["workflow"], sample, template_folders(), channel_name, event_label
        )

    @expose("/draft-preview", methods=("POST",))
    def draft_preview(self) -> Any:
        """The structured editor's form as it stands, previewed and saved nowhere: its script
        posts the form here as the user types (a hidden ``slug`` names the scenario edited)."""
        from bookwise.admin.views.workflows import scenario_results, values_of

        slug = request.form.get("slug", "")
        record = self._editable(slug) if slug else None
        if record is None:
            self.require(self.calendar.id, "admin", "preview a new workflow")
        version = latest_version(self.db, record.id) if record is not None else None
        source = version.source_text if version is not None else None
        try:
            definition = dict(load_map(source)) if source else {}
        except DocumentError as exc:
            return self._live(
                [
                    gettext(
                        "This version cannot be opened in the form: %(problem)s. Edit its YAML.",
                        problem=str(exc),
                    )
                ]
            )
        form = self._editor_form(None, definition, record is None, formdata=request.form)
        if not form.validate_on_submit():
            if form.csrf_token.errors:
                return self._live([gettext("The form expired; reload the page.")], 422)
            return self._live(_form_problems(form), 422)
        settings = instance().settings
        values = values_of(form, tuple(settings.locales))
        if record is not None:
            values.values["id"] = record.slug
        text = write(values, source, str(settings.default_locale))
        checked, problems = self._check(text, values["id"], record)
        if checked is None or errors_only(problems):
            return self._live([p.message for p in errors_only(problems)])
        action = url_for(".edit", slug=record.slug) if record else url_for(".create")
        return self._live(
            [],
            preview=self._preview_values(checked.workflow),
            action=action,
            checks=scenario_results(checked),  # listed under the timeline
        )

    def _live(self, problems: list[str], status: int = 200, **preview: Any) -> Any:
        return self.render(
            "bookwise_admin/workflows/_live_preview.html",
            live_fragment=True,
            problems=problems,
            **preview,
        ), status
