"""The pages clients see: a calendar's services, a service's free times, the booking form, the
confirmation, and the manage page (see, reschedule, cancel).

The same views serve ``/...`` and, registered a second time, ``/embed/...`` for iframes: there the
site's header and footer are left out and only the calendar's allowed sites may frame the page.
Everything works without JavaScript; ``static/booking.js`` only detects the visitor's time zone
and switches days without reloading.
"""

from __future__ import annotations

import json
import unicodedata
from calendar import Calendar as MonthCalendar
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from email.utils import parseaddr
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from flask import (
    Blueprint,
    Response,
    abort,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from wtforms import Form as PlainForm

from bookwise.availability.engine import Slot
from bookwise.availability.services import (
    SlotSearch,
    local_day_bounds,
    routed_pool,
    service_availability,
)
from bookwise.bookings.answers import InvalidAnswers, check_answers
from bookwise.bookings.ics import CalendarEvent, build_ics, event_status
from bookwise.bookings.messages import describe, series_position, state_name
from bookwise.bookings.models import Booking
from bookwise.bookings.series import occurrence_position, series_manage_token
from bookwise.bookings.services import (
    CONSENT_REFUSALS,
    BookingContext,
    BookingError,
    Busy,
    NotASlot,
    OutsideWindow,
    SlotTaken,
    book_from_answers,
    booked_answers,
    cancel_booking,
    change_deadline,
    client_may_change,
    context_of,
    find_by_manage_token,
    find_service,
    manage_token,
    reschedule_booking,
    routing_answers,
    routing_questions,
    withdraw_consent,
    withdrawal_cancels,
)
from bookwise.calendars.models import Calendar, Service
from bookwise.config import secret_key_of
from bookwise.db import unit_of_work
from bookwise.errors import NotFound
from bookwise.formatting import (
    format_clock,
    format_day,
    format_month,
    format_when,
    human_duration,
    utc_offset,
    weekday_names,
    zone_label,
    zone_note,
    zone_place,
)
from bookwise.i18n import format_locale, gettext, ngettext
from bookwise.metrics import booking_made
from bookwise.notifications.context import consent_version, manage_url
from bookwise.privacy.clients import erase_booking_client, export_booking_client, record_export
from bookwise.public.forms import (
    ASKED_INPUT,
    ROUTED_INPUT,
    ActionForm,
    answers_of,
    booking_form,
    booking_request,
    conditional_questions,
    mark_answer_problems,
    prefill,
    questions_asked,
    questions_seen,
    routed_answers,
    same_origin,
)
from bookwise.public.series import (
    PageParts,
    SeriesChoice,
    SeriesForm,
    SeriesStep,
    book_series_step,
    recurrence_menu,
    series_booked,
    series_calendar_file,
    series_cancel,
    series_choice,
    series_manage_page,
)
from bookwise.timezones import (
    FIRST_YEAR,
    LAST_YEAR,
    UTC_ZONE,
    canonical_zone,
    offered_zones,
    sane,
)
from bookwise.web import (
    csrf,
    db_session,
    instance,
    now,
    plugin_host,
    read_session,
    slot_cache,
)
from bookwise.workflows.language import Text, Workflow

blueprint = Blueprint("public", __name__, template_folder="templates")


# --- plumbing ------------------------------------------------------------------------------------


def embedded() -> bool:
    return request.blueprint == "embed"


def link(endpoint: str, **values: Any) -> str:
    """A URL to ``endpoint`` in the same mode (embedded or not) as the current page, carrying
    the language asked for (inside a frame, the language cookie may not come back)."""
    if "lang" in request.args and "lang" not in values:
        values["lang"] = request.args["lang"]
    return url_for(f"{request.blueprint}.{endpoint}", **{k: v for k, v in values.items() if v})


def locale() -> str:
    """The language of the request's text (``fr``): workflows are worded per language."""
    return str(get_locale())


def formats() -> Locale:
    """The locale the request's dates and times are written in (``fr_CA``): see
    :func:`bookwise.i18n.format_locale`."""
    return format_locale()


@blueprint.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"link": link, "embedded": embedded}


@blueprint.before_request
def _refuse_foreign_posts() -> None:
    if request.method == "POST" and not same_origin():
        abort(403)


def _published(slug: str) -> Calendar:
    calendar = db_session().scalar(
        select(Calendar)
        .where(Calendar.slug == slug, Calendar.published)
        .options(selectinload(Calendar.services).selectinload(Service.workflow))
    )
    if calendar is None:
        raise NotFound(slug)
    _page_settings(calendar)
    return calendar


def _page_settings(calendar: Calendar) -> None:
    """What this calendar asks of its pages: language fallback, indexing, framing."""
    g.calendar_locale = calendar.default_locale
    g.noindex = not calendar.search_indexing
    if embedded():
        g.frame_ancestors = list(calendar.embed_origins)


def _context(calendar_slug: str, service_slug: str) -> BookingContext:
    context = find_service(db_session(), calendar_slug, service_slug)
    _page_settings(context.calendar)
    return context


def _zone(calendar: Calendar) -> str:
    """The time zone the visitor sees: theirs (``tz``), unless the calendar shows its own."""
    if calendar.show_business_timezone:
        return calendar.timezone
    asked = request.args.get("tz") or request.form.get("tz")
    # A browser may report an alias (Asia/Calcutta): the page shows the zone's current name.
    return canonical_zone(asked) or calendar.timezone


def _region_names() -> dict[str, str]:
    """The first part of the zones' names, as the menu's groups call them."""
    return {
        "Africa": gettext("Africa"),
        "America": gettext("Americas"),
        "Antarctica": gettext("Antarctica"),
        "Arctic": gettext("Arctic"),
        "Asia": gettext("Asia"),
        "Atlantic": gettext("Atlantic Ocean"),
        "Australia": gettext("Australia"),
        "Europe": gettext("Europe"),
        "Indian": gettext("Indian Ocean"),
        "Pacific": gettext("Pacific Ocean"),
    }


