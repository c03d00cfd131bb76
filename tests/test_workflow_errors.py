"""Broken workflow files: each gives the message its header promises, at the right place.

Each file in ``tests/data/broken-workflows`` starts with ``# expect: LINE:COLUMN: TEXT`` lines:
the check must report a problem at that line and column whose message contains TEXT.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bookwise.errors import errors_only
from bookwise.notifications.templates import SHIPPED_TEMPLATES, template_names
from bookwise.workflows.loader import CheckContext, check_workflow_file, read_field_sets

ROOT = Path(__file__).resolve().parent.parent
BROKEN = sorted((Path(__file__).parent / "data" / "broken-workflows").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+): (.+)$")


def expectations(path: Path) -> list[tuple[int, int, str]]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = EXPECT.match(line)
        if match:
            found.append((int(match[1]), int(match[2]), match[3]))
    return found


@pytest.fixture(scope="module")
def context() -> CheckContext:
    field_sets, problems = read_field_sets(ROOT / "forms")
    assert not problems
    return CheckContext(
        field_sets=field_sets,
        known_templates=template_names([SHIPPED_TEMPLATES]),
        known_channels=frozenset({"email", "sms", "webhook", "log"}),
        locales=("en", "fr", "de", "es"),
    )


def test_there_are_enough_broken_files() -> None:
    assert len(BROKEN) >= 25


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_workflow_reports_its_problem(path: Path, context: CheckContext) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect:' line"
    checked, problems = check_workflow_file(path, context)
    assert checked is None, "a broken file must not produce a workflow"
    errors = errors_only(problems)
    assert errors
    for line, column, text in expected:
        matching = [p for p in errors if text in p.message]
        assert matching, f"no problem says {text!r}; got: {[str(p) for p in errors]}"
        assert any((p.line, p.column) == (line, column) for p in matching), (
            f"{text!r} reported at {[(p.line, p.column) for p in matching]}, expected "
            f"{line}:{column}"
        )
        for problem in matching:
            assert problem.file.endswith(path.name)
            assert str(problem).startswith(f"{problem.file}:{problem.line}:{problem.column}: ")
