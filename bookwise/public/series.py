"""The public pages of a series (issue 18): "Repeat: every week, N times" on the booking form,
each occurrence shown free or not before anything is booked, the series booked without the ones
not free, and the series' manage page (cancel one occurrence, or the rest). No JavaScript needed.

The booking form's own view (:func:`bookwise.public.views.book`) calls :func:`series_choice` and
:func:`book_series_step`; the manage link's views hand a series' token to
:func:`series_manage_page`, :func:`series_cancel` and :func:`series_calendar_file`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, g, redirect, render_template, request
from flask_babel import get_locale
from werkzeug.wrappers import Response as BaseResponse

from bookwise.bookings.ics import CalendarEvent, build_ics
from bookwise.bookings.messages import describe, state_name
from bookwise.bookings.models import BookingSeries
from bookwise.bookings.recurrence import Replacement, SeriesRequest
from bookwise.bookings.series import (
    MOVED,
    SKIPPED,
    OccurrenceCheck,
    SeriesConflict,
    book_series_from_answers,
    cancel_occurrences,
    find_series_by_manage_token,
    replacement_times,
    series_invitation,
    series_manage_token,
    series_occurrences,
)
from bookwise.bookings.services import BookingContext, BookingError, client_may_change
from bookwise.calendars.models import Calendar
from bookwise.db import unit_of_work
from bookwise.errors import N_, NotFound
from bookwise.formatting import format_day, format_when
from bookwise.i18n import format_locale, gettext
from bookwise.metrics import booking_made
from bookwise.public.forms import ActionForm, booking_request
from bookwise.timezones import sane
from bookwise.web import db_session, instance, now, plugin_host
from bookwise.workflows.language import Workflow
from bookwise.workflows.services import workflow_of

# How each frequency reads on the form ("Repeat: every week").
FREQUENCY_LABELS = {
    "weekly": N_("Every week"),
    "every_2_weeks": N_("Every 2 weeks"),
    "every_3_weeks": N_("Every 3 weeks"),
    "every_4_weeks": N_("Every 4 weeks"),
}
DEFAULT_COUNT = 4


@dataclass(frozen=True)
class PageParts:
    """What the public pages' views share and the series' pages use too (given by
    :mod:`bookwise.public.views`, which imports this module): their links, the calendar's page
    settings, the visitor's time zone and the service's card."""

    link: Callable[..., str]
    page_settings: Callable[[Calendar], None]
    zone: Callable[[Calendar], str]
    service_card: Callable[[BookingContext], dict[str, Any]]


@dataclass(frozen=True)
class SeriesChoice:
    """What the form asks: none (``frequency`` empty), or a series; ``problem`` when wrong."""

    frequency: str = ""
    count: int | None = None
    problem: str | None = None

    @property
    def wanted(self) -> bool:
        return bool(self.frequency) and self.problem is None


@dataclass
class SeriesStep:
    """What the booking form's post gave: the series' token once booked, else the occurrences to
    show (free or not) and a problem to say."""

    token: str | None = None
    preview: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None
    status: int = 200


def recurrence_menu(workflow: Workflow) -> dict[str, Any] | None:
    """The form's "Repeat" inputs: the frequencies offered, with their words, and the bounds."""
    if not workflow.recurrence.allowed:
        return None
    return {
        "frequencies": [(f, gettext(FREQUENCY_LABELS[f])) for f in workflow.recurrence.frequencies],
        "max": workflow.recurrence.max_occurrences,
        "default": min(DEFAULT_COUNT, workflow.recurrence.max_occurrences),
    }


def series_choice(workflow: Workflow, source: Any) -> SeriesChoice:
    """The "Repeat" inputs of the form (``repeat``, ``repeat_count``), checked."""
    frequency = str(source.get("repeat", "") or "")
    if not workflow.recurrence.allowed or not frequency:
        return SeriesChoice()
    most = workflow.recurrence.max_occurrences
    if frequency not in workflow.recurrence.frequencies:
        return SeriesChoice(frequency, None, gettext("Choose how often the booking repeats."))
    raw = str(source.get("repeat_count", "") or "").strip()
    count = int(raw) if raw.isdigit() and len(raw) < 4 else None
    if count is None or not 2 <= count <= most:
        problem = gettext("Choose how many times, from 2 to %(most)s.", most=most)
        return SeriesChoice(frequency, count, problem)
    return SeriesChoice(frequency, count)


def _preview(
    checks: list[OccurrenceCheck],
    zone: str,
    options: dict[datetime, list[datetime]] | None = None,
    chosen: dict[datetime, datetime] | None = None,
) -> list[dict[str, Any]]:
    """The occurrences as the form shows them; for each one not free, the times that could
    replace it (``options``), grouped by day, the client's choice (``chosen``) selected."""
    shown = []
    for index, check in enumerate(checks):
        item: dict[str, Any] = {
            "start": check.start.isoformat(),
            "label": format_when(check.start, zone, _formats()),
            "free": check.free,
            "index": index,
        }
        if not check.free and options is not None:
            picked = (chosen or {}).get(check.start)
            days: dict[str, list[dict[str, Any]]] = {}
            for start in options.get(check.start, []):
                day = format_day(start.astimezone(ZoneInfo(zone)).date(), _formats())
                days.setdefault(day, []).append(
                    {
                        "value": f"{check.start.isoformat()}/{start.isoformat()}",
                        "label": format_when(start, zone, _formats()),
                        "selected": start == picked,
                    }
                )
            item["days"] = list(days.items())
        shown.append(item)
    return shown


