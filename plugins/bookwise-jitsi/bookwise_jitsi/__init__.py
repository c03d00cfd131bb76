"""A Jitsi Meet room per booking: online meetings without a vendor account.

Each booking gets a room whose name holds 128 random bits, on the Jitsi server of the
``server`` setting (your own, or a public one). Jitsi rooms exist while someone is in them, so
there is nothing to delete on cancellation; a rescheduled booking keeps its room.
"""

from __future__ import annotations

import secrets
from typing import Any

from bookwise.plugins import BookingData, Meeting, MeetingProvider, hookimpl

BOOKWISE_API = "1.0"
__version__ = "1.0.0"


class JitsiProvider(MeetingProvider):
    name = "jitsi"
    settings_schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["server"],
        "properties": {
            "server": {
                "type": "string",
                "pattern": "^https://[^/\\s]+/?$",
                "x-error": "server must be the https:// address of a Jitsi Meet server, like "
                "https://meet.example.org, got {value!r}",
                "description": "The Jitsi Meet server, like https://meet.example.org",
            },
            "prefix": {
                "type": "string",
                "pattern": "^[A-Za-z0-9]{0,30}$",
                "description": "Start of every room name (letters and digits), like Acme.",
            },
        },
    }

    def __init__(self, server: str, prefix: str = "Bookwise") -> None:
        self.server = server.rstrip("/")
        self.prefix = prefix

    def create(self, booking: BookingData) -> Meeting:
        del booking  # nothing of the booking goes into the room name: it is public on the server
        room = f"{self.prefix}{secrets.token_hex(16)}"
        return Meeting(url=f"{self.server}/{room}", id=room)


@hookimpl
def bookwise_register_meeting_providers() -> list[type[MeetingProvider]]:
    return [JitsiProvider]