@cache
def _zone_places(language: str) -> dict[str, str]:
    """Each offered zone's place ("Toronto, Canada"), named in ``language`` (Babel's CLDR data;
    kept, as it never changes while the process runs)."""
    return {
        zone: zone_place(zone, country, language) if country else "UTC"
        for zone, country in offered_zones().items()
    }


def _sort_key(text: str) -> str:
    """Alphabetical order that ignores accents and case ("É" among the "E")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _zone_menu(chosen: str, business: str, moment: datetime) -> list[dict[str, Any]]:
    """The time-zone menu: the visitor's zone (and the business's) first, then every offered
    zone grouped by region, each named by its place, in the visitor's language, with its
    offset at ``moment``. The values stay IANA names."""
    places = _zone_places(locale())

    def option(zone: str) -> dict[str, str]:
        place = places.get(zone) or zone.replace("_", " ")
        return {"value": zone, "label": f"{place} ({utc_offset(zone, moment)})"}

    first = list(dict.fromkeys([chosen, business]))
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for zone in offered_zones():
        if zone not in first and zone != UTC_ZONE:
            groups[zone.split("/", 1)[0]].append(option(zone))
    regions = _region_names()
    menu: list[dict[str, Any]] = [
        {"label": gettext("Suggested time zones"), "options": [option(z) for z in first]}
    ]
    for region in sorted(groups, key=lambda r: _sort_key(regions.get(r) or r)):
        menu.append(
            {
                "label": regions.get(region) or region,
                "options": sorted(groups[region], key=lambda o: _sort_key(o["label"])),
            }
        )
    if UTC_ZONE not in first:
        menu.append({"label": gettext("Universal time"), "options": [option(UTC_ZONE)]})
    return menu


def _may_book(calendar: Calendar) -> bool:
    return not calendar.sign_in_required or bool(current_user.is_authenticated)


def _service_card(context: BookingContext) -> dict[str, Any]:
    workflow, loc, fallback = context.workflow, locale(), context.calendar.default_locale
    return {
        "id": workflow.id,
        "name": workflow.name.get(loc, fallback),
        "description": workflow.description.get(loc, fallback),
        "duration": human_duration(workflow.duration, loc),
        "capacity": workflow.capacity,
        "location": workflow.location.type,
        "details": workflow.location.details.get(loc, fallback),
    }


@blueprint.after_app_request
def _page_headers(response: Response) -> Response:
    if g.get("noindex"):
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


# --- the calendar and its services ---------------------------------------------------------------


@blueprint.get("/")
def index() -> str:
    # Calendars that keep out of search engines are shared by their link, not listed here.
    calendars = db_session().scalars(
        select(Calendar).where(Calendar.published, Calendar.search_indexing).order_by(Calendar.name)
    )
    loc = locale()
    return render_template(
        "public/index.html",
        calendars=[
            {
                "slug": c.slug,
                "name": c.name,
                "description": Text.of(c.description).get(loc, c.default_locale),
            }
            for c in calendars
        ],
    )


@blueprint.get("/<slug>")
def calendar_page(slug: str) -> str:
    calendar = _published(slug)
    services = [
        _service_card(_context(slug, service.workflow.slug))
        for service in calendar.services
        if service.active
    ]
    return render_template(
        "public/calendar.html",
        calendar=calendar,
        description=Text.of(calendar.description).get(locale(), calendar.default_locale),
        services=services,
        may_book=_may_book(calendar),
    )


# --- choosing a time -----------------------------------------------------------------------------


@dataclass
class Picker:
    """What the time picker shows: a month of days, the chosen day's free times."""

    zone: str
    month: date
    day: date
    weeks: list[list[dict[str, Any]]]
    slots: list[dict[str, Any]]
    previous_month: date | None
    next_month: date | None
    first_free: date | None
    # With a waitlist: the chosen day's full times, each with its link to wait for it, and
    # whether the whole day is full (it has times, none free), so it may be waited for.
    full: list[dict[str, Any]] = field(default_factory=list)
    full_day: bool = False
    waitlist: bool = False

    @property
    def any_full_day(self) -> bool:
        """Whether a day of the month is full (shaded, to be waited for)."""
        return any(day.get("waitlist") for week in self.weeks for day in week)


def _day_param(name: str = "date") -> date | None:
    try:
        day = date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None
    return day if FIRST_YEAR <= day.year <= LAST_YEAR else None


def _slot_json(slot: Slot, zone: str, staff_id: int | None, group: bool) -> dict[str, Any]:
    remaining = slot.remaining_by_staff.get(staff_id, 0) if staff_id else slot.remaining
    return {
        "start": slot.start.astimezone(ZoneInfo(zone)).isoformat(),
        "label": format_clock(slot.start, zone, formats()),
        "remaining": remaining,
        "places": ngettext("%(num)d place left", "%(num)d places left", remaining) if group else "",
    }


def service_pool_members(context: BookingContext) -> list[Any]:
    from bookwise.availability.services import read_pool

    if "pool" not in g:
        g.pool = read_pool(db_session(), context.service, context.workflow)
    return list(g.pool)


# --- routing: the questions a workflow's ``route`` tests come before its times ------------------

# The hidden input of the routing questions' form, ROUTED_INPUT (bookwise.public.forms): present,
# the client has answered them.


@dataclass
class Routing:
    """The questions asked before the times of a workflow that routes by answer."""

    form: Any = None  # None: the workflow does not route
    answers: dict[str, Any] | None = None  # the checked answers; None: not (rightly) given yet
    params: dict[str, Any] | None = None  # the answers as the page's links carry them

    @property
    def ready(self) -> bool:
        """Whether the times can be shown: no routing, or the answers are given and right."""
        return self.form is None or self.answers is not None


