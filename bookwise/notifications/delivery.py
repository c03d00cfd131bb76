"""Sending what the outbox holds: claim due rows, render, hand to the channel, record the result.

The outbox table is the single source of truth. Any number of workers (threads or processes,
on one machine or several) run :meth:`Dispatcher.run_once`; each claims a small batch in one
short transaction (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the claiming
transaction holds the write lock) and marks it ``sending`` with a short lease (a minute by
default, ``scheduler.outbox_lease``), which it renews while it works: before each message of the
batch once a quarter of the lease has passed, and every quarter of the lease from a heartbeat
thread during a slow send. A worker that dies leaves rows whose lease expires within a minute;
another worker takes them then. A renewal only extends rows the worker still holds, and a worker
records a result only on a row it still holds. APScheduler only ticks.

Exactly once is not promised: a worker killed after the remote server took a message and before
it recorded the result leaves the row to be sent again. Each row carries a ``message_uid``, the
same on every attempt (the e-mail's Message-ID, the webhook's ``webhook-id``), so that the
receiver drops the second copy.

Results: ``sent`` (with the time and the channel's message id), ``failed`` (tried again after
1, 2, 4, ... minutes), ``dead`` after the last attempt or a permanent refusal (shown in the back
office for a manual retry), ``skipped`` (no longer useful: the booking started, changed, or the
channel is not enabled; the reason is kept).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from bookwise.bookings.ics import CalendarEvent, build_ics, event_status
from bookwise.bookings.models import Booking, BookingEvent
from bookwise.bookings.offers import TEMPLATE as OFFER_TEMPLATE
from bookwise.bookings.offers import offer_closed
from bookwise.bookings.series import series_invitation
from bookwise.calendars.models import Calendar
from bookwise.config import Settings
from bookwise.database import Database
from bookwise.db import unit_of_work, utcnow
from bookwise.metrics import DELIVERIES
from bookwise.notifications.channels import Attachment, Channel, ChannelError, OutgoingMessage
from bookwise.notifications.context import Times, booking_context, message_context
from bookwise.notifications.models import MessageTemplate, Notification
from bookwise.notifications.planning import (
    INVITATION_METHOD,
    STOPPED,
    held_note,
    opted_out,
    quiet_hours_for,
)
from bookwise.notifications.quiet import quiet_stretch
from bookwise.notifications.rendering import (
    Rendered,
    TemplateParts,
    TemplateProblem,
    file_template,
    locale_chain,
    render,
    text_to_html,
)
from bookwise.notifications.templates import SHIPPED_TEMPLATES
from bookwise.notifications.webhooks import CHANNEL as WEBHOOK_CHANNEL
from bookwise.notifications.webhooks import CalendarWebhookChannel, not_deliverable
from bookwise.plugins.bookings import used_by
from bookwise.workflows.language import Workflow
from bookwise.workflows.lifecycle import FOLLOW_UP, REMINDER, RESCHEDULED
from bookwise.workflows.services import workflow_of

log = logging.getLogger(__name__)


DEFAULT_LEASE = timedelta(seconds=60)


# How late a message planned for the moment quiet hours begin (``quiet_hours: before``) may
# still go out; later, it waits for their end like any other.
SEND_BEFORE_GRACE = timedelta(minutes=15)


TAKEN_OVER = "the worker sending it stopped before recording the outcome (its lease ran out)"


@dataclass(frozen=True)
class DeliveryRules:
    batch: int = 50
    # How long a worker holds the rows it claimed without renewing: how long a dead worker's rows
    # wait for another worker. Renewed every quarter of it (``heartbeat``) while the worker lives.
    lease: timedelta = DEFAULT_LEASE
    max_attempts: int = 6
    backoff: timedelta = timedelta(minutes=1)  # 1, 2, 4, 8, 16 minutes between attempts

    @property
    def heartbeat(self) -> timedelta:
        """How often a working worker renews its lease: four times per lease, so that a slow
        database or a busy machine misses three beats before the rows can be taken."""
        return self.lease / 4


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Dispatcher:
    """Claims due outbox rows and delivers them. Safe to run in many threads and processes."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        channels: Mapping[str, Channel] | None = None,
        clock: Callable[[], datetime] = utcnow,
        rules: DeliveryRules | None = None,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.channels = dict(
            channels if channels is not None else database.plugins.make_channels(settings)
        )
        self.clock = clock
        # The calendars' own webhooks (bookwise.notifications.webhooks): always there.
        self.channels.setdefault(
            WEBHOOK_CHANNEL, CalendarWebhookChannel(database.sessions, clock=clock)
        )
        self.rules = rules or DeliveryRules(
            lease=timedelta(seconds=settings.scheduler.outbox_lease)
        )
        self.name = name or worker_name()

    # Claiming ------------------------------------------------------------------------------

    def claim(self) -> list[int]:
        """Take up to ``batch`` due rows (and rows whose worker's lease ran out)."""
        now = self.clock()
        with unit_of_work(self.database.sessions, write=True) as session:
            due = or_(
                and_(Notification.state.in_(("pending", "failed")), Notification.due_at <= now),
                and_(Notification.state == "sending", Notification.claimed_until < now),
            )
            rows = session.execute(
                select(Notification.id, Notification.state, Notification.attempts)
                .where(due)
                .order_by(Notification.due_at, Notification.id)
                .limit(self.rules.batch)
                .with_for_update(skip_locked=True)
            ).all()
            # A row whose worker's lease ran out was being sent when that worker stopped: the
            # attempt counts, so that a message that stops every worker taking it (a poison
            # message) ends dead after max_attempts instead of being tried for ever.
            taken_over = [row for row in rows if row.state == "sending"]
            dead = [row.id for row in taken_over if row.attempts + 1 >= self.rules.max_attempts]
            if taken_over:
                session.execute(
                    update(Notification)
                    .where(Notification.id.in_([row.id for row in taken_over]))
                    .values(attempts=Notification.attempts + 1, last_error=TAKEN_OVER)
                    .execution_options(synchronize_session=False)
                )
            if dead:
                session.execute(
                    update(Notification)
                    .where(Notification.id.in_(dead))
                    .values(state="dead", claimed_by=None, claimed_until=None)
                    .execution_options(synchronize_session=False)
                )
            ids = [row.id for row in rows if row.id not in dead]
            if ids:
                session.execute(
                    update(Notification)
                    .where(Notification.id.in_(ids))
                    .values(
                        state="sending", claimed_by=self.name, claimed_until=now + self.rules.lease
                    )
                    .execution_options(synchronize_session=False)
                )
            return ids

    def renew(self, ids: Collection[int]) -> set[int]:
        """Extend the lease on those of ``ids`` this worker still holds (claimed by it, still
        ``sending``) to a full lease from now; the ids it still holds. A row another worker took
        after this one's lease ran out stays theirs."""
        if not ids:
            return set()
        now = self.clock()
        mine = and_(
            Notification.id.in_(list(ids)),
            Notification.claimed_by == self.name,
            Notification.state == "sending",
        )
        with unit_of_work(self.database.sessions, write=True) as session:
            session.execute(
                update(Notification)
                .where(mine)
                .values(claimed_until=now + self.rules.lease)
                .execution_options(synchronize_session=False)
            )
            return set(session.scalars(select(Notification.id).where(mine)))

    def renew_batch(self, batch: _Batch) -> set[int]:
        """Renew the lease on the rows of ``batch`` still to send (see :meth:`renew`)."""
        now = self.clock()
        held = self.renew(batch.remaining())
        batch.renewed(now)
        return held

    def run_once(self) -> int:
        """Claim one batch and deliver it; the number of rows handled.

        While the batch is sent, a heartbeat thread renews the lease on the rows not yet done
        every ``rules.heartbeat`` (a slow send does not lose them to another worker)."""
        ids = self.claim()
        if not ids:
            return 0
        batch = _Batch(ids, claimed_at=self.clock())
        heartbeat = _Heartbeat(self, batch)
        heartbeat.start()
        try:
            for row_id in ids:
                self.deliver(row_id, batch)
                batch.done(row_id)
        finally:
            heartbeat.stop()
            for name, channel in self.channels.items():
                try:
                    channel.close()
                except Exception as exc:  # a plugin's channel: report it, go on
                    self.database.plugins.failed(self._owner(name), f"closing {name!r}", exc)
        return len(ids)

    def drain(self, limit: int | None = None) -> int:
        """Deliver batches until nothing is due (or ``limit`` rows were handled)."""
        handled = 0
        while limit is None or handled < limit:
            count = self.run_once()
            if not count:
                break
            handled += count
        return handled

    # Delivering ----------------------------------------------------------------------------

    def deliver(self, row_id: int, batch: _Batch | None = None) -> None:
        """Deliver one claimed row and record what happened. Never raises for one bad row.

        Three steps, so that no transaction stays open while the channel talks to the network:
        read and render (a read), send (no transaction), record the result (a short write).
        First, once a quarter of the lease has passed since the ``batch``'s lease was renewed,
        it is renewed on the rows still to send; a row whose lease ran out and that another
        worker took is left to that worker.
        """
        if batch is not None and batch.renewal_due(self.clock(), self.rules.heartbeat):
            held = self.renew_batch(batch)
            if row_id not in held:
                return  # the lease ran out and another worker took it
        attempts: int | None = None
        try:
            with self.database.sessions() as session:
                row = session.get(Notification, row_id)
                if row is None or row.state != "sending" or row.claimed_by != self.name:
                    return  # the lease ran out and another worker took it
                attempts = row.attempts
                if (row.claimed_until is None or row.claimed_until <= self.clock()) and (
                    row_id not in self.renew([row_id])
                ):
                    return  # ran out (the renewals failed) and another worker took it
                message, outcome = self._prepare(session, row)
            if message is not None:
                outcome = {**outcome, **self._send(message, attempts)}
        except Exception as exc:
            if attempts is None:
                raise  # the row could not even be read: the database, not the row
            log.exception("outbox row %s failed unexpectedly", row_id)
            outcome = self._failure(attempts, f"{type(exc).__name__}: {exc}", temporary=True)
        self._record(row_id, outcome)

    def _record(self, row_id: int, outcome: dict[str, Any]) -> None:
        held = outcome.get("state") == "pending" and "held" in (outcome.get("payload") or {})
        counted: tuple[str, str] | None = None
        with unit_of_work(self.database.sessions, write=True) as session:
            # Locked: a worker that takes the row over (this one's lease ran out) waits, or
            # went first and the row is theirs: never a result written over another's claim.
            row = session.get(Notification, row_id, with_for_update=True)
            if row is None or row.claimed_by != self.name or row.state != "sending":
                return
            told = outcome.pop("told", None)
            if told is not None and outcome.get("state") == "sent":
                # What the recipient now knows: the next message about the booking starts there.
                row.payload = {**(row.payload or {}), "told": told}
            for attribute, value in outcome.items():
                setattr(row, attribute, value)
            row.claimed_until = None
            if row.state == "dead":
                log.error("message %s to %s given up: %s", row.id, row.recipient, row.last_error)
            counted = (row.channel, "held" if held else row.state)
        if counted is not None:  # committed
            DELIVERIES.labels(channel=counted[0], result=counted[1]).inc()

    def _prepare(
        self, session: Session, row: Notification
    ) -> tuple[OutgoingMessage | None, dict[str, Any]]:
        """The message to send, or (None, the outcome) when there is nothing to send."""
        if row.channel == WEBHOOK_CHANNEL:
            return self._prepare_webhook(session, row)
        now = self.clock()
        booking = session.get(Booking, row.booking_id) if row.booking_id else None
        times = message_times(session, row, booking) if booking is not None else None
        reason = self._not_useful(row, booking, now, times)
        if reason is None and row.channel not in self.channels:
            if row.channel in self.database.plugins.channel_names:
                # Enabled, but it could not start (reported): try again later, do not give up.
                problem = f"the channel {row.channel!r} could not start; see the plugins page"
                return None, self._failure(row.attempts, problem, temporary=True)
            reason = f"no channel {row.channel!r} is enabled on this instance"
        if reason is None:
            reason = self._not_used_by_calendar(session, row)
        if reason is None and row.channel == "sms" and opted_out(session, row.recipient):
            reason = STOPPED
        if reason is None and row.event == OFFER_TEMPLATE and row.booking_id is None:
            reason = offer_closed(session, row.payload, now)
        if reason is not None:
            return None, {"state": "skipped", "last_error": reason}
        # A waitlist offer's message is not held again: it was planned outside the client's
        # quiet hours, and the offer's hold counts from its due time (bookings.offers).
        if booking is not None:
            held = self._held_for_quiet_hours(row, booking, now)
            if held is not None:
                return None, held
        channel = self.channels[row.channel]
        try:
            rendered, note = self._render(session, row, booking, times)
        except TemplateProblem as exc:
            return None, self._failure(row.attempts, str(exc), temporary=False)
        message = OutgoingMessage(
            channel=row.channel,
            recipient=row.recipient,
            subject=rendered.subject,
            text=rendered.text,
            html=(rendered.html or text_to_html(rendered.text)) if channel.supports_html else None,
            reply_to=booking.calendar.reply_to if booking is not None else None,
            sender_name=booking.calendar.name if booking is not None else None,
            attachments=self._attachments(row, booking, times)
            if channel.supports_attachments
            else (),
            event=row.event,
            data=self._event_data(row, booking),
            message_uid=row.message_uid,
        )
        outcome: dict[str, Any] = {"last_error": note}
        if booking is not None and times is not None:
            outcome["told"] = {
                "start": times.start.isoformat(),
                "end": times.end.isoformat(),
                "sequence": booking.sequence,
            }
        return message, outcome

    def _prepare_webhook(
        self, session: Session, row: Notification
    ) -> tuple[OutgoingMessage | None, dict[str, Any]]:
        """A calendar's webhook: the body planned with the event, unless its endpoint was
        paused or deleted since (skipped, with the reason). A booking event is a fact: it is
        sent even when the booking changed again since (that change has its own event)."""
        reason = not_deliverable(session, row)
        if reason is not None:
            return None, {"state": "skipped", "last_error": reason}
        message = OutgoingMessage(
            channel=row.channel,
            recipient=row.recipient,
            text="",
            event=row.event,
            data=dict(row.payload or {}),
            message_uid=row.message_uid,
        )
        return message, {"last_error": None}

    def _send(self, message: OutgoingMessage, attempts: int) -> dict[str, Any]:
        try:
            message_id: Any = self.channels[message.channel].send(message)
        except ChannelError as exc:
            return self._failure(attempts, str(exc), temporary=exc.temporary)
        except Exception as exc:
            # A bug in a plugin's channel: the message fails and is tried again later.
            owner = self._owner(message.channel)
            self.database.plugins.failed(owner, f"sending on {message.channel!r}", exc)
            return self._failure(
                attempts, f"plugin {owner} raised {type(exc).__name__}: {exc}", temporary=True
            )
        if not isinstance(message_id, str):
            message_id = "" if message_id is None else str(message_id)
        return {
            "state": "sent",
            "sent_at": self.clock(),
            "provider_message_id": message_id,
            "attempts": attempts + 1,
        }

    def _held_for_quiet_hours(
        self, row: Notification, booking: Booking, now: datetime
    ) -> dict[str, Any] | None:
        """The outcome that puts ``row`` back until the end of the recipient's quiet hours
        when it is found due inside them (a worker that was down sends late: never at 03:00),
        or None. A rule with ``quiet_hours: ignore`` is never held."""
        workflow = workflow_of(booking.workflow_version)
        hours = quiet_hours_for(booking, workflow)
        if hours is None or not hours.holds(row.channel):
            return None
        rule = next((r for r in workflow.notifications if r.key == row.rule_key), None)
        if rule is not None and rule.quiet_hours == "ignore":
            return None
        try:
            zone = ZoneInfo(row.timezone)
        except (KeyError, ValueError):
            zone = ZoneInfo("UTC")
        stretch = quiet_stretch(now, hours, zone)
        if stretch is None:
            return None
        start, until = stretch
        earlier = (row.payload or {}).get("held") or {}
        if earlier and row.due_at == start and now - start <= SEND_BEFORE_GRACE:
            return None  # planned for the moment they begin (``before``): a tick late is fine
        due = datetime.fromisoformat(earlier["due"]) if "due" in earlier else row.due_at
        log.info("message %s to %s held for quiet hours until %s", row.id, row.recipient, until)
        return {
            "state": "pending",
            "due_at": until,
            "claimed_by": None,
            "payload": {**(row.payload or {}), "held": held_note(due, until)},
        }

    def _not_used_by_calendar(self, session: Session, row: Notification) -> str | None:
        """Why the row's calendar does not send on its channel (a plugin's that the calendar
        does not use), or None."""
        calendar = session.get(Calendar, row.calendar_id) if row.calendar_id else None
        owner = self._owner(row.channel)
        if calendar is None or used_by(calendar, self.database.plugins)(owner):
            return None
        return (
            f"the calendar {calendar.slug!r} does not use the plugin {owner!r}, whose channel "
            f"{row.channel!r} this message is for"
        )

    def _owner(self, channel: str) -> str:
        return self.database.plugins.channel_owner(channel)

    def _failure(self, attempts: int, error: str, temporary: bool) -> dict[str, Any]:
        """Failed: try again after 1, 2, 4 ... minutes, or dead after the last attempt."""
        attempts += 1
        outcome: dict[str, Any] = {"attempts": attempts, "last_error": error[:2000]}
        if temporary and attempts < self.rules.max_attempts:
            outcome["state"] = "failed"
            outcome["due_at"] = self.clock() + self.rules.backoff * (2 ** (attempts - 1))
        else:
            outcome["state"] = "dead"
        return outcome

    def _not_useful(
        self, row: Notification, booking: Booking | None, now: datetime, times: Times | None
    ) -> str | None:
        """Why a message would be pointless now (None when it is still worth sending)."""
        if booking is None:
            return None if row.booking_id is None else "the booking no longer exists"
        if row.event == REMINDER:
            if booking.start_at <= now:
                return "the booking had already started when the reminder came due"
            if not booking.holds_slot:
                return "the booking no longer takes place"
        if row.event == FOLLOW_UP and not booking.holds_slot:
            return "the booking did not take place"
        if row.event == RESCHEDULED:
            # Changes that follow each other before the messages go out make one message, from
            # the time the recipient knew to the current one (docs/notifications.md).
            if not booking.holds_slot:
                return "the booking no longer takes place"
            if times is not None and times.previous == booking.start_at:
                return "the recipient was already told the current time"
        workflow = workflow_of(booking.workflow_version)
        if row.event in workflow.lifecycle.states and booking.state != row.event:
            return f"the booking is now {booking.state}"
        return None

    def _render(
        self, session: Session, row: Notification, booking: Booking | None, times: Times | None
    ) -> tuple[Rendered, str | None]:
        """The message, from the back office's version of the template when there is one, else
        the shipped file. A back-office version that fails falls back to the file, and says so."""
        audience = "client" if row.recipient_kind == "client" else "staff"
        fallback = booking.calendar.default_locale if booking is not None else "en"
        context = message_context(
            session, row, self.settings, times, self.database.plugins.field_types
        )
        edited = stored_template(
            session, row.template, audience, row.channel, row.locale, fallback, row.calendar_id
        )
        if edited is not None:
            try:
                return render(edited, context), None
            except TemplateProblem as exc:
                log.error(
                    "template %s (%s, %s) failed, the default is used: %s",
                    row.template,
                    audience,
                    row.channel,
                    exc,
                )
                note = f"the edited template failed ({exc}); the default was sent"
                return render(self._file(row, audience, fallback), context), note
        return render(self._file(row, audience, fallback), context), None

    def _file(self, row: Notification, audience: str, fallback: str) -> TemplateParts:
        folders = [self.settings.templates_dir, SHIPPED_TEMPLATES]
        parts = file_template(folders, row.template, audience, row.channel, row.locale, fallback)
        if parts is None and row.channel not in ("email", "sms"):
            # A channel without wording of its own (a webhook, a chat) uses the e-mail's.
            parts = file_template(folders, row.template, audience, "email", row.locale, fallback)
        if parts is None:
            raise TemplateProblem(f"no template {row.template!r} for {audience} on {row.channel}")
        return parts

    def _attachments(
        self, row: Notification, booking: Booking | None, times: Times | None
    ) -> tuple[Attachment, ...]:
        """The invitation: the event as the recipient's calendar should now hold it (a
        cancellation removes the event they have: same UID, their time, a higher SEQUENCE)."""
        method = INVITATION_METHOD.get(row.event)
        if booking is None or method is None or row.channel != "email":
            return ()
        # An occurrence of a series: the series' one event, updated (issue 18).
        series = series_invitation(booking)
        if series is not None:
            method = "REQUEST" if series.holds else "CANCEL"
        if method == "CANCEL" and booking.holds_slot:
            return ()
        context = _booking_values(row, booking, self.settings)
        workflow = workflow_of(booking.workflow_version)
        start = times.start if times is not None else booking.start_at
        end = times.end if times is not None else booking.end_at
        if series is not None:
            start, end = series.start, series.end
        event = CalendarEvent(
            uid=series.uid if series is not None else f"{booking.uid}@bookwise",
            sequence=series.sequence if series is not None else booking.sequence,
            start=start,
            end=end,
            timezone=booking.calendar.timezone,
            summary=f"{context['service']['name']} · {booking.calendar.name}",
            description=context["manage_url"] if row.recipient_kind == "client" else "",
            location=context["booking"]["location"],
            url=context["booking"]["meeting_url"],
            organizer_name=booking.calendar.name,
            organizer_email=booking.calendar.reply_to or self._sender(),
            attendee_name=booking.client.name,
            attendee_email=booking.client.email or "",
            status=event_status(
                series.holds if series is not None else booking.holds_slot,
                awaiting_approval(workflow, booking),
            ),
            stamp=self.clock(),
            repeat=series.repeat if series is not None else None,
        )
        method_name = "CANCEL" if method == "CANCEL" else "REQUEST"
        return (
            Attachment(
                filename="invite.ics",
                content_type=f"text/calendar; method={method_name}; charset=UTF-8",
                data=build_ics(event, method_name),  # type: ignore[arg-type]
            ),
        )

    def _sender(self) -> str:
        from email.utils import parseaddr

        return parseaddr(self.settings.mail.sender)[1]

    def _event_data(self, row: Notification, booking: Booking | None) -> dict[str, Any]:
        if booking is None:
            return dict(row.payload or {})
        return {
            "booking": booking.uid,
            "calendar": booking.calendar.slug,
            "service": booking.workflow_version.workflow.slug,
            "state": booking.state,
            "start": booking.start_at.isoformat(),
            "end": booking.end_at.isoformat(),
            "staff": booking.staff_member.slug,
            "sequence": booking.sequence,
        }


