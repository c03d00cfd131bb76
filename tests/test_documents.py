from pathlib import Path

import pytest

from bookwise.documents import Document, DocumentError, parse_document, read_document


def test_positions_of_keys_values_and_items() -> None:
    doc = parse_document("a: 1\nb:\n  c: [x, y]\n  d:\n    - e: 2\n", "f.yaml")
    assert doc.data == {"a": 1, "b": {"c": ["x", "y"], "d": [{"e": 2}]}}
    assert doc.locate(("a",)) == (1, 4)
    assert doc.locate(("a",), at_key=True) == (1, 1)
    assert doc.locate(("b", "c", 1)) == (3, 10)
    assert doc.locate(("b", "d", 0, "e")) == (5, 10)
    # A path that does not exist falls back to its nearest parent.
    assert doc.locate(("b", "d", 0, "missing")) == (5, 7)


def test_yaml_1_2_keeps_on_and_no_as_text() -> None:
    doc = parse_document("on: reminder\nno: nb\nyes: 1\n", "f.yaml")
    assert doc.data == {"on": "reminder", "no": "nb", "yes": 1}


def test_timestamps_stay_as_written() -> None:
    doc = parse_document("a: 2026-12-24\nb: 2026-12-24T09:00+01:00\n", "f.yaml")
    assert doc.data == {"a": "2026-12-24", "b": "2026-12-24T09:00+01:00"}


def test_plain_types_only() -> None:
    doc = parse_document("i: 3\nf: 1.5\nt: true\nn: null\ns: |\n  text\n", "f.yaml")
    assert type(doc.data["i"]) is int
    assert type(doc.data["f"]) is float
    assert type(doc.data["t"]) is bool
    assert doc.data["n"] is None
    assert type(doc.data["s"]) is str


def test_document_problem_prefixes_the_key_path() -> None:
    doc = parse_document("fields:\n  - id: x\n", "w.yaml")
    problem = doc.problem(("fields", 0, "id"), "bad id")
    assert str(problem) == "w.yaml:2:9: fields[0].id: bad id"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a: [1, 2\nb: 3\n", 2, "expected ',' or ']'"),
        ("a: 1\na: 2\n", 2, 'duplicate key "a"; each key may appear once'),
        ("a: 'open\n", 2, "invalid YAML"),
        ("\ta: 1\n", 1, "invalid YAML"),
    ],
)
def test_malformed_yaml_names_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(text, "broken.yaml")
    problem = caught.value.problem
    assert problem.file == "broken.yaml"
    assert problem.line == line
    assert fragment in problem.message


def test_alias_bombs_are_refused_quickly() -> None:
    import time

    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for name, previous in zip("bcdefg", "abcdef", strict=False):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    started = time.monotonic()
    with pytest.raises(DocumentError, match="more than 100000 values"):
        parse_document("\n".join(levels) + "\n", "bomb.yaml")
    assert time.monotonic() - started < 10  # generous: the point is "not minutes"


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_numbers_that_are_not_numbers(value: str) -> None:
    with pytest.raises(DocumentError, match="is not a usable number") as caught:
        parse_document(f"fields:\n  - min: {value}\n", "n.yaml")
    assert (caught.value.problem.line, caught.value.problem.column) == (2, 10)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="file not found"):
        read_document(tmp_path / "missing.yaml")
    with pytest.raises(DocumentError, match="is a directory"):
        read_document(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(DocumentError, match="not UTF-8"):
        read_document(latin)


def test_empty_document_is_located_at_its_first_line() -> None:
    doc = Document(file="e.yaml", data=None, text="# only a comment\n\nx\n")
    assert doc.locate(()) == (3, 1)
