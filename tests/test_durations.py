from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookwise.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45m", timedelta(minutes=45)),
        ("24h", timedelta(hours=24)),
        ("30d", timedelta(days=30)),
        ("1h30m", timedelta(minutes=90)),
        ("1d2h3m", timedelta(days=1, hours=2, minutes=3)),
        ("0m", timedelta(0)),
        (" 15m ", timedelta(minutes=15)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "45", "45 min", "1m30h", "h", "-5m", "1.5h", "30s", "m30"])
def test_parse_duration_rejects_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="write it like 45m, 24h, 30d or 1h30m"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=400 * 24 * 60))
def test_format_then_parse_is_identity(minutes: int) -> None:
    value = timedelta(minutes=minutes)
    assert parse_duration(format_duration(value)) == value


def test_format_duration_is_short() -> None:
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(days=1)) == "1d"
    assert format_duration(timedelta(0)) == "0m"


def test_the_schema_spells_durations_as_the_parser_does() -> None:
    from bookwise.documents import load_schema

    schema = load_schema("bookwise.workflows", "workflow.schema.json")
    from bookwise.durations import DURATION_PATTERN

    assert schema["$defs"]["duration"]["pattern"] == DURATION_PATTERN


def test_absurd_durations_are_refused_not_crashed() -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration("99999999999999999999d")
