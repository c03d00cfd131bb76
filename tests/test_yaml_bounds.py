"""YAML a person writes is held to limits before it is built into a tree (issue 15, finding 5).

3,000 chained merge keys (47 KB) cost the YAML editor's preview 44 s of CPU; a file nested
10,000 deep answered a 500 (RecursionError) after 13 s. Each bomb here is refused with the file
and the line and what to do, quickly (the timeout is the bound): by the readers of workflow files,
calendar data files and message template files, and by the back office's YAML editor and import
over HTTP. Tags that some YAML loaders turn into running code are refused the same way, and
nothing runs. A workflow with a few anchors and merge keys still loads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bookwise.config import Settings
from bookwise.database import Database
from bookwise.documents import (
    MAX_VALUES,
    MAX_YAML_ALIASES,
    MAX_YAML_CHARACTERS,
    MAX_YAML_DEPTH,
    MAX_YAML_MERGE_KEYS,
    DocumentError,
    parse_document,
    read_document,
)
from bookwise.errors import ProblemsError
from bookwise.instance import load_calendar_files
from bookwise.notifications.rendering import read_template_file
from bookwise.notifications.templates import SHIPPED_TEMPLATES, template_names
from bookwise.workflows.editing import check_text, load_map
from bookwise.workflows.loader import CheckContext, read_field_sets
from bookwise.workflows.models import WorkflowVersion
from tests.admin.conftest import World, db, post, world  # noqa: F401 (the fixture)

ROOT = Path(__file__).resolve().parent.parent


def merge_chain(links: int = 3000) -> str:
    """``kN: {<<: *kN-1}``, each mapping merging the one before (the attack's 47 KB file)."""
    lines = ["b: &b {x: 1}"]
    lines += [f"k{i}: &k{i} {{<<: *{'b' if i == 0 else f'k{i - 1}'}}}" for i in range(links)]
    return "\n".join(lines) + "\n"


def merges_of_one(keys: int = 3000) -> str:
    """``kN: {<<: *b}`` 3,000 times (the attack's file as reported: 47 KB)."""
    return "b: &b {x: 1}\n" + "".join(f"k{i}: {{<<: *b}}\n" for i in range(keys))


def deep_flow(levels: int = 10_000) -> str:
    return "x: " + "[" * levels + "]" * levels + "\n"


def deep_block(levels: int) -> str:
    """``a:\\n a:\\n  a:`` (one space per level, the most compact block nesting)."""
    return "".join(" " * i + "a:\n" for i in range(levels)) + " " * levels + "end\n"


def deep_dashes(levels: int = 10_000) -> str:
    return "- " * levels + "x\n"


def billion_laughs() -> str:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 10):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def many_aliases() -> str:
    return "a: &a x\nlist: [" + ", ".join(["*a"] * (MAX_YAML_ALIASES + 1)) + "]\n"


def python_tag(marker: Path) -> str:
    return f"id: x\nname: !!python/object/apply:os.system ['touch {marker}']\n"


def python_name() -> str:
    return "id: x\nname: !!python/name:os.system\n"


def python_new(marker: Path) -> str:
    return f"id: x\nname: !!python/object/new:subprocess.call [[touch, '{marker}']]\n"


# (what it is, the text, the line named, words of the refusal)
BOMBS: list[tuple[str, Callable[[Path], str], int, str]] = [
    (
        "merge-key chain",
        lambda _: merge_chain(),
        MAX_YAML_MERGE_KEYS + 2,
        f"more than {MAX_YAML_MERGE_KEYS} merge keys",
    ),
    (
        "3,000 merges of one mapping",
        lambda _: merges_of_one(),
        MAX_YAML_MERGE_KEYS + 2,
        f"more than {MAX_YAML_MERGE_KEYS} merge keys",
    ),
    ("10,000 deep [[[...]]]", lambda _: deep_flow(), 1, f"more than {MAX_YAML_DEPTH} levels"),
    ("10,000 deep - - -", lambda _: deep_dashes(), 1, f"more than {MAX_YAML_DEPTH} levels"),
    (
        "1,000 deep a: a: a:",
        lambda _: deep_block(1_000),
        MAX_YAML_DEPTH + 1,
        f"more than {MAX_YAML_DEPTH} levels",
    ),
    (
        "10,000 deep a: a: a:",  # 50 MB of indentation: refused for its length first
        lambda _: deep_block(10_000),
        0,
        f"longer than {MAX_YAML_CHARACTERS} characters",
    ),
    ("billion laughs", lambda _: billion_laughs(), 6, f"more than {MAX_VALUES} values"),
    ("many aliases", lambda _: many_aliases(), 2, f"more than {MAX_YAML_ALIASES} aliases"),
    (
        "!!python/object/apply",
        python_tag,
        2,
        "the tag !!python/object/apply:os.system is not allowed",
    ),
    ("!!python/name", lambda _: python_name(), 2, "the tag !!python/name:os.system is not allowed"),
    (
        "!!python/object/new",
        python_new,
        2,
        "the tag !!python/object/new:subprocess.call is not allowed",
    ),
]
IDS = [label for label, _, _, _ in BOMBS]


