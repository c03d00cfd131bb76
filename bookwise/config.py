"""Instance configuration: ``config.yaml``, overridden by the environment, checked by a schema.

Where the file comes from, first match wins: the ``--config`` option (passed here as ``path``),
``BOOKWISE_CONFIG``, then ``config.yaml`` in the current folder; without any, the defaults below
apply with the current folder as root. ``BOOKWISE_DATABASE_URL``, ``BOOKWISE_SECRET_KEY`` and
``BOOKWISE_BASE_URL`` override their keys; ``BOOKWISE_ENCRYPTION_KEYS`` (comma-separated) replaces
``privacy.encryption_keys``. Relative paths are relative to the configuration file.
"""

from __future__ import annotations

import base64
import copy
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

from babel import localedata

from bookwise.documents import Document, DocumentError, read_document, schema_problems
from bookwise.errors import ConfigError, did_you_mean

DEFAULTS: dict[str, Any] = {
    "base_url": "http://127.0.0.1:5000",
    "instance_dir": "instance",
    "workflows": "workflows",
    "forms": "forms",
    "templates": "templates",
    "demo_data": None,
    "locales": ["en", "fr", "de", "es"],
    "default_locale": "en",
    "mail": {
        "host": "127.0.0.1",
        "port": 25,
        "username": None,
        "password": None,
        "starttls": False,
        "ssl": False,
        "sender": "Bookwise <bookings@localhost>",
        "timeout": 10,
        "transport": "smtp",
    },
    "scheduler": {"enabled": True, "interval": 15, "outbox_lease": 60},
    "feeds": {
        "refresh_minutes": 15,
        "timeout": 10,
        "max_bytes": 10_000_000,
        "allow_private_addresses": False,
        "caldav_accounts": {},
    },
    "plugins": {"enabled": []},
    "api": {"idempotency_hours": 24},
    "monitoring": {"metrics_from": ["127.0.0.1/32", "::1/128"]},
    "database_replica_url": None,
    "database_pool": {"size": 5, "max_overflow": 10, "timeout": 30, "recycle": 1800},
    "cache": {"storage": "memory://", "slots_seconds": 300, "memory_mb": 64},
    "log_level": "INFO",
    "log_format": "text",
    "access_log": False,
    "security": {
        "behind_proxies": 0,
        "session_idle_minutes": 480,
        "session_max_hours": 168,
        "rate_limits": {
            "enabled": True,
            "storage": "memory://",
            "sign_in_per_address": "30 per minute; 300 per hour",
            "sign_in_per_account": "10 per 15 minutes",
            "booking_per_address": "20 per minute; 200 per hour",
            "booking_per_email": "10 per hour",
            "manage_per_address": "30 per minute; 300 per hour",
            "api_read_per_address": "300 per minute; 6000 per hour",
            "api_write_per_address": "60 per minute; 1000 per hour",
        },
    },
}

ENV_OVERRIDES = {
    "BOOKWISE_DATABASE_URL": "database_url",
    "BOOKWISE_DATABASE_REPLICA_URL": "database_replica_url",
    "BOOKWISE_SECRET_KEY": "secret_key",
    "BOOKWISE_BASE_URL": "base_url",
}


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    ssl: bool
    sender: str
    timeout: float
    transport: str = "smtp"


@dataclass(frozen=True)
class SchedulerSettings:
    enabled: bool
    interval: int
    # Seconds an outbox worker holds the rows it claimed; it renews them every quarter of that
    # while it lives, so a dead worker's rows wait about this long (docs/notifications.md).
    outbox_lease: int = 60


@dataclass(frozen=True)
class PoolSettings:
    """The connections each process keeps to PostgreSQL (SQLAlchemy's QueuePool): ``size`` kept
    open, ``max_overflow`` more for a burst, ``timeout`` seconds a request waits for one,
    ``recycle`` seconds before one is replaced (-1: never). Six processes at the defaults stay
    under PostgreSQL's default max_connections (100)."""

    size: int = 5
    max_overflow: int = 10
    timeout: int = 30
    recycle: int = 1800


@dataclass(frozen=True)
class CacheSettings:
    """The slot cache (bookwise.availability.cache): ``storage`` is ``memory://`` (each process
    its own) or a ``redis://`` address every web process shares; each entry is kept
    ``slots_seconds``, and each process keeps about ``memory_mb`` megabytes of days at most
    (a day of 50 staff on a 15-minute step: about 90 KB)."""

    storage: str = "memory://"
    slots_seconds: int = 300
    memory_mb: int = 64

    @property
    def redis_url(self) -> str | None:
        """The address for the Redis client (which writes a socket's as unix://), or None."""
        if self.storage.startswith("memory://"):
            return None
        return self.storage.replace("redis+unix://", "unix://", 1)