def _routing(context: BookingContext) -> Routing:
    """The routing questions of the service page, filled from the query (``field_<id>``, the
    booking form's names, so the answers carry into it), checked once the client sent them."""
    workflow = context.workflow
    if not workflow.route:
        return Routing()
    questions = routing_questions(workflow)
    part = replace(workflow, fields=questions, consent=None, notifications=())
    form_class = booking_form(part, locale(), context.calendar.default_locale, base=PlainForm)
    form = form_class(request.args)
    if ROUTED_INPUT not in request.args:
        return Routing(form)
    names = [f"field_{q.id}" for q in questions]
    params: dict[str, Any] = {ROUTED_INPUT: "1"}
    params |= {name: request.args.getlist(name)[:50] for name in names if name in request.args}
    try:
        answers = routing_answers(
            workflow,
            {q.id: form[f"field_{q.id}"].data for q in questions},
            now().date(),
            field_types=plugin_host().field_types,
        )
    except InvalidAnswers as invalid:
        mark_answer_problems(form, invalid, format_date=_local_date)
        return Routing(form, None, params)
    return Routing(form, answers, params)


def _picker(
    context: BookingContext,
    zone: str,
    staff: str | None,
    exclude_booking: int | None = None,
    answers: dict[str, Any] | None = None,
    waitlist_href: Callable[[str], str] | None = None,
    full_month: bool = True,
) -> Picker:
    """Free times of the month around ``?date=`` in ``zone``, for one staff member or any, of
    the staff ``answers`` route to. ``waitlist_href`` (a workflow with a waitlist): the full
    times and days are told too (see :func:`_full_times`), each linked to its waitlist: of the
    whole month, or (``full_month=False``, for an answer that tells one day) of the chosen day
    only, which costs a search of one day instead of the month's."""
    tz = ZoneInfo(zone)
    today = now().astimezone(tz).date()
    last = (now() + context.workflow.max_ahead).astimezone(tz).date()
    asked = _day_param() or today
    asked = min(max(asked, today), last)
    staff_ids = None
    members = {m.slug: m for m in service_pool_members(context)}
    if staff in members:
        staff_ids = [members[staff].id]

    def month_slots(month: date) -> tuple[date, dict[date, list[Slot]]]:
        """The month's last day and its free times by day (from today on)."""
        first = max(month, today)
        month_end = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        by_day: dict[date, list[Slot]] = defaultdict(list)
        if first <= min(month_end, last):
            found = service_availability(
                read_session(),  # the replica's, when there is one
                context.calendar,
                context.service,
                context.workflow,
                *local_day_bounds(first, min(month_end, last), tz),
                now(),
                SlotSearch(
                    staff_ids=staff_ids,
                    exclude_booking=exclude_booking,
                    answers=answers,
                    cache=slot_cache(),
                ),
            )
            for slot in found.slots:
                by_day[slot.start.astimezone(tz).date()].append(slot)
        return month_end, by_day

    month = asked.replace(day=1)
    month_end, by_day = month_slots(month)
    if not by_day and _day_param() is None and month_end < last:
        # Nothing left this month (the evening of its last day, say): open on the next one
        # rather than on an empty month, unless the visitor asked for this month.
        month = month_end + timedelta(days=1)
        month_end, by_day = month_slots(month)
        asked = month
    free_days = sorted(by_day)
    day = asked if asked in by_day or _day_param() else (free_days[0] if free_days else asked)
    full_by_day: dict[date, list[Slot]] = {}
    if waitlist_href is not None:
        first, end = (month, month_end) if full_month else (day, day)
        full_by_day = _full_times(
            context, tz, max(first, today), min(end, last), by_day, staff_ids, answers
        )
    weeks = []
    for week in MonthCalendar().monthdatescalendar(month.year, month.month):
        weeks.append(
            [
                {
                    "date": d,
                    "label": d.day,
                    "in_month": d.month == month.month,
                    "free": d in by_day,
                    # Every time taken: a day that may be waited for (a link of its own).
                    "waitlist": d not in by_day and d in full_by_day and d.month == month.month,
                    "selected": d == day,
                    "past": d < today or d > last,
                    "full": format_day(d, formats()) if d.month == month.month else "",
                }
                for d in week
            ]
        )
    previous_month = (month - timedelta(days=1)).replace(day=1)
    next_month = month_end + timedelta(days=1)
    return Picker(
        zone=zone,
        month=month,
        day=day,
        weeks=weeks,
        slots=[
            _slot_json(s, zone, staff_ids[0] if staff_ids else None, context.workflow.is_group)
            for s in by_day.get(day, [])
        ],
        previous_month=previous_month
        if month_end >= today and month > today.replace(day=1)
        else None,
        next_month=next_month if next_month <= last else None,
        first_free=free_days[0] if free_days else None,
        full=[
            {
                "start": (moment := s.start.astimezone(tz).isoformat()),
                "label": format_clock(s.start, zone, formats()),
                "href": waitlist_href(moment),
            }
            for s in full_by_day.get(day, [])
            if waitlist_href is not None
        ],
        full_day=day not in by_day and day in full_by_day,
        waitlist=waitlist_href is not None,
    )


def _full_times(
    context: BookingContext,
    tz: ZoneInfo,
    first: date,
    last: date,
    shown: dict[date, list[Slot]],
    staff_ids: list[int] | None,
    answers: dict[str, Any] | None,
) -> dict[date, list[Slot]]:
    """By local day from ``first`` to ``last``: the times the service would offer were nothing
    booked, and that no one of the (routed) pool can take now: the times a client may wait for.
    A time another staff member than the one chosen still has free is not full (``shown``
    holds the free times of the pool when no one is chosen)."""
    if first > last:
        return {}
    bounds = local_day_bounds(first, last, tz)

    def slots(search: SlotSearch) -> list[Slot]:
        calendar, service, workflow = context.calendar, context.service, context.workflow
        return service_availability(
            read_session(), calendar, service, workflow, *bounds, now(), search
        ).slots

    if staff_ids is None:
        free = {s.start for day_slots in shown.values() for s in day_slots}
    else:
        free = {s.start for s in slots(SlotSearch(answers=answers, cache=slot_cache()))}
    full: dict[date, list[Slot]] = defaultdict(list)
    for slot in slots(SlotSearch(answers=answers, ignore_bookings=True, cache=slot_cache())):
        if slot.start not in free:
            full[slot.start.astimezone(tz).date()].append(slot)
    return full


