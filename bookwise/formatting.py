"""Dates, times and durations written for people, in their language (Babel). Pure: no Flask."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time, format_timedelta, get_timezone_location
from babel.lists import format_list
from babel.support import NullTranslations, Translations

# The compiled catalogs, inside the package: the build compiles them there from the sources in the
# repository's locale/ (see setup.py).
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@lru_cache(maxsize=32)
def _translations(locale: str) -> NullTranslations:
    return Translations.load(str(LOCALE_DIR), [locale])


def translator(locale: str) -> Callable[..., str]:
    """``gettext`` for ``locale`` outside a web request (a scheduled job writing a message):
    the same catalogs the pages use, ``%(name)s`` values filled in."""
    translations = _translations(locale)

    def gettext(text: str, **values: Any) -> str:
        translated = translations.gettext(text)
        return translated % values if values else translated

    return gettext


def human_duration(
    value: timedelta,
    locale: str | Locale,
    width: Literal["narrow", "short", "medium", "long"] = "long",
) -> str:
    """``1h30m`` -> "1 hour and 30 minutes" (en), "1 heure et 30 minutes" (fr); days, hours and
    minutes each named, none rounded away."""
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [
        format_timedelta(timedelta(**{unit: amount}), threshold=1, format=width, locale=locale)
        for unit, amount in (("days", days), ("hours", hours), ("minutes", mins))
        if amount
    ]
    if not parts:
        return format_timedelta(timedelta(0), format=width, locale=locale)
    return format_list(parts, style="standard" if width == "long" else "unit-narrow", locale=locale)


def _locale(locale: str | Locale) -> Locale:
    return locale if isinstance(locale, Locale) else Locale.parse(locale)


def format_day(day: date | datetime, locale: str | Locale) -> str:
    """ "mardi 24 novembre 2026" (fr), "Tuesday, November 24, 2026" (en)."""
    return format_date(day, "full", locale=_locale(locale))


def format_clock(moment: datetime, zone: str, locale: str | Locale) -> str:
    """The time of day of ``moment`` in ``zone``: "14:30" (fr), "2:30 PM" (en_US)."""
    return format_time(moment.astimezone(ZoneInfo(zone)), "short", locale=_locale(locale))


def format_when(moment: datetime, zone: str, locale: str | Locale) -> str:
    """Day and time of ``moment`` in ``zone``: "mardi 24 novembre 2026, 14:30" (fr)."""
    loc = _locale(locale)
    local = moment.astimezone(ZoneInfo(zone))
    pattern = loc.datetime_formats["medium"]
    return str(pattern).format(format_clock(local, zone, loc), format_day(local, loc))


def utc_offset(zone: str, moment: datetime) -> str:
    """The offset of ``zone`` from UTC at ``moment``: "UTC+01:00", "UTC-03:30"."""
    offset = moment.astimezone(ZoneInfo(zone)).strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:5]}"


def zone_label(zone: str, moment: datetime) -> str:
    """``Europe/Paris`` -> "Europe/Paris (UTC+01:00)", the offset at ``moment``: for a sentence
    ("Times in ..."); inside parentheses, use :func:`zone_note`."""
    return f"{zone.replace('_', ' ')} ({utc_offset(zone, moment)})"


def zone_note(zone: str, moment: datetime) -> str:
    """``Europe/Paris`` -> "Europe/Paris, UTC+01:00": :func:`zone_label` without parentheses of
    its own, for a page to put in parentheses (never "(Europe/Paris (UTC+01:00))")."""
    return f"{zone.replace('_', ' ')}, {utc_offset(zone, moment)}"


def zone_place(zone: str, country: str, locale: str | Locale) -> str:
    """Where a zone's clock is, in ``locale``: "Toronto, Canada", "Calcutta, Inde" (fr),
    "Singapur" (de: a city that is its country is named once). ``country`` is the ISO 3166
    code the tz database gives the zone; "" names the city alone."""
    loc = _locale(locale)
    city = get_timezone_location(zone, locale=loc, return_city=True)
    country_name = loc.territories.get(country, "") if country else ""
    if not country_name or country_name == city:
        return str(city)
    return f"{city}, {country_name}"


def format_month(day: date, locale: str | Locale) -> str:
    """ "novembre 2026" (fr), "November 2026" (en)."""
    return format_date(day, "LLLL y", locale=_locale(locale))


def weekday_names(locale: str | Locale) -> list[str]:
    """Short names of Monday..Sunday in ``locale``, for a calendar grid."""
    names = _locale(locale).days["format"]["abbreviated"]
    return [str(names[i]) for i in range(7)]


WEEKDAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Words people put between days ("Monday and Wednesday"), in the shipped languages.
_JOINERS = frozenset({"and", "et", "und", "y", "&", "at", "à", "a", "um", "les", "le"})


def sessions_text(sessions: list[tuple[list[str], str]], locale: str | Locale) -> str:
    """Fixed start times in words, one per line: ``Monday, Wednesday 18:00``."""
    names = _locale(locale).days["format"]["wide"]
    lines = []
    for days, at in sessions:
        words = [
            str(names[WEEKDAY_CODES.index(day)]) if day in WEEKDAY_CODES else day for day in days
        ]
        lines.append(f"{', '.join(words)} {at}".strip())
    return "\n".join(lines)


def parse_sessions(
    text: str, locales: tuple[str, ...]
) -> list[tuple[list[str], str]] | tuple[int, str]:
    """Lines like ``Monday, Wednesday 18:00`` (weekdays named in any of ``locales``, in full or
    short, or as ``mon``...; the time on a 24-hour clock) as (weekday codes, ``HH:MM``) pairs;
    ``(line number, the word not understood)`` for a line that is not one."""
    words: dict[str, str] = {code: code for code in WEEKDAY_CODES}
    for code in locales:
        loc = _locale(code)
        for width in ("wide", "abbreviated"):
            for index, name in loc.days["format"][width].items():
                words[str(name).lower().rstrip(".")] = WEEKDAY_CODES[index]
    out: list[tuple[list[str], str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = [t for t in re.split(r"[\s,;/]+", line.strip().lower()) if t]
        if not tokens:
            continue
        days, at = [], ""
        for token in tokens:
            clock = re.fullmatch(r"(\d{1,2})[:h.](\d{2})", token)
            if clock and not at:
                at = f"{int(clock.group(1)):02d}:{clock.group(2)}"
            elif token.rstrip(".") in words:
                day = words[token.rstrip(".")]
                if day not in days:
                    days.append(day)
            elif token not in _JOINERS:
                return number, token
        if not days or not at:
            return number, line.strip()
        out.append((days, at))
    return out
