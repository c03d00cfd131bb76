"""Bookings in the back office: the list with its filters, a booking with its history and the
moves its workflow allows, a day or week grid per staff member, and booking for a client.

Every change goes through :mod:`bookwise.bookings.services`, the same rules the public pages and
the API follow (no double booking, the state machine, messages planned in the same transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import redirect, request, url_for
from flask_admin import expose
from flask_babel import get_locale, lazy_gettext
from sqlalchemy import func, or_, select
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms import Form as PlainForm
from wtforms.validators import Length, Optional

from bookwise.admin.access import bookings_visible, may_see_booking
from bookwise.admin.base import ActionForm, AdminView, Form, options
from bookwise.admin.display import (
    booking_row,
    booking_rows,
    listed_bookings,
    message_words,
    state_label,
    transition_label,
    workflow_name,
)
from bookwise.admin.paging import paginate
from bookwise.admin.views.booking_explain import ExplainMixin
from bookwise.availability.services import (
    SlotSearch,
    local_day_bounds,
    read_pool,
    routed_pool,
    service_availability,
)
from bookwise.bookings.answers import InvalidAnswers
from bookwise.bookings.messages import describe, series_position
from bookwise.bookings.models import Booking, BookingEvent, Client
from bookwise.bookings.series import move_occurrences, occurrence_position, series_moves_from
from bookwise.bookings.services import (
    BookingContext,
    BookingError,
    book_from_answers,
    booked_answers,
    context_of,
    reassign_booking,
    reschedule_booking,
    transition_booking,
)
from bookwise.calendars.models import BusyTime, Calendar, Service, StaffMember, TimeOff
from bookwise.db import begin_write
from bookwise.errors import NotFound
from bookwise.formatting import format_clock, format_day, format_when
from bookwise.i18n import gettext, language_name
from bookwise.metrics import booking_made
from bookwise.notifications.context import answer_text, consent_version, reference
from bookwise.notifications.models import Notification
from bookwise.public.forms import (
    ROUTED_INPUT,
    booking_form,
    booking_request,
    mark_answer_problems,
    prefill,
    routed_answers,
    routing_form,
)
from bookwise.web import instance, now, plugin_host
from bookwise.workflows.lifecycle import Role
from bookwise.workflows.services import current_version, workflow_of

PER_PAGE = 50
GRID_STEP = timedelta(minutes=15)


class BookingFilters(PlainForm):  # type: ignore[misc]
    """The list's filters: a GET form (nothing changes, so no token)."""

    start = DateField(lazy_gettext("From"), validators=[Optional()])
    end = DateField(lazy_gettext("To"), validators=[Optional()])
    service = SelectField(lazy_gettext("Service"), validate_choice=False, default="")
    staff = SelectField(lazy_gettext("Staff member"), validate_choice=False, default="")
    state = SelectField(lazy_gettext("State"), validate_choice=False, default="")
    q = StringField(lazy_gettext("Client"), validators=[Length(max=100)])


class ReasonForm(Form):
    reason = TextAreaField(
        lazy_gettext("Reason (optional, sent to the client)"),
        validators=[Optional(), Length(max=500)],
        render_kw={"rows": 2, "maxlength": 500},
    )


class ReassignForm(Form):
    staff_id = SelectField(lazy_gettext("Give to"), coerce=int, validate_choice=True)


def _locale() -> str:
    return str(get_locale())


def _day(value: str | None) -> date | None:
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return None
    return day if 1971 <= day.year <= 2199 else None


def _services(calendar: Calendar) -> list[Service]:
    return list(calendar.services)


def _service_choices(calendar: Calendar, locale: str) -> list[tuple[str, str]]:
    choices = []
    for service in _services(calendar):
        workflow = workflow_of(service.workflow.versions[-1])
        choices.append((str(service.id), workflow_name(workflow, locale, calendar.default_locale)))
    return sorted(choices, key=lambda c: c[1].casefold())


@dataclass
class GridCell:
    rowspan: int
    bookings: list[dict[str, Any]]
    kind: str = "booking"  # booking, off
    label: str = ""


