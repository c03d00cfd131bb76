"""The ``bookwise`` command, run as the console script runs it: output, exit codes, no traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.calendars.models import Calendar
from tests.conftest import ROOT, base_config, write_config

BROKEN = ROOT / "tests" / "data" / "broken-workflows"


def test_validate_the_configured_folders(bookwise_cli: Any, config_file: Path) -> None:
    result = bookwise_cli("validate", "--config", str(config_file))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(
        line.endswith("forms/contact.yaml: ok (field set contact, 3 fields)") for line in lines
    )
    assert any("workflows/hr-interview.yaml: ok (workflow hr-interview" in line for line in lines)
    oks = [line for line in lines if ": ok (" in line]
    assert len(oks) == 6
    # The HR interview meets online through the jitsi plugin, which this configuration does not
    # enable: a warning, not an error.
    (warning,) = [line for line in lines if ": warning: " in line]
    assert (
        "hr-interview.yaml:17:36: warning: location.provider: no meeting provider 'jitsi'"
        in warning
    )
    assert result.stderr == ""


def test_validate_reports_every_problem_and_exits_1(bookwise_cli: Any, config_file: Path) -> None:
    result = bookwise_cli("--config", str(config_file), "validate", str(BROKEN))
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if "warning:" not in line]
    # One line per problem, file:line:column: message, then a total.
    assert len(errors) >= 36
    assert any(
        line.endswith(
            "04-bad-duration.yaml:4:11: duration: '45 min' is not a duration; "
            "write it like 45m, 24h, 30d or 1h30m"
        )
        for line in errors
    )
    assert errors[-1].endswith("error(s) in 36 of 36 file(s)")
    assert "Traceback" not in result.stderr


def test_validate_a_calendar_data_file(bookwise_cli: Any, config_file: Path) -> None:
    result = bookwise_cli(
        "validate", "--config", str(config_file), str(ROOT / "demo/calendars.yaml")
    )
    assert result.exit_code == 0
    assert "calendar data; northwind-hr: 3 staff, 1 services" in result.stdout


def test_validate_a_missing_file(bookwise_cli: Any, config_file: Path) -> None:
    result = bookwise_cli("validate", "--config", str(config_file), "nowhere.yaml")
    assert result.exit_code == 1
    assert "nowhere.yaml: file not found" in result.stderr


def test_init_load_and_reload(bookwise_cli: Any, config_file: Path, database_url: str) -> None:
    result = bookwise_cli(
        "init",
        "--config",
        str(config_file),
        "--admin-email",
        "boss@example.org",
        "--admin-password",
        "correct horse",
    )
    assert result.exit_code == 0, result.stderr
    assert "database already up to date" in result.stdout  # the fixture migrated it
    assert "workflows: 4 new" in result.stdout
    assert "administrator boss@example.org created" in result.stdout

    demo = str(ROOT / "demo/calendars.yaml")
    result = bookwise_cli("load", "--config", str(config_file), demo)
    assert result.exit_code == 0, result.stderr
    assert "3 calendars created" in result.stdout
    result = bookwise_cli("load", "--config", str(config_file), demo)
    assert result.stdout.strip().endswith("nothing changed")

    again = bookwise_cli(
        "init",
        "--config",
        str(config_file),
        "--admin-email",
        "boss@example.org",
        "--admin-password",
        "correct horse",
    )
    assert "administrator boss@example.org already exists" in again.stdout
    assert "workflows: 0 new, 0 new version(s), 4 unchanged" in again.stdout


def test_init_creates_the_database(bookwise_cli: Any, tmp_path: Path) -> None:
    values = base_config(tmp_path, f"sqlite:///{tmp_path / 'new' / 'fresh.db'}")
    config = write_config(tmp_path / "c.yaml", values)
    result = bookwise_cli("init", "--config", str(config), "--demo")
    assert result.exit_code == 0, result.stderr
    assert "database created" in result.stdout
    assert "demo data loaded; demo administrator: admin@bookwise.test / " in result.stdout
    assert "no administrator yet" not in result.stdout
    engine = sa.create_engine(values["database_url"])
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Calendar)).scalar() == 3
    engine.dispose()


def test_init_refuses_a_short_password(bookwise_cli: Any, config_file: Path) -> None:
    result = bookwise_cli(
        "init",
        "--config",
        str(config_file),
        "--admin-email",
        "boss@example.org",
        "--admin-password",
        "short",
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: the password must have at least 10 characters"


def test_load_before_init(bookwise_cli: Any, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", base_config(tmp_path, f"sqlite:///{tmp_path}/x.db"))
    result = bookwise_cli("load", "--config", str(config), str(ROOT / "demo/calendars.yaml"))
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: the database is empty: run bookwise init first"


def test_load_a_broken_file(bookwise_cli: Any, config_file: Path, tmp_path: Path) -> None:
    bookwise_cli("init", "--config", str(config_file))
    broken = tmp_path / "cal.yaml"
    broken.write_text("calendars:\n  - {slug: x, name: X, timezone: Mars/Olympus}\n")
    result = bookwise_cli("load", "--config", str(config_file), str(broken))
    assert result.exit_code == 1
    assert "cal.yaml:2:34: calendars[0].timezone: unknown time zone 'Mars/Olympus'" in result.stderr


def test_bad_configuration_is_one_line(bookwise_cli: Any, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("mail:\n  port: twenty-five\n")
    result = bookwise_cli("validate", "--config", str(config))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "c.yaml:2:9: mail.port: expected a whole number, got text 'twenty-five'" in result.stderr
    missing = bookwise_cli("validate", "--config", str(tmp_path / "none.yaml"))
    assert missing.exit_code == 1
    assert "configuration file" in missing.stderr and "not found" in missing.stderr


def test_unreachable_database_is_one_line(bookwise_cli: Any, tmp_path: Path) -> None:
    values = base_config(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    config = write_config(tmp_path / "c.yaml", values)
    for command in (("init",), ("db", "upgrade"), ("db", "current")):
        result = bookwise_cli(*command, "--config", str(config))
        assert result.exit_code == 1, command
        assert result.stderr.startswith("error: cannot open the database at database_url ("), (
            command,
            result.stderr,
        )
        assert "check the address in the configuration" in result.stderr
        assert result.stderr.count("\n") == 1


def test_worker_once_sends_what_is_due(bookwise_cli: Any, config_file: Path) -> None:
    bookwise_cli("init", "--config", str(config_file))
    result = bookwise_cli("worker", "--once", "--config", str(config_file))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "0 message(s) handled"


def test_worker_needs_an_initialised_database(bookwise_cli: Any, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", base_config(tmp_path, f"sqlite:///{tmp_path}/w.db"))
    result = bookwise_cli("worker", "--once", "--config", str(config))
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: the database is empty: run bookwise init first"


def test_usage_errors_exit_2(bookwise_cli: Any) -> None:
    assert bookwise_cli("nonsense").exit_code == 2
    assert bookwise_cli("load").exit_code == 2


def test_console_script_runs(tmp_path: Path) -> None:
    """The installed ``bookwise`` script itself, in a separate process."""
    script = Path(sys.executable).parent / "bookwise"
    workflows = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", workflows)
    (workflows / "broken.yaml").write_text("id: broken\nname: B\nduration: soon\n")
    result = subprocess.run(
        [str(script), "validate", str(workflows / "broken.yaml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={"PATH": "/usr/bin:/bin", "BOOKWISE_SECRET_KEY": "s" * 40},
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].endswith(
        "broken.yaml:3:11: duration: 'soon' is not a duration; write it like 45m, 24h, 30d or 1h30m"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_run_serves_the_demo_on_a_fresh_checkout(tmp_path: Path, now: datetime) -> None:
    """``bookwise run`` in a fresh folder: initialises itself, prints the URL and the login;
    with ``--at`` it stands at the test's instant (its pages and its demo bookings)."""
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path / "checkout"
    for name in ("workflows", "forms", "demo", "config.yaml"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / name)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "bookwise"),
            "run",
            "--port",
            str(port),
            "--at",
            now.isoformat(),
        ],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Press Ctrl+C" in line or process.poll() is not None:
                break
        output = "".join(lines)
        assert f"Bookwise is running on http://127.0.0.1:{port}/" in output, output
        assert "Demo administrator: admin@bookwise.test / " in output
        for _ in range(50):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
        assert "Cabinet médical des Lilas".encode() in page
        # A manage link's token is a key to a client's booking: never in the log.
        secret = "x7Qm2" * 8
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/manage/{secret}", timeout=5)
        assert refused.value.code == 404
        # The demo's sample bookings lie around the instant it stands at (ten days before to a
        # week after), not around today.
        engine = sa.create_engine(f"sqlite:///{folder / 'instance' / 'bookwise.db'}")
        with engine.connect() as connection:
            made = connection.execute(sa.text("SELECT start_at FROM bookings")).scalars().all()
        engine.dispose()
        starts = sorted(datetime.fromisoformat(str(m)).replace(tzinfo=UTC) for m in made)
        assert starts[0] < now < starts[-1], (starts[0], starts[-1])
        assert now - timedelta(days=11) < starts[0] and starts[-1] < now + timedelta(days=9)
        assert (folder / "instance" / "secret_key").is_file()
    finally:
        process.terminate()
        rest, _ = process.communicate(timeout=10)
    # The banner is the last thing said at start-up: only the requests' log lines come after it,
    # written by Bookwise's access log (werkzeug's would print the token).
    after = [line for line in rest.splitlines() if line.strip()]
    assert all("bookwise.access: GET /" in line for line in after), after
    assert any("GET /manage/<token> 404" in line for line in after), after
    assert secret not in rest