def assert_refused(problem: object, file: str, line: int, words: str) -> None:
    text = str(problem)
    assert text.startswith(f"{file}:"), text
    if line:
        assert text.startswith(f"{file}:{line}:"), text
    assert words in text, text


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("label", "make", "line", "words"), BOMBS, ids=IDS)
def test_every_reader_refuses_a_yaml_bomb_before_building_it(
    tmp_path: Path, label: str, make: Callable[[Path], str], line: int, words: str
) -> None:
    marker = tmp_path / "ran"
    text = make(marker)
    with pytest.raises(DocumentError) as parsed:
        parse_document(text, "w.yaml")
    assert_refused(parsed.value.problem, "w.yaml", line, words)
    # The structured workflow editor reads the stored YAML with its own round-trip loader.
    with pytest.raises(DocumentError) as mapped:
        load_map(text)
    assert_refused(mapped.value.problem, "workflow.yaml", line, words)
    # A file: a workflow or calendar data file (read_document), a message template file.
    path = tmp_path / "bomb.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DocumentError) as read:
        read_document(path, "workflows/bomb.yaml")
    assert_refused(read.value.problem, "workflows/bomb.yaml", line, words)
    with pytest.raises(DocumentError) as template:
        read_template_file(path)
    assert_refused(template.value.problem, str(path), line, words)
    assert not marker.exists()


@pytest.fixture(scope="module")
def context() -> CheckContext:
    field_sets, problems = read_field_sets(ROOT / "forms")
    assert problems == []
    return CheckContext(
        field_sets=field_sets,
        known_templates=template_names([SHIPPED_TEMPLATES]),
        known_channels=frozenset({"email", "sms", "webhook", "log"}),
        locales=("en", "fr", "de", "es"),
    )


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("label", "make", "line", "words"), BOMBS, ids=IDS)
def test_checking_a_workflow_refuses_a_yaml_bomb(
    tmp_path: Path,
    context: CheckContext,
    label: str,
    make: Callable[[Path], str],
    line: int,
    words: str,
) -> None:
    checked, problems = check_text(make(tmp_path / "ran"), "tutoring.yaml", context)
    assert checked is None
    (problem,) = problems
    assert_refused(problem, "tutoring.yaml", line, words)
    assert not (tmp_path / "ran").exists()


@pytest.mark.timeout(30)  # the database is migrated and the workflows stored first
@pytest.mark.parametrize(
    ("label", "make", "line", "words"),
    [bomb for bomb in BOMBS if bomb[0] in ("merge-key chain", "!!python/object/apply")],
    ids=["merge-key chain", "!!python/object/apply"],
)
def test_loading_a_calendar_data_file_refuses_a_yaml_bomb(
    settings: Settings,
    database: Database,
    tmp_path: Path,
    label: str,
    make: Callable[[Path], str],
    line: int,
    words: str,
) -> None:
    path = tmp_path / "calendars.yaml"
    path.write_text(make(tmp_path / "ran"), encoding="utf-8")
    with pytest.raises(ProblemsError) as refused:
        load_calendar_files(settings, database, [path])
    (problem,) = refused.value.problems
    assert problem.line == line and words in problem.message
    assert not (tmp_path / "ran").exists()


ANCHORED = """\
id: tutoring
name: &name {en: Tutoring session, fr: Séance de soutien scolaire}
description: *name
duration: 1h
booking_window: &window {min_notice: 12h, max_ahead: 21d}
cancellation: {allowed: true, min_notice: 12h}
staff: {tags: [tutor], client_chooses: true}
fields:
  - include: contact
notifications:
  - &rule {on: confirmed, to: [client, staff], channel: email}
  - {<<: *rule, on: rescheduled}
  - {<<: *rule, on: cancelled}
  - <<: *rule
    on: reminder
    before: 24h
    to: client
"""


