"""Dates, times and durations written for people, in their language (Babel). Pure: no Flask."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from babel import Locale
from babel.dates import format_timedelta
from babel.lists import format_list


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
