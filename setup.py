"""The build step that pyproject.toml cannot say: compile the translations into the package.

The repository keeps only the catalogs' sources (``locale/<lang>/LC_MESSAGES/messages.po``);
``build_py`` compiles each into ``bookwise/locale/<lang>/LC_MESSAGES/messages.mo`` with Babel, so
that a wheel, a wheel built from the sdist and an editable install all carry them. An editable
install runs ``build_py`` with ``editable_mode`` set: the catalogs are then compiled in place, in
the source tree, where the editable package is imported from.
"""

from __future__ import annotations

import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "locale"
PACKAGE_LOCALE = Path("bookwise", "locale")
CATALOG = Path("LC_MESSAGES", "messages")


def catalog_sources() -> list[Path]:
    """Every ``locale/<lang>/LC_MESSAGES/messages.po``, by language."""
    found = sorted(SOURCES.glob(f"*/{CATALOG}.po"))
    if not found:
        # A package without them would serve every page in English, silently.
        raise SystemExit(f"no translations in {SOURCES}: locale/*/LC_MESSAGES/messages.po")
    return found


def _compiled_name(source: Path) -> Path:
    """``fr/LC_MESSAGES/messages.mo`` for ``locale/fr/LC_MESSAGES/messages.po``."""
    return source.relative_to(SOURCES).with_suffix(".mo")


def compile_catalogs(target: Path) -> list[str]:
    """Compile every catalog under ``target`` (a ``locale`` folder); fuzzy entries are left out,
    as ``pybabel compile`` does. Returns the files written."""
    written = []
    for source in catalog_sources():
        with source.open("rb") as handle:
            catalog = read_po(handle, locale=source.parent.parent.name, domain="messages")
        output = target / _compiled_name(source)
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        written.append(str(output))
    return written


class BuildWithCatalogs(build_py):
    """``build_py``, then the compiled catalogs beside the modules."""

    def run(self) -> None:
        super().run()
        for path in compile_catalogs(self.catalogs_folder()):
            self.announce(f"compiled {path}", level=logging.INFO)

    def catalogs_folder(self) -> Path:
        if self.editable_mode:
            return HERE / PACKAGE_LOCALE
        return Path(self.build_lib, PACKAGE_LOCALE)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        # In editable mode too, outputs are named as in build_lib (see get_output_mapping).
        built = Path(self.build_lib, PACKAGE_LOCALE)
        compiled = [str(built / _compiled_name(source)) for source in catalog_sources()]
        return [*super().get_outputs(include_bytecode), *compiled]

    def get_output_mapping(self) -> dict[str, str]:
        """For an editable install: each catalog as built is the one compiled in place."""
        mapping: dict[str, str] = super().get_output_mapping()
        if self.editable_mode:
            for source in catalog_sources():
                built = Path(self.build_lib, PACKAGE_LOCALE, _compiled_name(source))
                mapping[str(built)] = str(HERE / PACKAGE_LOCALE / _compiled_name(source))
        return mapping


setup(cmdclass={"build_py": BuildWithCatalogs})
