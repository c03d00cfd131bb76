"""The workflow files of an instance, checked against what the instance has."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bookwise.config import Settings
from bookwise.errors import Problem
from bookwise.notifications.templates import SHIPPED_TEMPLATES, template_names
from bookwise.workflows.loader import (
    CheckContext,
    CheckedWorkflow,
    broken_field_sets,
    check_workflow_files,
    read_field_sets,
    yaml_files,
)

# The channels Bookwise knows without plugins. (Plugins will add theirs.)
CORE_CHANNELS = frozenset({"email", "sms", "webhook", "log"})


def check_context(
    settings: Settings, known_channels: Iterable[str] | None = None
) -> tuple[CheckContext, list[Problem]]:
    """Field sets, templates and locales of the instance; problems of broken field sets."""
    field_sets, problems = read_field_sets(settings.forms_dir)
    context = CheckContext(
        field_sets=field_sets,
        broken_field_sets=broken_field_sets(settings.forms_dir, field_sets),
        known_templates=template_names([SHIPPED_TEMPLATES, settings.templates_dir]),
        known_channels=frozenset(known_channels if known_channels is not None else CORE_CHANNELS),
        locales=settings.locales,
    )
    return context, problems


def check_instance_workflows(
    settings: Settings, known_channels: Iterable[str] | None = None
) -> tuple[dict[str, CheckedWorkflow], list[Problem]]:
    """Every workflow file of the configured folder, checked; and every problem found."""
    context, problems = check_context(settings, known_channels)
    workflows, found = check_workflow_files(workflow_files(settings.workflows_dir), context)
    return workflows, problems + found


def workflow_files(directory: Path) -> list[Path]:
    return yaml_files(directory)
