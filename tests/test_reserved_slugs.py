"""A calendar's address is the first segment of its page's path: it must never be one of the
application's own (issue 15, finding 9: `admin`, `login`, `api` or `plugins` as a calendar's
address shadowed those pages)."""

from __future__ import annotations

from typing import Any

import pytest

from bookwise.calendars.data import RESERVED_SLUGS


def first_segments(app: Any) -> set[str]:
    segments = set()
    for rule in app.url_map.iter_rules():
        first = rule.rule.strip("/").split("/", 1)[0]
        if first and not first.startswith("<"):
            segments.add(first)
    return segments


def test_every_address_the_application_uses_is_reserved(app: Any) -> None:
    """Derived from the route map, so that a new blueprint cannot be shadowed by a calendar."""
    assert first_segments(app) <= RESERVED_SLUGS, first_segments(app) - RESERVED_SLUGS


@pytest.mark.parametrize("slug", ["admin", "login", "api", "plugins", "feeds", "manage"])
def test_the_calendar_settings_refuse_a_reserved_address(app: Any, slug: str) -> None:
    from bookwise.calendars.editing import CalendarSettings, check_settings
    from bookwise.errors import InvalidInput

    values = CalendarSettings(
        name="Acme",
        slug=slug,
        timezone="Europe/Paris",
        default_locale="en",
        description={},
        address="",
        phone="",
        reply_to="",
        published=True,
        search_indexing=True,
        sign_in_required=False,
        show_business_timezone=False,
        embed_origins=(),
        plugins=None,
    )
    database = app.extensions["bookwise"].database
    with database.sessions() as session, pytest.raises(InvalidInput) as refused:
        check_settings(session, values, ("en",), None, ())
    assert "slug" in refused.value.problems
    assert "Bookwise" in refused.value.problems["slug"].text


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("name: Acme Advice", 'name: "Acme\\r\\nBcc: x@evil.example"'),
        ("name: Ana,", 'name: "An\\u202Ea",'),
    ],
)
def test_a_data_file_refuses_control_characters_in_names(
    tmp_path: Any, line: str, fragment: str
) -> None:
    """The same names as the back office's, from `bookwise load` (finding 10)."""
    from bookwise.calendars.data import check_calendar_data
    from bookwise.documents import read_document
    from tests.conftest import SCENARIO

    text = (SCENARIO / "calendars.yaml").read_text(encoding="utf-8").replace(line, fragment, 1)
    assert fragment in text
    path = tmp_path / "calendars.yaml"
    path.write_text(text, encoding="utf-8")
    specs, problems = check_calendar_data(read_document(path))
    assert specs == []
    assert any("control character" in str(p) for p in problems), problems
