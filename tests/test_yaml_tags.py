"""YAML tags that would run code (``!!python/object/apply:os.system`` and its kin) are refused
wherever Bookwise reads YAML a person wrote: a workflow file, a calendar data file
(``bookwise load``), config.yaml, and the back office's workflow editor and import. The refusal
names the file and line in words; nothing runs (each payload would create a marker file).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bookwise.accounts.services import create_user
from bookwise.calendars.models import Calendar
from bookwise.config import ConfigError, load_settings
from bookwise.db import unit_of_work
from bookwise.workflows.models import WorkflowVersion
from tests.admin.conftest import PASSWORD, post, token
from tests.conftest import base_config, write_config

# Each one, in a loader that builds Python objects from tags, would create the marker file.
PAYLOADS = {
    "apply": '!!python/object/apply:os.system ["touch {marker}"]',
    "apply-subprocess": '!!python/object/apply:subprocess.check_call [["touch", "{marker}"]]',
    "new": '!!python/object/new:os.system ["touch {marker}"]',
    "name": "!!python/name:os.system",
    "local-tag": '!python/object/apply:os.system ["touch {marker}"]',
    "verbatim": '!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {marker}"]',
}


@pytest.fixture(params=sorted(PAYLOADS))
def payload(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """(a YAML value that would run ``touch MARKER``, the marker)."""
    marker = tmp_path / "the-code-ran"
    return PAYLOADS[request.param].format(marker=marker), marker


def workflow_text(value: str) -> str:
    # The tag is on line 3.
    return f"id: hostile\nname: {{en: Hostile}}\nduration: {value}\n"


def refused_in_words(output: str, file: str, line: int) -> None:
    assert f"{file}:{line}" in output, output
    assert "is not allowed" in output and "run code" in output, output


def test_a_workflow_file(bookwise_cli: Any, tmp_path: Path, payload: tuple[str, Path]) -> None:
    value, marker = payload
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "hostile.yaml").write_text(workflow_text(value), encoding="utf-8")
    values = base_config(tmp_path, f"sqlite:///{tmp_path / 'bookwise.db'}")
    config = write_config(tmp_path / "config.yaml", values | {"workflows": str(folder)})

    for command in ("validate", "init"):
        result = bookwise_cli(command, "--config", str(config))
        assert result.exit_code == 1, (command, result.stdout, result.stderr)
        refused_in_words(result.stdout + result.stderr, "hostile.yaml", 3)
    assert not marker.exists()


def test_a_calendar_data_file(
    bookwise_cli: Any, demo: Any, config_file: Path, tmp_path: Path, payload: tuple[str, Path]
) -> None:
    value, marker = payload
    data = tmp_path / "evil.yaml"
    data.write_text(
        f"calendars:\n  - slug: evil\n    name: {value}\n    timezone: Europe/Paris\n",
        encoding="utf-8",
    )

    result = bookwise_cli("load", "--config", str(config_file), str(data))

    assert result.exit_code == 1, (result.stdout, result.stderr)
    refused_in_words(result.stdout + result.stderr, "evil.yaml", 3)
    assert not marker.exists()
    with demo.database.sessions() as session:
        assert session.scalar(select(Calendar).where(Calendar.slug == "evil")) is None


def test_the_configuration_file(tmp_path: Path, payload: tuple[str, Path]) -> None:
    value, marker = payload
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database_url: sqlite:///{tmp_path / 'x.db'}\ndefault_locale: en\nsecret_key: {value}\n",
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as refused:
        load_settings(config, environ={})

    refused_in_words(str(refused.value), "config.yaml", 3)
    assert not marker.exists()


@pytest.fixture
def admin_client(scenario: Any) -> Any:
    """A superadmin signed in to the scenario's back office."""
    from bookwise.app import create_app

    with unit_of_work(scenario.database.sessions) as session:
        create_user(session, "boss@bw.example", PASSWORD, superadmin=True)
    app = create_app(scenario.settings)
    app.config.update(TESTING=True)
    client = app.test_client()
    signed_in = client.post(
        "/login",
        data={
            "email": "boss@bw.example",
            "password": PASSWORD,
            "csrf_token": token(client, "/login"),
        },
    )
    assert signed_in.status_code == 302
    yield client
    app.extensions["bookwise"].database.engine.dispose()


def _versions(scenario: Any) -> int:
    with scenario.database.sessions() as session:
        return session.scalar(select(func.count()).select_from(WorkflowVersion)) or 0


@pytest.mark.parametrize("kind", ["apply", "name", "new"])
def test_the_back_office_editor_and_import(
    scenario: Any, admin_client: Any, tmp_path: Path, kind: str
) -> None:
    marker = tmp_path / "the-code-ran"
    value = PAYLOADS[kind].format(marker=marker)
    client = admin_client
    before = _versions(scenario)
    text = workflow_text(value).replace("id: hostile", "id: review")

    edited = post(client, "/admin/workflows/review/yaml", {"text": text})
    imported = post(
        client,
        "/admin/workflows/import",
        {"file": (io.BytesIO(workflow_text(value).encode()), "hostile.yaml")},
        content_type="multipart/form-data",
    )

    for response in (edited, imported):
        page = response.get_data(as_text=True)
        assert response.status_code in (200, 400, 422), (response.status_code, page[:500])
        assert "is not allowed" in page and "run code" in page, page[:2000]
        assert "line 3" in page or ":3:" in page or "3:1" in page, page[:2000]
    assert _versions(scenario) == before
    assert not marker.exists()
