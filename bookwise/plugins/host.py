"""Finding, loading and calling plugins (pluggy), each in isolation from the others.

One :class:`PluginHost` per database (see :func:`bookwise.database.open_database`): it reads
the ``bookwise.plugins`` entry points, loads the enabled ones (and the core's own, which are
always on), checks their API version and their settings, and keeps what they registered. A
plugin that fails to load, or whose settings are wrong, is left out and reported; the rest of
the application starts. A plugin that raises while working is logged with its name and counted;
the booking or the message goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, cast

import pluggy
from sqlalchemy.orm import Session, sessionmaker

from bookwise import hookspecs
from bookwise.documents import schema_messages
from bookwise.errors import did_you_mean
from bookwise.plugins.api import (
    API_VERSION,
    BookingData,
    FieldType,
    MeetingProvider,
    PluginContext,
)

if TYPE_CHECKING:
    from flask import Blueprint

    from bookwise.availability.assignment import Strategy
    from bookwise.config import Settings
    from bookwise.notifications.channels import Channel
    from bookwise.scheduling.registry import Job

log = logging.getLogger("bookwise.plugins")

GROUP = "bookwise.plugins"
CORE_DISTRIBUTION = "bookwise"
REGISTER_HOOKS = {
    "channels": "bookwise_register_channels",
    "field_types": "bookwise_register_field_types",
    "meeting_providers": "bookwise_register_meeting_providers",
    "assignment_strategies": "bookwise_register_assignment_strategies",
    "jobs": "bookwise_register_jobs",
}


class PluginProblem(Exception):
    """A plugin cannot be used; the message says why and what to do."""


@dataclass
class PluginInfo:
    """What ``bookwise plugins`` and the back office show of one plugin."""

    name: str
    target: str
    distribution: str | None
    version: str | None
    core: bool
    enabled: bool
    state: str = "installed"  # installed (not enabled), loaded, failed, not configured
    problems: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)
    errors: int = 0  # failures while working, since start
    last_error: str | None = None


@dataclass(frozen=True)
class _ChannelFactory:
    plugin: str
    cls: type[Channel]
    context: PluginContext


class PluginHost:
    """The loaded plugins of one instance, and what they registered."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session] | None = None) -> None:
        self.settings = settings
        # The instance's database sessions, given by bookwise.database.open_database; None
        # where plugins are only checked (bookwise validate, bookwise plugins).
        self.sessions = sessions
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.field_types: dict[str, FieldType] = {}
        self.assignment_strategies: dict[str, Strategy] = {}
        self.meeting_providers: dict[str, MeetingProvider] = {}
        self._meeting_owner: dict[str, str] = {}
        self._strategy_owner: dict[str, str] = {}
        self._field_type_owner: dict[str, str] = {}
        self._channels: dict[str, _ChannelFactory] = {}
        self.jobs: dict[str, Job] = {}
        self._job_owner: dict[str, str] = {}
        self._lock = threading.Lock()

    # Loading ---------------------------------------------------------------------------------

    def load(self, found: Iterable[EntryPoint] | None = None) -> PluginHost:
        """Load the core plugins and the enabled ones among ``found`` (default: installed)."""
        enabled = list(self.settings.plugins.get("enabled", []))
        found = list(found if found is not None else entry_points(group=GROUP))
        for entry in sorted(found, key=lambda e: (not _is_core(e), e.name)):
            if entry.name in self.plugins:
                self.plugins[entry.name].problems.append(
                    f"another distribution also installs a plugin named {entry.name!r} "
                    f"({entry.value}); only the first is used"
                )
                continue
            dist = entry.dist
            info = PluginInfo(
                name=entry.name,
                target=entry.value,
                distribution=dist.name if dist is not None else None,
                version=dist.version if dist is not None else None,
                core=_is_core(entry),
                enabled=_is_core(entry) or entry.name in enabled,
            )
            self.plugins[entry.name] = info
            if info.enabled:
                self._load_one(entry, info)
        for name in enabled:
            if name not in self.plugins:
                log.error("plugin %r is enabled in the configuration but not installed", name)
        return self

    def _load_one(self, entry: EntryPoint, info: PluginInfo) -> None:
        try:
            plugin = entry.load()
            _check_api(plugin)
            self.manager.register(plugin, name=entry.name)
        except PluginProblem as exc:
            self._refuse(info, str(exc))
            return
        except Exception as exc:  # any error of foreign code: report it, start without it
            self._refuse(info, f"could not be loaded: {type(exc).__name__}: {exc}")
            return
        try:
            self._take_registrations(info)
        except PluginProblem as exc:
            self._refuse(info, str(exc))
            return
        except Exception as exc:  # what it registered is not what the hooks ask for
            self._refuse(info, f"registered something unusable: {type(exc).__name__}: {exc}")
            return
        if info.state != "not configured":
            info.state = "loaded"
        log.debug("plugin %s loaded: %s", info.name, info.provides)

    def _refuse(self, info: PluginInfo, problem: str) -> None:
        info.state = "failed"
        info.problems.append(problem)
        if self.manager.has_plugin(info.name):
            self.manager.unregister(name=info.name)
        log.error("plugin %s is not used: %s", info.name, problem)

    def _registrations(self, info: PluginInfo) -> dict[str, list[Any]]:
        """What the plugin's register hooks return, by part (not checked yet)."""
        registered: dict[str, list[Any]] = {}
        for part, hook in REGISTER_HOOKS.items():
            for impl in getattr(self.manager.hook, hook).get_hookimpls():
                if impl.plugin_name != info.name:
                    continue
                try:
                    result = impl.function()
                except Exception as exc:
                    raise PluginProblem(f"{hook} raised {type(exc).__name__}: {exc}") from None
                if part == "assignment_strategies":
                    registered[part] = list(dict(result or {}).items())
                else:
                    registered[part] = list(result or [])
        return registered

    def _implements(self, plugin: str, hook: str) -> bool:
        return any(
            impl.plugin_name == plugin for impl in getattr(self.manager.hook, hook).get_hookimpls()
        )

    def _take_registrations(self, info: PluginInfo) -> None:
        """Call the plugin's register hooks, check every part, and only then keep them all."""
        registered = self._registrations(info)
        section = self.settings.plugins.get(info.name)
        if section is not None and not isinstance(section, Mapping):
            raise PluginProblem(
                f"{self.settings.source}: plugins.{info.name} must be a mapping of settings "
                f"(key: value lines under it), got {section!r}"
            )
        context = self._context(info.name, section)
        channels = [
            self._check_channel(info, cls, section) for cls in registered.get("channels", [])
        ]
        fields = [self._check_field_type(info, kind) for kind in registered.get("field_types", [])]
        providers = [
            self._build_provider(info, cls, context, section)
            for cls in registered.get("meeting_providers", [])
        ]
        strategies = [
            self._check_strategy(info, name, fn)
            for name, fn in registered.get("assignment_strategies", [])
        ]
        jobs_so_far: list[str] = []
        jobs = []
        for declared in registered.get("jobs", []):
            jobs.append(self._check_job(declared, jobs_so_far))
            jobs_so_far.append(declared.name)
        configured = [cls for cls in channels if cls is not None]
        for cls in configured:  # built once now, so that a channel that cannot start says so
            try:
                cls.from_settings(context)
            except Exception as exc:
                raise PluginProblem(
                    f"channel {cls.name!r} could not start: {type(exc).__name__}: {exc}"
                ) from None
        for cls in configured:
            self._channels[cls.name] = _ChannelFactory(info.name, cls, context)
        for kind in fields:
            self.field_types[kind.name] = kind
            self._field_type_owner[kind.name] = info.name
        for provider in providers:
            if provider is not None:
                self.meeting_providers[provider.name] = provider
                self._meeting_owner[provider.name] = info.name
        for name, fn in strategies:
            self.assignment_strategies[name] = fn
            self._strategy_owner[name] = info.name
        for job in jobs:
            self.jobs[job.name] = job
            self._job_owner[job.name] = info.name
        info.provides = {
            "channels": [cls.name for cls in configured],
            "field types": [kind.name for kind in fields],
            "meeting providers": [p.name for p in providers if p is not None],
            "assignment strategies": [name for name, _ in strategies],
            "scheduled jobs": [job.name for job in jobs],
            "booking events": self._event_hooks(info.name),
            "booking checks": ["bookwise_validate_booking"]
            if self._implements(info.name, "bookwise_validate_booking")
            else [],
            "web endpoints": [f"/plugins/{info.name}/"]
            if self._implements(info.name, "bookwise_register_blueprints")
            else [],
        }
        info.provides = {k: v for k, v in info.provides.items() if v}

    def _settings_problems(
        self, info: PluginInfo, schema: Mapping[str, Any], section: Any
    ) -> list[str]:
        _check_schema(schema)
        where = f"{self.settings.source}: plugins.{info.name}"
        if section is None:
            problems = schema_messages(schema, {})
            if problems and info.core:
                # A core part without settings (the webhook channel) is simply not set up.
                info.state = "not configured"
                return []
            return [f"{where}: settings are missing ({'; '.join(problems)})"] if problems else []
        return [
            f"{self.settings.source}: {p}"
            for p in schema_messages(schema, section, ("plugins", info.name))
        ]

    def _check_unique(self, kind: str, name: str, taken: Iterable[str]) -> None:
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
            raise PluginProblem(f"its {kind} has no valid name ({name!r}: use lowercase letters)")
        if name in taken:
            raise PluginProblem(f"another plugin already registers the {kind} {name!r}")

    def _check_channel(
        self, info: PluginInfo, cls: type[Channel], section: Any
    ) -> type[Channel] | None:
        from bookwise.notifications.channels import Channel

        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise PluginProblem(f"bookwise_register_channels returned {cls!r}, not a Channel class")
        self._check_unique("channel", cls.name, self._channels)
        problems = self._settings_problems(info, cls.settings_schema, section)
        if problems:
            raise PluginProblem("; ".join(problems))
        return None if info.state == "not configured" else cls

    def _check_field_type(self, _info: PluginInfo, kind: FieldType) -> FieldType:
        from bookwise.workflows.language import FIELD_TYPES

        if not isinstance(kind, FieldType):
            raise PluginProblem(
                f"bookwise_register_field_types returned {kind!r}, not a FieldType instance"
            )
        self._check_unique("field type", kind.name, [*FIELD_TYPES, *self.field_types])
        _check_schema(kind.settings_schema)
        return kind

    def _build_provider(
        self, info: PluginInfo, cls: type[MeetingProvider], context: PluginContext, section: Any
    ) -> MeetingProvider | None:
        if not (isinstance(cls, type) and issubclass(cls, MeetingProvider)):
            raise PluginProblem(
                f"bookwise_register_meeting_providers returned {cls!r}, not a MeetingProvider class"
            )
        self._check_unique("meeting provider", cls.name, self.meeting_providers)
        problems = self._settings_problems(info, cls.settings_schema, section)
        if problems:
            raise PluginProblem("; ".join(problems))
        if info.state == "not configured":
            return None
        try:
            return cls.from_settings(context)
        except Exception as exc:
            raise PluginProblem(
                f"meeting provider {cls.name!r} could not start: {type(exc).__name__}: {exc}"
            ) from None

    def _check_strategy(
        self, _info: PluginInfo, name: str, fn: Callable[..., int]
    ) -> tuple[str, Strategy]:
        from bookwise.availability.assignment import STRATEGIES

        if not callable(fn):
            raise PluginProblem(f"assignment strategy {name!r} is not a function")
        self._check_unique("assignment strategy", name, [*STRATEGIES, *self.assignment_strategies])
        return name, fn

    def _check_job(self, job: Any, also_taken: Iterable[str]) -> Job:
        from bookwise.scheduling.registry import CORE_JOB_NAMES, JobProblem, check_job

        try:
            return check_job(job, [*CORE_JOB_NAMES, *self.jobs, *also_taken])
        except JobProblem as exc:
            raise PluginProblem(f"bookwise_register_jobs: {exc}") from None

    def _event_hooks(self, plugin: str) -> list[str]:
        names = []
        for hook in hookspecs.hook_names():
            if not hook.startswith("bookwise_booking_"):
                continue
            caller = getattr(self.manager.hook, hook)
            if any(impl.plugin_name == plugin for impl in caller.get_hookimpls()):
                names.append(hook.removeprefix("bookwise_"))
        return names

    # What the rest of Bookwise asks --------------------------------------------------------

    @property
    def channel_names(self) -> frozenset[str]:
        return frozenset(self._channels)

    def make_channels(self, instance: Settings | None = None) -> dict[str, Channel]:
        """New instances of every configured channel (a dispatcher keeps its own: a channel may
        hold a connection), with ``instance`` settings if given (the ``mail`` section for
        e-mail). One that cannot be built is left out and reported."""
        channels: dict[str, Channel] = {}
        for name, factory in self._channels.items():
            context = factory.context
            if instance is not None:
                context = dataclasses.replace(context, instance=instance)
            try:
                channels[name] = factory.cls.from_settings(context)
            except Exception as exc:
                self.failed(factory.plugin, f"channel {name!r} could not start", exc)
        return channels

    def channel_label(self, name: str) -> str:
        """What the scenario editor calls a plugin's channel: its class's ``label`` ("" when it
        has none)."""
        factory = self._channels.get(name)
        return str(getattr(factory.cls, "label", "") or "") if factory is not None else ""

    def channel_owner(self, name: str) -> str:
        factory = self._channels.get(name)
        return factory.plugin if factory is not None else name

    def meeting_provider_owner(self, name: str) -> str:
        return self._meeting_owner.get(name, name)

    def field_type_owner(self, name: str) -> str:
        return self._field_type_owner.get(name, name)

    def job_owner(self, name: str) -> str | None:
        """The plugin that declared the job ``name`` (None for the core's)."""
        return self._job_owner.get(name)

    def strategy_owner(self, name: str) -> str:
        return self._strategy_owner.get(name, name)

    def unknown_provider_message(self, name: str) -> str:
        known = sorted(self.meeting_providers)
        return (
            f"no meeting provider {name!r} is enabled{did_you_mean(name, known)} "
            f"(enabled: {', '.join(known) or 'none'}); enable its plugin in config.yaml"
        )

    def _context(self, plugin: str, section: Any) -> PluginContext:
        return PluginContext(
            plugin, dict(section or {}), self.settings, sms_stops=self._record_sms_stop
        )

    def _record_sms_stop(self, phone: str, source: str) -> None:
        from bookwise.db import unit_of_work
        from bookwise.notifications.services import record_stop

        if self.sessions is None:
            raise RuntimeError("these plugins were loaded without a database")
        with unit_of_work(self.sessions, write=True) as session:
            record_stop(session, phone, source)

    def blueprints(self) -> list[tuple[str, Blueprint]]:
        """(plugin name, blueprint) of every plugin's web endpoints."""
        found: list[tuple[str, Blueprint]] = []
        for impl in self.manager.hook.bookwise_register_blueprints.get_hookimpls():
            info = self.plugins[impl.plugin_name]
            context = self._context(info.name, self.settings.plugins.get(info.name))
            try:
                returned = cast("Iterable[Blueprint]", impl.function(context=context) or [])
                found.extend((info.name, bp) for bp in returned)
            except Exception as exc:
                self.failed(info.name, "bookwise_register_blueprints", exc)
        return found

    def problems(self) -> list[str]:
        """One line per plugin that is not working, for start-up and the back office."""
        lines = [
            f"plugin {info.name}: {problem}"
            for info in self.plugins.values()
            for problem in info.problems
        ]
        enabled = self.settings.plugins.get("enabled", [])
        lines += [
            f"plugin {name}: enabled in {self.settings.source} but not installed"
            for name in enabled
            if name not in self.plugins
        ]
        return lines

    # Calling plugins, each on its own --------------------------------------------------------

    def call_each(
        self, hook: str, *, only: Callable[[str], bool] | None = None, **kwargs: Any
    ) -> None:
        """Call every implementation of ``hook`` (of the plugins ``only`` admits, by name); one
        that raises is logged and counted, the others are still called."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            if only is not None and not only(impl.plugin_name):
                continue
            try:
                impl.function(*(kwargs[name] for name in impl.argnames))
            except Exception as exc:
                self.failed(impl.plugin_name, hook, exc)

    def optional(self) -> list[PluginInfo]:
        """The loaded plugins a calendar may use or not (``Calendar.plugins``), by name; the
        core's are always used."""
        return sorted(
            (i for i in self.plugins.values() if not i.core and i.state == "loaded"),
            key=lambda info: info.name,
        )

    def optional_meeting_owner(self, provider: str) -> str | None:
        """The optional plugin (see :meth:`optional`) that makes ``provider``'s meetings, or
        None (the core's, or a provider no plugin offers)."""
        if provider not in self.meeting_providers:
            return None
        owner = self.meeting_provider_owner(provider)
        return owner if owner in {info.name for info in self.optional()} else None

    def checks_bookings(self) -> bool:
        """Whether a plugin implements ``bookwise_validate_booking``."""
        return bool(self.manager.hook.bookwise_validate_booking.get_hookimpls())

    def refusal(
        self, booking: BookingData, only: Callable[[str], bool] | None = None
    ) -> str | None:
        """The first refusal of a plugin's ``bookwise_validate_booking`` (of the plugins ``only``
        admits: those the booking's calendar uses), in the booking's language; None when every
        plugin lets the booking through. A check that raises or answers something unusable is
        reported and counts as no refusal."""
        for impl in self.manager.hook.bookwise_validate_booking.get_hookimpls():
            if only is not None and not only(impl.plugin_name):
                continue
            try:
                answer = impl.function(booking=booking)
                told = _in_language(answer, booking.locale)
            except Exception as exc:
                self.failed(impl.plugin_name, "bookwise_validate_booking", exc)
                continue
            if told:
                log.info("plugin %s refused a booking: %s", impl.plugin_name, told)
                return told
        return None

    def listens_to_bookings(self) -> bool:
        return bool(self.meeting_providers) or any(
            getattr(self.manager.hook, hook).get_hookimpls()
            for hook in hookspecs.hook_names()
            if hook.startswith("bookwise_booking_")
        )

    def failed(self, plugin: str, what: str, exc: BaseException) -> None:
        """A plugin raised while working: log it with its name, count it for the back office."""
        log.error("plugin %s failed in %s: %s: %s", plugin, what, type(exc).__name__, exc)
        log.debug("traceback of the failure of plugin %s", plugin, exc_info=exc)
        with self._lock:
            info = self.plugins.get(plugin)
            if info is not None:
                info.errors += 1
                info.last_error = f"{what}: {type(exc).__name__}: {exc}"[:500]

    def failure_counts(self) -> Counter[str]:
        return Counter({name: info.errors for name, info in self.plugins.items() if info.errors})