class _Batch:
    """The rows of a claimed batch not yet handled and when their lease was last renewed;
    shared by the sending thread and the heartbeat thread."""

    def __init__(self, ids: list[int], claimed_at: datetime) -> None:
        self._ids = list(ids)
        self._renewed_at = claimed_at
        self._lock = threading.Lock()

    def done(self, row_id: int) -> None:
        with self._lock:
            self._ids.remove(row_id)

    def remaining(self) -> list[int]:
        with self._lock:
            return list(self._ids)

    def renewed(self, at: datetime) -> None:
        with self._lock:
            self._renewed_at = max(self._renewed_at, at)

    def renewal_due(self, now: datetime, heartbeat: timedelta) -> bool:
        with self._lock:
            return now - self._renewed_at >= heartbeat


class _Heartbeat:
    """Renews the lease on a batch's remaining rows every ``rules.heartbeat`` while the batch is
    sent, so that a send slower than the lease (a mail server that answers slowly) keeps them."""

    def __init__(self, dispatcher: Dispatcher, batch: _Batch) -> None:
        self.dispatcher = dispatcher
        self.batch = batch
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"outbox-lease {dispatcher.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _beat(self) -> None:
        interval = self.dispatcher.rules.heartbeat.total_seconds()
        while not self._stopped.wait(interval):
            try:
                self.dispatcher.renew_batch(self.batch)
            except Exception:  # the database away for a moment: the next beat tries again
                log.exception("renewing the outbox lease of %s failed", self.dispatcher.name)