@dataclass(frozen=True)
class MonitoringSettings:
    # The networks /metrics answers (docs/deployment.md, "What to watch"): Prometheus scrapes
    # each web process; anyone else gets 404 (the volumes of bookings are the business's).
    metrics_from: tuple[IPv4Network | IPv6Network, ...] = (
        ip_network("127.0.0.1/32"),
        ip_network("::1/128"),
    )


@dataclass(frozen=True)
class ApiSettings:
    # How long an Idempotency-Key and its response are kept (docs/api.md, "Idempotency"): a
    # retry within this time gets the first response again; after it, the key is new.
    idempotency_hours: int = 24


@dataclass(frozen=True)
class CaldavAccount:
    """The one service account Bookwise reads staff calendars on a CalDAV server with. Its
    password comes from an environment variable when the settings load, so that it is never
    written in config.yaml nor in the database (a database dump holds no password)."""

    username: str
    password: str = field(repr=False)
    password_env: str = ""


@dataclass(frozen=True)
class FeedSettings:
    """Reading staff members' own calendars (bookwise.calendars.sources)."""

    refresh_minutes: int
    timeout: float
    max_bytes: int
    # Whether an address may point into the instance's own network (loopback, private ranges):
    # off in production, so that a calendar address cannot be used to probe the intranet.
    allow_private_addresses: bool
    # CalDAV service accounts by name (``feeds.caldav_accounts``); a "caldav" source names one.
    caldav_accounts: Mapping[str, CaldavAccount] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimits:
    """How often one client address, account or e-mail address may do a thing (Flask-Limiter's
    notation: "20 per minute; 200 per hour"), and where the counts are kept: ``memory://`` (one
    process; the default) or a ``redis://`` address, which every web process shares."""

    enabled: bool
    storage: str
    sign_in_per_address: str
    sign_in_per_account: str
    booking_per_address: str
    booking_per_email: str
    manage_per_address: str
    api_read_per_address: str
    api_write_per_address: str


@dataclass(frozen=True)
class SecuritySettings:
    # How many reverse proxies stand before the web processes, each adding X-Forwarded-For:
    # with 0 the client's address is the connection's (behind nginx, that is nginx's).
    behind_proxies: int
    # A session ends after this long without a request, and in any case this long after sign-in.
    session_idle_minutes: int
    session_max_hours: int
    rate_limits: RateLimits


