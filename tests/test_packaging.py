"""The package is the product: a wheel (built from the source tree or from the sdist) installed
outside the repository serves Bookwise in every language, with ``from bookwise import create_app``.

Built offline, with this environment's setuptools and Babel (``--no-build-isolation``), from a
copy of the working tree, so that a build leaves nothing in the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, base_config, write_config

pytestmark = pytest.mark.slow

LANGUAGES = ["de", "en", "es", "fr"]
COPY_IGNORES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "instance",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "test-results",
    "*.mo",
)


@dataclass
class Built:
    wheel: Path
    output: str


def _pip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _build_wheel(source: Path, into: Path) -> Built:
    # -v: pip passes on what the build backend says, its warnings among it.
    result = _pip(
        "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", str(into), str(source), cwd=into
    )
    (wheel,) = into.glob("bookwise-*.whl")
    return Built(wheel, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as a checkout has it: no virtualenv, no build, no compiled catalog."""
    tree = tmp_path_factory.mktemp("source") / "bookwise"
    shutil.copytree(ROOT, tree, ignore=COPY_IGNORES)
    return tree


@pytest.fixture(scope="module")
def built(source_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _build_wheel(source_tree, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    _pip("install", "--quiet", "--no-deps", "--target", str(target), str(built.wheel), cwd=target)
    return target


def _compiled_catalogs(names: list[str]) -> list[str]:
    return sorted(n for n in names if n.startswith("bookwise/locale/") and n.endswith(".mo"))


EXPECTED = [f"bookwise/locale/{lang}/LC_MESSAGES/messages.mo" for lang in LANGUAGES]


def test_building_says_no_deprecation(built: Built) -> None:
    assert "running build_py" in built.output  # the backend's output is there to be read
    warnings = [
        line for line in built.output.splitlines() if "Deprecat" in line or "deprecat" in line
    ]
    assert warnings == [], "\n".join(warnings)


def test_the_wheel_carries_the_compiled_catalogs(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = wheel.namelist()
        metadata = wheel.read("bookwise-0.1.0.dist-info/METADATA").decode()
    assert _compiled_catalogs(names) == EXPECTED
    assert not [n for n in names if n.endswith(".po")]
    assert "License-Expression: AGPL-3.0-or-later" in metadata


def test_a_wheel_built_from_the_sdist_compiles_the_catalogs_too(
    source_tree: Path, tmp_path: Path
) -> None:
    sdist_dir = tmp_path / "sdist"
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(sdist_dir)!r}))"
    subprocess.run(
        [sys.executable, "-c", code], cwd=source_tree, check=True, capture_output=True, text=True
    )
    (sdist,) = sdist_dir.glob("bookwise-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = [m.split("/", 1)[1] for m in archive.getnames() if "/" in m]
    assert {f"locale/{lang}/LC_MESSAGES/messages.po" for lang in LANGUAGES} <= set(members)
    assert not [m for m in members if m.endswith(".mo")]
    wheel_dir = tmp_path / "wheel"
    wheel_dir.mkdir()
    built = _build_wheel(sdist, wheel_dir)
    with zipfile.ZipFile(built.wheel) as wheel:
        assert _compiled_catalogs(wheel.namelist()) == EXPECTED


INSTALLED_CHECK = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import bookwise
    from bookwise import create_app, instance
    from bookwise.database import open_database, prepare_schema
    from bookwise.config import load_settings

    settings = load_settings(sys.argv[1], environ={})
    database = open_database(settings)
    prepare_schema(database)
    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, settings.demo_data)
    database.engine.dispose()
    app = create_app(settings)
    package = Path(bookwise.__file__).parent
    print(json.dumps({
        "file": bookwise.__file__,
        "catalogs": sorted(str(p.relative_to(package)) for p in package.rglob("*.mo")),
        # A client each: the first remembers ?lang=fr in a cookie.
        "fr": app.test_client().get("/?lang=fr").get_data(as_text=True),
        "de": app.test_client().get("/", headers={"Accept-Language": "de"}).get_data(as_text=True),
        "es": app.test_client().get("/", headers={"Accept-Language": "es-ES,es;q=0.9"}).get_data(
            as_text=True
        ),
    }))
    """
)


def test_the_installed_package_serves_every_language(installed: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", base_config(tmp_path, "sqlite:///bw.db"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("BOOKWISE_")
    }
    result = subprocess.run(
        [sys.executable, "-c", INSTALLED_CHECK, str(config)],
        cwd=elsewhere,  # outside the repository: nothing found there by accident
        env={**environment, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert Path(found["file"]).is_relative_to(installed)
    assert found["catalogs"] == [f"locale/{lang}/LC_MESSAGES/messages.mo" for lang in LANGUAGES]
    assert "Prendre rendez-vous" in found["fr"]
    assert "Termin buchen" in found["de"]
    assert "Reservar una cita" in found["es"]