def awaiting_approval(workflow: Workflow, booking: Booking) -> bool:
    """Whether the booking waits for staff to approve it (its workflow's initial state, in a
    workflow where staff approve)."""
    lifecycle = workflow.lifecycle
    return booking.state == lifecycle.initial and lifecycle.needs_approval


def message_times(session: Session, row: Notification, booking: Booking) -> Times:
    """The times the message of ``row`` names: for a reschedule, the current time and the time
    the recipient last knew as the previous one; for a booking that no longer takes place
    (cancelled, declined), the time they last knew; else the current time."""
    workflow = workflow_of(booking.workflow_version)
    lifecycle = workflow.lifecycle
    if row.event == RESCHEDULED:
        previous, _ = last_known(session, row, booking)
        return Times(booking.start_at, booking.end_at, previous)
    if row.event in lifecycle.states and not lifecycle.holds_slot(row.event):
        start, end = last_known(session, row, booking)
        return Times(start, end)
    return Times(booking.start_at, booking.end_at)


def last_known(session: Session, row: Notification, booking: Booking) -> tuple[datetime, datetime]:
    """The start and end the recipient of ``row`` last heard of, before the change that
    planned ``row``: those named by the last message sent to them about the booking (on any
    channel, for the client); without one, for the client the time they booked, for anyone
    else (who sees the back office) the booking's time now."""
    planned = (row.payload or {}).get("sequence", booking.sequence)
    query = select(Notification.id, Notification.payload).where(
        Notification.booking_id == booking.id,
        Notification.state == "sent",
        Notification.recipient_kind == row.recipient_kind,
        Notification.id != row.id,
    )
    if row.recipient_kind != "client":
        query = query.where(Notification.recipient == row.recipient)
    latest: tuple[tuple[int, int], dict[str, Any]] | None = None
    for other_id, payload in session.execute(query):
        told = (payload or {}).get("told")
        if not told or (payload or {}).get("sequence", 0) >= planned:
            continue  # sent before this rule kept it, or about this change or a later one
        order = (int(told["sequence"]), other_id)
        if latest is None or order > latest[0]:
            latest = (order, told)
    if latest is not None:
        told = latest[1]
        return datetime.fromisoformat(told["start"]), datetime.fromisoformat(told["end"])
    if row.recipient_kind == "client":
        created = session.scalar(
            select(BookingEvent.details)
            .where(BookingEvent.booking_id == booking.id, BookingEvent.action == "created")
            .order_by(BookingEvent.id)
            .limit(1)
        )
        if created and created.get("start"):
            start = datetime.fromisoformat(created["start"])
            return start, start + (booking.end_at - booking.start_at)
    return booking.start_at, booking.end_at


def _booking_values(row: Notification, booking: Booking, settings: Settings) -> dict[str, Any]:
    audience = "client" if row.recipient_kind == "client" else "staff"
    return booking_context(booking, row.locale, row.timezone, settings, audience)


def stored_template(
    session: Session,
    name: str,
    audience: str,
    channel: str,
    locale: str,
    fallback: str,
    calendar_id: int | None = None,
) -> TemplateParts | None:
    """The back office's version of a template, if any: the calendar's own copy first, then the
    instance's edited one, language by language (the shipped default is the caller's)."""
    for candidate in locale_chain(locale, fallback):
        rows = session.scalars(
            select(MessageTemplate).where(
                MessageTemplate.name == name,
                MessageTemplate.audience == audience,
                MessageTemplate.channel == channel,
                MessageTemplate.locale == candidate,
                MessageTemplate.is_default.is_(False),
                or_(
                    MessageTemplate.calendar_id.is_(None),
                    MessageTemplate.calendar_id == calendar_id,
                ),
            )
        ).all()
        if rows:
            stored = min(rows, key=lambda t: t.calendar_id is None)
            return TemplateParts(
                text=stored.body_text, subject=stored.subject, html=stored.body_html
            )
    return None
