"""Where bookings meet plugins: meeting links, and booking events after commit.

The booking services are given the plugin host (``plugins``) by their caller, as an argument,
and note each change with it (:func:`note_change`); the booking is read as data just before the
commit, and the plugins are called just after it. A rolled-back change calls nobody. What a
transaction noted waits in ``session.info`` (the transaction's own bookkeeping, emptied when it
ends), each note with the host it is for; :func:`attach` installs the listeners that act on it.

A plugin that a calendar does not use (``Calendar.plugins``) hears nothing of its bookings: no
events, no checks, no meetings (the core's own plugins are always used).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from bookwise.plugins.api import (
    BookingChange,
    BookingData,
    Meeting,
    MeetingError,
    MeetingProvider,
)

if TYPE_CHECKING:
    from bookwise.bookings.models import Booking
    from bookwise.calendars.models import Calendar
    from bookwise.plugins.host import PluginHost

log = logging.getLogger("bookwise.plugins")

# What the transaction did that plugins must hear of once it commits, in order: booking changes,
# meetings created (deleted again if the transaction rolls back) and meetings to delete.
_PENDING = "bookwise.plugins.pending"
_MARKS = "bookwise.plugins.savepoints"  # savepoint -> length of the pending list at its start
_READY = "bookwise.plugins.ready"

# (kind, subject, detail, host): ("change", booking, change) | ("created"|"delete", name, meeting)
Pending = tuple[str, Any, Any, "PluginHost"]


def attach(sessions: sessionmaker[Session]) -> None:
    """Call the plugins after the commits of ``sessions``' transactions, with what they noted.

    Only the outermost transaction counts: a savepoint released is not a commit, and a savepoint
    rolled back forgets only what was noted inside it."""
    if not event.contains(sessions, "before_commit", _before_commit):
        event.listen(sessions, "after_transaction_create", _transaction_created)
        event.listen(sessions, "before_commit", _before_commit)
        event.listen(sessions, "after_commit", _after_commit)
        event.listen(sessions, "after_soft_rollback", _after_rollback)
        event.listen(sessions, "after_transaction_end", _transaction_ended)


def _pending(session: Session) -> list[Pending]:
    pending: list[Pending] = session.info.setdefault(_PENDING, [])
    return pending


def used_by(calendar: Calendar, host: PluginHost) -> Callable[[str], bool]:
    """Whether ``calendar`` uses a plugin of ``host``: the core's always; the others as the
    calendar's ``plugins`` says (None: every plugin enabled on the instance)."""

    def uses(plugin: str) -> bool:
        info = host.plugins.get(plugin)
        return (info is not None and info.core) or calendar.uses_plugin(plugin)

    return uses


def snapshot(booking: Booking) -> BookingData:
    """The booking as plugins see it (answers to sensitive fields left out)."""
    from bookwise.workflows.services import workflow_of

    workflow = workflow_of(booking.workflow_version)
    sensitive = {spec.id for spec in workflow.fields if spec.sensitive}
    client, staff = booking.client, booking.staff_member
    return BookingData(
        uid=booking.uid,
        state=booking.state,
        calendar=booking.calendar.slug,
        calendar_name=booking.calendar.name,
        service=booking.workflow_version.workflow.slug,
        service_name=workflow.name.get(booking.locale, booking.calendar.default_locale),
        start=booking.start_at,
        end=booking.end_at,
        timezone=booking.timezone,
        locale=booking.locale,
        staff=staff.slug,
        staff_name=staff.name,
        staff_email=staff.email,
        client_name=client.name,
        client_email=client.email,
        client_phone=client.phone,
        answers={k: v for k, v in (booking.answers or {}).items() if k not in sensitive},
        meeting_url=booking.meeting_url,
        source=booking.source,
        sequence=booking.sequence,
    )


def note_change(
    session: Session,
    booking: Booking,
    action: str,
    actor: str,
    from_state: str | None,
    details: dict[str, Any] | None,
    plugins: PluginHost | None,
) -> None:
    """Remember a change of ``booking`` for ``plugins``, called once the transaction commits."""
    if plugins is None or not plugins.listens_to_bookings():
        return
    change = BookingChange(action, from_state, actor, dict(details or {}))
    _pending(session).append(("change", booking, change, plugins))