class BookingsView(ExplainMixin, AdminView):
    need = "read"

    # --- the list ------------------------------------------------------------------------------

    @expose("/")
    def index(self) -> str:
        access, session, calendar = self.access, self.db, self.calendar
        locale = _locale()
        zone = ZoneInfo(calendar.timezone)
        filters = BookingFilters(request.args, meta={"locale": locale})
        filters.service.choices = options(
            [("", gettext("All")), *_service_choices(calendar, locale)]
        )
        staff_members = self._staff_choices(calendar)
        filters.staff.choices = options(
            [("", gettext("All"))] + [(str(m.id), m.name) for m in staff_members]
        )
        filters.state.choices = options(
            [("", gettext("All")), *self._state_choices(calendar, locale)]
        )
        filters.validate()
        query = listed_bookings().where(bookings_visible(access, calendar.id))
        today = now().astimezone(zone).date()
        first = filters.start.data if not filters.start.errors else None
        last = filters.end.data if not filters.end.errors else None
        if "start" not in request.args and "end" not in request.args:
            first = today
            filters.start.data = today
        if first is not None:
            query = query.where(Booking.start_at >= local_day_bounds(first, first, zone)[0])
        if last is not None:
            query = query.where(Booking.start_at < local_day_bounds(last, last, zone)[1])
        if filters.service.data and filters.service.data.isdigit():
            query = query.where(Booking.service_id == int(filters.service.data))
        if filters.staff.data and filters.staff.data.isdigit():
            query = query.where(Booking.staff_id == int(filters.staff.data))
        if filters.state.data:
            query = query.where(Booking.state == filters.state.data)
        needle = (filters.q.data or "").strip()
        if needle and not filters.q.errors:
            pattern = f"%{needle.lower()}%"
            query = query.join(Client, Client.id == Booking.client_id).where(
                or_(
                    func.lower(Client.name).like(pattern),
                    func.lower(Client.email).like(pattern),
                    Client.phone.like(pattern),
                )
            )
        page = paginate(
            session, query.order_by(Booking.start_at, Booking.id), request.args, PER_PAGE
        )
        return self.render(
            "bookwise_admin/bookings/list.html",
            filters=filters,
            page=page,
            rows=booking_rows(page.items, locale),
            may_book=access.allows(calendar.id, "admin"),
            calendar=calendar,
        )

    def _staff_choices(self, calendar: Calendar) -> list[StaffMember]:
        own = self.access.staff_id(calendar.id)
        members = [m for m in calendar.staff if own is None or m.id == own]
        return sorted(members, key=lambda m: m.name.casefold())

    def _state_choices(self, calendar: Calendar, locale: str) -> list[tuple[str, str]]:
        seen: dict[str, str] = {}
        for service in _services(calendar):
            workflow = workflow_of(service.workflow.versions[-1])
            for state in workflow.lifecycle.states:
                seen.setdefault(state, state_label(workflow, state, locale))
        return sorted(seen.items(), key=lambda c: c[1].casefold())

    # --- one booking --------------------------------------------------------------------------

    def _booking(self, booking_id: int, need: str = "read") -> Booking:
        booking = self.db.get(Booking, booking_id)
        if booking is None:
            raise NotFound("no such booking")
        access = self.access
        if not may_see_booking(access, booking.calendar_id, booking.staff_id):
            from bookwise.admin.access import deny

            deny(access, "booking", booking.calendar_id, {"booking": booking_id})
        self.require(booking.calendar_id, need, "change booking")  # type: ignore[arg-type]
        return booking

    def _for_writing(self, booking_id: int, need: str) -> Booking:
        """The booking again, in a transaction begun as a writer (what the booking services
        need: on SQLite a check-then-write must hold the write lock from its first read)."""
        session = self.db
        session.rollback()
        begin_write(session)
        return self._booking(booking_id, need)

    def _audited(self, action: str, booking: Booking, **details: Any) -> None:
        self.audit(
            f"booking.{action}",
            object_type="booking",
            object_id=booking.id,
            calendar_id=booking.calendar_id,
            details=details or None,
        )

    def _role(self, booking: Booking) -> Role:
        return "admin" if self.access.allows(booking.calendar_id, "admin") else "staff"

    @expose("/<int:booking_id>")
    def details(self, booking_id: int) -> str:
        booking = self._booking(booking_id)
        return self._details_page(booking)

    def _details_page(
        self,
        booking: Booking,
        reason_form: ReasonForm | None = None,
        reassign_form: ReassignForm | None = None,
        status: int = 200,
    ) -> Any:
        access = self.access
        locale = _locale()
        workflow = workflow_of(booking.workflow_version)
        calendar = booking.calendar
        fallback = calendar.default_locale
        acting = access.allows(booking.calendar_id, "staff")
        moves = []
        if acting and booking.start_at is not None:
            for transition in workflow.lifecycle.available(booking.state, self._role(booking)):
                moves.append(
                    {
                        "name": transition.name,
                        "label": transition_label(workflow, transition.name, locale),
                        "danger": not workflow.lifecycle.holds_slot(transition.target),
                    }
                )
        sensitive_hidden = access.role(booking.calendar_id) == "viewer"
        answers = []
        shown_sensitive = False
        for spec in workflow.custom_fields:
            if spec.id not in booking.answers:
                continue
            hidden = spec.sensitive and sensitive_hidden
            shown_sensitive = shown_sensitive or (spec.sensitive and not hidden)
            answers.append(
                {
                    "label": spec.label.get(locale, fallback),
                    "value": ""
                    if hidden
                    else answer_text(
                        spec,
                        booking.answers[spec.id],
                        locale,
                        fallback,
                        instance().database.plugins.field_types,
                    ),
                    "hidden": hidden,
                    "sensitive": spec.sensitive,
                }
            )
        if shown_sensitive:
            # Reading health or HR answers is itself recorded (who saw whose data, when).
            self.audit(
                "booking.sensitive_viewed",
                object_type="booking",
                object_id=booking.id,
                calendar_id=booking.calendar_id,
            )
            self.db.commit()
        is_admin = access.allows(booking.calendar_id, "admin")
        if reassign_form is None and is_admin:
            reassign_form = self._reassign_form(booking)
        messages = self.db.scalars(
            select(Notification)
            .where(Notification.booking_id == booking.id)
            .order_by(Notification.due_at, Notification.id)
        ).all()
        zone = calendar.timezone
        return self.render(
            "bookwise_admin/bookings/details.html",
            series=self._series_part(booking, acting, locale),
            booking=booking,
            row=booking_row(booking, locale),
            reference=reference(booking),
            workflow=workflow,
            answers=answers,
            consent=booking.consent,
            consent_at=format_when(booking.consent.given_at, zone, locale)
            if booking.consent
            else "",
            consent_language=language_name(booking.consent.locale, locale)
            if booking.consent
            else "",
            consent_version=consent_version(booking),
            consent_withdrawn_at=format_when(booking.consent.withdrawn_at, zone, locale)
            if booking.consent and booking.consent.withdrawn_at
            else "",
            history=[self._history_entry(e, workflow, locale, zone) for e in booking.history],
            messages=[
                {
                    "row": m,
                    "due": format_when(m.due_at, zone, locale),
                    "sent": format_when(m.sent_at, zone, locale) if m.sent_at else "",
                    **message_words(m),
                }
                for m in messages
            ],
            moves=moves,
            reason_form=reason_form or ReasonForm(),
            reassign_form=reassign_form,
            may_reschedule=is_admin and booking.holds_slot and booking.start_at > now(),
            client_zone=booking.timezone,
            client_when=format_when(booking.start_at, booking.timezone, locale)
            if booking.timezone != zone
            else "",
        ), status

    def _series_part(self, booking: Booking, acting: bool, locale: str) -> dict[str, Any] | None:
        """A series' occurrence: where it stands in the series, the series' other occurrences
        (those this user may see), and the moves that can be made on every occurrence still to
        come in this one's state (approve or decline the series awaiting approval)."""
        found = occurrence_position(booking)
        if found is None:
            return None
        series, index, count = found
        access, zone = self.access, booking.calendar.timezone
        workflow = workflow_of(booking.workflow_version)
        occurrences = [
            {
                "id": b.id,
                "when": format_when(b.start_at, zone, locale),
                "state": b.state,
                "state_label": state_label(workflow_of(b.workflow_version), b.state, locale),
                "this": b.id == booking.id,
                "visible": may_see_booking(access, b.calendar_id, b.staff_id),
            }
            for b in series.occurrences
        ]
        pending = self._series_candidates(booking)
        moves = []
        if acting and len(pending) > 1:
            for transition in workflow.lifecycle.available(booking.state, self._role(booking)):
                label = transition_label(workflow, transition.name, locale)
                moves.append(
                    {
                        "name": transition.name,
                        "label": gettext("%(action)s the series", action=label),
                        "danger": not workflow.lifecycle.holds_slot(transition.target),
                    }
                )
        return {
            "position": series_position(series.frequency, index, count, gettext),
            "occurrences": occurrences,
            "pending": len(pending),
            "moves": moves,
        }

    def _series_candidates(self, booking: Booking) -> list[Booking]:
        """The occurrences a move on the whole series applies to (see
        :func:`series_moves_from`), of those this user may see; none when ``booking`` is not
        one of them."""
        found = occurrence_position(booking)
        if found is None:
            return []
        candidates = [
            b
            for b in series_moves_from(found[0], booking, now())
            if may_see_booking(self.access, b.calendar_id, b.staff_id)
        ]
        return candidates if booking in candidates else []

    @expose("/<int:booking_id>/series-move", methods=("POST",))
    def series_transition(self, booking_id: int) -> Any:
        """A move made on every occurrence of the series still to come in this one's state
        (approve or decline a series awaiting approval): all of them, or none."""
        booking = self._booking(booking_id, "staff")
        form = ReasonForm()
        name = request.form.get("transition", "")
        if not form.validate_on_submit():
            return self._details_page(booking, reason_form=form, status=422)
        workflow = workflow_of(booking.workflow_version)
        label = transition_label(workflow, name, _locale())
        session = self.db
        booking = self._for_writing(booking_id, "staff")
        # The state the page showed: a second post, once the series has moved, moves nothing.
        seen = request.form.get("state", "")
        occurrences = self._series_candidates(booking) if seen == booking.state else []
        try:
            moved = move_occurrences(
                session,
                occurrences,
                name,
                self._role(booking),
                self.access.booking_actor,
                now(),
                reason=(form.reason.data or "").strip() or None,
                plugins=plugin_host(),
            )
        except BookingError as refused:
            self.fail(describe(refused.code, gettext, refused.told))
            return redirect(url_for(".details", booking_id=booking_id))
        for occurrence in moved:
            self._audited("transition", occurrence, transition=name, state=occurrence.state)
        self.commit(
            gettext(
                "Done for %(count)s occurrences of the series: %(action)s.",
                count=len(moved),
                action=label,
            )
        )
        return redirect(url_for(".details", booking_id=booking_id))

    def _history_entry(
        self, event: BookingEvent, workflow: Any, locale: str, zone: str
    ) -> dict[str, Any]:
        actor = event.actor
        if actor.startswith("user:") and actor[5:].isdigit():
            from bookwise.accounts.models import User

            user = self.db.get(User, int(actor[5:]))
            actor = user.email if user else gettext("a former user")
        elif actor == "client":
            actor = gettext("the client")
        elif actor == "system":
            actor = gettext("Bookwise")
        elif actor.startswith("plugin:"):
            actor = gettext("the %(plugin)s plugin", plugin=actor.removeprefix("plugin:"))
        actions = {
            "created": gettext("Booked"),
            "rescheduled": gettext("Moved"),
            "reassigned": gettext("Given to another staff member"),
            "meeting_failed": gettext("No meeting link"),
            "consent_withdrawn": gettext("Consent withdrawn"),
        }
        details = dict(event.details or {})
        note = ""
        if event.action == "rescheduled" and "from" in details:
            note = gettext(
                "from %(before)s",
                before=format_when(datetime.fromisoformat(details["from"]), zone, locale),
            )
        if event.action == "reassigned":
            names = {
                m.id: m.name
                for m in self.db.scalars(
                    select(StaffMember).where(
                        StaffMember.id.in_([details.get("from_staff"), details.get("to_staff")])
                    )
                )
            }
            before = names.get(int(details.get("from_staff") or 0), "?")
            after = names.get(int(details.get("to_staff") or 0), "?")
            note = f"{before} → {after}"
        if details.get("reason"):
            note = (note + " · " if note else "") + str(details["reason"])
        if event.action == "meeting_failed" and details.get("error"):
            note = str(details["error"])  # the provider's own words, or why it was not asked
        return {
            "at": format_when(event.at, zone, locale),
            "action": actions.get(event.action) or transition_label(workflow, event.action, locale),
            "from": state_label(workflow, event.from_state, locale) if event.from_state else "",
            "to": state_label(workflow, event.to_state, locale) if event.to_state else "",
            "actor": actor,
            "note": note,
        }

    def _reassign_form(self, booking: Booking, formdata: Any = None) -> ReassignForm | None:
        """Who else could take the booking: the pool members free at its time."""
        if not booking.holds_slot or booking.start_at <= now():
            return None
        context = context_of(booking)
        found = service_availability(
            self.db,
            context.calendar,
            context.service,
            context.workflow,
            booking.start_at,
            booking.start_at + timedelta(seconds=1),
            now(),
            SlotSearch(exclude_booking=booking.id, by_staff=True),
        )
        free: set[int] = set()
        for slot in found.slots:
            if slot.start == booking.start_at:
                free.update(slot.staff)
        free.discard(booking.staff_id)
        members = [m for m in read_pool(self.db, context.service, context.workflow) if m.id in free]
        if not members:
            return None
        form = ReassignForm(formdata)
        form.staff_id.choices = options([(m.id, m.name) for m in members])
        return form

    @expose("/<int:booking_id>/move", methods=("POST",))
    def transition(self, booking_id: int) -> Any:
        booking = self._booking(booking_id, "staff")
        form = ReasonForm()
        name = request.form.get("transition", "")
        if not form.validate_on_submit():
            return self._details_page(booking, reason_form=form, status=422)
        workflow = workflow_of(booking.workflow_version)
        label = transition_label(workflow, name, _locale())
        session = self.db
        booking = self._for_writing(booking_id, "staff")
        try:
            transition_booking(
                session,
                booking,
                name,
                self._role(booking),
                self.access.booking_actor,
                now(),
                reason=(form.reason.data or "").strip() or None,
                plugins=plugin_host(),
            )
        except BookingError as refused:
            self.fail(describe(refused.code, gettext, refused.told))
            return redirect(url_for(".details", booking_id=booking_id))
        self._audited("transition", booking, transition=name, state=booking.state)
        self.commit(gettext("Done: %(action)s.", action=label))
        return redirect(url_for(".details", booking_id=booking_id))

    @expose("/<int:booking_id>/reassign", methods=("POST",))
    def reassign(self, booking_id: int) -> Any:
        booking = self._booking(booking_id, "admin")
        form = self._reassign_form(booking, request.form)
        if form is None:
            self.fail(gettext("No one else is free at this time."))
            return redirect(url_for(".details", booking_id=booking_id))
        if not form.validate_on_submit():
            return self._details_page(booking, reassign_form=form, status=422)
        session = self.db
        booking = self._for_writing(booking_id, "admin")
        previous = booking.staff_member.name
        try:
            reassign_booking(
                session,
                booking,
                form.staff_id.data,
                now(),
                self.access.booking_actor,
                plugins=plugin_host(),
            )
        except BookingError as refused:
            self.fail(describe(refused.code, gettext, refused.told))
            return redirect(url_for(".details", booking_id=booking_id))
        self._audited("reassigned", booking, to_staff=booking.staff_id)
        session.flush()
        self.commit(
            gettext(
                "The booking is now with %(name)s (was %(previous)s).",
                name=self.db.get(StaffMember, booking.staff_id).name,  # type: ignore[union-attr]
                previous=previous,
            )
        )
        return redirect(url_for(".details", booking_id=booking_id))

    @expose("/<int:booking_id>/reschedule", methods=("GET", "POST"))
    def reschedule(self, booking_id: int) -> Any:
        booking = self._booking(booking_id, "admin")
        context = context_of(booking)
        zone = context.calendar.timezone
        locale = _locale()
        if request.method == "POST":
            form = ActionForm()
            start = _parse_start(request.form.get("start"))
            if not form.validate_on_submit() or start is None:
                self.fail(gettext("Please choose one of the times."))
                return redirect(url_for(".reschedule", booking_id=booking_id))
            session = self.db
            booking = self._for_writing(booking_id, "admin")
            try:
                reschedule_booking(
                    session,
                    booking,
                    start,
                    now(),
                    role="admin",
                    actor=self.access.booking_actor,
                    plugins=plugin_host(),
                )
            except BookingError as refused:
                self.fail(describe(refused.code, gettext, refused.told))
                asked = start.astimezone(ZoneInfo(zone)).date().isoformat()
                return redirect(url_for(".reschedule", booking_id=booking_id, date=asked))
            self._audited("rescheduled", booking, start=start.isoformat())
            self.commit(gettext("Moved to %(when)s.", when=format_when(start, zone, locale)))
            return redirect(url_for(".details", booking_id=booking_id))
        day = _day(request.args.get("date")) or booking.start_at.astimezone(ZoneInfo(zone)).date()
        staff_ids = [booking.staff_id] if context.workflow.staff.client_chooses else None
        # A moved booking stays with the staff its answers route to: offer only their times.
        routed = booked_answers(booking) if context.workflow.route else None
        times = self._free_times(
            context, day, staff_ids, exclude_booking=booking.id, answers=routed
        )
        return self.render(
            "bookwise_admin/bookings/reschedule.html",
            booking=booking,
            row=booking_row(booking, locale),
            day=day,
            day_label=format_day(day, locale),
            times=times,
            form=ActionForm(),
            previous_day=day - timedelta(days=1),
            next_day=day + timedelta(days=1),
        )

    def _free_times(
        self,
        context: BookingContext,
        day: date,
        staff_ids: list[int] | None = None,
        exclude_booking: int | None = None,
        answers: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        zone = context.calendar.timezone
        search = SlotSearch(
            staff_ids=staff_ids, exclude_booking=exclude_booking, by_staff=True, answers=answers
        )
        found = service_availability(
            self.db,
            context.calendar,
            context.service,
            context.workflow,
            *local_day_bounds(day, day, ZoneInfo(zone)),
            now(),
            search,
        )
        names = {m.id: m.name for m in found.pool}
        return [
            {
                "start": slot.start.isoformat(),
                "label": format_clock(slot.start, zone, _locale()),
                "staff": [names[s] for s in slot.staff if s in names],
                "remaining": slot.remaining if context.workflow.is_group else None,
            }
            for slot in found.slots
        ]

    # --- booking for a client ----------------------------------------------------------------

    @expose("/new", methods=("GET", "POST"))
    def create(self) -> Any:
        """Book for a client (on the phone, at the desk): choose the service, then the time,
        then answer the workflow's questions. A service that routes by answer asks the questions
        it routes on before the times; their answers carry into the form."""
        calendar = self.calendar
        self.require(calendar.id, "admin", "book for a client")
        locale = _locale()
        source = request.form if request.method == "POST" else request.args
        service_id = source.get("service", "")
        service = next((s for s in _services(calendar) if str(s.id) == service_id), None)
        if service is None:
            return self.render(
                "bookwise_admin/bookings/new_service.html",
                choices=_service_choices(calendar, locale),
                calendar=calendar,
            )
        context = BookingContext(calendar, service, current_version(self.db, service.workflow.slug))
        start = _parse_start(source.get("start"))
        if start is None:
            return self._time_page(context, _day(source.get("date")), locale)
        form_class = booking_form(context.workflow, locale, calendar.default_locale, base=Form)
        form = form_class(
            request.form if request.method == "POST" else None,
            data={"start": start.isoformat(), "tz": calendar.timezone},
        )
        if request.method != "POST":
            prefill(form, context.workflow, request.args)  # the answers given before the times
        answers, carried = routed_answers(
            form, context.workflow, now().date(), field_types=plugin_host().field_types
        )
        pool = read_pool(self.db, service, context.workflow)
        problem, status = None, 200
        if request.method == "POST":
            if not form.validate_on_submit():
                problem, status = gettext("The form expired; please try again."), 400
            else:
                booked = self._book(form, context, start, {m.slug for m in pool}, answers)
                if isinstance(booked, Booking):
                    return redirect(url_for(".details", booking_id=booked.id))
                problem, status = booked
        return self.render(
            "bookwise_admin/bookings/new_form.html",
            service=service,
            service_name=workflow_name(context.workflow, locale, calendar.default_locale),
            when=format_when(start, calendar.timezone, locale),
            start=start,
            form=form,
            workflow=context.workflow,
            # Only those the answers route to may be named (the booking refuses anyone else).
            pool=routed_pool(pool, context.workflow, answers)[0],
            carried=carried,
            problem=problem,
            locales=self.render_locales(),
        ), status

    def _time_page(self, context: BookingContext, day: date | None, locale: str) -> Any:
        """The free times of ``day`` (by default today in the calendar's zone) to choose one;
        for a service that routes by answer, those of the staff the client's answers route to,
        once they are given (``routed``), and none before."""
        calendar, workflow = context.calendar, context.workflow
        day = day or now().astimezone(ZoneInfo(calendar.timezone)).date()
        questions: Any = None
        answers: dict[str, Any] | None = None
        carried: dict[str, Any] = {}
        if workflow.route:
            questions = routing_form(workflow, locale, calendar.default_locale, request.args)
            if ROUTED_INPUT in request.args:
                answers, carried = routed_answers(
                    questions, workflow, now().date(), plugin_host().field_types, mark=True
                )
        asked = questions is not None and answers is None  # the times wait for the answers
        return self.render(
            "bookwise_admin/bookings/new_time.html",
            service=context.service,
            service_name=workflow_name(workflow, locale, calendar.default_locale),
            day=day,
            day_label=format_day(day, locale),
            questions=questions,
            routed_input=ROUTED_INPUT,
            carried=carried,
            times=None if asked else self._free_times(context, day, answers=answers),
            previous_day=day - timedelta(days=1),
            next_day=day + timedelta(days=1),
        )

    def _book(
        self,
        form: Form,
        context: BookingContext,
        start: datetime,
        staff: set[str],
        answers: dict[str, Any] | None = None,
    ) -> Booking | tuple[str, int]:
        """Book through the one booking service, committed and audited; or the problem to show
        and its status (nothing written). ``answers``: the routing answers on the form."""
        calendar, service = context.calendar, context.service
        staff_slug = request.form.get("staff_member") or None
        booking_request_ = booking_request(
            form,
            context.workflow,
            start=start,
            staff=staff_slug if staff_slug in staff else None,
            locale=request.form.get("client_locale") or calendar.default_locale,
            timezone=calendar.timezone,
            source="admin",
            actor=self.access.booking_actor,
            by_staff=True,
        )
        session = self.db
        session.rollback()
        begin_write(session)
        try:
            booking = book_from_answers(
                session,
                calendar.slug,
                service.workflow.slug,
                booking_request_,
                now(),
                public=False,
                plugins=plugin_host(),
            )
        except InvalidAnswers as invalid:
            session.rollback()
            mark_answer_problems(form, invalid)
            return gettext("Please correct the answers marked below."), 422
        except BookingError as refused:
            session.rollback()
            if self._free_for_others(context, start, refused, staff_slug, answers):
                return gettext(
                    "No staff member these answers route to is free at this time. Choose "
                    "another time, or check the answers."
                ), 409
            return describe(refused.code, gettext, refused.told), 409
        self.audit(
            "booking.created",
            object_type="booking",
            object_id=booking.id,
            calendar_id=calendar.id,
            details={"service": service.workflow.slug, "start": start.isoformat()},
        )
        self.commit(gettext("Booked."))
        booking_made("admin")
        return booking

    def _free_for_others(
        self,
        context: BookingContext,
        start: datetime,
        refused: BookingError,
        staff_slug: str | None,
        answers: dict[str, Any] | None,
    ) -> bool:
        """Whether a time refused as not free is free for staff the answers do not route to
        (an answer changed on the form): then the answers are the reason, not the time."""
        if answers is None or staff_slug or refused.code not in ("slot_taken", "not_a_slot"):
            return False
        found = service_availability(
            self.db,
            context.calendar,
            context.service,
            context.workflow,
            start,
            start + timedelta(seconds=1),
            now(),
            SlotSearch(by_staff=True),
        )
        return any(slot.start == start for slot in found.slots)

    def render_locales(self) -> list[str]:

        return list(instance().settings.locales)

    # --- day and week grid --------------------------------------------------------------------

    @expose("/grid")
    def grid(self) -> str:
        access, session, calendar = self.access, self.db, self.calendar
        locale = _locale()
        zone = ZoneInfo(calendar.timezone)
        today = now().astimezone(zone).date()
        day = _day(request.args.get("date")) or today
        mode = "week" if request.args.get("view") == "week" else "day"
        members = self._staff_choices(calendar)
        members = [m for m in members if m.removed_at is None] or members
        chosen = request.args.get("staff", "")
        if mode == "week":
            day = day - timedelta(days=day.weekday())
            member = next(
                (m for m in members if str(m.id) == chosen), members[0] if members else None
            )
            columns: list[tuple[str, str, Any]] = [
                (f"d{i}", format_day(day + timedelta(days=i), locale), day + timedelta(days=i))
                for i in range(7)
            ]
            first, last = day, day + timedelta(days=6)
            staff_ids = [member.id] if member else []
        else:
            member = None
            columns = [(f"s{m.id}", m.name, m.id) for m in members]
            first = last = day
            staff_ids = [m.id for m in members]
        window = local_day_bounds(first, last, zone)
        bookings = list(
            session.scalars(
                listed_bookings()
                .where(
                    bookings_visible(access, calendar.id),
                    Booking.staff_id.in_(staff_ids or [-1]),
                    Booking.holds_slot,
                    Booking.start_at < window[1],
                    Booking.end_at > window[0],
                )
                .order_by(Booking.start_at)
            )
        )
        time_off = list(
            session.scalars(
                select(TimeOff).where(
                    TimeOff.staff_id.in_(staff_ids or [-1]),
                    TimeOff.start_at < window[1],
                    TimeOff.end_at > window[0],
                )
            )
        )
        # Times the staff are busy in their own calendars (bookwise.calendars.sources): shown
        # without any title, as the database keeps none.
        busy = list(
            session.execute(
                select(BusyTime.staff_id, BusyTime.start_at, BusyTime.end_at).where(
                    BusyTime.staff_id.in_(staff_ids or [-1]),
                    BusyTime.start_at < window[1],
                    BusyTime.end_at > window[0],
                )
            )
        )
        absences = [
            (t.staff_id, t.start_at, t.end_at, t.reason or gettext("Time off")) for t in time_off
        ]
        absences += [(staff, start, end, gettext("Busy elsewhere")) for staff, start, end in busy]
        grid = _build_grid(columns, mode, bookings, absences, zone, locale, first)
        _explain_links(grid, columns, mode, member, zone, first)
        return self.render(
            "bookwise_admin/bookings/grid.html",
            mode=mode,
            day=day,
            day_label=format_day(day, locale),
            columns=columns,
            grid=grid,
            members=members,
            member=member,
            previous=day - timedelta(days=7 if mode == "week" else 1),
            following=day + timedelta(days=7 if mode == "week" else 1),
            today=today,
        )


def _explain_links(
    grid: dict[str, Any],
    columns: list[tuple[str, str, Any]],
    mode: str,
    member: StaffMember | None,
    zone: ZoneInfo,
    first: date,
) -> None:
    """Each empty cell's 'why is this time not offered?' address (the cell's start, its staff
    member): a click on it opens the explainer (admin.js)."""
    for row in grid["rows"]:
        links: list[str | None] = []
        for (_key, _label, value), cell in zip(columns, row["cells"], strict=True):
            if cell is not None:
                links.append(None)
                continue
            day = value if mode == "week" else first
            staff_id = member.id if mode == "week" and member else value
            moment = datetime.combine(day, time(row["minute"] // 60, row["minute"] % 60), zone)
            links.append(url_for(".explain", start=moment.isoformat(), staff=staff_id))
        row["explain"] = links


def _parse_start(value: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError:
        return None
    if moment.tzinfo is None or not (1971 <= moment.year <= 2199):
        return None
    return moment


def _build_grid(
    columns: list[tuple[str, str, Any]],
    mode: str,
    bookings: list[Booking],
    absences: list[tuple[int, datetime, datetime, str]],
    zone: ZoneInfo,
    locale: str,
    first: date,
) -> dict[str, Any]:
    """Rows of 15 minutes from the earliest to the latest event (08:00-18:00 at least), each
    column a staff member (day) or a day (week); an event spans its rows (rowspan)."""

    def column_of(staff_id: int, moment: datetime) -> str:
        if mode == "week":
            return f"d{(moment.astimezone(zone).date() - first).days}"
        return f"s{staff_id}"

    def minutes(moment: datetime) -> int:
        local = moment.astimezone(zone)
        return local.hour * 60 + local.minute

    events: dict[str, list[tuple[int, int, GridCell]]] = {key: [] for key, _, _ in columns}
    groups: dict[tuple[str, int, str], GridCell] = {}
    for booking in bookings:
        key = column_of(booking.staff_id, booking.start_at)
        if key not in events:
            continue
        begin = minutes(booking.start_at)
        end = begin + max(15, int((booking.end_at - booking.start_at).total_seconds() // 60))
        group_key = (key, begin, booking.slot_key)
        row = booking_row(booking, locale)
        if group_key in groups:
            groups[group_key].bookings.append(row)
            continue
        cell = GridCell(rowspan=0, bookings=[row])
        groups[group_key] = cell
        events[key].append((begin, min(end, 24 * 60), cell))
    for staff_id, start_at, end_at, label in absences:  # time off, busy elsewhere
        for key, _label, value in columns:
            if mode == "day" and value != staff_id:
                continue
            if mode == "week":
                day_start, day_end = local_day_bounds(value, value, zone)
            else:
                day_start, day_end = local_day_bounds(first, first, zone)
            off_start, off_end = max(start_at, day_start), min(end_at, day_end)
            if off_start >= off_end:
                continue
            begin = minutes(off_start)
            finish = 24 * 60 if off_end >= day_end else minutes(off_end)
            events[key].append((begin, finish, GridCell(0, [], kind="off", label=label)))
    lowest = min([8 * 60] + [b for column in events.values() for b, _, _ in column])
    highest = max([18 * 60] + [e for column in events.values() for _, e, _ in column])
    step = int(GRID_STEP.total_seconds() // 60)
    lowest -= lowest % step
    highest += (-highest) % step
    rows = []
    busy_until = dict.fromkeys(events, lowest)
    starts = {key: sorted(column, key=lambda e: e[0]) for key, column in events.items()}
    for minute in range(lowest, highest, step):
        cells: list[GridCell | str | None] = []
        for key, _label, _value in columns:
            if busy_until[key] > minute:
                cells.append("covered")
                continue
            here = [e for e in starts[key] if minute <= e[0] < minute + step]
            if here:
                begin, end, cell = here[0]
                span = max(1, -(-(end - minute) // step))
                cell.rowspan = span
                busy_until[key] = minute + span * step
                cells.append(cell)
            else:
                cells.append(None)
        label = f"{minute // 60:02d}:{minute % 60:02d}" if minute % 60 == 0 else ""
        rows.append({"label": label, "cells": cells, "hour": minute % 60 == 0, "minute": minute})
    return {"rows": rows}