def test_run_on_a_busy_port_is_one_line(bookwise_cli: Any, config_file: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = bookwise_cli("run", "--config", str(config_file), "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "choose another port with --port"
    )
    assert "Bookwise is running" not in result.stdout


def test_validate_judges_files_by_their_folder(
    bookwise_cli: Any, tmp_path: Path, database_url: str
) -> None:
    """A workflow that lacks its id and duration is a broken workflow, not a field set."""
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "quick.yaml").write_text("name: Quick\nfields:\n  - {id: a, type: text, label: A}\n")
    values = base_config(tmp_path, database_url) | {"workflows": str(folder)}
    config = write_config(tmp_path / "c.yaml", values)
    result = bookwise_cli("validate", "--config", str(config), str(folder))
    assert result.exit_code == 1
    assert "quick.yaml:1:1: missing required key 'id'" in result.stderr


def test_a_broken_field_set_is_named_where_it_is_used(
    bookwise_cli: Any, tmp_path: Path, database_url: str
) -> None:
    forms = tmp_path / "forms"
    shutil.copytree(ROOT / "forms", forms)
    (forms / "contact.yaml").write_text("fields:\n  - {id: name, type: txt, label: Name}\n")
    values = base_config(tmp_path, database_url) | {"forms": str(forms)}
    config = write_config(tmp_path / "c.yaml", values)
    result = bookwise_cli("validate", "--config", str(config), str(ROOT / "workflows"))
    assert result.exit_code == 1
    assert "fields[0].include: the field set 'contact' has errors; see" in result.stderr
    assert "forms/contact.yaml" in result.stderr


