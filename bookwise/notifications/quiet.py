"""Quiet hours: when a text message due at night is sent instead. Pure: no Flask, no database.

``quiet_hours: {from: "21:00", to: "08:00"}`` (on a workflow or a calendar) is read on the
RECIPIENT's wall clock. A night's quiet stretch runs from the real instant its clock shows
``from`` to the real instant it shows ``to`` (the next day when the range crosses midnight), both
excluded: a message due at 21:00 sharp, or at 08:00 sharp, goes out then. On the nights the
clocks change, the stretch holds the real local times: a time the clocks skip is the moment they
jump (as everywhere in Bookwise, :func:`bookwise.timezones.local_instant`); a time they show
twice starts the stretch at its first showing and ends it at its last, so that the repeated hour
stays quiet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bookwise.timezones import local_instant

# What a notification rule does with a message due inside quiet hours: sent when they end
# (the default), sent as they begin (the evening before), or sent at once (urgent messages).
Direction = Literal["after", "before", "ignore"]
DIRECTIONS: tuple[Direction, ...] = ("after", "before", "ignore")
DEFAULT_DIRECTION: Direction = "after"
# The channel quiet hours leave alone unless ``email: true``.
EMAIL = "email"
# Channels that reach a machine, not a person (an integration's URL, the log): never held.
MACHINE_CHANNELS = frozenset({"webhook", "log"})


def minute_of(clock: str) -> int:
    """``"21:30"`` as minutes since midnight (the schema has checked the shape)."""
    hours, minutes = (int(part) for part in str(clock).split(":"))
    return hours * 60 + minutes


def clock_of(minute: int) -> str:
    """Minutes since midnight as ``"HH:MM"``."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True)
class QuietHours:
    """A daily range of the recipient's wall clock during which messages wait.

    ``start`` and ``end`` are minutes since midnight (``from`` and ``to``), never equal;
    ``email``: whether e-mail waits too (by default only text messages and chats do).
    """

    start: int
    end: int
    email: bool = False

    def __post_init__(self) -> None:
        if not (0 <= self.start < 1440 and 0 <= self.end < 1440):
            raise ValueError("quiet hours are times of day, from 00:00 to 23:59")
        if self.start == self.end:
            raise ValueError("quiet hours from and to are the same time")

    @classmethod
    def of(cls, spec: Mapping[str, Any] | None) -> QuietHours | None:
        """The ``quiet_hours`` mapping of a checked workflow or calendar (None: none)."""
        if not spec:
            return None
        return cls(minute_of(spec["from"]), minute_of(spec["to"]), bool(spec.get("email", False)))

    def to_spec(self) -> dict[str, Any]:
        """The mapping as a file writes it (``email`` only when e-mail waits too)."""
        spec: dict[str, Any] = {"from": clock_of(self.start), "to": clock_of(self.end)}
        if self.email:
            spec["email"] = True
        return spec

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def holds(self, channel: str) -> bool:
        """Whether messages on ``channel`` wait during these hours: text messages and chats
        (a plugin's channels), e-mail when ``email``; never a machine's (webhook, log)."""
        if channel in MACHINE_CHANNELS:
            return False
        return channel != EMAIL or self.email

    def describe(self) -> str:
        return f"{clock_of(self.start)}\u2013{clock_of(self.end)}"


def stored_quiet_hours(spec: Any) -> QuietHours | None:
    """Quiet hours as stored (a calendar's column): None when none, or when the value no longer
    reads as quiet hours (a stored value is never a reason to stop sending)."""
    if not isinstance(spec, Mapping):
        return None
    try:
        return QuietHours.of(spec)
    except (KeyError, TypeError, ValueError):
        return None


def stretch_of(day: date, hours: QuietHours, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The quiet stretch that begins on the local ``day``: its first and last instants (UTC),
    both excluded from it."""
    start = local_instant(day, hours.start, zone, earliest=True)
    end_day = day + timedelta(days=1) if hours.crosses_midnight else day
    end = local_instant(end_day, hours.end, zone, earliest=False)
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)


def quiet_stretch(
    moment: datetime, hours: QuietHours, zone: ZoneInfo
) -> tuple[datetime, datetime] | None:
    """The quiet stretch ``moment`` (aware) falls inside, as UTC instants, or None."""
    if moment.tzinfo is None:
        raise ValueError("quiet_stretch needs an aware datetime")
    local_day = moment.astimezone(zone).date()
    for day in (local_day - timedelta(days=1), local_day):
        start, end = stretch_of(day, hours, zone)
        if start < moment < end:
            return start, end
    return None


def send_time(
    due: datetime,
    hours: QuietHours | None,
    zone: ZoneInfo,
    direction: str = DEFAULT_DIRECTION,
    now: datetime | None = None,
) -> datetime:
    """When a message due at ``due`` is sent, given the recipient's quiet ``hours`` in their
    ``zone``: ``due`` itself when it is outside them (or there are none, or the rule says
    ``ignore``); else the end of the quiet stretch (``after``), or its beginning (``before``,
    the evening before) unless that is already past at ``now``, when it is the end too."""
    if hours is None or direction == "ignore":
        return due
    stretch = quiet_stretch(due, hours, zone)
    if stretch is None:
        return due
    start, end = stretch
    if direction == "before" and (now is None or start >= now):
        return start
    return end


def effective_quiet_hours(
    workflow_hours: QuietHours | None, calendar_hours: QuietHours | None
) -> QuietHours | None:
    """The workflow's quiet hours win over the calendar's; neither: none."""
    return workflow_hours if workflow_hours is not None else calendar_hours


def held_until(
    due: datetime,
    channel: str,
    hours: QuietHours | None,
    zone_name: str,
    direction: str = DEFAULT_DIRECTION,
    now: datetime | None = None,
) -> datetime:
    """:func:`send_time` for a message on ``channel`` to a recipient in ``zone_name``: messages
    on a channel the hours leave alone (e-mail, unless ``email: true``) are never held."""
    if hours is None or not hours.holds(channel):
        return due
    try:
        zone = ZoneInfo(zone_name)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return send_time(due, hours, zone, direction, now)
