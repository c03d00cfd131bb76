"""The waitlist of the current calendar (issue 18): who waits for what, in line order, each
entry's state and its offer's expiry. Viewers read it; admins take someone off the list (a place
on offer to them goes to the next in line)."""

from __future__ import annotations

from typing import Any

from flask import redirect, url_for
from flask_admin import expose
from flask_babel import get_locale

from bookwise.admin.access import deny
from bookwise.admin.base import ActionForm, AdminView
from bookwise.bookings.messages import describe
from bookwise.bookings.models import WaitlistEntry
from bookwise.bookings.services import BookingError
from bookwise.bookings.waitlist import (
    entries_of_calendar,
    leave_waitlist,
    position_in_line,
    wanted_words,
)
from bookwise.db import begin_write
from bookwise.formatting import format_when
from bookwise.i18n import gettext
from bookwise.web import now
from bookwise.workflows.services import current_version, workflow_of


def state_name(state: str) -> str:
    return {
        "waiting": gettext("Waiting"),
        "offered": gettext("Place offered"),
        "expired": gettext("Offer expired"),
        "booked": gettext("Booked"),
        "left": gettext("Left the list"),
    }.get(state, state)


class WaitlistView(AdminView):
    """The current calendar's waitlist."""

    need = "view"

    @expose("/")
    def index(self) -> str:
        calendar = self.calendar
        zone, locale = calendar.timezone, str(get_locale())
        rows: list[dict[str, Any]] = []
        names: dict[int, str] = {}
        for entry in entries_of_calendar(self.db, calendar.id):
            if entry.service_id not in names:
                workflow = workflow_of(current_version(self.db, entry.service.workflow.slug))
                names[entry.service_id] = workflow.name.get(locale, calendar.default_locale)
            rows.append(
                {
                    "entry": entry,
                    "service": names[entry.service_id],
                    "client": entry.client.name,
                    "email": entry.client.email or "",
                    "wanted": wanted_words(entry, zone, locale),
                    "day": entry.wanted_from != entry.wanted_until,
                    # As the client's page counts it: among those waiting for an overlapping
                    # time (a day's entry and a time of that day are in one line).
                    "line": position_in_line(self.db, entry),
                    "state": state_name(entry.state),
                    "offered": format_when(entry.offered_start, zone, locale)
                    if entry.offered_start
                    else "",
                    "expires": format_when(entry.offer_expires_at, zone, locale)
                    if entry.offer_expires_at and entry.state == "offered"
                    else "",
                    "booking_url": url_for("bookings.details", booking_id=entry.booking_id)
                    if entry.booking_id
                    else "",
                    "live": entry.state in ("waiting", "offered"),
                }
            )
        return self.render(
            "bookwise_admin/waitlist.html",
            rows=rows,
            form=ActionForm(),
            may_manage=self.access.allows(calendar.id, "admin"),
        )

    @expose("/<int:entry_id>/remove", methods=("POST",))
    def remove(self, entry_id: int) -> Any:
        entry = self.db.get(WaitlistEntry, entry_id)
        if entry is None or not self.access.allows(entry.calendar_id, "admin"):
            deny(self.access, "waitlist entry", entry.calendar_id if entry else None)
        if not ActionForm().validate_on_submit():
            deny(self.access, "remove a waitlist entry without a valid form", entry.calendar_id)
        self.db.rollback()
        begin_write(self.db)
        entry = self.db.get(WaitlistEntry, entry_id)
        assert entry is not None
        try:
            leave_waitlist(self.db, entry, now())
        except BookingError as refused:
            self.fail(describe(refused.code, gettext, refused.told))
            return redirect(url_for(".index"))
        self.audit(
            "waitlist.removed",
            object_type="waitlist_entry",
            object_id=entry_id,
            calendar_id=entry.calendar_id,
        )
        self.commit(gettext("Taken off the waitlist."))
        return redirect(url_for(".index"))
