"""Completing bookings whose time is over: the ``complete-past`` scheduled job.

A booking whose end has passed, that still holds its time, and whose workflow lets ``system``
make the move ``complete`` from its state (the default lifecycle does, from ``confirmed``) is
moved through :func:`transition_booking` as ``system``: history, messages (a follow-up planned
on completion) and plugin hooks as for any other move. Small batches, each in its own write
transaction, so that bookings being booked meanwhile wait for a moment only.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bookwise.bookings.models import Booking
from bookwise.bookings.services import transition_booking
from bookwise.db import unit_of_work
from bookwise.workflows.lifecycle import Role, TransitionNotAllowed
from bookwise.workflows.models import WorkflowVersion
from bookwise.workflows.services import workflow_of

if TYPE_CHECKING:
    from bookwise.plugins.host import PluginHost

log = logging.getLogger(__name__)

COMPLETE = "complete"
SYSTEM: Role = "system"


def _completable(session: Session, now: datetime) -> list[tuple[int, str]]:
    """(workflow version, state) pairs of past slot-holding bookings that ``system`` may
    complete."""
    pairs = session.execute(
        select(Booking.workflow_version_id, Booking.state)
        .where(Booking.end_at <= now, Booking.holds_slot.is_(True))
        .distinct()
    ).all()
    found = []
    for version_id, state in pairs:
        version = session.get(WorkflowVersion, version_id)
        if version is None:
            continue
        try:
            workflow_of(version).lifecycle.find(state, COMPLETE, SYSTEM)
        except TransitionNotAllowed:
            continue
        found.append((version_id, state))
    return sorted(found)


def complete_past_bookings(
    sessions: sessionmaker[Session],
    now: datetime,
    plugins: PluginHost | None,
    batch: int = 50,
) -> int:
    """Complete every booking over at ``now`` that the workflow lets ``system`` complete;
    the number completed. One that fails is logged and left for the next run."""
    with sessions() as session:
        groups = _completable(session, now)
    completed = 0
    for version_id, state in groups:
        after = 0
        while True:
            with unit_of_work(sessions, write=True) as session:
                bookings = list(
                    session.scalars(
                        select(Booking)
                        .where(
                            Booking.workflow_version_id == version_id,
                            Booking.state == state,
                            Booking.end_at <= now,
                            Booking.holds_slot.is_(True),
                            Booking.id > after,
                        )
                        .order_by(Booking.id)
                        .limit(batch)
                    )
                )
                for booking in bookings:
                    after = booking.id
                    try:
                        with session.begin_nested():
                            transition_booking(
                                session, booking, COMPLETE, SYSTEM, SYSTEM, now, plugins=plugins
                            )
                        completed += 1
                    except Exception:  # one booking must not hold the others back
                        log.exception("booking %s could not be completed", booking.uid)
            if len(bookings) < batch:
                break
    return completed
