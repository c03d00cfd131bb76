"""``bookwise validate``: check workflow, field set and calendar data files without a database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bookwise.calendars.data import check_calendar_data
from bookwise.config import Settings
from bookwise.documents import Document, DocumentError, read_document
from bookwise.errors import Problem, sort_problems
from bookwise.workflows.loader import (
    CheckContext,
    CheckedWorkflow,
    check_field_set,
    check_workflow,
    display_path,
    register,
    yaml_files,
)
from bookwise.workflows.scenario_tests import run_cases
from bookwise.workflows.scenario_tests import summary as scenario_summary
from bookwise.workflows.sources import check_context, check_instance_workflows, workflow_files


@dataclass
class FileResult:
    file: str
    kind: str
    problems: list[Problem] = field(default_factory=list)
    summary: str = ""


def validate_paths(settings: Settings, targets: Iterable[Path]) -> list[FileResult]:
    """Check every YAML file named or found in the folders named, each by its kind."""
    context, _ = check_context(settings)
    results: dict[Path, FileResult] = {}
    seen: dict[str, CheckedWorkflow] = {}
    calendar_files: list[tuple[Path, Document]] = []
    for path in _expand(targets):
        name = display_path(path)
        try:
            document = read_document(path, name)
        except DocumentError as exc:
            results[path] = FileResult(name, "unknown", [exc.problem])
            continue
        kind = _kind(path, document, settings)
        if kind == "field set":
            results[path] = _check_field_set(document, path, context)
        elif kind == "calendar data":
            calendar_files.append((path, document))
            results[path] = FileResult(name, kind)  # checked below, knowing every workflow
        else:
            results[path] = _check_workflow(document, path, context, seen)
    named = {wid: item.workflow.staff.tags for wid, item in seen.items()}
    for path, document in calendar_files:
        results[path] = _check_calendars(document, settings, named)
    for result in results.values():
        result.problems = sort_problems(result.problems)
    return list(results.values())


def _expand(targets: Iterable[Path]) -> list[Path]:
    paths: list[Path] = []
    for target in targets:
        if target.is_dir():
            paths.extend(yaml_files(target))
        else:
            paths.append(target)
    return paths


def _kind(path: Path, document: Document, settings: Settings) -> str:
    """A file's kind by its folder (forms, workflows), else by its keys."""
    if settings.forms_dir.resolve() in path.resolve().parents:
        return "field set"
    if settings.workflows_dir.resolve() in path.resolve().parents:
        return "workflow"
    data = document.data
    if isinstance(data, dict) and "calendars" in data:
        return "calendar data"
    if isinstance(data, dict) and "fields" in data and "duration" not in data and "id" not in data:
        return "field set"
    return "workflow"


def _check_field_set(document: Document, path: Path, context: CheckContext) -> FileResult:
    field_set, problems = check_field_set(document, path.stem, context)
    summary = f"field set {path.stem}, {len(field_set.fields)} fields" if field_set else ""
    return FileResult(document.file, "field set", problems, summary)


def _check_workflow(
    document: Document,
    path: Path,
    context: CheckContext,
    seen: dict[str, CheckedWorkflow],
) -> FileResult:
    checked, problems = check_workflow(document, context, expected_id=path.stem)
    if checked is None:
        return FileResult(document.file, "workflow", problems)
    clash = register(seen, checked)
    if clash is not None:
        return FileResult(document.file, "workflow", [*problems, clash])
    workflow = checked.workflow
    summary = (
        f"workflow {workflow.id}, {len(workflow.fields)} fields, "
        f"{len(workflow.lifecycle.states)} states, {len(workflow.notifications)} notification rules"
    )
    if checked.definition.get("tests"):
        failed, passed = scenario_test_problems(document, checked)
        problems = [*problems, *failed]
        summary += f", {passed}"
    return FileResult(document.file, "workflow", problems, summary)


def scenario_test_problems(
    document: Document, checked: CheckedWorkflow
) -> tuple[list[Problem], str]:
    """Run a clean workflow's ``tests``: a problem at the line of each failing case
    (``test 'NAME': expected ..., got ...``), and the summary (``3 tests passed``)."""
    results = run_cases(checked.workflow, checked.definition["tests"])
    problems: list[Problem] = []
    for result in results:
        line, _column = document.locate(("tests", result.index))
        problems.extend(Problem(document.file, line, None, text) for text in result.messages())
    return problems, scenario_summary(results)


def _check_calendars(
    document: Document, settings: Settings, named: dict[str, tuple[str, ...]]
) -> FileResult:
    """Calendar data, checked against the instance's workflows and those named alongside it."""
    workflows, _ = check_instance_workflows(settings)
    known = {wid: item.workflow.staff.tags for wid, item in workflows.items()} | named
    # A broken workflow file is reported when its folder is checked; here only its id matters.
    for path in workflow_files(settings.workflows_dir):
        known.setdefault(path.stem, ())
    specs, found = check_calendar_data(document, known, settings.default_locale)
    summary = ", ".join(
        f"{c.slug}: {len(c.staff)} staff, {len(c.services)} services" for c in specs
    )
    return FileResult(document.file, "calendar data", found, f"calendar data; {summary}")
