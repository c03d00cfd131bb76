"""The Flask application factory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from bookwise.availability.cache import slot_cache_for
from bookwise.clock import Clock, system_clock
from bookwise.config import Settings, load_settings, secret_key_of
from bookwise.database import open_database
from bookwise.db import is_busy
from bookwise.errors import NotFound
from bookwise.formatting import LOCALE_DIR
from bookwise.i18n import (
    LANG_COOKIE,
    babel,
    gettext,
    language_choices,
    select_locale,
)
from bookwise.ratelimits import init_rate_limits, retry_after_seconds
from bookwise.tracing import configure_logging
from bookwise.web import Bookwise, close_session, csrf, instance

MAX_BODY = 64 * 1024
HSTS = "max-age=31536000"


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with a body nested too deeply for the parser (``[`` thirty thousand times
    fits in 64 KiB) read as invalid JSON: ``json.loads`` raises RecursionError there, which
    ``request.get_json`` would let through as a 500 in every view and plugin that reads JSON."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None


class StaticKeepsSession(SecureCookieSessionInterface):
    """Signed-cookie sessions whose static files never rewrite the cookie.

    Sessions are permanent, so Flask sends the cookie again with every answer. A stylesheet or
    icon requested beside a form's POST, and answered after it, would then put back the
    session as it stood before the POST: the calendar just chosen in the back office was lost
    that way (seen in CI). Static files carry no session change, so they send no cookie."""

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        endpoint = request.endpoint or ""
        if endpoint == "static" or endpoint.endswith(".static"):
            return False
        return super().should_set_cookie(app, session)


def create_app(
    config: Settings | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    clock: Clock = system_clock,
) -> Flask:
    """Build the Bookwise web application.

    ``config`` is a :class:`Settings`, a mapping of settings over the configuration file's (for
    tests), a path to a configuration file, or ``None`` for the usual lookup. ``clock`` is what
    every page and API call takes as the current time (see :mod:`bookwise.clock`).
    """
    if isinstance(config, Settings):
        settings = config
    elif isinstance(config, Mapping):
        settings = load_settings(overrides=config)
    else:
        settings = load_settings(config)

    app = Flask(__name__, instance_path=str(settings.instance_dir.resolve()))
    app.json = BoundedJSONProvider(app)
    app.session_interface = StaticKeepsSession()
    # "/api/v1//x" is not "/api/v1/x": a 404 in the API's own words, not an HTML redirect.
    app.url_map.merge_slashes = False
    app.config.update(
        SECRET_KEY=secret_key_of(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=MAX_BODY,
        BABEL_TRANSLATION_DIRECTORIES=str(LOCALE_DIR),
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        WTF_CSRF_TIME_LIMIT=None,
    )
    configure_logging(settings.log_level, settings.log_format)
    app.extensions["bookwise"] = Bookwise(
        settings,
        open_database(settings),
        clock,
        slot_cache_for(settings.cache, settings.database_url),
    )

    app.jinja_env.add_extension("jinja2.ext.do")
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)

    from bookwise.accounts.views import blueprint as accounts_blueprint
    from bookwise.accounts.views import login_manager
    from bookwise.admin import init_admin
    from bookwise.api.business import calendar_settings as _with_settings_routes  # noqa: F401
    from bookwise.api.docs import openapi as _with_docs_routes  # noqa: F401
    from bookwise.api.staff import list_bookings as _with_token_routes  # noqa: F401
    from bookwise.api.views import blueprint as api_blueprint
    from bookwise.api.waitlist import entry_json as _with_waitlist_routes  # noqa: F401
    from bookwise.health import init_health
    from bookwise.public.feeds import blueprint as feeds_blueprint
    from bookwise.public.views import blueprint as public_blueprint
    from bookwise.public.waitlist import render_entry as _with_waitlist_pages  # noqa: F401

    login_manager.init_app(app)
    app.register_blueprint(api_blueprint)
    app.register_blueprint(feeds_blueprint)
    app.register_blueprint(accounts_blueprint)
    # The public pages, and the same pages for iframes under /embed (see bookwise.public.views).
    # Their forms carry their own signed token (no session cookie reaches a frame).
    app.register_blueprint(public_blueprint, name="embed", url_prefix="/embed")
    app.register_blueprint(public_blueprint)
    init_admin(app)
    _mount_plugins(app)
    init_rate_limits(app, settings.security, settings.database_url)
    init_health(app)

    app.add_url_rule("/favicon.ico", "favicon", _favicon)
    app.context_processor(lambda: {"language_choices": language_choices, "get_locale": get_locale})
    app.teardown_appcontext(close_session)
    app.after_request(_remember_language)
    app.after_request(_security_headers)
    _register_error_pages(app)
    return app


def _mount_plugins(app: Flask) -> None:
    """Each plugin's web endpoints under /plugins/<name>/ (they check their callers themselves:
    no session, no CSRF token). One that cannot be mounted is reported; the rest starts."""
    plugins = app.extensions["bookwise"].database.plugins
    for name, blueprint in plugins.blueprints():
        try:
            csrf.exempt(blueprint)
            app.register_blueprint(
                blueprint, url_prefix=f"/plugins/{name}", name=f"plugin_{name}_{blueprint.name}"
            )
        except Exception as exc:
            plugins.failed(name, "mounting its web endpoints", exc)


def _favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page says."""
    return send_from_directory(
        Path(__file__).parent / "static", "favicon.svg", mimetype="image/svg+xml", max_age=86400
    )