def _formats() -> Any:
    return format_locale()


def chosen_replacements(source: Any) -> dict[datetime, datetime] | None:
    """The replacements picked on the form (``replacement``: ``OCCURRENCE/START`` per time not
    free, empty to leave it out), by the occurrence they replace; None when one is not of that
    form (a tampered post)."""
    chosen: dict[datetime, datetime] = {}
    for value in source.getlist("replacement") if hasattr(source, "getlist") else []:
        if not value:
            continue
        replaces, _, start = str(value).partition("/")
        try:
            moments = datetime.fromisoformat(replaces), datetime.fromisoformat(start)
        except ValueError:
            return None
        if any(m.tzinfo is None or not sane(m) for m in moments) or moments[0] in chosen:
            return None
        chosen[moments[0]] = moments[1]
    return chosen


@dataclass(frozen=True)
class SeriesForm:
    """The booking form's state a series' step needs, as the booking form's view holds it."""

    context: BookingContext
    form: Any
    start: datetime
    zone: str
    staff_ids: list[int] | None
    staff: str | None
    answers: dict[str, Any] | None
    locale: str


def _show(step: SeriesForm, wanted: SeriesRequest, chosen: dict[datetime, datetime]) -> SeriesStep:
    """The occurrences, free or not, with the times that could replace those not free."""
    checks, options = replacement_times(
        db_session(),
        step.context,
        step.start,
        wanted,
        now(),
        staff_ids=step.staff_ids,
        answers=step.answers,
    )
    shown = SeriesStep(preview=_preview(checks, step.zone, options, chosen))
    if all(not c.free for c in checks) and not any(options.values()):
        shown.problem = gettext("None of these times is free. Please choose another time.")
        shown.status = 409
    return shown


def book_series_step(step: SeriesForm, choice: SeriesChoice, source: Any) -> SeriesStep:
    """The first post shows each occurrence, free or not, and for each one not free the times
    that could replace it (nothing written); the second books the series with the
    replacements picked, without the other occurrences the client saw were not free. One that
    stopped being free in between shows the occurrences again (409). Raises what booking
    raises."""
    assert choice.count is not None
    wanted = SeriesRequest(choice.frequency, choice.count)
    chosen = chosen_replacements(source)
    if chosen is None:
        shown = _show(step, wanted, {})
        shown.problem, shown.status = gettext("Choose a replacement from the list."), 422
        return shown
    if source.get("series_checked") != "1":
        return _show(step, wanted, chosen)
    seen = set()
    for value in str(source.get("series_skip", "")).split():
        try:
            seen.add(datetime.fromisoformat(value))
        except ValueError:
            continue
    workflow = step.context.workflow
    asked = booking_request(
        step.form,
        workflow,
        start=step.start,
        staff=step.staff if workflow.staff.client_chooses else None,
        locale=step.locale,
        timezone=step.zone,
        source="public",
    )
    series = SeriesRequest(
        choice.frequency,
        choice.count,
        skip_unavailable=True,
        replacements=tuple(Replacement(r, s) for r, s in chosen.items()),
        leave_out=frozenset(seen),
    )
    db_session().close()  # one connection at a time: the write below takes its own
    try:
        with unit_of_work(instance().database.sessions, write=True) as session:
            booked = book_series_from_answers(
                session,
                step.context.calendar.slug,
                workflow.id,
                asked,
                series,
                now(),
                plugins=plugin_host(),
            )
            token = series_manage_token(booked)
            made = len(booked.occurrences)
        booking_made("public", made)
        return SeriesStep(token=token)
    except SeriesConflict:
        shown = _show(step, wanted, chosen)
        shown.problem = gettext(
            "Some of these times were just taken. Nothing was booked; your answers are kept."
        )
        shown.status = 409
        return shown


# --- the series' manage link ---------------------------------------------------------------------


def _series(token: str, parts: PageParts) -> BookingSeries:
    series = find_series_by_manage_token(db_session(), token)
    parts.page_settings(series.calendar)
    g.noindex = True
    g.private = True
    return series