def _transaction_created(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[id(transaction)] = len(_pending(session))


def _before_commit(session: Session) -> None:
    """The outermost transaction is about to commit: read each changed booking as data now,
    while the session can still query."""
    if session.in_nested_transaction():
        return  # a savepoint released: not a commit
    ready: list[Any] = []
    for kind, subject, detail, host in _pending(session):
        if kind == "change":
            try:
                uses = used_by(subject.calendar, host)
                ready.append(("change", snapshot(subject), detail, host, uses))
            except Exception:  # never let the plugins' bookkeeping stop a booking's commit
                log.exception("booking %s could not be read for the plugins", subject.uid)
        elif kind == "delete":
            ready.append((kind, subject, detail, host, None))
    session.info[_READY] = ready


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info[_PENDING] = []  # committed: meetings created stay
    ready = session.info.pop(_READY, None)
    if not ready:
        return
    # Meetings of bookings that no longer take place are deleted first, then plugins hear of
    # the changes, in the order they were made.
    for kind, subject, detail, host, _uses in ready:
        if kind == "delete":
            _delete_meeting(host, subject, detail)
    for kind, subject, detail, host, uses in ready:
        if kind == "change":
            booking_event(host, subject, detail, uses)


def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    """A savepoint rolled back forgets what was noted inside it; the outermost transaction
    rolled back forgets everything. Meetings created in what was rolled back are deleted."""
    pending = _pending(session)
    start = session.info.get(_MARKS, {}).pop(id(previous), 0) if previous.nested else 0
    _discard(pending[start:])
    del pending[start:]
    if not previous.nested:
        session.info.pop(_READY, None)


def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    """The outermost transaction is over (committed, rolled back, or the session closed)."""
    if transaction.parent is None and not transaction.nested:
        _discard(session.info.pop(_PENDING, []))
        session.info.pop(_MARKS, None)
        session.info.pop(_READY, None)


def _discard(entries: list[Pending]) -> None:
    for kind, name, meeting, host in entries:
        if kind == "created":
            _delete_meeting(host, name, meeting)


def booking_event(
    host: PluginHost,
    data: BookingData,
    change: BookingChange,
    uses: Callable[[str], bool] | None = None,
) -> None:
    """Call the hooks of one committed change, of the plugins ``uses`` admits (default: all):
    the one named for it, then the general one."""
    if change.action == "created":
        host.call_each("bookwise_booking_created", only=uses, booking=data)
    elif change.action == "rescheduled":
        previous = datetime.fromisoformat(change.details.get("from", data.start.isoformat()))
        host.call_each(
            "bookwise_booking_rescheduled", only=uses, booking=data, previous_start=previous
        )
    elif data.state == "cancelled" and change.from_state != "cancelled":
        host.call_each(
            "bookwise_booking_cancelled",
            only=uses,
            booking=data,
            reason=change.details.get("reason"),
        )
    elif data.state == "confirmed" and change.from_state != "confirmed":
        host.call_each("bookwise_booking_confirmed", only=uses, booking=data)
    host.call_each("bookwise_booking_changed", only=uses, booking=data, change=change)


# Meeting links ------------------------------------------------------------------------------


def create_meeting(
    session: Session, booking: Booking, provider_name: str | None, host: PluginHost | None
) -> None:
    """Ask the workflow's meeting provider for a link (in the booking's transaction, so that
    the first message has it). A provider that fails, or whose plugin the booking's calendar
    does not use, leaves the booking without a link, and the booking's history says why."""
    if provider_name is None or host is None:
        return
    provider = host.meeting_providers.get(provider_name)
    if provider is None:
        _meeting_problem(
            session, booking, provider_name, host.unknown_provider_message(provider_name)
        )
        return
    owner = host.meeting_provider_owner(provider_name)
    if not used_by(booking.calendar, host)(owner):
        problem = (
            f"the calendar {booking.calendar.slug!r} does not use the plugin {owner!r}; add it "
            "to the calendar's plugins (back office: the calendar's settings)"
        )
        _meeting_problem(session, booking, provider_name, problem)
        return
    try:
        meeting = _create_in_time(host, provider_name, provider, snapshot(booking))
        if not isinstance(meeting, Meeting) or not meeting.url.startswith(("https://", "http://")):
            raise TypeError(f"create() returned {meeting!r}, not a Meeting with an http(s) url")
    except Exception as exc:
        host.failed(host.meeting_provider_owner(provider_name), "create a meeting", exc)
        _meeting_problem(session, booking, provider_name, f"{type(exc).__name__}: {exc}")
        return
    booking.meeting_url = meeting.url[:500]
    booking.meeting_provider = provider_name
    booking.meeting_id = meeting.id[:500] or None
    _pending(session).append(("created", provider_name, meeting, host))


# Providers answer within their ``timeout``, so that a slow one cannot hold the booking's
# write transaction for long; one that answers later has its meeting deleted.
_CALLS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bookwise-meetings")


def _create_in_time(
    host: PluginHost, name: str, provider: MeetingProvider, data: BookingData
) -> Meeting:
    call = _CALLS.submit(provider.create, data)
    try:
        return call.result(timeout=provider.timeout)
    except FutureTimeout:
        call.add_done_callback(lambda done: _delete_late(host, name, done))
        raise MeetingError(f"no answer within {provider.timeout:g} s") from None


def _delete_late(host: PluginHost, name: str, done: Future[Meeting]) -> None:
    """A meeting created after its booking went on without it: delete it."""
    if done.exception() is None and isinstance(done.result(), Meeting):
        _delete_meeting(host, name, done.result())


def forget_meeting(session: Session, booking: Booking, host: PluginHost | None) -> None:
    """The booking no longer takes place: its meeting is deleted once that is committed (by
    ``host``'s provider), and the link is no longer shown."""
    if booking.meeting_provider is None or booking.meeting_url is None:
        return
    meeting = Meeting(booking.meeting_url, booking.meeting_id or "")
    if host is not None:
        _pending(session).append(("delete", booking.meeting_provider, meeting, host))
    else:
        log.warning("booking %s: its meeting is left to its provider to expire", booking.uid)
    booking.meeting_url = None
    booking.meeting_id = None


def move_meeting(session: Session, booking: Booking, host: PluginHost | None) -> None:
    """The booking moved: let its provider move the meeting (most keep the same link)."""
    if host is None or booking.meeting_provider is None or booking.meeting_url is None:
        return
    provider = host.meeting_providers.get(booking.meeting_provider)
    if provider is None:
        return
    current = Meeting(booking.meeting_url, booking.meeting_id or "")
    try:
        # Within the provider's timeout, as for create(): the booking's write transaction is
        # open. Too late, the booking keeps its link and its history says so.
        call = _CALLS.submit(provider.update, current, snapshot(booking))
        try:
            meeting = call.result(timeout=provider.timeout)
        except FutureTimeout:
            raise MeetingError(f"no answer within {provider.timeout:g} s") from None
        if not isinstance(meeting, Meeting) or not meeting.url.startswith(("https://", "http://")):
            raise TypeError(f"update() returned {meeting!r}, not a Meeting with an http(s) url")
    except Exception as exc:
        host.failed(host.meeting_provider_owner(booking.meeting_provider), "move a meeting", exc)
        _meeting_problem(session, booking, booking.meeting_provider, f"{type(exc).__name__}: {exc}")
        return
    booking.meeting_url = meeting.url[:500]
    booking.meeting_id = meeting.id[:500] or None


def _delete_meeting(host: PluginHost, name: str, meeting: Meeting) -> None:
    provider = host.meeting_providers.get(name)
    if provider is None:
        return
    try:
        provider.delete(meeting)
    except Exception as exc:
        host.failed(host.meeting_provider_owner(name), "delete a meeting", exc)


def _meeting_problem(session: Session, booking: Booking, provider: str, problem: str) -> None:
    from bookwise.bookings.models import BookingEvent

    log.error("booking %s has no meeting link: %s: %s", booking.uid, provider, problem)
    session.add(
        BookingEvent(
            booking_id=booking.id,
            action="meeting_failed",
            from_state=booking.state,
            to_state=booking.state,
            actor=f"plugin:{provider}",
            details={"provider": provider, "error": problem[:500]},
        )
    )