def _picker_page_values(context: BookingContext, picker: Picker) -> dict[str, Any]:
    loc = formats()
    return {
        "picker": picker,
        "first_free_label": format_day(picker.first_free, loc) if picker.first_free else "",
        "month_label": format_month(picker.month, loc),
        "day_label": format_day(picker.day, loc),
        "weekdays": weekday_names(loc),
        "zone_menu": _zone_menu(picker.zone, context.calendar.timezone, now()),
        "zone_label": zone_label(picker.zone, now()),
        "business_zone_only": context.calendar.show_business_timezone,
    }


@blueprint.get("/<calendar_slug>/<service_slug>")
def service_page(calendar_slug: str, service_slug: str) -> str:
    context = _context(calendar_slug, service_slug)
    zone = _zone(context.calendar)
    workflow = context.workflow
    staff = _chosen_staff(context, request.args.get("staff"))
    members = service_pool_members(context) if workflow.staff.client_chooses else []
    routing = _routing(context)
    carried = routing.params or {}
    if routing.answers is not None:
        members = routed_pool(members, workflow, routing.answers)[0]
    picker_values: dict[str, Any] = {"picker": None}
    if routing.ready:
        picker = _picker(
            context,
            zone,
            staff,
            answers=routing.answers,
            waitlist_href=_waitlist_href(context, zone, carried),
        )
        picker_values = _picker_page_values(context, picker)

    def slot_href(start: str) -> str:
        return link(
            "book",
            calendar_slug=calendar_slug,
            service_slug=service_slug,
            start=start,
            tz=zone,
            staff=staff,
            **carried,
        )

    return render_template(
        "public/service.html",
        slot_href=slot_href,
        times_url=link(
            "day_times",
            calendar_slug=calendar_slug,
            service_slug=service_slug,
            tz=zone,
            staff=staff,
            **carried,
        ),
        calendar=context.calendar,
        service=_service_card(context),
        routing=routing,
        routed_input=ROUTED_INPUT,
        carried=carried,
        members=members,
        staff=staff,
        tz=zone,
        detect_zone="tz" not in request.args and not context.calendar.show_business_timezone,
        may_book=_may_book(context.calendar),
        notice=gettext("That time is no longer available. Please pick another.")
        if request.args.get("notice") == "unavailable"
        else None,
        # A day whose every time is taken may be waited for (bookwise.public.waitlist).
        # (With one time that day, waiting for it is waiting for the day: one link.)
        waitlist_day=picker_values["picker"].day.isoformat()
        if picker_values["picker"] is not None
        and picker_values["picker"].full_day
        and len(picker_values["picker"].full) > 1
        else None,
        **picker_values,
    )


@blueprint.get("/<calendar_slug>/<service_slug>/times")
def day_times(calendar_slug: str, service_slug: str) -> Response:
    """The free times of one day, for the picker's script (the page works without it)."""
    context = _context(calendar_slug, service_slug)
    zone = _zone(context.calendar)
    routing = _routing(context)
    if not routing.ready:
        message = gettext("Answer the questions above the times first.")
        return make_response(jsonify(error={"code": "answers_needed", "message": message}), 422)
    staff = _chosen_staff(context, request.args.get("staff"))
    picker = _picker(
        context,
        zone,
        staff,
        answers=routing.answers,
        waitlist_href=_waitlist_href(context, zone, routing.params or {}),
        full_month=False,  # the answer tells the day's full times, not the month's days
    )
    return jsonify(
        day=picker.day.isoformat(),
        label=format_day(picker.day, formats()),
        slots=picker.slots,
        full=picker.full,
    )


def _waitlist_href(
    context: BookingContext, zone: str, carried: dict[str, Any]
) -> Callable[[str], str] | None:
    """The link that waits for a full time, when the workflow has a waitlist."""
    if not context.workflow.waitlist_enabled:
        return None

    def href(start: str) -> str:
        return link(
            "waitlist_join",
            calendar_slug=context.calendar.slug,
            service_slug=context.workflow.id,
            start=start,
            tz=zone,
            **carried,
        )

    return href


# --- the booking form ----------------------------------------------------------------------------


