"""Text a person typed, checked for characters that must not be kept. Pure: no Flask, no database.

A lone surrogate (``"\\udfff"`` in JSON) cannot be encoded in UTF-8: PostgreSQL refuses it and
every page, export and message that reads it back fails. Control characters break e-mail headers
(a line break in a name) and calendar files, and the text direction controls make a name read
differently from what it is. Names refuse all of them; free text may keep its line breaks and
tabs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

from bookwise.errors import N_, Message

UNSTORABLE = N_("This text contains a character that cannot be stored; type it again without it.")
CONTROL = N_("This text contains an invisible control character; remove it.")

# The bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they
# reorder what is shown after them ("Trojan Source").
_DIRECTION_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
# The line and paragraph separators: line breaks to str.splitlines and to e-mail headers.
_LINE_SEPARATORS = frozenset("\u2028\u2029")
_MULTILINE_ALLOWED = frozenset("\t\n\r")


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate: no UTF-8 encoding, so no database, can keep it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unstorable_text(text: str, *, multiline: bool = False) -> Message | None:
    """What is wrong with ``text`` as a name (or, ``multiline``, as free text), or ``None``.

    Refused: lone surrogates (never storable); control characters (category Cc) except, in
    ``multiline`` text, tab and line breaks; in names also the text direction controls and the
    line and paragraph separators.
    """
    control = False
    for char in text:
        category = unicodedata.category(char)
        if category == "Cs":
            return Message(UNSTORABLE)
        if category == "Cc":
            control = control or not (multiline and char in _MULTILINE_ALLOWED)
        elif not multiline and (char in _DIRECTION_CONTROLS or char in _LINE_SEPARATORS):
            control = True
    return Message(CONTROL) if control else None


def slugify(text: str) -> str:
    """``"Cléo Martin"`` -> ``"cleo-martin"``: an identifier for a name (may be empty)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:60]


def identifier_for(label: str, taken: Collection[str], *, prefix: str = "question") -> str:
    """An identifier made from a label, as field ids are written (``"Area of law"`` ->
    ``area_of_law``): lower-case letters, digits and ``_``, starting with a letter, at most 40
    characters, and none of ``taken`` (``_2``, ``_3``... added). A label without a letter
    to keep (Arabic, emoji) gives ``prefix``."""
    base = slugify(label).replace("-", "_")[:40].strip("_")
    if not base or not base[0].isalpha():
        base = f"{prefix}_{base}".strip("_")[:40] if base else prefix
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        suffix = f"_{number}"
        candidate = base[: 40 - len(suffix)] + suffix
    return candidate
