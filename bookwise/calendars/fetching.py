"""Reading a calendar address: one HTTP GET with every limit a hostile or broken server needs.

A staff member's calendar address is typed by a person, so it is untrusted: it may not be http(s),
may point into the instance's own network (a probe of the intranet), may redirect forever, answer
slowly byte by byte, or send 50 MB. Each of these ends in a :class:`FetchError` whose ``code`` the
source's status shows in words (bookwise.calendars.sources.ERRORS); nothing here raises anything
else. ``ETag`` and ``Last-Modified`` make an unchanged calendar cost one short answer (304).

The private-address check runs on the address actually connected to (after DNS, on every
redirect), so a name that resolves to 127.0.0.1 on the second lookup is refused too.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bookwise.config import FeedSettings

MAX_REDIRECTS = 5
MAX_ADDRESS = 2000  # CalendarSource.url
CHUNK = 64 * 1024
try:
    USER_AGENT = f"Bookwise/{version('bookwise')} (calendar feed reader)"
except PackageNotFoundError:  # running from a source tree that was never installed
    USER_AGENT = "Bookwise (calendar feed reader)"


class FetchError(Exception):
    """The address gave no calendar. ``code`` names the case, ``detail`` the specifics (a status,
    a host); ``temporary``: trying later may succeed (a timeout, a 503), so back off and retry."""

    def __init__(self, code: str, detail: str = "", *, temporary: bool = True) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.temporary = temporary


@dataclass(frozen=True)
class Fetched:
    """What the address answered: ``body`` is None when it said "unchanged" (304)."""

    body: bytes | None
    etag: str | None
    last_modified: str | None


def check_address(url: str) -> str:
    """``url`` stripped, or :class:`FetchError` ``not_http`` when it is not an http(s) address
    with a host. (``webcal://``, what calendar apps publish, is read as ``https://``.)"""
    url = url.strip()
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no server has such an address
        raise FetchError(
            "not_http", url.encode("utf-8", "replace").decode()[:100], temporary=False
        ) from None
    if len(url) > MAX_ADDRESS:
        raise FetchError("not_http", url[:100] + "...", temporary=False)
    if url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FetchError("not_http", url[:100], temporary=False)
    return url


def label_of(url: str) -> str:
    """What people see of an address: its host and path, without the query string that often
    carries the calendar's secret (Google's "private address", Outlook's published links)."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path if len(parts.path) <= 60 else parts.path[:57] + "..."
    return f"{parts.hostname or ''}{path}"[:200]


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def refuse_private(host: str, settings: FeedSettings) -> None:
    """:class:`FetchError` ``private_address`` when ``host`` resolves to an address inside this
    server's own network and ``settings`` do not allow it (``unknown_host`` when it does not
    resolve). For clients that connect on their own (CalDAV), checked before they do: unlike
    :func:`fetch`, which checks the address it actually connected to, this leaves a name that
    resolves differently a moment later unchecked."""
    if settings.allow_private_addresses:
        return
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("unknown_host", str(getattr(exc, "strerror", None) or exc)) from None
    if any(_forbidden(str(address[4][0])) for address in found):
        raise FetchError("private_address", host, temporary=False)


def _guarded_connection(allow_private: bool) -> Any:
    def create_connection(
        address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        sock = socket.create_connection(address, timeout, source_address)
        peer = sock.getpeername()[0]
        if not allow_private and _forbidden(peer):
            sock.close()
            raise FetchError("private_address", address[0], temporary=False)
        return sock

    return create_connection


class _HTTPConnection(http.client.HTTPConnection):
    allow_private = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection(self.allow_private)


class _HTTPSConnection(http.client.HTTPSConnection):
    allow_private = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection(self.allow_private)


def _handlers(allow_private: bool) -> list[urllib.request.BaseHandler]:
    http_connection = type("Connection", (_HTTPConnection,), {"allow_private": allow_private})
    https_connection = type("Connection", (_HTTPSConnection,), {"allow_private": allow_private})

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(http_connection, req)  # type: ignore[arg-type]

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(https_connection, req)  # type: ignore[arg-type]

    class RedirectHandler(urllib.request.HTTPRedirectHandler):
        max_redirections = MAX_REDIRECTS
        max_repeats = 2

        def http_error_302(
            self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any
        ) -> Any:
            # No redirect to file:, ftp: or anything but http(s), named as such.
            target = headers.get("location") or headers.get("uri") or ""
            check_address(urllib.parse.urljoin(req.full_url, target))
            return super().http_error_302(req, fp, code, msg, headers)

        http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    # No ProxyHandler: a proxy from the environment would hide the address really connected to.
    return [HTTPHandler(), HTTPSHandler(), RedirectHandler()]


def fetch(
    url: str,
    settings: FeedSettings,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    """GET the calendar at ``url`` within ``settings``' timeout (for the whole answer, not per
    read) and size limit; :class:`FetchError` otherwise."""
    url = check_address(url)
    opener = urllib.request.OpenerDirector()
    for handler in (
        *_handlers(settings.allow_private_addresses),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),
    ):
        opener.add_handler(handler)
    headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + settings.timeout
    try:
        # The scheme was checked above and on every redirect.
        request = urllib.request.Request(url, headers=headers)  # noqa: S310
        with opener.open(request, timeout=settings.timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > settings.max_bytes:
                raise FetchError("too_large", str(settings.max_bytes), temporary=False)
            body = _read(response, settings.max_bytes, deadline, settings.timeout)
            return Fetched(
                body, response.headers.get("ETag"), response.headers.get("Last-Modified")
            )
    except FetchError:
        raise
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return Fetched(None, exc.headers.get("ETag") or etag, last_modified)
        if exc.code in (301, 302, 303, 307, 308):
            raise FetchError("redirects", str(MAX_REDIRECTS), temporary=False) from None
        code = {404: "not_found", 410: "not_found", 401: "not_public", 403: "not_public"}
        raise FetchError(
            code.get(exc.code, "http_status"),
            str(exc.code),
            temporary=exc.code >= 500 or exc.code in (408, 429),
        ) from None
    except urllib.error.URLError as exc:
        raise _from_os_error(exc.reason, settings.timeout) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _from_os_error(exc, settings.timeout) from None


def _read(response: Any, limit: int, deadline: float, timeout: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise FetchError("too_large", str(limit), temporary=False)
        if time.monotonic() > deadline:
            raise FetchError("timeout", f"{timeout:g}")
        chunks.append(chunk)
    return b"".join(chunks)


def _from_os_error(reason: object, timeout: float) -> FetchError:
    if isinstance(reason, FetchError):
        return reason
    if isinstance(reason, TimeoutError | socket.timeout):
        return FetchError("timeout", f"{timeout:g}")
    if isinstance(reason, socket.gaierror):
        return FetchError("unknown_host", str(reason.strerror or reason))
    if isinstance(reason, ConnectionRefusedError):
        return FetchError("unreachable", "connection refused")
    if isinstance(reason, http.client.HTTPException):
        return FetchError("unreachable", f"not an HTTP answer ({type(reason).__name__})")
    text = str(getattr(reason, "strerror", None) or reason)
    if "timed out" in text:
        return FetchError("timeout", f"{timeout:g}")
    return FetchError("unreachable", text[:200])


__all__ = ["FetchError", "Fetched", "check_address", "fetch", "label_of", "refuse_private"]
