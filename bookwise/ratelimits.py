"""Rate limits (Flask-Limiter): how often one client address, account or e-mail address may sign
in, book or change a booking. Beyond a limit the answer is 429 with ``Retry-After``.

The limits come from ``security.rate_limits`` in config.yaml. Counts live in memory (each process
its own: enough for one process) or in Redis, shared by every web process of the instance, when
``storage`` is a ``redis://`` address; if Redis stops answering, each process counts in memory
until it is back (a broken Redis must not stop the bookings).

Each application gets a limiter of its own (tests build many applications in one process; a
module-level limiter would carry counts from one to the next). The limits are attached to the
view functions when the application is built, by endpoint, so that the views themselves say
nothing of them, and every route under ``/manage/<token>`` (the client's own booking) is covered,
including ones added later.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request
from flask_limiter import HeaderNames, Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from bookwise.config import RateLimits, SecuritySettings

BOOKING_ENDPOINTS = ("api.book", "public.book", "embed.book")
SIGN_IN_ENDPOINTS = (
    "accounts.login",
    "accounts.change_password_page",
    "accounts.staff_invitation",
)
MANAGE_PREFIXES = ("/manage/<token>", "/embed/manage/<token>", "/api/v1/manage/<token>")


def client_address() -> str:
    """The client's address as this instance sees it (after ``security.behind_proxies``)."""
    return request.remote_addr or "unknown"


def _hashed(value: str) -> str:
    # Keys are kept in Redis or memory: an e-mail address is not, only a digest of it.
    return hashlib.sha256(value.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]


def _account_key() -> str:
    return "account:" + _hashed(str(request.form.get("email", "")))


def booking_email() -> str:
    """The e-mail address a booking request is for ("" when it names none): the public form's
    ``email`` field, or the API body's ``client.email``."""
    if request.is_json:
        body = request.get_json(silent=True)
        client = body.get("client") if isinstance(body, dict) else None
        email = client.get("email") if isinstance(client, dict) else None
        return email if isinstance(email, str) else ""
    return str(request.form.get("email", ""))


def _email_key() -> str:
    return "email:" + _hashed(booking_email())


def _booked(response: Response) -> bool:
    """Only a booking made counts against its e-mail address: a stranger's refused attempts
    must not use up the real client's allowance."""
    if response.status_code == 201:  # the API's booking
        return True
    # The public form's: a redirect to the booking's confirmation page.
    return response.status_code in (302, 303) and "/booked" in (response.location or "")


def _not_posted() -> bool:
    return request.method != "POST"


def _not_read() -> bool:
    return request.method not in ("GET", "HEAD")


def _read_only() -> bool:
    return request.method not in ("POST", "PUT", "PATCH", "DELETE")


def retry_after_seconds() -> int:
    """For a 429: the seconds until the limit that refused the request lets it through."""
    limiter: Limiter | None = current_app.extensions.get("bookwise_limiter")
    limit = limiter.current_limit if limiter is not None else None
    if limit is None:
        return 60
    return max(1, math.ceil(limit.reset_at - time.time()))


def init_rate_limits(app: Flask, security: SecuritySettings, database_url: str) -> Limiter:
    """Build the application's limiter and attach the limits to its views; call once every
    blueprint is registered. Counts are named after the instance's database, so that two
    instances sharing a Redis server count apart."""
    if security.behind_proxies:
        hops = security.behind_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    limits = security.rate_limits
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri=limits.storage,
        # Two counters per key and window (memory and Redis alike), where a moving window keeps
        # every hit's time: an attacker with many addresses costs the store little.
        strategy="sliding-window-counter",
        headers_enabled=True,
        # Flask-Limiter would set Retry-After on every answer (to its window's end, overriding
        # a 503's own "try again in 2 s"): it writes its figure under another name, and a 429
        # gets its Retry-After from retry_after_seconds().
        header_name_mapping={HeaderNames.RETRY_AFTER: "X-RateLimit-Retry-After"},
        retry_after="delta-seconds",
        in_memory_fallback_enabled=True,
        key_prefix="bookwise-" + hashlib.sha256(database_url.encode()).hexdigest()[:12],
        enabled=limits.enabled,
    )
    _attach(app, limiter, limits)
    app.extensions["bookwise_limiter"] = limiter
    return limiter


def _attach(app: Flask, limiter: Limiter, limits: RateLimits) -> None:
    def on_endpoints(endpoints: list[str], *decorators: Callable[[Any], Any]) -> None:
        # One wrapper per view function: /embed and / share theirs (one count, not two).
        wrapped: dict[int, Any] = {}
        for endpoint in endpoints:
            view = app.view_functions[endpoint]
            if id(view) not in wrapped:
                decorated = view
                for decorator in decorators:
                    decorated = decorator(decorated)
                wrapped[id(view)] = decorated
            app.view_functions[endpoint] = wrapped[id(view)]

    on_endpoints(
        list(BOOKING_ENDPOINTS),
        limiter.shared_limit(
            limits.booking_per_address, scope="booking-address", exempt_when=_not_posted
        ),
        limiter.shared_limit(
            limits.booking_per_email,
            scope="booking-email",
            key_func=_email_key,
            deduct_when=_booked,
            exempt_when=lambda: _not_posted() or not booking_email(),
        ),
    )
    on_endpoints(
        ["accounts.login"],
        limiter.shared_limit(
            limits.sign_in_per_account,
            scope="sign-in-account",
            key_func=_account_key,
            exempt_when=_not_posted,
        ),
    )
    on_endpoints(
        list(SIGN_IN_ENDPOINTS),
        limiter.shared_limit(
            limits.sign_in_per_address, scope="sign-in-address", exempt_when=_not_posted
        ),
    )
    manage = sorted(
        {
            rule.endpoint
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith(MANAGE_PREFIXES) and "POST" in (rule.methods or ())
        }
    )
    on_endpoints(
        manage,
        limiter.shared_limit(
            limits.manage_per_address, scope="manage-address", exempt_when=_not_posted
        ),
    )
    # Every read of the JSON API (a script polling free times, a scraper): one generous count.
    reads = sorted(
        {
            rule.endpoint
            for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("api.") and "GET" in (rule.methods or ())
        }
    )
    on_endpoints(
        reads,
        limiter.shared_limit(
            limits.api_read_per_address, scope="api-read-address", exempt_when=_not_read
        ),
    )
    # The token API's changes (bookings are counted above, manage links apart).
    writes = sorted(
        {
            rule.endpoint
            for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("api.")
            and rule.endpoint not in BOOKING_ENDPOINTS
            and not rule.rule.startswith(MANAGE_PREFIXES)
            and {"POST", "PUT", "PATCH", "DELETE"} & set(rule.methods or ())
        }
    )
    on_endpoints(
        writes,
        limiter.shared_limit(
            limits.api_write_per_address, scope="api-write-address", exempt_when=_read_only
        ),
    )
