"""The back office's home: the current calendar's day at a glance, what waits in each of the
user's other calendars, and the calendar switcher."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_babel import get_locale
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bookwise.accounts.views import local_path
from bookwise.admin.access import (
    Access,
    bookings_visible,
    choose_calendar,
    current_calendar,
    deny,
    visible_calendars,
)
from bookwise.admin.base import ActionForm, BackOffice
from bookwise.admin.display import awaiting_approval, booking_rows, listed_bookings
from bookwise.availability.services import local_day_bounds
from bookwise.bookings.models import Booking
from bookwise.calendars.models import Calendar
from bookwise.calendars.sources import SourceStatus, source_statuses
from bookwise.notifications.models import Notification
from bookwise.web import now


@dataclass(frozen=True)
class CalendarSummary:
    """One line of the home's overview: what waits in a calendar."""

    id: int
    name: str
    waiting: int
    today: int
    current: bool


def _visible_anywhere(access: Access, calendars: Sequence[Calendar]) -> ColumnElement[bool]:
    """The bookings the user may see in any of ``calendars`` (a staff member's own only, in a
    calendar where they are staff)."""
    whole = [c.id for c in calendars if access.role(c.id) != "staff"]
    clauses: list[ColumnElement[bool]] = [Booking.calendar_id.in_(whole)] if whole else []
    clauses += [bookings_visible(access, c.id) for c in calendars if access.role(c.id) == "staff"]
    return or_(*clauses)


def calendars_overview(
    session: Session,
    access: Access,
    calendars: Sequence[Calendar],
    current_id: int,
    moment: datetime,
) -> list[CalendarSummary]:
    """For each calendar: the bookings waiting for approval and today's bookings (the local day
    of each calendar), in three queries whatever the number of calendars."""
    visible = _visible_anywhere(access, calendars)
    future = and_(visible, Booking.holds_slot, Booking.start_at >= moment)
    waiting: dict[int, int] = dict(
        session.execute(
            select(Booking.calendar_id, func.count())
            .where(future, awaiting_approval(session, future))
            .group_by(Booking.calendar_id)
        ).all()
    )
    by_zone: dict[str, list[int]] = defaultdict(list)
    for calendar in calendars:
        by_zone[calendar.timezone].append(calendar.id)
    today_clauses = []
    for zone_name, ids in by_zone.items():
        zone = ZoneInfo(zone_name)
        day = moment.astimezone(zone).date()
        start, end = local_day_bounds(day, day, zone)
        today_clauses.append(
            and_(Booking.calendar_id.in_(ids), Booking.start_at >= start, Booking.start_at < end)
        )
    today: dict[int, int] = dict(
        session.execute(
            select(Booking.calendar_id, func.count())
            .where(visible, or_(*today_clauses))
            .group_by(Booking.calendar_id)
        ).all()
    )
    return [
        CalendarSummary(
            id=c.id,
            name=c.name,
            waiting=waiting.get(c.id, 0),
            today=today.get(c.id, 0),
            current=c.id == current_id,
        )
        for c in calendars
    ]


class HomeView(BackOffice, AdminIndexView):  # type: ignore[misc]
    """Today's bookings, what waits for approval, what failed to send, the staff calendars that
    cannot be read."""

    need = None

    @expose("/")
    def index(self) -> Any:
        access = self.access
        session = self.db
        asked = request.args.get("calendar", "")
        if asked:
            # The overview's links open another calendar's home (then the URL is the home's own,
            # so that the switcher's "back to this page" does not switch back).
            calendar_id = int(asked) if asked.isdigit() else None
            if calendar_id is None or not access.allows(calendar_id, "read"):
                deny(access, "open calendar", calendar_id, {"asked": asked[:40]})
            choose_calendar(calendar_id)
            return redirect(url_for("admin.index"))
        calendar = current_calendar(session, access)
        if calendar is None:
            return self.render("bookwise_admin/home_empty.html")
        zone = ZoneInfo(calendar.timezone)
        moment = now()
        local_midnight = datetime.combine(moment.astimezone(zone).date(), datetime.min.time())
        day_start = local_midnight.replace(tzinfo=zone)
        day_end = (local_midnight + timedelta(days=1)).replace(tzinfo=zone)
        week_end = (local_midnight + timedelta(days=7)).replace(tzinfo=zone)
        visible = bookings_visible(access, calendar.id)
        today = list(
            session.scalars(
                listed_bookings()
                .where(visible, Booking.start_at >= day_start, Booking.start_at < day_end)
                .order_by(Booking.start_at, Booking.id)
            )
        )
        upcoming = session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(
                visible, Booking.holds_slot, Booking.start_at >= moment, Booking.start_at < week_end
            )
        )
        future = and_(visible, Booking.holds_slot, Booking.start_at >= moment)
        awaiting = and_(future, awaiting_approval(session, future))
        waiting = list(
            session.scalars(listed_bookings().where(awaiting).order_by(Booking.start_at).limit(20))
        )
        waiting_count = session.scalar(select(func.count()).select_from(Booking).where(awaiting))
        dead = None
        failing: list[SourceStatus] = []
        if access.allows(calendar.id, "admin"):
            failing = [s for s in source_statuses(session, calendar=calendar.slug) if s.failing]
            dead = session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.calendar_id == calendar.id, Notification.state == "dead")
            )
        calendars = visible_calendars(session, access)
        overview = (
            calendars_overview(session, access, calendars, calendar.id, moment)
            if len(calendars) > 1
            else []
        )
        locale = str(get_locale())
        return self.render(
            "bookwise_admin/home.html",
            calendar=calendar,
            role=access.role(calendar.id),
            admin=access.allows(calendar.id, "admin"),
            today=booking_rows(today, locale),
            waiting=booking_rows(waiting, locale),
            waiting_count=waiting_count or 0,
            upcoming=upcoming or 0,
            dead=dead,
            failing_calendars=failing,
            day=day_start,
            overview=overview,
        )

    @expose("/switch", methods=("POST",))
    def switch_calendar(self) -> Response:
        access = self.access
        form = ActionForm()
        if not form.validate_on_submit():
            deny(access, "switch calendar without a valid form")
        raw = request.form.get("calendar_id", "")
        calendar_id = int(raw) if raw.isdigit() else None
        if calendar_id is None or not access.allows(calendar_id, "read"):
            deny(access, "switch calendar", calendar_id, {"asked": raw[:40]})
        choose_calendar(calendar_id)
        target = request.form.get("next", "")
        return redirect(target if local_path(target) else url_for("admin.index"))