def _parse_start(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None and sane(moment) else None


def _when(moment: datetime, zone: str, business_zone: str) -> dict[str, str]:
    """A time as the visitor reads it; ``visitor_zoned`` for a sentence, with the zone when the
    visitor's is not the business's."""
    loc = formats()
    visitor = format_when(moment, zone, loc)
    return {
        "visitor": visitor,
        "visitor_zoned": f"{visitor} ({zone_note(zone, moment)})"
        if zone != business_zone
        else visitor,
        "visitor_zone": zone_label(zone, moment),
        "visitor_zone_note": zone_note(zone, moment),
        "business": format_when(moment, business_zone, loc) if zone != business_zone else "",
        "business_zone": zone_label(business_zone, moment),
    }


@blueprint.route("/<calendar_slug>/<service_slug>/book", methods=["GET", "POST"])
@csrf.exempt  # public forms carry their own signed token (see bookwise.public.forms)
def book(calendar_slug: str, service_slug: str) -> Any:
    context = _context(calendar_slug, service_slug)
    calendar, workflow = context.calendar, context.workflow
    if not _may_book(calendar):
        return redirect(url_for("accounts.login", next=request.full_path))
    g.private = True
    zone = _zone(calendar)
    posted = request.method == "POST"
    source = request.form if posted else request.args
    staff = _chosen_staff(context, source.get("staff"))
    taken = _parse_start(source.get("taken"))  # the time lost in a race, when choosing another
    start = _parse_start(source.get("start"))
    form_class = booking_form(workflow, locale(), calendar.default_locale)
    form = form_class(
        request.form if posted else None,
        meta={"csrf_context": f"book:{calendar.slug}/{workflow.id}"},
        data={"start": start.isoformat() if start else "", "tz": zone, "staff": staff or ""},
    )
    # The answers the link carries (the routing questions, answered before the times) fill the
    # form; the routing answers then choose the times this page and its links offer.
    prefilled = [] if posted else prefill(form, workflow, request.args)
    answers, carried = routed_answers(
        form, workflow, now().date(), field_types=plugin_host().field_types
    )

    def back(**values: Any) -> str:
        return link(
            "service_page",
            calendar_slug=calendar_slug,
            service_slug=service_slug,
            tz=zone,
            staff=staff,
            **carried,
            **values,
        )

    if start is None and taken is None:
        return redirect(back())
    if not posted and not _still_free(context, start, staff, answers):
        day = start.astimezone(ZoneInfo(zone)).date().isoformat() if start else None
        return redirect(back(date=day, notice="unavailable") if day else back())
    problem: str | None = None
    alternatives: list[dict[str, Any]] = []
    more_questions: list[str] = []  # asked on a second step: they apply, the client never saw them
    status = 200
    # A series (issue 18): "Repeat" chosen on the form; its occurrences, once checked.
    repeat = series_choice(workflow, source) if posted else SeriesChoice()
    series_preview: list[dict[str, Any]] = []
    if prefilled and _mark_prefilled_problems(context, form, prefilled):
        problem = gettext("Please correct the answers marked below.")
    if posted:
        db_session().close()  # one connection at a time: the write below takes its own
        if not form.validate():
            problem, status = gettext("This form has expired. Reload the page and try again."), 422
        elif start is None:
            problem, status = gettext("Please choose one of the times below."), 422
            alternatives = _alternatives(context, taken or now(), zone, staff, answers)
        elif more_questions := _not_yet_seen(workflow, form):
            # Nothing is written: the form comes back with them, every answer kept.
            problem, status = _ask_more_questions(context, form, more_questions, problem, status)
        else:
            try:
                step = _book_or_check(context, form, start, zone, staff, answers, repeat, source)
                token, series_preview, problem, status = (
                    step.token,
                    step.preview,
                    step.problem,
                    step.status,
                )
            except InvalidAnswers as invalid:
                mark_answer_problems(form, invalid, format_date=_local_date)
                problem, status = gettext("Please correct the answers marked below."), 422
            except (SlotTaken, NotASlot, OutsideWindow) as lost:
                alternatives, status = _alternatives(context, start, zone, staff, answers), 409
                problem = _lost_time(context, lost, start, staff, answers)
                problem += " " + gettext("Your answers are kept.")
                taken, start = start, None
            except BookingError as refused:
                # Busy: nothing was written, sending the same form again may well work.
                problem = describe(refused.code, gettext, refused.told)
                status = 503 if isinstance(refused, Busy) else 409
            else:
                if token is not None:
                    return redirect(link("confirmation", token=token, tz=zone))
    shown = start or taken
    assert shown is not None
    members = {m.slug: m.name for m in service_pool_members(context)}
    return render_template(
        "public/book.html",
        calendar=calendar,
        service=_service_card(context),
        form=form,
        workflow=workflow,
        start=shown,
        taken=taken,
        start_day=shown.astimezone(ZoneInfo(zone)).date().isoformat(),
        when=_when(shown, zone, calendar.timezone),
        tz=zone,
        staff=staff,
        staff_name=members.get(staff or ""),
        carried=carried,
        problem=problem,
        alternatives=alternatives,
        conditional=conditional_questions(workflow),
        asked=_asked_on_page(workflow, form),
        more_questions=more_questions,
        asked_input=ASKED_INPUT,
        request_only=workflow.lifecycle.needs_approval,
        consent_link=workflow.consent.link.get(locale(), calendar.default_locale)
        if workflow.consent
        else "",
        recurrence=recurrence_menu(workflow),
        repeat=repeat,
        series_preview=series_preview,
    ), status


def _ask_more_questions(
    context: BookingContext, form: Any, more_questions: list[str], problem: str | None, status: int
) -> tuple[str | None, int]:
    """The questions that came to apply, asked on a second step: their problems, or the focus
    on the first of them."""
    if _mark_other_problems(context, form, more_questions):
        return gettext("Please correct the answers marked below."), 422
    if form[f"field_{more_questions[0]}"].type != "SelectMultipleField":
        _focus(form[f"field_{more_questions[0]}"])
    return problem, status


def _series_parts() -> PageParts:
    """What the series' pages (bookwise.public.series) share with these views."""
    return PageParts(link, _page_settings, _zone, _service_card)


def _book_or_check(
    context: BookingContext,
    form: Any,
    start: datetime,
    zone: str,
    staff: str | None,
    answers: dict[str, Any] | None,
    repeat: SeriesChoice,
    source: Any,
) -> SeriesStep:
    """Book the time; or, for a series (issue 18), show its occurrences first, then book it."""
    if repeat.problem:
        return SeriesStep(problem=repeat.problem, status=422)
    if not repeat.frequency:
        return SeriesStep(token=_create(context, form, start, zone, staff))
    members = {m.slug: m.id for m in service_pool_members(context)}
    staff_ids = [members[staff]] if staff in members else None
    step = SeriesForm(context, form, start, zone, staff_ids, staff, answers, locale())
    return book_series_step(step, repeat, source)


def _mark_prefilled_problems(context: BookingContext, form: Any, prefilled: list[str]) -> bool:
    """Check the answers a link filled in as a posted form's are checked, and mark the problems
    of those (not of the questions the client has yet to answer); whether there were any."""
    workflow = context.workflow
    try:
        check_answers(
            workflow,
            answers_of(form, workflow),
            None,
            now().date(),
            field_types=plugin_host().field_types,
        )
    except InvalidAnswers as invalid:
        for key in set(invalid.problems) - set(prefilled):
            del invalid.problems[key]
        mark_answer_problems(form, invalid, format_date=_local_date)
        return bool(invalid.problems)
    return False


def _lost_time(
    context: BookingContext,
    lost: BookingError,
    start: datetime,
    staff: str | None,
    answers: dict[str, Any] | None,
) -> str:
    """Why the chosen time could not be booked. A time free for the service but not for the
    staff the answers route to (the client changed an answer on the form) is said so: "just
    taken" would not be true."""
    routing_only = answers is not None and not isinstance(lost, OutsideWindow)
    if routing_only and _still_free(context, start, staff):
        return gettext(
            "No one who takes bookings with these answers is free at this time. "
            "Please pick another time."
        )
    return describe(lost.code, gettext)


def _not_yet_seen(workflow: Workflow, form: Any) -> list[str]:
    """The conditional questions the posted answers make apply that were not on the client's
    page (hidden there, the page's script off), in the form's order."""
    new = questions_asked(form, workflow) - questions_seen(request.form.get(ASKED_INPUT), workflow)
    return [fid for fid in conditional_questions(workflow) if fid in new]


def _mark_other_problems(context: BookingContext, form: Any, more_questions: list[str]) -> bool:
    """Mark the problems of the answers given so far (not of the questions just added: the
    client has not seen them), so that the second step also says what to correct; whether
    there were any."""
    workflow = context.workflow
    try:
        check_answers(
            workflow,
            answers_of(form, workflow),
            bool(form.consent.data) if workflow.consent else None,
            now().date(),
            field_types=plugin_host().field_types,
        )
    except InvalidAnswers as invalid:
        for fid in more_questions:
            invalid.problems.pop(fid, None)
        mark_answer_problems(form, invalid, format_date=_local_date)
        return bool(invalid.problems)
    return False


def _focus(field: Any) -> None:
    # A new dict: the field's render_kw may be the one its form class was built with.
    field.render_kw = {**(field.render_kw or {}), "autofocus": True}


def _asked_on_page(workflow: Workflow, form: Any) -> list[str]:
    """The conditional questions the page shows, in order: those that apply to its answers, and
    any marked with a problem (a question the client must correct is never hidden)."""
    applies = questions_asked(form, workflow)
    return [
        fid
        for fid in conditional_questions(workflow)
        if fid in applies or form[f"field_{fid}"].errors
    ]


def _chosen_staff(context: BookingContext, asked: str | None) -> str | None:
    """The staff member the client chose: only when the workflow lets them, and one who works
    for this service (anything else is ignored, so no one's time can be probed)."""
    if not asked or not context.workflow.staff.client_chooses:
        return None
    return asked if asked in {m.slug for m in service_pool_members(context)} else None


def _still_free(
    context: BookingContext,
    start: datetime | None,
    staff: str | None,
    answers: dict[str, Any] | None = None,
) -> bool:
    """Whether ``start`` is still offered (to the staff ``answers`` route to, when given)."""
    if start is None:
        return False
    members = {m.slug: m.id for m in service_pool_members(context)}
    found = service_availability(
        db_session(),
        context.calendar,
        context.service,
        context.workflow,
        start,
        start + timedelta(seconds=1),
        now(),
        SlotSearch(staff_ids=[members[staff]] if staff in members else None, answers=answers),
    )
    return any(slot.start == start for slot in found.slots)


def _local_date(value: str) -> str:
    return format_day(date.fromisoformat(value), formats())


def _create(
    context: BookingContext, form: Any, start: datetime, zone: str, staff: str | None
) -> str:
    workflow = context.workflow
    request_ = booking_request(
        form,
        workflow,
        start=start,
        staff=staff if workflow.staff.client_chooses else None,
        locale=locale(),
        timezone=zone,
        source="public",
    )
    with unit_of_work(instance().database.sessions, write=True) as session:
        booking = book_from_answers(
            session, context.calendar.slug, workflow.id, request_, now(), plugins=plugin_host()
        )
        token = manage_token(booking)
    booking_made("public")
    return token


def _alternatives(
    context: BookingContext,
    start: datetime,
    zone: str,
    staff: str | None,
    answers: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The other free times of that day (of the staff ``answers`` route to), to choose one
    without losing the answers."""
    db_session().close()  # a fresh read, after the transaction that lost the race
    tz = ZoneInfo(zone)
    day = start.astimezone(tz).date()
    members = {m.slug: m.id for m in service_pool_members(context)}
    found = service_availability(
        db_session(),
        context.calendar,
        context.service,
        context.workflow,
        *local_day_bounds(day, day, tz),
        now(),
        SlotSearch(staff_ids=[members[staff]] if staff in members else None, answers=answers),
    )
    return [
        {
            "start": s.start.astimezone(tz).isoformat(),
            "label": format_when(s.start, zone, formats()),
        }
        for s in found.slots[:24]
    ]


# --- after booking: confirmation, manage, calendar file ------------------------------------------


def _booking(token: str) -> Booking:
    booking = find_by_manage_token(db_session(), token)
    _page_settings(booking.calendar)
    g.noindex = True  # a client's own page is never for search engines
    g.private = True  # nor for any cache: names, times, a secret link (see bookwise.app)
    return booking


def _details(booking: Booking) -> dict[str, Any]:
    context = context_of(booking)
    workflow, calendar, loc, fmt = context.workflow, booking.calendar, locale(), formats()
    zone = _zone(calendar) if "tz" in request.args else booking.timezone
    deadline = change_deadline(workflow, booking)
    changeable = client_may_change(workflow, booking, now())
    location = workflow.location
    state = workflow.lifecycle.states.get(booking.state)
    token = manage_token(booking)
    return {
        "service": _service_card(context),
        "calendar": calendar,
        "when": _when(booking.start_at, zone, calendar.timezone),
        "end": format_clock(booking.end_at, zone, fmt),
        "duration": human_duration(workflow.duration, loc),
        "staff": booking.staff_member.name,
        "state": booking.state,
        "state_label": state_name(state.label if state else {}, booking.state, loc, gettext),
        "awaiting": booking.state == workflow.lifecycle.initial
        and workflow.lifecycle.needs_approval,
        "active": booking.holds_slot,
        "cancelled": booking.state == "cancelled",
        "location_type": location.type,
        "address": location.address.get(loc, calendar.default_locale) or calendar.address or "",
        "details": location.details.get(loc, calendar.default_locale),
        "meeting_url": booking.meeting_url or location.url or "",
        "phone": calendar.phone or "",
        "changeable": changeable,
        "too_late": workflow.cancellation_allowed
        and booking.holds_slot
        and not changeable
        and not workflow.lifecycle.is_final(booking.state),
        "cancellable_online": workflow.cancellation_allowed,
        "deadline": format_when(deadline, zone, fmt),
        "client": booking.client.name,
        "token": token,
        "manage_url": manage_url(instance().settings, booking),
        "group": workflow.capacity > 1,
        "zone": zone,
        "consent": _consent_details(booking, zone),
        "series": _series_of(booking),
    }


def _series_of(booking: Booking) -> dict[str, str] | None:
    """An occurrence of a series: where it stands in it, and the series' page (issue 18)."""
    found = occurrence_position(booking)
    if found is None:
        return None
    series, index, count = found
    return {
        "position": series_position(series.frequency, index, count, gettext),
        "url": link("manage", token=series_manage_token(series)),
    }


@blueprint.get("/manage/<token>/booked")
def confirmation(token: str) -> Any:
    try:
        booking = _booking(token)
    except NotFound:  # a series' token (issue 18): its page says it is booked
        return series_booked(token, _series_parts())
    if not booking.holds_slot:  # cancelled or declined since: the manage page says so
        return redirect(link("manage", token=token))
    return render_template(
        "public/booking.html", booking=_details(booking), confirmation=True, notice=None
    )


@blueprint.get("/manage/<token>")
def manage(token: str) -> Any:
    try:
        booking = _booking(token)
    except NotFound:  # a series' token (issue 18)
        return series_manage_page(token, _series_parts())
    notice = {
        "rescheduled": gettext("Your booking has been moved."),
        "cancelled": gettext("Your booking has been cancelled."),
        "withdrawn": gettext("Your consent has been withdrawn."),
        "withdrawn_cancelled": gettext(
            "Your consent has been withdrawn, and so your booking has been cancelled."
        ),
    }.get(request.args.get("done", ""))
    return render_template(
        "public/booking.html", booking=_details(booking), confirmation=False, notice=notice
    )


@blueprint.get("/manage/<token>/booking.ics")
def calendar_file(token: str) -> Response:
    try:
        booking = _booking(token)
    except NotFound:  # a series' token (issue 18)
        return series_calendar_file(token, _series_parts())  # type: ignore[return-value]
    details = _details(booking)
    calendar = booking.calendar
    event = CalendarEvent(
        uid=f"{booking.uid}@bookwise",
        sequence=booking.sequence,
        start=booking.start_at,
        end=booking.end_at,
        timezone=calendar.timezone,
        summary=f"{details['service']['name']} · {calendar.name}",
        description=gettext("Manage your booking: %(url)s", url=details["manage_url"]),
        location=details["address"] if details["location_type"] == "in_person" else "",
        url=details["meeting_url"],
        organizer_name=calendar.name,
        organizer_email=calendar.reply_to or parseaddr(instance().settings.mail.sender)[1],
        attendee_name=booking.client.name,
        attendee_email=booking.client.email or "",
        status=event_status(booking.holds_slot, details["awaiting"]),
        stamp=now(),
    )
    response = Response(build_ics(event, "PUBLISH"), mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'attachment; filename="booking.ics"'
    return response


@blueprint.route("/manage/<token>/cancel", methods=["GET", "POST"])
@csrf.exempt  # public forms carry their own signed token (see bookwise.public.forms)
def cancel(token: str) -> Any:
    try:
        booking = _booking(token)
    except NotFound:  # a series' token (issue 18): one occurrence, or the rest
        return series_cancel(token, _series_parts())
    posted = request.method == "POST"
    form = ActionForm(
        request.form if posted else None, meta={"csrf_context": f"cancel:{booking.uid}"}
    )
    problem = None
    if posted:
        if form.validate():
            db_session().close()  # one connection at a time: the write below takes its own
            try:
                with unit_of_work(instance().database.sessions, write=True) as session:
                    cancel_booking(
                        session,
                        find_by_manage_token(session, token),
                        now(),
                        reason=(form.reason.data or "").strip()[:500] or None,
                        plugins=plugin_host(),
                    )
            except BookingError as refused:
                problem = describe(refused.code, gettext, refused.told)
                booking = _booking(token)
            else:
                return redirect(link("manage", token=token, done="cancelled"))
        else:
            problem = gettext("This form has expired. Reload the page and try again.")
    return render_template(
        "public/cancel.html", booking=_details(booking), form=form, problem=problem
    ), (409 if problem else 200)


@blueprint.route("/manage/<token>/reschedule", methods=["GET", "POST"])
@csrf.exempt  # public forms carry their own signed token (see bookwise.public.forms)
def reschedule(token: str) -> Any:
    booking = _booking(token)
    posted = request.method == "POST"
    zone = _zone(booking.calendar) if "tz" in request.values else booking.timezone
    start = _parse_start((request.form if posted else request.args).get("start"))
    form = ActionForm(
        request.form if posted else None, meta={"csrf_context": f"reschedule:{booking.uid}"}
    )
    problem = None
    if posted and start is not None:
        if form.validate():
            db_session().close()  # one connection at a time: the write below takes its own
            try:
                with unit_of_work(instance().database.sessions, write=True) as session:
                    reschedule_booking(
                        session,
                        find_by_manage_token(session, token),
                        start,
                        now(),
                        plugins=plugin_host(),
                    )
            except BookingError as refused:
                problem = describe(refused.code, gettext, refused.told)
                start = None
                booking = _booking(token)
            else:
                return redirect(link("manage", token=token, done="rescheduled"))
        else:
            problem = gettext("This form has expired. Reload the page and try again.")
    context = context_of(booking)
    details = _details(booking)
    staff = booking.staff_member.slug if context.workflow.staff.client_chooses else None
    # A moved booking stays with the staff its answers route to: offer only their times.
    routed = booked_answers(booking) if context.workflow.route else None
    picker = _picker(context, zone, staff, exclude_booking=booking.id, answers=routed)

    def slot_href(moment: str) -> str:
        return link("reschedule", token=token, start=moment, tz=zone)

    return render_template(
        "public/reschedule.html",
        slot_href=slot_href,
        times_url=None,
        service=details["service"],
        booking=details,
        form=form,
        start=start,
        new_when=_when(start, zone, booking.calendar.timezone) if start else None,
        tz=zone,
        problem=problem,
        token=token,
        **_picker_page_values(context, picker),
    ), (409 if problem else 200)


# --- the client's own data (docs/privacy.md, "A client's rights") --------------------------------


@blueprint.get("/manage/<token>/data.json")
def client_data(token: str) -> Response:
    """Download everything held about the client of this booking (audited)."""
    _booking(token)
    db_session().close()  # one connection at a time: the write below takes its own
    with unit_of_work(instance().database.sessions, write=True) as session:
        data = export_booking_client(session, find_by_manage_token(session, token), now())
        record_export(session, data, "client")
    response = Response(json.dumps(data, ensure_ascii=False, indent=2), mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@blueprint.route("/manage/<token>/erase", methods=["GET", "POST"])
@csrf.exempt  # public forms carry their own signed token (see bookwise.public.forms)
def erase(token: str) -> Any:
    """Erase the client's data after a confirmation; the link stops working."""
    booking = _booking(token)
    posted = request.method == "POST"
    form = ActionForm(
        request.form if posted else None, meta={"csrf_context": f"erase:{booking.uid}"}
    )
    workflow = context_of(booking).workflow
    too_late = (
        booking.holds_slot
        and booking.start_at > now()
        and not client_may_change(workflow, booking, now())
    )
    upcoming = booking.holds_slot and booking.start_at > now()
    consented = booking.consent is not None
    problem = None
    if posted and not too_late:
        if form.validate():
            details = _details(booking)
            db_session().close()  # one connection at a time: the write below takes its own
            with unit_of_work(instance().database.sessions, write=True) as session:
                erase_booking_client(
                    session,
                    find_by_manage_token(session, token),
                    "client",
                    now(),
                    secret=secret_key_of(instance().settings),
                    plugins=plugin_host(),
                )
            return render_template(
                "public/erase.html", booking=details, form=None, done=True, upcoming=upcoming
            )
        problem = gettext("This form has expired. Reload the page and try again.")
    return render_template(
        "public/erase.html",
        booking=_details(booking),
        form=form,
        done=False,
        too_late=too_late,
        upcoming=upcoming,
        consented=consented,
        problem=problem,
    ), (409 if problem else 200)


# --- the client's consent: what they agreed to, and its withdrawal (docs/privacy.md) -----------


def _consent_details(booking: Booking, zone: str) -> dict[str, Any] | None:
    """The consent the client gave on this booking, for the manage page; None without one."""
    consent = booking.consent
    if consent is None:
        return None
    fmt = formats()
    return {
        "text": consent.text,
        "link": consent.link or "",
        "version": consent_version(booking),
        "given_at": format_when(consent.given_at, zone, fmt),
        "withdrawn_at": format_when(consent.withdrawn_at, zone, fmt)
        if consent.withdrawn_at is not None
        else "",
        # Said before the client confirms: withdrawing it cancels the booking.
        "cancels": withdrawal_cancels(booking, now()),
    }


@blueprint.route("/manage/<token>/consent/withdraw", methods=["GET", "POST"])
@csrf.exempt  # public forms carry their own signed token (see bookwise.public.forms)
def consent_withdraw(token: str) -> Any:
    """Withdraw the consent given on this booking, after saying what it does."""
    booking = _booking(token)
    posted = request.method == "POST"
    form = ActionForm(
        request.form if posted else None, meta={"csrf_context": f"withdraw:{booking.uid}"}
    )
    problem = None
    if posted:
        if form.validate():
            cancels = withdrawal_cancels(booking, now())
            db_session().close()  # one connection at a time: the write below takes its own
            try:
                with unit_of_work(instance().database.sessions, write=True) as session:
                    withdraw_consent(
                        session,
                        find_by_manage_token(session, token),
                        now(),
                        plugins=plugin_host(),
                    )
            except BookingError as refused:
                problem = (
                    gettext(CONSENT_REFUSALS[refused.code])
                    if refused.code in CONSENT_REFUSALS
                    else describe(refused.code, gettext, refused.told)
                )
                booking = _booking(token)
            else:
                done = "withdrawn_cancelled" if cancels else "withdrawn"
                return redirect(link("manage", token=token, done=done))
        else:
            problem = gettext("This form has expired. Reload the page and try again.")
    return render_template(
        "public/withdraw.html", booking=_details(booking), form=form, problem=problem
    ), (409 if problem else 200)
