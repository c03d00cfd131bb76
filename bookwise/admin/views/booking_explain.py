"""'Why is this time not offered?' in the back office: a time of the day view (a click on an
empty cell, or the form above the grid) explained by the availability engine for one service:
the booking window and a full group for the whole service, then each staff member's reasons
(working hours, time off, busy in another calendar, a booking and its buffer, routing).

The words are :func:`bookwise.availability.reasons.reason_message`, as in the API and ``bookwise
explain``. What a reason reveals of a colleague (a time off's reason, the calendar they are busy
in, which booking is in the way) is shown to the calendar's admins and viewers, and to a staff
member about themselves; others read that the person is unavailable.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from flask import request
from flask_admin import expose
from flask_babel import get_locale

from bookwise.admin.base import AdminView
from bookwise.admin.display import workflow_name
from bookwise.availability.reasons import reason_message
from bookwise.availability.services import SlotSearch, explain_time, read_pool
from bookwise.bookings.answers import InvalidAnswers
from bookwise.bookings.services import BookingContext, routing_answers, routing_questions
from bookwise.calendars.models import Service
from bookwise.formatting import format_when
from bookwise.i18n import gettext
from bookwise.web import now, plugin_host
from bookwise.workflows.services import current_version


def parse_moment(value: str | None, zone: ZoneInfo) -> datetime | None:
    """An ISO 8601 time from a link or a form: with its offset, or local to ``zone``."""
    try:
        moment = datetime.fromisoformat((value or "").strip()[:40])
    except ValueError:
        return None
    if not 1971 <= moment.year <= 2199:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


class ExplainMixin(AdminView):
    """The explainer page of :class:`bookwise.admin.views.bookings.BookingsView`."""

    def _context(self, service: Service) -> BookingContext:
        return BookingContext(
            self.calendar, service, current_version(self.db, service.workflow.slug)
        )

    @expose("/explain")
    def explain(self) -> Any:
        calendar, session, access = self.calendar, self.db, self.access
        locale = str(get_locale())
        zone_name = calendar.timezone
        zone = ZoneInfo(zone_name)
        contexts = [self._context(s) for s in sorted(calendar.services, key=lambda s: s.id)]
        staff_id = _int(request.args.get("staff"))
        day = request.args.get("date", "")
        clock = request.args.get("time", "")
        raw = request.args.get("start") or (f"{day}T{clock}" if day and clock else "")
        start = parse_moment(raw, zone)
        chosen = next(
            (c for c in contexts if str(c.service.id) == request.args.get("service")), None
        )
        if chosen is None and contexts:
            # The first service the clicked staff member serves.
            chosen = next(
                (
                    c
                    for c in contexts
                    if staff_id in {m.id for m in read_pool(session, c.service, c.workflow)}
                ),
                contexts[0],
            )
        services = [
            (str(c.service.id), workflow_name(c.workflow, locale, calendar.default_locale))
            for c in contexts
        ]
        told = None
        questions, answers, answer_problem = self._routing(chosen, locale)
        if start is not None and chosen is not None:
            found = explain_time(
                session,
                calendar,
                chosen.service,
                chosen.workflow,
                start,
                now(),
                SlotSearch(answers=answers),
            )
            sees_all = access.allows(calendar.id, "view")
            own = access.staff_id(calendar.id)

            def words(reasons: Any, member: int | None) -> list[str]:
                private = sees_all or (member is not None and member == own)
                return [reason_message(r, zone_name, locale, gettext, private) for r in reasons]

            explanation = found.explanation
            told = {
                "offered": explanation.offered,
                "remaining": explanation.remaining,
                "reasons": words(explanation.reasons, None),
                "staff": [
                    {
                        "id": verdict.staff_id,
                        "name": found.member(verdict.staff_id).name,
                        "free": verdict.free,
                        "chosen": verdict.staff_id == staff_id,
                        "reasons": words(verdict.reasons, verdict.staff_id),
                    }
                    for verdict in explanation.staff
                ],
            }
        local = start.astimezone(zone) if start is not None else None
        return self.render(
            "bookwise_admin/bookings/explain.html",
            told=told,
            when=format_when(start, zone_name, locale) if start is not None else "",
            asked=raw,
            bad_time=bool(raw) and start is None,
            # The day asked about (a link from a day of the grid), else today.
            day=local.date().isoformat() if local else _day_or_today(day, zone),
            clock=local.strftime("%H:%M") if local else time(9).strftime("%H:%M"),
            services=services,
            service=str(chosen.service.id) if chosen else "",
            staff=staff_id,
            zone=zone_name,
            grid_date=local.date().isoformat() if local else "",
            no_services_message=gettext("This calendar offers no service yet."),
            questions=questions,
            answer_problem=answer_problem,
        )

    def _routing(
        self, chosen: BookingContext | None, locale: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str]:
        """The questions the service routes on, as the page asks them (``field_ID``), the
        checked answers given (None: none, the whole pool), and what is wrong with them."""
        if chosen is None or not chosen.workflow.route:
            return [], None, ""
        fallback = self.calendar.default_locale
        asked = routing_questions(chosen.workflow)
        given = {spec.id: request.args.get(f"field_{spec.id}", "")[:200] for spec in asked}
        questions = [
            {
                "id": spec.id,
                "label": spec.label.get(locale, fallback),
                "value": given[spec.id],
                "options": [
                    (str(option.value), option.label.get(locale, fallback))
                    for option in spec.options
                ],
            }
            for spec in asked
        ]
        if not any(given.values()):
            return questions, None, ""
        try:
            answers = routing_answers(
                chosen.workflow,
                {k: v for k, v in given.items() if v},
                now().date(),
                field_types=plugin_host().field_types,
            )
        except InvalidAnswers as exc:
            words = "; ".join(
                f"{q['label']}: {exc.problems[q['id']].message()}"
                for q in questions
                if q["id"] in exc.problems
            )
            return questions, None, words
        return questions, answers, ""


def _int(value: str | None) -> int | None:
    try:
        return int(value or "")
    except ValueError:
        return None


def _day_or_today(value: str, zone: ZoneInfo) -> str:
    """``value`` when it is a day (YYYY-MM-DD), else today in ``zone``."""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return now().astimezone(zone).date().isoformat()