def _remember_language(response: Response) -> Response:
    lang = g.get("remember_lang")
    if lang:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 24 * 3600, httponly=True, samesite="Lax"
        )
    return response


def _security_headers(response: Response) -> Response:
    """No inline script or style, forms only to ourselves, and no framing by other sites except
    those a calendar lists for its embed pages (``g.frame_ancestors``); no cache keeps the back
    office (health answers) or a client's own booking (``g.private``: the manage pages and API);
    and browsers told to come back over https only when the instance is served over https."""
    if g.get("private") or request.path == "/admin" or request.path.startswith("/admin/"):
        response.headers["Cache-Control"] = "no-store"
    if instance().settings.base_url.startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    ancestors = g.get("frame_ancestors") or []
    frame = " ".join(ancestors) if ancestors else "'none'"
    # The back office's pages (Flask-Admin's templates) carry a few inline scripts, each with
    # this response's nonce; every other page has none at all.
    nonce = g.get("csp_nonce")
    scripts = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; script-src {scripts}; style-src {scripts}; img-src 'self' data:; "
        f"form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {frame}",
    )
    if not ancestors:
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


# Seconds a client is asked to wait when the database was too busy to answer (a 503).
BUSY_RETRY_AFTER = 2


def _register_error_pages(app: Flask) -> None:
    def render_error(code: int, title: str, message: str) -> tuple[str, int]:
        return render_template("error.html", code=code, title=title, message=message), code

    @app.errorhandler(NotFound)
    def not_found(_error: NotFound) -> tuple[str, int]:
        return render_error(
            404,
            gettext("Page not found"),
            gettext("This page does not exist or is no longer available."),
        )

    @app.errorhandler(CSRFError)
    def csrf_error(_error: CSRFError) -> tuple[str, int]:
        return render_error(
            400,
            gettext("Form expired"),
            gettext(
                "The form was open too long or came from elsewhere. "
                "Go back, reload the page and try again."
            ),
        )

    def api_error(code: int, name: str, message: str) -> tuple[Response, int]:
        return jsonify(error={"code": name, "message": message}), code

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Any, ...]:
        code = error.code or 500
        if request.path.startswith("/api/"):
            name = {
                404: "not_found",
                405: "method_not_allowed",
                413: "too_large",
                429: "rate_limited",
            }.get(code, "http_error")
            message = {
                413: "the body is larger than 64 KiB",
                429: "too many requests in a short time; retry after the seconds in Retry-After",
            }.get(code, error.description)
            answer = api_error(code, name, message or error.name)
            if code == 429:
                return (*answer, {"Retry-After": str(retry_after_seconds())})
            return answer
        pages = {
            400: (
                gettext("Something is wrong with this request"),
                gettext("Go back, reload the page and try again."),
            ),
            403: (
                gettext("Access denied"),
                gettext(
                    "This page cannot be used from here. Go back and try again from our own pages."
                ),
            ),
            404: (
                gettext("Page not found"),
                gettext("This page does not exist or is no longer available."),
            ),
            405: (
                gettext("Not allowed"),
                gettext("This page cannot be used this way. Go back and try again."),
            ),
            413: (
                gettext("Too much data"),
                gettext("What was sent is too large. Shorten your answers and try again."),
            ),
            429: (
                gettext("Too many attempts"),
                gettext(
                    "Too many attempts came in a short time. Wait a few minutes, then try again."
                ),
            ),
        }
        title, message = pages.get(
            code, (gettext("Something went wrong"), gettext("Please try again in a moment."))
        )
        if code == 429:
            return (
                *render_error(code, title, message),
                {"Retry-After": str(retry_after_seconds())},
            )
        return render_error(code, title, message)

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def database_busy(error: Exception) -> tuple[Any, ...]:
        """A database too busy to answer in time (SQLite's writer lock held past its busy
        timeout, a PostgreSQL lock timeout or deadlock, no pooled connection free): the
        transaction was rolled back, so the same request may be sent again. 503 with
        Retry-After, never a 500."""
        if isinstance(error, OperationalError) and not is_busy(error):
            return internal_error(error)
        app.logger.warning("the database is busy, %s answered 503: %s", request.path, error)
        retry = {"Retry-After": str(BUSY_RETRY_AFTER)}
        if request.path.startswith("/api/"):
            message = (
                "the database is busy with other requests; nothing was changed: send the same "
                "request again after the seconds in Retry-After"
            )
            return (*api_error(503, "busy", message), retry)
        title, message = gettext("Something went wrong"), gettext("Please try again in a moment.")
        return (*render_error(503, title, message), retry)

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> tuple[str, int] | tuple[Response, int]:
        app.logger.exception("unexpected error on %s", request.path, exc_info=error)
        if request.path.startswith("/api/"):
            return api_error(500, "internal_error", "something went wrong; nothing was booked")
        return render_error(
            500,
            gettext("Something went wrong"),
            gettext(
                "We could not complete your request. Please try again in a "
                "moment; if it happens again, contact us."
            ),
        )
