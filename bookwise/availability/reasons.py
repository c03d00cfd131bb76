"""The reasons of :func:`bookwise.availability.engine.explain_start` in words, in a language.
Pure: the API, the back office and ``bookwise explain`` word them with the translation function
they are given (``formatting.translator`` outside a request).

``private``: whether the reader may see what a reason reveals of a staff member's life (the
reason given for a time off, the name of the calendar they are busy in, which booking is in
the way). A client asking the public API reads only that the person is unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bookwise.availability.engine import (
    BOOKED,
    BUFFER,
    BUSY,
    CAPACITY,
    HELD,
    MAX_AHEAD,
    MIN_NOTICE,
    NOT_A_START,
    OTHER_GROUP,
    OUTSIDE_HOURS,
    PAST,
    ROUTING,
    TIME_OFF,
    Reason,
)
from bookwise.errors import N_
from bookwise.formatting import format_clock, format_day, format_when

Translate = Callable[..., str]

PLAIN = {
    OUTSIDE_HOURS: N_("Outside working hours."),
    PAST: N_("This time has already passed."),
    ROUTING: N_("Does not take this client: the answers send them to other staff."),
    OTHER_GROUP: N_("Another staff member already runs the group at this time."),
    TIME_OFF: N_("Time off."),
    BUSY: N_("Busy in another calendar."),
    BOOKED: N_("Already booked."),
    BUFFER: N_("Too close to another booking and the break kept around it."),
    HELD: N_("Offered to a client on the waitlist, and held for them until they answer."),
}


def period_words(start: datetime, end: datetime, zone: str, locale: str) -> str:
    """ "10:00-10:30" on the day of ``start``; with the days when it spans several; whole local
    days (a holiday from midnight to midnight) as the days alone."""
    local_start, local_end = start.astimezone(ZoneInfo(zone)), end.astimezone(ZoneInfo(zone))
    if local_start.time() == local_end.time() == time(0):  # whole days (a holiday)
        last = local_end.date() - timedelta(days=1)
        if last == local_start.date():
            return format_day(local_start, locale)
        return f"{format_day(local_start, locale)} \u2013 {format_day(last, locale)}"
    if local_start.date() == local_end.date():
        return f"{format_clock(start, zone, locale)}\u2013{format_clock(end, zone, locale)}"
    return f"{format_when(start, zone, locale)} \u2013 {format_when(end, zone, locale)}"


def reason_message(
    reason: Reason, zone: str, locale: str, translate: Translate, private: bool = True
) -> str:
    """One reason in a sentence, in ``locale`` (times in ``zone``)."""
    code = reason.code
    period = (
        period_words(reason.start, reason.end, zone, locale)
        if reason.start is not None and reason.end is not None
        else ""
    )
    if code == NOT_A_START:
        return _not_a_start(reason, zone, locale, translate)
    if code == MIN_NOTICE and reason.start is not None:
        return translate(
            N_("Too soon to book online: the first time that can be booked is %(when)s."),
            when=format_when(reason.start, zone, locale),
        )
    if code == MAX_AHEAD and reason.end is not None:
        return translate(
            N_("Too far ahead: times can be booked up to %(when)s."),
            when=format_when(reason.end, zone, locale),
        )
    if code == CAPACITY:
        return translate(N_("The group is full (%(count)s places)."), count=reason.count)
    if code == TIME_OFF and period:
        if private and reason.label:
            return translate(
                N_("Time off (%(reason)s), %(period)s."), reason=reason.label, period=period
            )
        return translate(N_("Time off, %(period)s."), period=period)
    if code == BUSY and period:
        if private and reason.label:
            return translate(
                N_("Busy in another calendar (%(feed)s), %(period)s."),
                feed=reason.label,
                period=period,
            )
        return translate(N_("Busy in another calendar, %(period)s."), period=period)
    if code == BOOKED and period and private:
        return translate(N_("Already booked, %(period)s."), period=period)
    if code == HELD and reason.count:  # places of a full group
        return translate(
            N_("Of these places, %(count)s held for clients on the waitlist until they answer."),
            count=reason.count,
        )
    if code == HELD and period:
        return translate(
            N_(
                "Offered to a client on the waitlist (%(period)s), and held for them until "
                "they answer."
            ),
            period=period,
        )
    if code == BUFFER and period and private:
        return translate(
            N_("Too close to the booking of %(period)s and the break kept around it."),
            period=period,
        )
    return translate(PLAIN.get(code, N_("Not available.")))


def _not_a_start(reason: Reason, zone: str, locale: str, translate: Translate) -> str:
    before = format_clock(reason.start, zone, locale) if reason.start is not None else None
    after = format_clock(reason.end, zone, locale) if reason.end is not None else None
    if before and after:
        return translate(
            N_("Not a start time of this service: the nearest are %(before)s and %(after)s."),
            before=before,
            after=after,
        )
    if before or after:
        return translate(
            N_("Not a start time of this service: the nearest is %(time)s."),
            time=before or after,
        )
    return translate(N_("Not a start time of this service."))