def _series_details(series: BookingSeries, parts: PageParts) -> dict[str, Any]:
    zone = parts.zone(series.calendar) if "tz" in request.args else series.timezone
    token = series_manage_token(series)
    occurrences = []
    for occurrence in series_occurrences(series):
        booking = occurrence.booking
        changeable = False
        state_label = gettext("Not booked (not free)")
        if occurrence.state == MOVED:
            state_label = gettext("Replaced by another time")
        if booking is not None:
            workflow = workflow_of(booking.workflow_version)
            changeable = client_may_change(workflow, booking, now())
            state = workflow.lifecycle.states.get(booking.state)
            state_label = state_name(
                state.label if state else {}, booking.state, str(get_locale()), gettext
            )
        occurrences.append(
            {
                "start": occurrence.start.isoformat(),
                "label": format_when(occurrence.start, zone, _formats()),
                "state": occurrence.state,
                "state_label": state_label,
                "skipped": occurrence.state in (SKIPPED, MOVED),
                "active": booking is not None and booking.holds_slot,
                "changeable": changeable,
                "staff": booking.staff_member.name if booking is not None else "",
            }
        )
    first = next((o.booking for o in series_occurrences(series) if o.booking), None)
    service = parts.service_card(_context_of(first)) if first is not None else None
    return {
        "token": token,
        "calendar": series.calendar,
        "service": service,
        "client": series.client.name,
        "frequency": gettext(FREQUENCY_LABELS.get(series.frequency, FREQUENCY_LABELS["weekly"])),
        "occurrences": occurrences,
        "active": any(o["active"] for o in occurrences),
        "rest": sum(1 for o in occurrences if o["changeable"]),
        "manage_url": f"{instance().settings.base_url}/manage/{token}",
        "zone": zone,
    }


def _context_of(booking: Any) -> BookingContext:
    from bookwise.bookings.services import context_of

    return context_of(booking)


NOTICES = {
    "booked": N_("Your series is booked. A confirmation is on its way to you."),
    "cancelled_one": N_("This occurrence has been cancelled."),
    "cancelled_rest": N_("The rest of the series has been cancelled."),
}


def series_manage_page(
    token: str, parts: PageParts, problem: str | None = None, status: int = 200
) -> Any:
    """The series' page: its occurrences, each with "cancel this one", and "cancel the rest"."""
    series = _series(token, parts)
    form = ActionForm(meta={"csrf_context": f"cancel:{series.uid}"})
    notice = NOTICES.get(request.args.get("done", ""))
    return render_template(
        "public/series.html",
        series=_series_details(series, parts),
        form=form,
        notice=gettext(notice) if notice else None,
        problem=problem,
    ), status


def series_booked(token: str, parts: PageParts) -> Any:
    """After booking a series: its page, saying so."""
    _series(token, parts)
    return redirect(parts.link("manage", token=token, done="booked"))


def series_cancel(token: str, parts: PageParts) -> Any:
    """Cancel one occurrence (``occurrence``: its start) or the rest (``rest``) of a series."""
    series = _series(token, parts)
    if request.method != "POST":
        return redirect(parts.link("manage", token=token))
    form = ActionForm(request.form, meta={"csrf_context": f"cancel:{series.uid}"})
    if not form.validate():
        problem = gettext("This form has expired. Reload the page and try again.")
        return series_manage_page(token, parts, problem, 409)
    occurrence: datetime | None = None
    if request.form.get("rest") != "1":
        try:
            occurrence = datetime.fromisoformat(str(request.form.get("occurrence", "")))
        except ValueError:
            return series_manage_page(token, parts, gettext("Choose an occurrence to cancel."), 422)
        if occurrence.tzinfo is None:
            return series_manage_page(token, parts, gettext("Choose an occurrence to cancel."), 422)
    db_session().close()  # one connection at a time: the write below takes its own
    try:
        with unit_of_work(instance().database.sessions, write=True) as session:
            cancel_occurrences(
                session,
                find_series_by_manage_token(session, token),
                now(),
                occurrence=occurrence,
                rest_from=now() if occurrence is None else None,
                plugins=plugin_host(),
            )
    except NotFound:
        return series_manage_page(token, parts, gettext("Choose an occurrence to cancel."), 422)
    except BookingError as refused:
        return series_manage_page(token, parts, describe(refused.code, gettext, refused.told), 409)
    done = "cancelled_rest" if occurrence is None else "cancelled_one"
    return redirect(parts.link("manage", token=token, done=done))


def series_calendar_file(token: str, parts: PageParts) -> BaseResponse:
    """The series as one .ics event (RRULE, EXDATEs), to add to a calendar."""
    series = _series(token, parts)
    first = next((b for b in series.occurrences), None)
    if first is None:
        raise NotFound("no such series")
    invitation = series_invitation(first)
    assert invitation is not None
    details = _series_details(series, parts)
    calendar = series.calendar
    name = details["service"]["name"] if details["service"] else calendar.name
    event = CalendarEvent(
        uid=invitation.uid,
        sequence=invitation.sequence,
        start=invitation.start,
        end=invitation.end,
        timezone=calendar.timezone,
        summary=f"{name} · {calendar.name}",
        description=gettext("Manage your booking: %(url)s", url=details["manage_url"]),
        organizer_name=calendar.name,
        organizer_email=calendar.reply_to or parseaddr(instance().settings.mail.sender)[1],
        status="CONFIRMED" if invitation.holds else "CANCELLED",
        stamp=now(),
        repeat=invitation.repeat,
    )
    response = Response(build_ics(event, "PUBLISH"), mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'attachment; filename="series.ics"'
    return response
