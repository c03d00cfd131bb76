"""Every text of the pages, messages and answers checks is in every catalog, translated.

The messages are extracted from the source exactly as ``make i18n-extract`` does (babel.cfg),
so a string added to a template or a view and not translated fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ["en", "fr", "de", "es"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _source_messages() -> set[str | tuple[str, ...]]:
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    keywords = dict(DEFAULT_KEYWORDS, lazy_gettext=None, N_=None)
    found: set[str | tuple[str, ...]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


SOURCE = _source_messages()


def test_the_source_has_messages() -> None:
    assert "Book an appointment" in SOURCE
    assert "Your consent is needed to book." in SOURCE  # from the answers checks (N_)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(locale: str) -> None:
    with (ROOT / "locale" / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    translated = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else tuple(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        if message.fuzzy or not all(strings):
            continue
        translated[key] = strings
    missing = [m for m in SOURCE if m not in translated]
    assert missing == [], f"{locale}: not translated: {missing[:10]}"
    for key, strings in translated.items():
        wanted = set(PLACEHOLDER.findall(key if isinstance(key, str) else key[-1]))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) <= wanted | {"num"}, (locale, key, string)
            assert wanted - {"num"} <= set(PLACEHOLDER.findall(string)), (locale, key, string)
