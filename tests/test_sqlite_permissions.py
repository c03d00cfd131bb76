"""The SQLite database file Bookwise creates is its owner's alone (0600, and its -wal and -shm
files), whatever the umask; a file set up looser by the administrator is left alone, with a
warning at start."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.config import load_settings
from bookwise.database import open_database
from tests.conftest import base_config, write_config


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o000])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process's umask set to a permissive value for the test (restored after)."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _settings(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'data' / 'bookwise.db'}"
    return load_settings(write_config(tmp_path / "config.yaml", base_config(tmp_path, url)), {})


def test_the_database_file_and_its_companions_are_private(tmp_path: Path, umask: int) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "data" / "bookwise.db"
    database = open_database(settings)
    try:
        with database.engine.begin() as connection:  # a write: the -wal and -shm files appear
            connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            connection.execute(sa.text("INSERT INTO t VALUES (1)"))
        companions = [Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(p.exists() for p in companions)
        assert {p.name: _mode(p) for p in [path, *companions]} == {
            p.name: 0o600 for p in [path, *companions]
        }
    finally:
        database.engine.dispose()


def test_bookwise_init_creates_a_private_database(
    tmp_path: Path, umask: int, bookwise_cli: Any
) -> None:
    settings = _settings(tmp_path)
    result = bookwise_cli("--config", settings.source, "init")
    assert result.exit_code == 0, result.stderr
    assert _mode(tmp_path / "data" / "bookwise.db") == 0o600


def test_a_looser_file_of_the_administrator_is_kept_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "data" / "bookwise.db"
    path.parent.mkdir()
    path.touch()
    path.chmod(0o640)

    with caplog.at_level(logging.WARNING, logger="bookwise.database"):
        database = open_database(settings)
    database.engine.dispose()

    assert _mode(path) == 0o640
    assert any(
        "can be read by others" in r.getMessage() and "chmod 600" in r.getMessage()
        for r in caplog.records
    )


def test_a_private_file_gives_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = _settings(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bookwise.database"):
        open_database(settings).engine.dispose()
    assert not [r for r in caplog.records if "can be read by others" in r.getMessage()]