def test_a_workflow_with_a_few_anchors_and_merge_keys_still_loads(context: CheckContext) -> None:
    checked, problems = check_text(ANCHORED, "tutoring.yaml", context)
    assert [str(p) for p in problems if p.severity == "error"] == []
    assert checked is not None
    workflow = checked.workflow
    assert workflow.description == workflow.name
    data = parse_document(ANCHORED, "tutoring.yaml").data
    assert data["notifications"][1] == {
        "on": "rescheduled",
        "to": ["client", "staff"],
        "channel": "email",
    }
    assert data["notifications"][3] == {
        "on": "reminder",
        "to": "client",
        "channel": "email",
        "before": "24h",
    }
    assert dict(load_map(ANCHORED))["id"] == "tutoring"


def test_every_shipped_yaml_file_is_within_the_limits() -> None:
    shipped = [
        *ROOT.glob("workflows/*.yaml"),
        *ROOT.glob("forms/*.yaml"),
        *ROOT.glob("demo/*.yaml"),
        *SHIPPED_TEMPLATES.glob("*/*.yaml"),
        ROOT / "config.yaml",
    ]
    assert len(shipped) > 40
    for path in shipped:
        read_document(path)


# --- the back office's YAML editor and import, over HTTP --------------------------------------

EDITOR = "/admin/workflows/review/yaml"
# Sent as a browser sends a long form (URL-encoding would triple the brackets and colons past
# the 64 KiB the application accepts in a body).
MULTIPART = "multipart/form-data"


def _problems(page: str) -> str:
    return re.sub(r"\s+", " ", page)


@pytest.mark.timeout(60)  # signing in hashes a password; each request is bounded by the limits
def test_the_yaml_editor_and_import_refuse_a_bomb_beside_the_yaml(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    client = world.login("admin")
    marker = tmp_path / "ran"
    bombs = [
        (merges_of_one(), f"more than {MAX_YAML_MERGE_KEYS} merge keys"),
        (merge_chain(1500), f"more than {MAX_YAML_MERGE_KEYS} merge keys"),
        (deep_flow(), f"more than {MAX_YAML_DEPTH} levels"),
        (deep_block(300), f"more than {MAX_YAML_DEPTH} levels"),
        (billion_laughs(), f"more than {MAX_VALUES} values"),
        (python_tag(marker), "the tag !!python/object/apply:os.system is not allowed"),
        (python_name(), "the tag !!python/name:os.system is not allowed"),
    ]
    for text, words in bombs:
        for op in ("preview", "save"):
            response = post(client, EDITOR, {"text": text, "op": op}, content_type=MULTIPART)
            assert response.status_code == 422, (words, op)
            page = _problems(response.get_data(as_text=True))
            assert words in page and 'data-line="' in page, (words, op)
        imported = post(client, "/admin/workflows/import", {"text": text}, content_type=MULTIPART)
        assert imported.status_code == 422, words
        assert words in _problems(imported.get_data(as_text=True))
    assert not marker.exists()
    with db(world) as session:
        assert session.scalar(select(func.count()).select_from(WorkflowVersion)) == 5


def test_brackets_in_text_are_not_nesting() -> None:
    many = "[" * 100 + "{" * 100
    text = f"a: \"{many}\"\nb: '{many}'\nc: word {many}\nd: [x]  # {many}\n"
    assert parse_document(text, "w.yaml").data == {
        "a": many,
        "b": many,
        "c": f"word {many}",
        "d": ["x"],
    }


def test_a_stored_version_beyond_the_limits_opens_in_the_yaml_editor(
    world: World,  # noqa: F811
) -> None:
    """A version saved before the limits existed cannot be read into the form: the form sends
    to the YAML editor, which shows the text, instead of failing."""
    from bookwise.workflows.models import WorkflowRecord

    with db(world) as session:
        record = session.scalars(
            select(WorkflowRecord).where(WorkflowRecord.slug == "review")
        ).one()
        version = session.scalars(
            select(WorkflowVersion)
            .where(WorkflowVersion.workflow_id == record.id)
            .order_by(WorkflowVersion.number.desc())
        ).first()
        assert version is not None
        version.source_text += merges_of_one(200)
        session.commit()
    client = world.login("admin")
    opened = client.get("/admin/workflows/review/edit")
    saved = post(client, "/admin/workflows/review/edit", {"op": "save"})
    for answer in (opened, saved):
        assert answer.status_code == 302, answer.status_code
        assert answer.location.endswith(EDITOR)
    page = client.get(EDITOR)
    assert page.status_code == 200
    assert "k199: {&lt;&lt;: *b}" in page.get_data(as_text=True)
