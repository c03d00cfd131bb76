"""What to tell a person when a booking request is refused, in their language. Pure.

The services raise errors with stable codes; the pages and the API word them with
:func:`describe`, through the translation function they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bookwise.errors import N_
from bookwise.workflows.language import Text

REFUSALS = {
    "slot_taken": N_("This time was just taken. Please pick another time."),
    "not_a_slot": N_("This time cannot be booked for this service. Please pick another time."),
    "in_the_past": N_("This time has already passed. Please pick another time."),
    "too_soon": N_("This time is too soon to be booked online. Please pick a later time."),
    "too_far": N_("This time is too far ahead to be booked yet. Please pick an earlier time."),
    "staff_not_choosable": N_("This service chooses its staff itself."),
    "unknown_staff": N_("This person does not take bookings for this service."),
    "too_late": N_("It is too late to change this booking online. Please contact us."),
    "not_allowed": N_("This booking cannot be changed online. Please contact us."),
    "invalid_state": N_("This booking cannot be changed any more."),
    "forbidden": N_("This booking cannot be changed any more."),
    "unknown_transition": N_("This booking cannot be changed any more."),
    "invalid_start": N_("This time cannot be booked for this service. Please pick another time."),
    "slot_free": N_("This time still has a free place: book it instead of waiting."),
    "waitlist_closed": N_("This service has no waitlist."),
    "already_waiting": N_(
        "You are already on the waitlist for this time. We will write to you if a place "
        "becomes free."
    ),
    "offer_expired": N_("This offer has expired and the place went to the next person waiting."),
    "offer_taken": N_("Sorry, the place offered is no longer free."),
    "no_offer": N_("There is no place on offer for you at the moment."),
    "already_booked": N_("You have already booked this place."),
    "busy": N_("Many people are booking right now. Nothing was booked; please try again."),
    "series_conflict": N_(
        "Some occurrences of this series are not free. Nothing was booked: book the series "
        "without them, or pick another time."
    ),
    "series_not_allowed": N_("This service cannot be booked as a series."),
    "invalid_frequency": N_("This service does not repeat that often."),
    "invalid_count": N_("This series has too many or too few occurrences."),
    "nothing_to_cancel": N_("No occurrence of this series is left to cancel."),
    "nothing_to_move": N_("No occurrence of this series is waiting for this any more."),
    "invalid_replacement": N_(
        "A replacement time must be on the day of the occurrence it replaces or within three "
        "days of it, and apart from the series' other times."
    ),
}
GENERIC = N_("Your request could not be completed. Please try again.")


def describe(code: str, translate: Callable[[str], str] = str, told: str | None = None) -> str:
    """The message for a refusal code, translated; ``told`` when the refusal brought its own
    words, already in the person's language (a plugin's reason)."""
    return told or translate(REFUSALS.get(code, GENERIC))


# The platform's names of the usual states, for workflows that do not name them in a language.
STATES = {
    "confirmed": N_("Confirmed"),
    "requested": N_("Waiting for confirmation"),
    "cancelled": N_("Cancelled"),
    "declined": N_("Declined"),
    "completed": N_("Completed"),
    "no_show": N_("Missed"),
}


def state_name(
    label: Mapping[str, str] | Any, state: str, locale: str, translate: Callable[[str], str] = str
) -> str:
    """The workflow's own name for a state in ``locale``; else ours, translated; else the
    workflow's in another language; else the state's id made readable."""
    text = Text.of(label)
    if locale in text.values or locale.split("_", maxsplit=1)[0] in text.values:
        return text.get(locale)
    if state in STATES:
        return translate(STATES[state])
    if text:
        return text.get(locale)
    return state.replace("_", " ").capitalize()


# Where an occurrence stands in its series, by the series' frequency ("Occurrence 3 of 10 of a
# weekly series").
SERIES_POSITION = {
    "weekly": N_("Occurrence %(index)s of %(count)s of a weekly series"),
    "every_2_weeks": N_("Occurrence %(index)s of %(count)s of a series every 2 weeks"),
    "every_3_weeks": N_("Occurrence %(index)s of %(count)s of a series every 3 weeks"),
    "every_4_weeks": N_("Occurrence %(index)s of %(count)s of a series every 4 weeks"),
}


def series_position(
    frequency: str, index: int, count: int, translate: Callable[[str], str] = str
) -> str:
    """ "Occurrence 3 of 10 of a weekly series", translated (``index`` from 1)."""
    text = translate(SERIES_POSITION.get(frequency, SERIES_POSITION["weekly"]))
    return text % {"index": index, "count": count}
