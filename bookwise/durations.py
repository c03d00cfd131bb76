"""Durations as the workflow language writes them: ``45m``, ``24h``, ``30d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

# Days, hours, minutes, each optional but in that order, and at least one of them.
# At most 9999 days, 99999 hours, 999999 minutes: beyond that a duration is a mistake.
DURATION_PATTERN = r"^(?=\d)(?:\d{1,4}d)?(?:\d{1,5}h)?(?:\d{1,6}m)?$"
_DURATION = re.compile(r"^(?:(?P<d>\d{1,4})d)?(?:(?P<h>\d{1,5})h)?(?:(?P<m>\d{1,6})m)?$")

DURATION_HINT = "write it like 45m, 24h, 30d or 1h30m"


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m`` into a :class:`timedelta`; raise ``ValueError`` with a readable message."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not a duration; {DURATION_HINT}")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return timedelta(days=parts.get("d", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0))


def format_duration(value: timedelta) -> str:
    """The shortest spelling of ``value`` in the workflow language (``90 minutes`` -> ``1h30m``)."""
    minutes = int(value.total_seconds() // 60)
    if minutes == 0:
        return "0m"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "m")) if n)
