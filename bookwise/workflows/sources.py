"""The workflow files of an instance, checked against what the instance has."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from bookwise.config import Settings
from bookwise.errors import Problem
from bookwise.notifications.templates import SHIPPED_TEMPLATES, template_names
from bookwise.workflows.language import CORE_CHANNELS
from bookwise.workflows.loader import (
    CheckContext,
    CheckedWorkflow,
    broken_field_sets,
    check_workflow_files,
    read_field_sets,
    yaml_files,
)

if TYPE_CHECKING:
    from bookwise.plugins.host import PluginHost

# The channels a workflow may name whatever is enabled: the core's, and "sms", which the core
# knows (opt-in, STOP list) and a plugin carries. Messages on a channel no plugin provides are
# skipped, with the reason, when they come due.


def check_context(
    settings: Settings,
    known_channels: Iterable[str] | None = None,
    plugins: PluginHost | None = None,
) -> tuple[CheckContext, list[Problem]]:
    """Field sets, templates, locales and what the enabled plugins add; problems of broken
    field sets. ``plugins``: the instance's loaded plugins (loaded here when not given)."""
    if plugins is None:
        from bookwise.plugins.host import load_plugins

        plugins = load_plugins(settings)
    added = plugin_context(plugins)
    field_sets, problems = read_field_sets(settings.forms_dir, added)
    channels = set(known_channels if known_channels is not None else CORE_CHANNELS)
    context = dataclasses.replace(
        added,
        field_sets=field_sets,
        broken_field_sets=broken_field_sets(settings.forms_dir, field_sets),
        known_templates=template_names([SHIPPED_TEMPLATES, settings.templates_dir]),
        known_channels=frozenset(channels | plugins.channel_names),
        locales=settings.locales,
    )
    return context, problems


def plugin_context(plugins: PluginHost) -> CheckContext:
    """What the enabled plugins add to the workflow language."""
    return CheckContext(
        field_types={name: kind.settings_schema for name, kind in plugins.field_types.items()},
        assignments=frozenset(plugins.assignment_strategies),
        meeting_providers=frozenset(plugins.meeting_providers),
        plugins_failed=bool(plugins.problems()),
    )


def check_instance_workflows(
    settings: Settings,
    known_channels: Iterable[str] | None = None,
    plugins: PluginHost | None = None,
) -> tuple[dict[str, CheckedWorkflow], list[Problem]]:
    """Every workflow file of the configured folder, checked; and every problem found."""
    context, problems = check_context(settings, known_channels, plugins)
    workflows, found = check_workflow_files(workflow_files(settings.workflows_dir), context)
    return workflows, problems + found


def workflow_files(directory: Path) -> list[Path]:
    return yaml_files(directory)