def test_validate_refuses_unknown_channels(
    bookwise_cli: Any, tmp_path: Path, config_file: Path
) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "id: flow\nname: F\nduration: 30m\n"
        "notifications: [{on: confirmed, to: client, channel: emial}]\n"
    )
    result = bookwise_cli("validate", "--config", str(config_file), str(flow))
    assert result.exit_code == 1
    assert "unknown channel 'emial'; did you mean 'email'?" in result.stderr


def test_simulate_prints_every_message(bookwise_cli: Any, config_file: Path) -> None:
    result = bookwise_cli(
        "simulate",
        "patient-visit",
        "--start",
        "2026-12-01T10:00",
        "--tz",
        "Europe/Paris",
        "--locale",
        "fr",
        "--config",
        str(config_file),
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith("patient-visit: 10 message(s) for a booking at 2026-12-01T10:00:00+01:00")
    assert "=== 2d before (due 2026-11-29T10:00:00+01:00): reminder -> client by email" in out
    assert "=== 2h before (due 2026-12-01T08:00:00+01:00): reminder -> client by sms" in out
    assert "Subject: Rendez-vous confirmé : Consultation, mardi 1 décembre 2026, 10:00" in out
    assert "Nothing is sent." in out


def test_simulate_refuses_what_it_cannot_do(bookwise_cli: Any, config_file: Path) -> None:
    base = ("--config", str(config_file))
    unknown = bookwise_cli("simulate", "nope", "--start", "2026-12-01T10:00", *base)
    assert unknown.exit_code == 1 and "no workflow 'nope'" in unknown.stderr
    bad = bookwise_cli("simulate", "tutoring", "--start", "tomorrow", *base)
    assert bad.exit_code == 1 and "is not a date and time" in bad.stderr
    zone = bookwise_cli(
        "simulate", "tutoring", "--start", "2026-12-01T10:00", "--tz", "Mars", *base
    )
    assert zone.exit_code == 1 and "unknown time zone 'Mars'" in zone.stderr


def test_init_warns_of_a_missing_workflows_folder(bookwise_cli: Any, tmp_path: Path) -> None:
    values = base_config(tmp_path, f"sqlite:///{tmp_path}/w.db") | {"workflows": "flows"}
    config = write_config(tmp_path / "c.yaml", values)
    result = bookwise_cli("init", "--config", str(config))
    assert result.exit_code == 0, result.stderr
    assert f"warning: the workflows folder {tmp_path / 'flows'} does not exist" in result.stderr
