"""Where message templates come from: the shipped defaults and the instance's own folder.

A template is a folder named after it holding one ``<locale>.yaml`` file per language; each file
maps an audience (``client``, ``staff``) to channels (``email``, ``sms``, ...) and their parts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SHIPPED_TEMPLATES = Path(__file__).parent / "templates"


def template_names(folders: Iterable[Path]) -> frozenset[str]:
    """Names of the templates found in ``folders`` (a folder with at least one ``.yaml`` file)."""
    names: set[str] = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.is_dir() and any(entry.glob("*.yaml")):
                names.add(entry.name)
    return frozenset(names)