def _in_language(answer: Any, locale: str) -> str | None:
    """A plugin's refusal as text for ``locale`` (a text, or a mapping language -> text)."""
    if answer is None or answer == "":
        return None
    if isinstance(answer, str):
        return answer.strip() or None
    if (
        isinstance(answer, Mapping)
        and answer
        and all(isinstance(k, str) and isinstance(v, str) for k, v in answer.items())
    ):
        for key in (locale, locale.split("_", maxsplit=1)[0], "en"):
            if answer.get(key, "").strip():
                return str(answer[key]).strip()
        return next((v.strip() for v in answer.values() if v.strip()), None)
    raise TypeError(
        f"bookwise_validate_booking returned {type(answer).__name__}; return None, a text, "
        "or a mapping of language to text"
    )


def _check_schema(schema: Any) -> None:
    """A part's settings schema must itself be a valid JSON Schema."""
    from jsonschema import Draft202012Validator, SchemaError

    try:
        Draft202012Validator.check_schema(schema)
        Draft202012Validator(schema).is_valid({})  # compiles patterns, resolves types
    except SchemaError as exc:
        raise PluginProblem(
            f"its settings_schema is not a valid JSON Schema: {exc.message}"
        ) from None
    except Exception as exc:
        raise PluginProblem(
            f"its settings_schema cannot be used: {type(exc).__name__}: {exc}"
        ) from None


def _is_core(entry: EntryPoint) -> bool:
    return entry.dist is not None and entry.dist.name == CORE_DISTRIBUTION


def _check_api(plugin: Any) -> None:
    """The plugin says which plugin API it was written for (``BOOKWISE_API = "1.0"``); it loads
    when the major versions are equal and ours is at least as recent."""
    from packaging.version import InvalidVersion, Version

    wanted = getattr(plugin, "BOOKWISE_API", None)
    if wanted is None:
        raise PluginProblem(
            f'does not say which plugin API it was written for; add BOOKWISE_API = "{API_VERSION}" '
            "to its module"
        )
    try:
        version, ours = Version(str(wanted)), Version(API_VERSION)
    except InvalidVersion:
        raise PluginProblem(
            f"BOOKWISE_API {wanted!r} is not a version like {API_VERSION!r}"
        ) from None
    if version.major != ours.major or version > ours:
        raise PluginProblem(
            f"was written for plugin API {wanted}, this Bookwise offers {API_VERSION}; "
            "install a version of the plugin made for it"
        )


def load_plugins(settings: Settings) -> PluginHost:
    """The plugins of an instance, loaded; problems are logged (and kept on the host)."""
    return PluginHost(settings).load()
