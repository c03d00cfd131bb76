"""Wall-clock times in a time zone, turned into real instants. Pure.

A local time can occur once, twice (clocks going back: the repeated hour) or never (clocks going
forward: the skipped hour). These functions say which, instead of guessing silently.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

Occurrence = Literal["once", "twice", "never"]


def occurrences(naive: datetime, zone: ZoneInfo) -> tuple[list[int], Occurrence]:
    """The UTC seconds at which the wall clock of ``zone`` shows ``naive``, and how often."""
    found = []
    for fold in (0, 1):
        seconds = int(naive.replace(tzinfo=zone, fold=fold).timestamp())
        if datetime.fromtimestamp(seconds, zone).replace(tzinfo=None) == naive and (
            seconds not in found
        ):
            found.append(seconds)
    found.sort()
    return found, ("once" if len(found) == 1 else "twice" if found else "never")


def local_instant(day: date, minute: int, zone: ZoneInfo, earliest: bool = True) -> int:
    """The UTC second at which the wall clock of ``zone`` shows ``day`` + ``minute`` minutes.

    A time that occurs twice gives its first occurrence when ``earliest``, its last otherwise; a
    time that does not occur gives the moment of the jump, the first real time after it.
    """
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    found, _ = occurrences(naive, zone)
    if found:
        return found[0] if earliest else found[-1]
    # In the gap: search the jump between the two readings of the wall time.
    low, high = sorted(int(naive.replace(tzinfo=zone, fold=f).timestamp()) for f in (0, 1))
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high


def local_to_utc(naive: datetime, zone: ZoneInfo) -> tuple[datetime, Occurrence]:
    """``naive`` read on the wall clock of ``zone`` as a UTC instant (to the second): its first
    occurrence, or the jump when it does not occur; with how often that wall time occurs."""
    found, kind = occurrences(naive.replace(microsecond=0), zone)
    if not found:
        found = [local_instant(naive.date(), naive.hour * 60 + naive.minute, zone)]
    return datetime.fromtimestamp(found[0], UTC), kind


# Datetimes outside these years are typing mistakes or probes; near the limits of Python's
# datetime, converting between zones would overflow.
FIRST_YEAR, LAST_YEAR = 1971, 2199


def sane(moment: datetime) -> bool:
    """Whether ``moment`` is within the years Bookwise deals in."""
    return FIRST_YEAR <= moment.year <= LAST_YEAR


@cache
def zone_names() -> frozenset[str]:
    """Every IANA zone name Bookwise accepts (the tz database's, without its posix/ and right/
    copies)."""
    return frozenset(
        name for name in available_timezones() if not name.startswith(("posix/", "right/"))
    )


def parse_zone(name: str | None) -> str | None:
    """``name`` when it is a time zone Bookwise accepts, else None."""
    return name if name in zone_names() else None


# --- the zones offered to people ----------------------------------------------------------------

UTC_ZONE = "Etc/UTC"


def _tz_file(name: str) -> str:
    """A text file of the tz database: the ``tzdata`` package's (a dependency, so every machine
    offers the same zones), else the system's."""
    try:
        from importlib.resources import files

        return files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        from zoneinfo import TZPATH

        for directory in TZPATH:
            path = Path(directory) / name
            if path.is_file():
                return path.read_text(encoding="utf-8")
    return ""


@cache
def offered_zones() -> dict[str, str]:
    """The zones a person picks from: IANA name -> ISO 3166 country code ("" for UTC).

    The source is the tz database's ``zone.tab``: one zone per place that has kept its own
    clock, at least one per country, under its current name (``Asia/Kolkata``, never the
    deprecated ``Asia/Calcutta``; ``Europe/Oslo`` is kept, so a Norwegian finds Oslo). The
    ``zone1970.tab`` list would merge Oslo into Berlin, and ``available_timezones()`` has every
    backward alias.
    """
    known = zone_names()
    zones: dict[str, str] = {}
    for line in _tz_file("zone.tab").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        country, _coordinates, name, *_comment = line.split("\t")
        if name in known:
            zones[name] = country
    if UTC_ZONE in known:
        zones[UTC_ZONE] = ""
    return zones


@cache
def _links() -> dict[str, str]:
    """The tz database's links: alias -> the zone it now points to (``tzdata.zi``)."""
    links = {}
    for line in _tz_file("tzdata.zi").splitlines():
        if line.startswith("L "):
            _kind, target, alias = line.split()[:3]
            links[alias] = target
    return links


def canonical_zone(name: str | None) -> str | None:
    """The offered zone that ``name`` means, or ``name`` itself when it is a zone that no
    offered one stands for (``Etc/GMT+5``); None when it is no zone at all.

    A browser may report a deprecated alias (``Asia/Calcutta``, ``Europe/Kiev``, ``US/Eastern``).
    CLDR's alias table, as Babel ships it, maps each to the current name of the same place
    (``Africa/Asmera`` -> ``Africa/Asmara``); the tz database's own links only say which zone
    keeps the same clock (``Africa/Asmera`` -> ``Africa/Nairobi``), so they come second.
    """
    if name is None or parse_zone(name) is None:
        return None
    offered = offered_zones()
    if name in offered:
        return name
    from babel.core import get_global

    for candidate in (get_global("zone_aliases").get(name), _links().get(name)):
        if candidate in offered:
            return str(candidate)
    return name