def _default_security() -> SecuritySettings:
    values = DEFAULTS["security"]
    return SecuritySettings(**{**values, "rate_limits": RateLimits(**values["rate_limits"])})


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one Bookwise instance."""

    source: str
    root: Path
    database_url: str
    # None until first needed: see :func:`secret_key_of` (validating files writes nothing).
    secret_key: str | None
    base_url: str
    instance_dir: Path
    workflows_dir: Path
    forms_dir: Path
    templates_dir: Path
    demo_data: Path | None
    locales: tuple[str, ...]
    default_locale: str
    mail: MailSettings
    scheduler: SchedulerSettings
    plugins: Mapping[str, Any]
    log_level: str
    # text: plain lines; json: one JSON object per line, with the request id (bookwise.tracing).
    log_format: str
    # One line per request (bookwise.access), its secret tokens left out (bookwise.health).
    access_log: bool = False
    feeds: FeedSettings = field(default_factory=lambda: FeedSettings(**DEFAULTS["feeds"]))
    security: SecuritySettings = field(default_factory=_default_security)
    api: ApiSettings = field(default_factory=ApiSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    # A read-only copy the slot searches read (bookwise.database), and the connection pools.
    database_replica_url: str | None = None
    database_pool: PoolSettings = field(default_factory=PoolSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    # The keys of the answers' encryption at rest, the first encrypting (bookwise.crypto); empty:
    # the instance's generated key.
    encryption_keys: tuple[str, ...] = field(repr=False, default=())


def find_config_file(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> Path | None:
    """The configuration file to read, by the precedence in this module's docstring."""
    if path is not None:
        return Path(path)
    if environ.get("BOOKWISE_CONFIG"):
        return Path(environ["BOOKWISE_CONFIG"])
    default = Path.cwd() / "config.yaml"
    return default if default.is_file() else None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read, merge and validate the configuration; raise :class:`ConfigError` with one clear line.

    ``overrides`` (used by tests and embedding code) are applied over the file, before the
    environment variables.
    """
    environ = os.environ if environ is None else environ
    config_file = find_config_file(path, environ)
    if config_file is not None:
        try:
            document = read_document(config_file)
        except DocumentError as exc:
            raise ConfigError(f"configuration {exc.problem}") from None
        if document.data is None:
            document.data = {}
        root = config_file.resolve().parent
        source = str(config_file)
    else:
        document = Document(file="<defaults>", data={})
        root = Path.cwd()
        source = "<defaults>"
    if not isinstance(document.data, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping of keys to values")
    problems = schema_problems(document, "bookwise", "config.schema.json")
    if problems:
        raise ConfigError("\n".join(f"configuration error: {p}" for p in problems))

    values = _merge(copy.deepcopy(DEFAULTS), document.data)
    if overrides:
        values = _merge(values, overrides)
    for variable, key in ENV_OVERRIDES.items():
        if environ.get(variable):
            values[key] = environ[variable]
    # Check again after merging: overrides and environment variables must obey the same rules.
    merged = Document(file=f"{source} (with overrides)", data=values)
    problems = schema_problems(merged, "bookwise", "config.schema.json")
    if problems:
        raise ConfigError("\n".join(f"configuration error: {p}" for p in problems))
    unknown = [code for code in values["locales"] if not localedata.exists(code)]
    if unknown:
        raise ConfigError(
            f"configuration error: {source}: locales: unknown language {unknown[0]!r}; "
            "use codes like en, fr, de, es or pt_BR"
        )
    if values["default_locale"] not in values["locales"]:
        raise ConfigError(
            f"configuration error: {source}: default_locale {values['default_locale']!r} "
            f"is not one of locales ({', '.join(values['locales'])})"
        )
    if values["mail"]["ssl"] and values["mail"]["starttls"]:
        raise ConfigError(
            f"configuration error: {source}: mail.ssl and mail.starttls exclude each other; "
            "use ssl for port 465, starttls for port 587"
        )

    installed = {entry.name for entry in entry_points(group="bookwise.plugins")}
    for name in values["plugins"].get("enabled", []):
        if name not in installed:
            raise ConfigError(
                f"configuration error: {source}: plugins.enabled: no plugin named {name!r} is "
                f"installed{did_you_mean(name, installed)} "
                f"(installed: {', '.join(sorted(installed)) or 'none'})"
            )
    instance_dir = _resolve(root, values["instance_dir"])
    database_url = values.get("database_url") or f"sqlite:///{instance_dir / 'bookwise.db'}"
    return Settings(
        source=source,
        root=root,
        database_url=_absolute_sqlite_url(database_url, root),
        secret_key=values.get("secret_key"),
        base_url=values["base_url"].rstrip("/"),
        instance_dir=instance_dir,
        workflows_dir=_resolve(root, values["workflows"]),
        forms_dir=_resolve(root, values["forms"]),
        templates_dir=_resolve(root, values["templates"]),
        demo_data=_resolve(root, values["demo_data"]) if values.get("demo_data") else None,
        locales=tuple(values["locales"]),
        default_locale=values["default_locale"],
        mail=MailSettings(**values["mail"]),
        scheduler=SchedulerSettings(**values["scheduler"]),
        feeds=_feed_settings(values["feeds"], environ, source),
        security=_security_settings(values["security"], source),
        api=ApiSettings(**values["api"]),
        monitoring=_monitoring_settings(values["monitoring"], source),
        database_replica_url=_absolute_sqlite_url(values["database_replica_url"], root)
        if values.get("database_replica_url")
        else None,
        database_pool=PoolSettings(**values["database_pool"]),
        cache=_cache_settings(values["cache"], source),
        plugins=values["plugins"],
        log_level=values["log_level"],
        log_format=values["log_format"],
        access_log=values["access_log"],
        raw=values,
        encryption_keys=_encryption_keys(values, environ, source),
    )


def _encryption_keys(
    values: Mapping[str, Any], environ: Mapping[str, str], source: str
) -> tuple[str, ...]:
    """``BOOKWISE_ENCRYPTION_KEYS`` (comma-separated) or ``privacy.encryption_keys``; each a
    Fernet key (32 bytes in URL-safe base64), checked here so that a typo stops the start."""
    if environ.get("BOOKWISE_ENCRYPTION_KEYS", "").strip():
        where = "BOOKWISE_ENCRYPTION_KEYS"
        keys = [k.strip() for k in environ["BOOKWISE_ENCRYPTION_KEYS"].split(",") if k.strip()]
    else:
        where = f"{source}: privacy.encryption_keys"
        keys = [str(k).strip() for k in (values.get("privacy") or {}).get("encryption_keys", [])]
    for number, key in enumerate(keys, start=1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32 and len(key) == 44
        except (ValueError, UnicodeEncodeError):
            valid = False
        if not valid:
            raise ConfigError(
                f"configuration error: {where}: key {number} is not an encryption key (44 "
                "characters of URL-safe base64); make one with: bookwise keys generate"
            )
    return tuple(keys)


def _feed_settings(
    values: Mapping[str, Any], environ: Mapping[str, str], source: str
) -> FeedSettings:
    """``feeds`` with each CalDAV account's password read from its environment variable (a
    missing variable is named, so that the administrator knows what to set)."""
    accounts = {}
    for name, account in values.get("caldav_accounts", {}).items():
        variable = account["password_env"]
        password = environ.get(variable)
        if not password:
            raise ConfigError(
                f"configuration error: {source}: feeds.caldav_accounts.{name}.password_env: "
                f"the environment variable {variable} is not set; set it to the password of "
                f"the CalDAV account {account['username']!r}"
            )
        accounts[name] = CaldavAccount(account["username"], password, variable)
    return FeedSettings(**{**values, "caldav_accounts": accounts})


def _monitoring_settings(values: Mapping[str, Any], source: str) -> MonitoringSettings:
    networks = []
    for text in values["metrics_from"]:
        try:
            networks.append(ip_network(text, strict=False))
        except ValueError:
            raise ConfigError(
                f"configuration error: {source}: monitoring.metrics_from: {text!r} is not an "
                "address or a network; write it like 10.0.0.0/8 or 192.168.1.20"
            ) from None
    return MonitoringSettings(metrics_from=tuple(networks))


def _security_settings(values: Mapping[str, Any], source: str) -> SecuritySettings:
    """``security``, with each rate limit read as Flask-Limiter will read it (a limit it could
    not read would otherwise only fail on the first request it applies to)."""
    from limits import parse_many

    limits = dict(values["rate_limits"])
    for key, value in limits.items():
        if key in ("enabled", "storage"):
            continue
        try:
            parse_many(value)
        except ValueError:
            raise ConfigError(
                f"configuration error: {source}: security.rate_limits.{key}: {value!r} is not a "
                'rate limit; write it like "20 per minute" or "10 per hour; 100 per day"'
            ) from None
    _check_storage(limits["storage"], source, "security.rate_limits.storage")
    return SecuritySettings(**{**values, "rate_limits": RateLimits(**limits)})


def _cache_settings(values: Mapping[str, Any], source: str) -> CacheSettings:
    _check_storage(values["storage"], source, "cache.storage")
    return CacheSettings(**values)


def _check_storage(storage: str, source: str, key: str) -> None:
    """A store shared by the processes: memory:// (each its own) or Redis."""
    if not storage.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
        raise ConfigError(
            f"configuration error: {source}: {key}: {storage!r} is not supported; use "
            "memory:// (one process) or a redis:// address (several processes)"
        )


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            base[key] = _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _resolve(root: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else root / path


def _absolute_sqlite_url(url: str, root: Path) -> str:
    """Make a relative SQLite path relative to the configuration file, not to the current folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    rest = url[len(prefix) :]
    database, sep, query = rest.partition("?")
    if not database or database == ":memory:" or database.startswith("/"):
        return url
    return f"{prefix}{(root / database).resolve()}{sep}{query}"


def secret_key_of(settings: Settings) -> str:
    """The secret key: the configured one, else the instance's generated one (created, readable by
    its owner only, the first time it is needed)."""
    return settings.secret_key or _instance_secret(settings.instance_dir)


def _instance_secret(instance_dir: Path) -> str:
    """The instance's generated secret key, created (readable by the owner only) on first use."""
    secret_file = instance_dir / "secret_key"
    try:
        existing = secret_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    except OSError as exc:
        raise ConfigError(f"cannot read {secret_file}: {exc.strerror}") from None
    if existing:
        return existing
    secret = secrets.token_urlsafe(48)
    try:
        instance_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret + "\n")
    except FileExistsError:
        # Another process created it between our read and our write: use theirs.
        return secret_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot write the generated secret key to {secret_file}: {exc.strerror}; "
            "set secret_key in the configuration or BOOKWISE_SECRET_KEY"
        ) from None
    return secret
