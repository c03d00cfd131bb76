"""The hooks a Bookwise plugin may implement (pluggy hook specifications).

A plugin is a module or an object with functions decorated by :data:`hookimpl`, named after the
hooks below, and published under the ``bookwise.plugins`` entry point group::

    # pyproject.toml of the plugin
    [project.entry-points."bookwise.plugins"]
    shout = "bookwise_shout"

    # bookwise_shout.py
    from bookwise.plugins import Channel, hookimpl

    BOOKWISE_API = "1.0"          # the plugin API version the plugin was written against

    @hookimpl
    def bookwise_register_channels():
        return [ShoutChannel]

Installed is not enabled: ``config.yaml`` lists the plugins to load under ``plugins.enabled``
and holds each one's settings under ``plugins.<entry point name>``.

Two kinds of hooks:

- *register* hooks are called once, when the plugin is loaded; they return the classes or
  functions the plugin adds. Each name (a channel, a field type...) must be unique.
- *booking* hooks are called after a booking change was committed (the outermost transaction;
  nothing is called for what is rolled back), with the booking as data
  (:class:`bookwise.plugins.BookingData`). Each plugin is called on its own: one that raises is
  logged with its name and the others are still called. They run in the process that made the
  change, right after the commit: keep them short, and hand slow work to a queue of your own.

Every hook's arguments are optional to implement: pluggy passes only those a function names.
Do not rely on the order in which plugins are called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from flask import Blueprint

    from bookwise.availability.assignment import AssignmentContext
    from bookwise.notifications.channels import Channel
    from bookwise.plugins.api import (
        BookingChange,
        BookingData,
        FieldType,
        MeetingProvider,
        PluginContext,
    )
    from bookwise.scheduling.registry import Job

PROJECT = "bookwise"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- What a plugin adds (called once, when it is loaded) ---------------------------------------


@hookspec
def bookwise_register_channels() -> Iterable[type[Channel]]:
    """Channel classes (subclasses of :class:`bookwise.plugins.Channel`) this plugin adds.

    Each has a ``name`` (what workflows write in ``channel:``), a ``settings_schema`` (a JSON
    Schema checked against ``plugins.<plugin>`` in config.yaml at start-up), what it can carry
    (``supports_html``, ``supports_attachments``), ``from_settings(context)`` to build it and
    ``send(message) -> message id``, raising :class:`bookwise.plugins.ChannelError`.
    """
    raise NotImplementedError


@hookspec
def bookwise_register_field_types() -> Iterable[FieldType]:
    """Field types (instances of :class:`bookwise.plugins.FieldType`) workflows may use as a
    field's ``type``: server-side checking, the WTForms field of the public form, and the text
    written in exports and messages."""
    raise NotImplementedError


@hookspec
def bookwise_register_meeting_providers() -> Iterable[type[MeetingProvider]]:
    """Meeting provider classes (subclasses of :class:`bookwise.plugins.MeetingProvider`): a
    workflow with ``location: {type: online, provider: <name>}`` gets a meeting link per booking
    from it, shown on the confirmation, in messages (``booking.meeting_url``) and in the .ics."""
    raise NotImplementedError


@hookspec
def bookwise_register_assignment_strategies() -> dict[str, Callable[[AssignmentContext], int]]:
    """Assignment strategies by name (what workflows write in ``staff.assignment``): a function
    given an :class:`~bookwise.availability.assignment.AssignmentContext` (the free staff ids in
    pool order, the pool, the last one assigned, bookings per member in the week, a random
    generator) that returns one of ``context.free``."""
    raise NotImplementedError


@hookspec
def bookwise_register_blueprints(context: PluginContext) -> Iterable[Blueprint]:
    """Flask blueprints for the plugin's own web endpoints (an inbound webhook from a gateway,
    for example). Each is mounted under ``/plugins/<plugin name>/`` and is exempt from the
    session's CSRF token, so the endpoint must check its callers itself (a signature, a secret
    in the URL)."""
    raise NotImplementedError


@hookspec
def bookwise_register_jobs() -> Iterable[Job]:
    """Scheduled jobs (instances of :class:`bookwise.plugins.Job`): a name (lowercase, unique
    across the core and plugins), a function given a :class:`bookwise.plugins.JobContext`
    (settings, database, plugin host, the run's ``now``, the clock, the instant it was due)
    that returns an optional line saying what it did, a trigger (``Every(seconds=...)`` or
    ``Daily(at=time(3, 0), zone="Europe/Paris")``), and ``once`` (default True: one run per
    due instant across every process, under a lease in the database). A job that raises is
    logged with the plugin's name, counted, and run again at its next due instant."""
    raise NotImplementedError


# --- Before a booking is written -----------------------------------------------------------------


@hookspec
def bookwise_validate_booking(booking: BookingData) -> str | Mapping[str, str] | None:
    """May refuse a booking before it is written (pretix's ``validate_order``): a rule of the
    business that the workflow language cannot say (a candidate interviewed at most twice, a
    patient's referral checked in another system).

    Called for every new booking (public page, API, back office) inside its transaction, once
    the time is known to be free and the staff member chosen; ``booking`` is the booking as it
    would be (``booking.uid`` is final, ``booking.sequence`` 0). Return ``None`` to let it
    through, or the reason to refuse it, shown to the person booking as is: a text, or a
    mapping of language to text (``{"en": "...", "fr": "..."}``) from which the booking's
    language is taken. Nothing is written when a plugin refuses. Keep it quick: the booking
    waits for it. A plugin whose check raises is reported (back office, ``bookwise plugins``)
    and the booking goes through: a broken plugin must not close the booking page."""


# --- What happens to bookings (called after each committed change) -----------------------------


@hookspec
def bookwise_booking_created(booking: BookingData) -> None:
    """A booking was made (by a client on the public page or the API, or by staff for a
    client). ``booking.state`` says whether it waits for approval or is confirmed."""


@hookspec
def bookwise_booking_confirmed(booking: BookingData) -> None:
    """A booking reached the ``confirmed`` state by an approval (not when it is created
    confirmed: that is :func:`bookwise_booking_created`)."""


@hookspec
def bookwise_booking_rescheduled(booking: BookingData, previous_start: datetime) -> None:
    """A booking moved to another time (``booking.start``); ``previous_start`` is the old one."""


@hookspec
def bookwise_booking_cancelled(booking: BookingData, reason: str | None) -> None:
    """A booking was cancelled, by the client or by staff."""


@hookspec
def bookwise_booking_changed(booking: BookingData, change: BookingChange) -> None:
    """Any change of a booking, including those above and every other move of its lifecycle
    (declined, completed, no-show, a reassignment to other staff): ``change.action`` names it,
    ``change.from_state`` is the state before."""


def hook_names() -> list[str]:
    """The names of every hook, in the order of this module (for docs and checks)."""
    return [name for name in globals() if name.startswith("bookwise_")]
