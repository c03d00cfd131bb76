"""Reading a staff member's calendar on a CalDAV server (Nextcloud, Fastmail, iCloud, Radicale).

An organisation gives Bookwise one service account that may read its staff's calendars; the
account's password is in the environment (``feeds.caldav_accounts`` in config.yaml names the
variable), never in the database, so a database dump or a back-office user never holds it.
A source only names the account.

The events of the booking window are asked for with a time-range search, unexpanded (the
server's expansion differs from one server to the next; bookwise.availability.busy expands
them as it does an address's), and put together into one iCalendar text that takes the same
path as an address's body. Every failure ends in a :class:`FetchError` whose code the source's
status shows in words (bookwise.calendars.sources.ERRORS); nothing of the CalDAV client or its
HTTP library escapes.

The ``caldav`` package is optional (``pip install bookwise[caldav]``): without it, a CalDAV
source fails with ``caldav_missing`` instead of the server failing to start.
"""

from __future__ import annotations

import logging
import math
import urllib.parse
from collections.abc import Iterable
from datetime import datetime

import icalendar

from bookwise.calendars.fetching import USER_AGENT, FetchError, check_address, refuse_private
from bookwise.config import FeedSettings

log = logging.getLogger(__name__)


def fetch_caldav(
    url: str, account_name: str | None, settings: FeedSettings, start: datetime, end: datetime
) -> str:
    """The events of the CalDAV calendar collection at ``url`` that touch ``start``..``end``,
    read with the account ``account_name`` of ``settings``, as one iCalendar text (events and
    their time zones); :class:`FetchError` otherwise."""
    url = check_address(url)
    account = settings.caldav_accounts.get(account_name or "")
    if account is None:
        raise FetchError("caldav_account", repr(account_name or ""), temporary=False)
    host = urllib.parse.urlsplit(url).hostname or ""
    # The CalDAV client connects on its own: its host is checked before it does.
    refuse_private(host, settings)
    try:
        from caldav.davclient import DAVClient
        from caldav.lib import error as caldav_error
    except ImportError:
        raise FetchError("caldav_missing", "caldav", temporary=False) from None
    try:
        with DAVClient(
            url=url,
            username=account.username,
            password=account.password,
            timeout=max(1, math.ceil(settings.timeout)),
            headers={"User-Agent": USER_AGENT},
            enable_rfc6764=False,  # the address is the calendar's: no discovery elsewhere
        ) as client:
            calendar = client.calendar(url=url)  # type: ignore[no-untyped-call]
            found = calendar.search(start=start, end=end, event=True, expand=False)
            texts = [str(item.data) for item in found]
    except caldav_error.AuthorizationError:
        raise FetchError("caldav_denied", repr(account_name), temporary=False) from None
    except caldav_error.NotFoundError:
        raise FetchError("not_found", "404", temporary=False) from None
    except Exception as exc:  # the client's and its HTTP library's errors, whatever they are
        raise _from_client_error(exc, settings) from None
    return combine(texts)


def _from_client_error(exc: Exception, settings: FeedSettings) -> FetchError:
    if isinstance(exc, FetchError):
        return exc
    names = {kind.__name__ for kind in type(exc).__mro__}
    if any("Timeout" in name for name in names) or isinstance(exc, TimeoutError):
        return FetchError("timeout", f"{settings.timeout:g}")
    log.info("CalDAV read failed: %r", exc)
    status = getattr(exc, "status", None) or getattr(exc, "reason", None)
    if "ConnectionError" in names:
        detail = "connection failed"
    elif isinstance(status, int | str) and str(status).strip():
        detail = str(status).strip()[:100]
    else:
        detail = type(exc).__name__
    return FetchError("unreachable", detail)


def combine(texts: Iterable[str]) -> str:
    """One VCALENDAR holding the events and time zones of ``texts`` (one calendar object
    each, as a CalDAV server stores them); a time zone several events share is kept once.
    :class:`FetchError` when one is not iCalendar: the read fails rather than free the time
    that event may hold."""
    combined = icalendar.Calendar()
    combined.add("prodid", "-//Bookwise//CalDAV busy times//EN")
    combined.add("version", "2.0")
    zones: set[str] = set()
    for text in texts:
        try:
            parsed = icalendar.Calendar.from_ical(text)
        except Exception:  # garbage never frees a staff member's time: the read fails
            raise FetchError("not_icalendar", "one of its events is not iCalendar") from None
        for component in parsed.subcomponents:
            if component.name == "VTIMEZONE":
                tzid = str(component.get("TZID", ""))
                if tzid in zones:
                    continue
                zones.add(tzid)
                combined.add_component(component)
            elif component.name == "VEVENT":
                combined.add_component(component)
    whole: str = combined.to_ical().decode("utf-8")
    return whole


__all__ = ["combine", "fetch_caldav"]
