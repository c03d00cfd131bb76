"""The back office's home: the current calendar's day at a glance, and the calendar switcher."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_babel import get_locale
from sqlalchemy import and_, func, select
from werkzeug.wrappers import Response

from bookwise.accounts.views import local_path
from bookwise.admin.access import bookings_visible, choose_calendar, current_calendar, deny
from bookwise.admin.base import ActionForm, BackOffice
from bookwise.admin.display import awaiting_approval, booking_rows, listed_bookings
from bookwise.bookings.models import Booking
from bookwise.notifications.models import Notification
from bookwise.web import now


class HomeView(BackOffice, AdminIndexView):  # type: ignore[misc]
    """Today's bookings, what waits for approval, what failed to send."""

    need = None

    @expose("/")
    def index(self) -> str:
        access = self.access
        session = self.db
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
        if access.allows(calendar.id, "admin"):
            dead = session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.calendar_id == calendar.id, Notification.state == "dead")
            )
        locale = str(get_locale())
        return self.render(
            "bookwise_admin/home.html",
            calendar=calendar,
            role=access.role(calendar.id),
            today=booking_rows(today, locale),
            waiting=booking_rows(waiting, locale),
            waiting_count=waiting_count or 0,
            upcoming=upcoming or 0,
            dead=dead,
            day=day_start,
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
