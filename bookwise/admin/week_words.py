"""Working hours of a week in words, as a business user types them: ``Monday-Friday 09:00-17:00``,
one line per group of days, several ranges separated by commas. The check rows of the workflow
editor use them for a scene's hours (``{mon: ["09:00-17:00"], ...}`` in the file)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from babel import Locale

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"(\d{1,2})[:h.](\d{2})\s*[-\u2013]\s*(\d{1,2})[:h.](\d{2})")
# Words people put between days ("Monday and Wednesday"), in the shipped languages.
_JOINERS = frozenset({"and", "et", "und", "y", "&"})
# And those that make a run of days ("Monday to Friday", "lundi au vendredi").
_THROUGH = frozenset({"to", "through", "au", "à", "a", "bis", "hasta"})


def _day_words(locales: Sequence[str]) -> dict[str, str]:
    words = {code: code for code in WEEKDAYS}
    for code in locales:
        try:
            days = Locale.parse(code).days["format"]
        except (ValueError, TypeError):
            continue
        for width in ("wide", "abbreviated"):
            for index, name in days[width].items():
                words[str(name).lower().rstrip(".")] = WEEKDAYS[index]
    return words


def week_text(hours: Mapping[str, Sequence[str]], locale: str) -> str:
    """``{mon: [...], ..., fri: [...]}`` as ``Monday-Friday 09:00-17:00``: one line per run of
    days with the same ranges."""
    names = Locale.parse(locale).days["format"]["wide"]
    runs: list[tuple[list[int], list[str]]] = []
    for index, day in enumerate(WEEKDAYS):
        ranges = [str(r) for r in hours.get(day) or []]
        if not ranges:
            continue
        if runs and runs[-1][1] == ranges and runs[-1][0][-1] == index - 1:
            runs[-1][0].append(index)
        else:
            runs.append(([index], ranges))
    lines = []
    for days, ranges in runs:
        if len(days) >= 3:
            words = f"{names[days[0]]}-{names[days[-1]]}"
        else:
            words = ", ".join(str(names[d]) for d in days)
        lines.append(f"{words} {', '.join(ranges)}")
    return "\n".join(lines)


def parse_week(text: str, locales: Sequence[str]) -> dict[str, list[str]] | tuple[int, str]:
    """Lines like ``Monday-Friday 09:00-12:00, 14:00-17:00`` or ``Sat 10:00-12:00`` (weekdays
    in any of ``locales``, in full or short) as weekday -> ``HH:MM-HH:MM`` ranges, in the
    order of the week; ``(line number, what is not understood)`` for a line that is not one."""
    words = _day_words(locales)
    hours: dict[str, list[str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        ranges = [
            f"{int(a):02d}:{b}-{int(c):02d}:{d}" for a, b, c, d in _RANGE.findall(line.lower())
        ]
        rest = _RANGE.sub(" ", line.lower())
        days: list[int] = []
        tokens = [t for t in re.split(r"[\s,;/]+", rest) if t]
        through = False
        for token in tokens:
            if token in _JOINERS:
                continue
            if token in _THROUGH and days and not through:
                through = True
                continue
            if through and token in words:
                end = WEEKDAYS.index(words[token])
                if end < days[-1]:
                    return number, token[:40]
                days.extend(range(days[-1] + 1, end + 1))
                through = False
                continue
            first, dash, last = token.partition("-") if "-" in token else token.partition("\u2013")
            if first not in words or (dash and last not in words):
                return number, token[:40]
            start = WEEKDAYS.index(words[first])
            end = WEEKDAYS.index(words[last]) if dash else start
            if end < start:
                return number, token[:40]
            days.extend(range(start, end + 1))
        if not ranges or not days or through:
            return number, line[:40]
        for index in days:
            hours.setdefault(WEEKDAYS[index], []).extend(ranges)
    return {day: hours[day] for day in WEEKDAYS if day in hours}
