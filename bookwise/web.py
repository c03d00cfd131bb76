"""Plumbing the web views share: the request's database session, the clock, CSRF protection.

Views import from here, never from ``bookwise.app`` (which imports the views).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, g
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bookwise.availability.cache import SlotCache
from bookwise.clock import Clock, system_clock
from bookwise.config import Settings
from bookwise.database import Database
from bookwise.plugins.host import PluginHost

log = logging.getLogger(__name__)

csrf = CSRFProtect()


@dataclass
class Bookwise:
    """What the app knows of its instance: ``app.extensions["bookwise"]``.

    ``clock`` gives the current time (aware, UTC); tests replace it to stand at a given moment.
    """

    settings: Settings
    database: Database
    clock: Clock = system_clock
    # The free slots found for clients, kept (bookwise.availability.cache); None: none kept.
    slot_cache: SlotCache | None = None


def instance() -> Bookwise:
    bookwise: Bookwise = current_app.extensions["bookwise"]
    return bookwise


def slot_cache() -> SlotCache | None:
    """The instance's slot cache, for the searches that show free times to clients."""
    return instance().slot_cache


def plugin_host() -> PluginHost:
    """The instance's plugins, for the services a view calls (they take them as an argument)."""
    return instance().database.plugins


def now() -> datetime:
    """The current time as the application sees it (see :attr:`Bookwise.clock`)."""
    return instance().clock()


def db_session() -> Session:
    """The database session of the current request (one unit of work per request)."""
    if "db_session" not in g:
        g.db_session = instance().database.sessions()
    session: Session = g.db_session
    return session


def read_session() -> Session:
    """A session on the read-only copy of the database (``database_replica_url``), for the
    request's slot searches; without one, the request's own session (:func:`db_session`).

    What it reads may lag behind the primary by the replica's delay: only for showing times,
    never for checking a booking (the booking reads the primary, in its write transaction). A
    replica that does not answer is left alone for :data:`REPLICA_REST` seconds, said once in
    the log: the searches read the primary meanwhile, and the pages keep working."""
    replica = instance().database.replica
    if replica is None or time.monotonic() < _replica_down_until[0]:
        return db_session()
    if "read_session" not in g:
        session = replica()
        try:
            session.connection()
        except OperationalError as exc:
            session.close()
            _replica_down_until[0] = time.monotonic() + REPLICA_REST
            log.warning(
                "the replica (database_replica_url) does not answer (%s): slot searches read "
                "the primary for %d s",
                str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__,
                REPLICA_REST,
            )
            return db_session()
        g.read_session = session
    session_: Session = g.read_session
    return session_


# How long a replica that did not answer is left alone (seconds), and until when (per process).
REPLICA_REST = 30
_replica_down_until = [0.0]


def close_session(_exc: BaseException | None) -> None:
    for name in ("db_session", "read_session"):
        session = g.pop(name, None)
        if session is not None:
            session.close()
