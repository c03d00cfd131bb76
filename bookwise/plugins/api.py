"""The classes a plugin subclasses or receives, stable within a major :data:`API_VERSION`.

Pure: nothing here imports Flask or touches the database; WTForms is imported by the field type
that builds a form field, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from bookwise.config import Settings
    from bookwise.workflows.language import Field

# The plugin API's version. A plugin says which one it was written against (``BOOKWISE_API`` in
# its module); it loads when the major versions are equal and ours is at least as recent.
API_VERSION = "1.0"


@dataclass(frozen=True)
class PluginContext:
    """What a plugin's parts are built with: its name, its checked settings (the mapping under
    ``plugins.<name>`` in config.yaml), the instance's settings, and a few services.

    The services are given by the plugin host (``sms_stops``: how a STOP is recorded), so this
    class stays pure and a plugin's test may build one with its own."""

    name: str
    settings: Mapping[str, Any]
    instance: Settings
    sms_stops: Callable[[str, str], None] | None = field(default=None, repr=False, compare=False)

    @property
    def instance_dir(self) -> Path:
        """The instance's own folder (for a file the plugin keeps, a dry-run log)."""
        return self.instance.instance_dir

    @property
    def base_url(self) -> str:
        return self.instance.base_url

    def record_sms_stop(self, phone: str, source: str) -> None:
        """A number replied STOP: Bookwise sends it no more text messages, planned ones
        included. ``phone`` in international format (+33...)."""
        if self.sms_stops is None:
            raise RuntimeError("this plugin context has no database")
        self.sms_stops(phone, source)


@dataclass(frozen=True)
class BookingData:
    """A booking as plugins see it, taken right after the change was committed.

    Times are aware, in UTC; ``timezone`` is the client's. Answers to fields marked
    ``sensitive`` in the workflow are never given to plugins (health, HR data stay in Bookwise).
    """

    uid: str
    state: str
    calendar: str  # slug
    calendar_name: str
    service: str  # workflow id
    service_name: str
    start: datetime
    end: datetime
    timezone: str
    locale: str
    staff: str  # slug
    staff_name: str
    staff_email: str
    client_name: str
    client_email: str | None
    client_phone: str | None
    answers: Mapping[str, Any] = field(default_factory=dict)
    meeting_url: str | None = None
    source: str = "public"
    sequence: int = 0


@dataclass(frozen=True)
class BookingChange:
    """What happened to a booking: ``action`` is ``created``, ``rescheduled``, ``reassigned`` or
    the name of the lifecycle move (``approve``, ``decline``, ``cancel``, ``no_show``...)."""

    action: str
    from_state: str | None
    actor: str
    details: Mapping[str, Any] = field(default_factory=dict)


class InvalidValue(ValueError):
    """Raised by :meth:`FieldType.clean` with the message the client reads beside the field."""


class FieldType:
    """A kind of question on the booking form. Subclass it and return an instance from
    ``bookwise_register_field_types``.

    ``name`` is what workflows write as a field's ``type``; ``settings_schema`` checks the
    field's own ``settings:`` mapping in the workflow file (reported with file and line like any
    other workflow error).
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # shown in the back office's list of field types
    settings_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    def clean(self, value: Any, spec: Field) -> Any:
        """The value to store (JSON-serialisable) for a non-empty answer; raise
        :class:`InvalidValue` to refuse it. ``spec.settings`` holds the field's settings."""
        del spec
        return value

    def form_field(self, spec: Field, options: Mapping[str, Any]) -> Any:
        """The WTForms field (unbound, as in a form class) for the public form. ``options``
        holds ``label``, ``description`` and ``render_kw`` (required, placeholder...), to pass on
        as keyword arguments. The default is a one-line text input."""
        from wtforms import StringField

        del spec
        return StringField(**options)

    def export(self, value: Any) -> str:
        """The answer as one cell of the TSV/CSV report and one line of a message."""
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return "" if value is None else str(value)


@dataclass(frozen=True)
class Meeting:
    """A meeting created by a provider: the link participants open, and the provider's id for
    it (kept with the booking, given back to :meth:`MeetingProvider.delete`)."""

    url: str
    id: str = ""


class MeetingError(Exception):
    """The provider could not create, move or delete a meeting. The booking goes on without a
    link; the problem is written in its history and in the log."""


class MeetingProvider:
    """Creates a meeting link per booking. Subclass it and return the class from
    ``bookwise_register_meeting_providers``.

    :meth:`create` is called inside the booking's transaction, so that the link is in the
    booking from the first message on; it has ``timeout`` seconds (5 by default) to answer.
    :meth:`delete` is called after a cancellation was committed.
    """

    name: ClassVar[str] = ""
    settings_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    # Seconds :meth:`create` may take; after that the booking goes on without a link (and a
    # meeting created later is deleted).
    timeout: ClassVar[float] = 5.0

    @classmethod
    def from_settings(cls, context: PluginContext) -> Self:
        """Build the provider from the plugin's checked settings (``context.settings``). The
        default passes them as keyword arguments."""
        return cls(**context.settings)

    def create(self, booking: BookingData) -> Meeting:
        raise NotImplementedError

    def update(self, meeting: Meeting, booking: BookingData) -> Meeting:
        """The booking moved: the meeting to keep (the default keeps the same link)."""
        del booking
        return meeting

    def delete(self, meeting: Meeting) -> None:
        """The booking was cancelled: remove the meeting (the default does nothing)."""
        del meeting
