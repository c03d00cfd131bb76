"""The ``bookwise`` command: init, load, validate, run, worker, jobs, plugins, simulate.

Every error is one clear line (or one line per problem, as ``file:line:column: message``) and a
non-zero exit; never a traceback, unless ``BOOKWISE_DEBUG=1`` asks for one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from bookwise.config import DEFAULTS, Settings, load_settings
from bookwise.errors import BookwiseError, ConfigError, ProblemsError, errors_only
from bookwise.tracing import configure_logging

F = TypeVar("F", bound=Callable[..., Any])


def config_option(command: F) -> F:
    """``--config PATH`` on every command (it may also be given before the command name)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Configuration file (default: $BOOKWISE_CONFIG, else ./config.yaml).",
    )(command)


def settings_from(ctx: click.Context, config_path: Path | None) -> Settings:
    path = config_path or (ctx.obj or {}).get("config_path")
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"configuration file {path} not found")
    return load_settings(path)


def _parse_at(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    """``--at``: the clock of the process, starting at that instant (see bookwise.clock)."""
    from bookwise.clock import clock_from, parse_instant, system_clock

    if value is None:
        return system_clock
    try:
        return clock_from(parse_instant(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


at_option = click.option(
    "--at",
    "clock",
    metavar="INSTANT",
    callback=_parse_at,
    help="Stand at this instant instead of now, then let time run on (for demos, screenshots "
    "and tests), e.g. '2027-03-28T08:30 Europe/Paris'.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@config_option
@click.version_option(package_name="bookwise")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Bookwise: booking scenarios as YAML workflows, served as pages, a back office and an API."""
    ctx.obj = {"config_path": config_path}


# --- init ---------------------------------------------------------------------------------------


@cli.command()
@config_option
@click.option("--admin-email", help="E-mail of the administrator to create.")
@click.option("--admin-password", help="Their password (asked when --admin-email is given alone).")
@click.option("--demo", is_flag=True, help="Load the demo calendars into a new instance.")
@click.pass_context
def init(
    ctx: click.Context,
    config_path: Path | None,
    admin_email: str | None,
    admin_password: str | None,
    demo: bool,
) -> None:
    """Create or upgrade the database, store the workflows, create an administrator."""
    from bookwise import instance
    from bookwise.accounts.services import has_superadmin
    from bookwise.database import open_database, prepare_schema

    if admin_email is None and admin_password is not None:
        raise click.UsageError("--admin-password needs --admin-email")
    settings = settings_from(ctx, config_path)
    if demo and settings.demo_data is None:
        raise BookwiseError("--demo needs demo_data in the configuration (a calendar data file)")
    checked = instance.checked_workflows(settings)  # before touching the database
    if not settings.workflows_dir.is_dir():
        click.echo(
            f"warning: the workflows folder {settings.workflows_dir} does not exist (workflows "
            f"in {settings.source}, relative to that file): no workflow file is read",
            err=True,
        )
    database = open_database(settings)
    before = prepare_schema(database)
    click.echo(
        {
            "empty": "database created",
            "outdated": "database upgraded",
            "current": "database already up to date",
            "foreign": "",
        }[before]
    )
    started = instance.start_instance(settings, database, checked, demo=demo, actor="cli")
    click.echo(started.workflows.summary())
    for warning in started.warnings:
        click.echo(str(warning), err=True)
    if started.demo_loaded:
        email, password = instance.demo_credentials(settings)
        click.echo(f"demo data loaded; demo administrator: {email} / {password}")
    with database.sessions() as session:
        admin_exists = has_superadmin(session)
    if admin_email is None and sys.stdin.isatty() and not admin_exists:
        admin_email = click.prompt("Administrator e-mail")
    if admin_email is not None:
        if admin_password is None:
            admin_password = click.prompt(
                f"Password for {admin_email}", hide_input=True, confirmation_prompt=True
            )
        user, created = instance.ensure_admin(database, admin_email, admin_password)
        click.echo(
            f"administrator {user.email} created"
            if created
            else f"administrator {user.email} already exists; password unchanged"
        )
    elif not admin_exists:
        click.echo("no administrator yet: run bookwise init --admin-email EMAIL to create one")
    database.dispose()


# --- db ---------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The database's schema: its migrations (docs/deployment.md)."""


@db.command("upgrade")
@config_option
@click.pass_context
def db_upgrade(ctx: click.Context, config_path: Path | None) -> None:
    """Apply the migrations the database lacks, in one transaction (nothing else: bookwise init
    also stores the workflows and creates an administrator). Run it once per release, before
    the new version's processes start."""
    from bookwise import migrate
    from bookwise.database import open_database, prepare_schema, schema_state

    database = open_database(settings_from(ctx, config_path))
    try:
        schema_state(database)  # a database that cannot be opened says so, in plain words
        before = migrate.current_revision(database.engine)
        state = prepare_schema(database)
        head = migrate.head_revision()
        if state == "current":
            click.echo(f"database already at the latest migration ({head})")
        else:
            click.echo(f"database upgraded from {before or 'nothing'} to {head}")
    finally:
        database.dispose()


@db.command("current")
@config_option
@click.pass_context
def db_current(ctx: click.Context, config_path: Path | None) -> None:
    """Say which migration the database stands at, and whether it is the latest (exit status 1
    when migrations are to run: for a deployment script)."""
    from bookwise import migrate
    from bookwise.database import open_database, schema_state

    database = open_database(settings_from(ctx, config_path))
    try:
        state = schema_state(database)
        current = migrate.current_revision(database.engine)
    finally:
        database.dispose()
    head = migrate.head_revision()
    if state == "current":
        click.echo(f"{current} (the latest)")
        return
    if state == "foreign":
        raise BookwiseError("the database holds tables that are not Bookwise's")
    click.echo(f"{current or 'empty'}; the latest is {head}: run bookwise db upgrade")
    ctx.exit(1)


# --- load ---------------------------------------------------------------------------------------


@cli.command()
@config_option
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@at_option
@click.pass_context
def load(ctx: click.Context, config_path: Path | None, files: tuple[Path, ...], clock: Any) -> None:
    """Create or update calendars, staff and services from calendar data FILES.

    Every file is checked first; when one has an error, nothing is written. The staff calendars
    the files add are read at once.
    """
    from bookwise import instance
    from bookwise.database import open_database, require_current_schema

    settings = settings_from(ctx, config_path)
    database = open_database(settings)
    require_current_schema(database)
    result = instance.load_calendar_files(settings, database, list(files))
    for warning in result.warnings:
        click.echo(str(warning), err=True)
    for path, report in result.reports:
        click.echo(f"{path}: {report.summary()}")
    _read_new_sources(settings, database, clock())
    database.dispose()


def _read_new_sources(settings: Settings, database: Any, now: datetime) -> None:
    """Read the staff calendars a load added or changed, so that their busy times count at once
    (a failure is reported, and retried by the refresh job; the load stands)."""
    from bookwise.calendars.sources import refresh_sources

    for outcome in refresh_sources(database.sessions, settings.feeds, now):
        click.echo(f"calendar feed {_outcome_line(outcome)}", err=outcome.problem is not None)


# --- export -------------------------------------------------------------------------------------


@cli.group()
def export() -> None:
    """Write what the database holds back out as files (docs/calendars.md, Export)."""


@export.command("calendars")
@config_option
@click.argument("slugs", nargs=-1)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of the standard output.",
)
@click.option(
    "--include-feed-addresses",
    is_flag=True,
    help="Also write the addresses of staff members' published calendars (they often hold a "
    "secret: keep such a file out of shared version control).",
)
@at_option
@click.pass_context
def export_calendars(
    ctx: click.Context,
    config_path: Path | None,
    slugs: tuple[str, ...],
    output: Path | None,
    include_feed_addresses: bool,
    clock: Any,
) -> None:
    """The calendar data file of the calendars SLUGS (default: all), for `bookwise load`."""
    from bookwise.calendars.services import export_calendars as export_text
    from bookwise.database import open_database, require_current_schema

    settings = settings_from(ctx, config_path)
    database = open_database(settings)
    require_current_schema(database)
    try:
        with database.sessions() as session:
            text = export_text(
                session,
                list(slugs) or None,
                instance=settings.base_url,
                now=clock(),
                feed_addresses=include_feed_addresses,
            )
    finally:
        database.dispose()
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BookwiseError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"calendars exported to {output}", err=True)


# --- validate -----------------------------------------------------------------------------------


@cli.command()
@config_option
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.pass_context
def validate(ctx: click.Context, config_path: Path | None, paths: tuple[Path, ...]) -> None:
    """Check workflow, field set and calendar data files (default: the configured folders).

    Prints every problem as file:line:column: message and exits 1 when there is an error; prints
    one summary line per clean file otherwise.
    """
    from bookwise.validation import validate_paths

    settings = settings_from(ctx, config_path)
    targets = list(paths) or [settings.forms_dir, settings.workflows_dir]
    results = validate_paths(settings, targets)
    failed = False
    for result in results:
        for problem in result.problems:
            click.echo(str(problem), err=problem.severity == "error")
        if errors_only(result.problems):
            failed = True
        else:
            click.echo(f"{result.file}: ok ({result.summary})")
    if not results:
        raise BookwiseError("no YAML files found in " + ", ".join(str(p) for p in targets))
    if failed:
        errors = sum(len(errors_only(r.problems)) for r in results)
        bad = sum(1 for r in results if errors_only(r.problems))
        click.echo(f"{errors} error(s) in {bad} of {len(results)} file(s)", err=True)
        ctx.exit(1)


# --- run, worker --------------------------------------------------------------------------------


def _quiet_handler() -> type:
    from werkzeug.serving import WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        """werkzeug's request handler without its request lines (Bookwise's access log says
        them, without the secret tokens of the paths)."""

        def log_request(self, *_args: object) -> None:
            return

    return Quiet


@cli.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@at_option
@click.pass_context
def run(ctx: click.Context, config_path: Path | None, host: str, port: int, clock: Any) -> None:
    """Serve Bookwise; a new, empty database is set up with the demo data first."""
    from werkzeug.serving import make_server

    from bookwise import instance
    from bookwise.app import create_app
    from bookwise.database import open_database, prepare_schema

    settings = settings_from(ctx, config_path)
    _check_port_free(host, port)
    if settings.base_url == DEFAULTS["base_url"] and not os.environ.get("BOOKWISE_BASE_URL"):
        # Links in pages and messages must reach this server when it runs elsewhere.
        settings = dataclasses.replace(settings, base_url=f"http://{host}:{port}")
    checked = instance.checked_workflows(settings)  # before touching the database
    database = open_database(settings)
    _report_plugins(database)
    prepare_schema(database)
    started = instance.start_instance(settings, database, checked, demo=True, now=clock())
    if started.workflows.changed:
        click.echo(started.workflows.summary())
    for warning in started.warnings:
        click.echo(str(warning), err=True)
    if started.demo_loaded:
        click.echo("new instance: demo calendars loaded")
    email, password = instance.demo_login(settings, database)
    database.dispose()
    # Each request is told by Bookwise's access log, which leaves the manage links' tokens out
    # (werkzeug's own line would print them).
    settings = dataclasses.replace(settings, access_log=True)
    app = create_app(settings, clock=clock)
    configure_logging(settings.log_level, settings.log_format)
    # APScheduler tells of every tick at INFO: a line every few seconds would bury the banner.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.root.level))
    try:
        server = make_server(host, port, app, threaded=True, request_handler=_quiet_handler())
    except OSError as exc:
        raise _cannot_listen(host, port, exc) from None
    if settings.scheduler.enabled:
        from bookwise.jobs import scheduler_for

        scheduler_for(settings, app.extensions["bookwise"].database, clock=clock).start()
        how = "written to instance/messages.log" if settings.mail.transport == "log" else "by SMTP"
        click.echo(
            f"Messages are sent every {settings.scheduler.interval} s ({how}); "
            "scheduled jobs run when due (bookwise jobs)."
        )
    # The banner comes last, once the server listens: what the person who started it looks for.
    url = f"http://{host}:{port}/"
    click.echo(f"\nBookwise is running on {url}  (development server; see docs/deployment.md)")
    if email and password:
        click.echo(f"Demo administrator: {email} / {password}  (sign in at {url}login)")
    click.echo("Press Ctrl+C to stop.")
    server.serve_forever()  # returns on Ctrl+C, the server closed


@cli.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Web processes (about two per core; each holds its own database pool).",
)
@click.option(
    "--threads",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Threads per process (requests waiting on the database overlap).",
)
@click.pass_context
def serve(
    ctx: click.Context, config_path: Path | None, host: str, port: int, workers: int, threads: int
) -> None:
    """Serve Bookwise in production: gunicorn with several web processes. Messages and
    scheduled jobs are not run here: start one or more `bookwise worker` beside it.

    The database must be set up (bookwise init). Metrics of every process are added up at
    /metrics (PROMETHEUS_MULTIPROC_DIR, by default a folder of the instance emptied at start).
    See docs/deployment.md.
    """
    from bookwise.serving import prepare_metrics_folder, serve_with_gunicorn

    settings = settings_from(ctx, config_path)
    prepare_metrics_folder(settings)  # before anything imports prometheus_client
    from bookwise.database import open_database, require_current_schema

    _check_port_free(host, port)
    database = open_database(settings)
    _report_plugins(database)
    require_current_schema(database)
    database.dispose()  # each process opens its own connections once forked
    click.echo(
        f"Bookwise serving on http://{host}:{port}/ with {workers} process(es) of {threads} "
        "thread(s); start `bookwise worker` for messages and scheduled jobs."
    )
    serve_with_gunicorn(settings, host=host, port=port, workers=workers, threads=threads)


def _report_plugins(database: Any) -> None:
    """Plugins that could not be loaded: said at start-up; the rest of Bookwise starts."""
    for problem in database.plugins.problems():
        click.echo(f"warning: {problem}", err=True)


def _check_port_free(host: str, port: int) -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            probe.bind((host, port))
    except OSError as exc:
        raise _cannot_listen(host, port, exc) from None


def _cannot_listen(host: str, port: int, exc: OSError) -> BookwiseError:
    return BookwiseError(
        f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another port with --port"
    )


@cli.command()
@config_option
@click.option("--once", is_flag=True, help="Send what is due now, then stop (for cron).")
@at_option
@click.pass_context
def worker(ctx: click.Context, config_path: Path | None, once: bool, clock: Any) -> None:
    """Send the messages of the outbox and run the scheduled jobs, alone (for deployments that
    separate web and worker).

    Any number of workers may run, on one machine or several: each claims its own outbox rows,
    and a job that must run once takes a lease in the database.
    """
    from bookwise.database import open_database, require_current_schema
    from bookwise.jobs import scheduler_for

    settings = settings_from(ctx, config_path)
    database = open_database(settings)
    _report_plugins(database)
    require_current_schema(database)
    configure_logging(settings.log_level, settings.log_format)
    if once:
        from bookwise.notifications.delivery import Dispatcher

        handled = Dispatcher(settings, database, clock=clock).drain()
        click.echo(f"{handled} message(s) handled")
        return
    click.echo(
        f"Bookwise worker: sending due messages every {settings.scheduler.interval} s, "
        "running scheduled jobs when due. Press Ctrl+C to stop."
    )
    scheduler = scheduler_for(settings, database, blocking=True, clock=clock)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


# --- jobs ---------------------------------------------------------------------------------------


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") + "Z" if value is not None else "-"


@cli.group(invoke_without_command=True)
@config_option
@click.pass_context
def jobs(ctx: click.Context, config_path: Path | None) -> None:
    """List the scheduled jobs: trigger, where they run, last run, outcome, duration, next run.

    Times are in UTC. A job marked "once" runs once across every process (under a lease in the
    database); "each process" runs in every web and worker process.
    """
    if config_path is not None:
        ctx.obj = {**(ctx.obj or {}), "config_path": config_path}
    if ctx.invoked_subcommand is not None:
        return
    from bookwise.database import open_database, require_current_schema
    from bookwise.scheduling.core import job_statuses

    settings = settings_from(ctx, None)
    database = open_database(settings)
    require_current_schema(database)
    statuses = job_statuses(settings, database)
    header = ("job", "trigger", "where", "owner", "last run", "outcome", "duration", "next run")
    lines = [header]
    for job in statuses:
        duration = f"{job.duration_ms / 1000:.2f} s" if job.duration_ms is not None else "-"
        lines.append(
            (job.name, job.trigger, job.scope, job.owner, _when(job.last_started_at),
             job.outcome or "-", duration, _when(job.next_run_at))
        )  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    for job in statuses:
        if job.outcome == "failed" and job.last_error:
            click.echo(f"{job.name}: last error: {job.last_error}", err=True)
    database.dispose()


@jobs.command("run")
@config_option
@click.argument("name")
@at_option
@click.pass_context
def jobs_run(ctx: click.Context, config_path: Path | None, name: str, clock: Any) -> None:
    """Run the job NAME now, whether it is due or not (a "once" job takes its lease: it is
    refused while another process runs it). Exits 1 when the job fails."""
    from bookwise.database import open_database, require_current_schema
    from bookwise.jobs import runner_for

    settings = settings_from(ctx, config_path)
    database = open_database(settings)
    require_current_schema(database)
    configure_logging(settings.log_level, settings.log_format)
    try:
        result = runner_for(settings, database, clock=clock).run_now(name)
    finally:
        database.dispose()
    seconds = (result.duration_ms or 0) / 1000
    if result.outcome == "failed":
        click.echo(f"{name}: failed after {seconds:.2f} s: {result.error}", err=True)
        ctx.exit(1)
    click.echo(f"{name}: ok in {seconds:.2f} s" + (f": {result.summary}" if result.summary else ""))


# --- feeds --------------------------------------------------------------------------------------


@cli.group()
def feeds() -> None:
    """Staff members' own calendars, read for the times they are busy (docs/calendars.md)."""


def _english(message: Any) -> str:
    return message.text % dict(message.values) if message is not None else ""


def _outcome_line(outcome: Any) -> str:
    """One source's refresh: calendar/staff, which calendar, outcome, busy times kept, problem."""
    line = (
        f"{outcome.calendar}/{outcome.staff}  {outcome.label}  {outcome.outcome}  "
        f"{outcome.busy} busy interval(s) kept"
    )
    return line + (f": {_english(outcome.problem)}" if outcome.problem is not None else "")


@feeds.command("refresh")
@config_option
@click.option("--calendar", "calendar", metavar="SLUG", help="Only this calendar's staff.")
@at_option
@click.pass_context
def feeds_refresh(
    ctx: click.Context, config_path: Path | None, calendar: str | None, clock: Any
) -> None:
    """Read every staff calendar now, due or not: one line per calendar read (calendar/staff,
    which calendar, outcome, busy times kept). Exits 1 when any could not be read."""
    from bookwise.calendars.sources import refresh_sources
    from bookwise.database import open_database, require_current_schema

    settings = settings_from(ctx, config_path)
    database = open_database(settings)
    try:
        require_current_schema(database)
        outcomes = refresh_sources(
            database.sessions, settings.feeds, clock(), calendar=calendar, force=True
        )
    finally:
        database.dispose()
    if not outcomes:
        click.echo("no staff calendars to read" + (f" in {calendar}" if calendar else ""))
    for outcome in outcomes:
        click.echo(_outcome_line(outcome), err=outcome.problem is not None)
    if any(o.outcome == "failed" for o in outcomes):
        ctx.exit(1)


@feeds.command("status")
@config_option
@click.option("--calendar", "calendar", metavar="SLUG", help="Only this calendar's staff.")
@click.pass_context
def feeds_status(ctx: click.Context, config_path: Path | None, calendar: str | None) -> None:
    """Each staff calendar: last good read, busy times kept, and what is wrong, in words (times in
    UTC). Exits 1 when any is failing."""
    from bookwise.calendars.sources import source_statuses
    from bookwise.database import open_database, require_current_schema

    settings = settings_from(ctx, config_path)
    database = open_database(settings)
    try:
        require_current_schema(database)
        with database.sessions() as session:
            statuses = source_statuses(session, calendar=calendar)
    finally:
        database.dispose()
    if not statuses:
        click.echo("no staff calendars" + (f" in {calendar}" if calendar else ""))
    for status in statuses:
        click.echo(
            f"{status.calendar}/{status.staff}  {status.label}  "
            f"last read {_when(status.last_success_at)}  {status.busy} busy interval(s)"
            + ("" if status.problem is None else f"  failing since {_when(status.failing_since)}")
        )
        if status.problem is not None:
            click.echo(f"  problem: {_english(status.problem)}", err=True)
    if any(s.failing for s in statuses):
        ctx.exit(1)


# --- plugins ------------------------------------------------------------------------------------


@cli.command()
@config_option
@click.pass_context
def plugins(ctx: click.Context, config_path: Path | None) -> None:
    """List the installed plugins: enabled or not, version, what each adds, and problems.

    Exits 1 when an enabled plugin cannot be used (it failed to load, or its settings in
    config.yaml are wrong), so that a deployment script can stop there.
    """
    from bookwise.plugins.api import API_VERSION
    from bookwise.plugins.host import load_plugins

    settings = settings_from(ctx, config_path)
    host = load_plugins(settings)
    click.echo(f"Plugin API {API_VERSION}; configuration {settings.source}")
    for info in sorted(host.plugins.values(), key=lambda i: (not i.core, i.name)):
        version = f"{info.distribution} {info.version}" if info.distribution else info.target
        status = "core" if info.core else ("enabled" if info.enabled else "installed, not enabled")
        click.echo(f"{info.name:<16} {status:<24} {info.state:<15} {version}")
        for kind, names in info.provides.items():
            click.echo(f"{'':<16} {kind}: {', '.join(names)}")
        for problem in info.problems:
            click.echo(f"{'':<16} problem: {problem}", err=True)
    problems = host.problems()
    if not host.plugins:
        click.echo("no plugins installed (not even the core's: reinstall Bookwise)", err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        ctx.exit(1)


# --- simulate -----------------------------------------------------------------------------------


@cli.command()
@config_option
@click.argument("workflow_id")
@click.option(
    "--start",
    "start_text",
    required=True,
    help="When the booking starts: 2026-12-01T10:00 (in --tz) or with an offset.",
)
@click.option(
    "--tz",
    "zone",
    default=None,
    help="Time zone of the booking (default: UTC or the offset given).",
)
@click.option("--locale", default=None, help="Language of the messages (default: the instance's).")
@click.pass_context
def simulate(
    ctx: click.Context,
    config_path: Path | None,
    workflow_id: str,
    start_text: str,
    zone: str | None,
    locale: str | None,
) -> None:
    """Print every message WORKFLOW_ID would send for a booking at --start, rendered; send none."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bookwise import instance
    from bookwise.notifications.simulation import simulate as run_simulation
    from bookwise.notifications.templates import SHIPPED_TEMPLATES
    from bookwise.timezones import parse_zone

    settings = settings_from(ctx, config_path)
    workflows = instance.checked_workflows(settings)
    if workflow_id not in workflows:
        raise BookwiseError(
            f"no workflow {workflow_id!r} in {settings.workflows_dir}; "
            f"known: {', '.join(sorted(workflows))}"
        )
    if zone is not None and parse_zone(zone) is None:
        raise BookwiseError(f"unknown time zone {zone!r}; use an IANA name like Europe/Paris")
    try:
        start = datetime.fromisoformat(start_text)
    except ValueError:
        raise BookwiseError(
            f"--start {start_text!r} is not a date and time like 2026-12-01T10:00"
        ) from None
    zone = zone or "UTC"
    if start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(zone))
    language = locale or settings.default_locale
    if language not in settings.locales:
        raise BookwiseError(f"--locale must be one of {', '.join(settings.locales)}")
    messages = run_simulation(
        workflows[workflow_id].workflow,
        start,
        zone,
        language,
        [settings.templates_dir, SHIPPED_TEMPLATES],
    )
    click.echo(
        f"{workflow_id}: {len(messages)} message(s) for a booking at "
        f"{start.isoformat()} ({zone}), in {language}. Nothing is sent."
    )
    problems = 0
    for message in messages:
        due = f" (due {message.due.astimezone(ZoneInfo(zone)).isoformat()})" if message.due else ""
        if message.held is not None:
            held = message.held.astimezone(ZoneInfo(zone)).isoformat()
            due = f"{due[:-1]}, held for quiet hours: sent {held})"
        click.echo(
            f"\n=== {message.when}{due}: {message.event} -> {message.recipient} "
            f"by {message.channel}"
        )
        if message.rendered is None:
            problems += 1
            click.echo(f"PROBLEM: {message.problem}")
            continue
        if message.rendered.subject:
            click.echo(f"Subject: {message.rendered.subject}")
        click.echo(message.rendered.text)
    if problems:
        ctx.exit(1)


# --- explain ------------------------------------------------------------------------------------


@cli.command()
@config_option
@click.argument("calendar_slug", metavar="CALENDAR")
@click.argument("service_slug", metavar="SERVICE")
@click.argument("start_text", metavar="DATETIME")
@click.option("--locale", default=None, help="Language of the words (default: the calendar's).")
@click.option(
    "--answer",
    "answers",
    multiple=True,
    metavar="FIELD=VALUE",
    help="An answer the service routes on (repeatable), e.g. --answer position=engineering.",
)
@at_option
@click.pass_context
def explain(
    ctx: click.Context,
    config_path: Path | None,
    calendar_slug: str,
    service_slug: str,
    start_text: str,
    locale: str | None,
    answers: tuple[str, ...],
    clock: Any,
) -> None:
    """Why DATETIME is or is not offered for SERVICE of CALENDAR, in words: the booking window
    and a full group, then each staff member's reasons. DATETIME: 2027-03-29T10:00 (in the
    calendar's time zone) or with its offset. Prints the staff's private details (time off
    reasons, busy calendars): this is the server's operator asking."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bookwise.availability.reasons import reason_message
    from bookwise.availability.services import SlotSearch, explain_time
    from bookwise.bookings.services import find_service
    from bookwise.database import open_database, require_current_schema
    from bookwise.errors import NotFound
    from bookwise.formatting import format_when, translator

    settings = settings_from(ctx, config_path)
    try:
        start = datetime.fromisoformat(start_text)
    except ValueError:
        raise BookwiseError(
            f"{start_text!r} is not a date and time like 2027-03-29T10:00"
        ) from None
    if not 1971 <= start.year <= 2199:
        raise BookwiseError(f"{start_text!r} is out of range")
    given = dict(_answer_pair(text) for text in answers)
    database = open_database(settings)
    try:
        require_current_schema(database)
        with database.sessions() as session:
            try:
                context = find_service(session, calendar_slug, service_slug, public=False)
            except NotFound as exc:
                raise BookwiseError(str(exc)) from None
            zone = context.calendar.timezone
            if start.tzinfo is None:
                start = start.replace(tzinfo=ZoneInfo(zone))
            language = locale or context.calendar.default_locale or settings.default_locale
            if language not in settings.locales:
                raise BookwiseError(f"--locale must be one of {', '.join(settings.locales)}")
            found = explain_time(
                session,
                context.calendar,
                context.service,
                context.workflow,
                start,
                clock(),
                SlotSearch(
                    answers=_routing_answers(context.workflow, given, clock().date())
                    if given
                    else None
                ),
            )
    finally:
        database.dispose()
    words = translator(language)
    told = found.explanation
    verdict = f"offered ({told.remaining} place(s) left)" if told.offered else "not offered"
    click.echo(
        f"{calendar_slug}/{service_slug} at {format_when(start, zone, language)} ({zone}): "
        f"{verdict}"
    )
    for reason in told.reasons:
        click.echo(f"  {reason.code}: {reason_message(reason, zone, language, words)}")
    for member in told.staff:
        name = found.member(member.staff_id).name
        if member.free:
            click.echo(f"  {name}: free")
        for reason in member.reasons:
            click.echo(f"  {name}: {reason.code}: {reason_message(reason, zone, language, words)}")


def _answer_pair(text: str) -> tuple[str, str]:
    field, sep, value = text.partition("=")
    if not sep or not field.strip():
        raise BookwiseError(f"--answer {text!r}: write FIELD=VALUE, e.g. position=engineering")
    return field.strip(), value.strip()


def _routing_answers(workflow: Any, given: dict[str, str], today: Any) -> dict[str, Any]:
    from bookwise.bookings.answers import InvalidAnswers
    from bookwise.bookings.services import routing_answers, routing_questions

    asked = {f.id for f in routing_questions(workflow)}
    others = sorted(set(given) - asked)
    if others:
        routes = ", ".join(sorted(asked)) or "nothing"
        raise BookwiseError(f"--answer {', '.join(others)}: this service routes on {routes}")
    try:
        checked: dict[str, Any] = routing_answers(workflow, given, today)
    except InvalidAnswers as exc:
        raise BookwiseError(f"--answer: {exc}") from None
    return checked


# --- keys ---------------------------------------------------------------------------------------


@cli.group()
def tokens() -> None:
    """Personal API tokens (docs/api.md, "Authentication"): create, list, revoke."""


@tokens.command("create")
@config_option
@click.option("--user", "email", required=True, help="The e-mail address of the token's user.")
@click.option("--calendar", "calendar_slug", required=True, help="The calendar it is for.")
@click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True)
@click.option("--name", default="", help="What it is for, as the lists show it.")
@click.pass_context
def tokens_create(
    ctx: click.Context,
    config_path: Path | None,
    email: str,
    calendar_slug: str,
    scope: str,
    name: str,
) -> None:
    """Create a token and print it, once: it is not kept, only a digest of it."""
    from bookwise.accounts.tokens import TokenError, create_token
    from bookwise.clock import system_clock
    from bookwise.database import open_database, require_current_schema
    from bookwise.db import unit_of_work

    database = open_database(settings_from(ctx, config_path))
    try:
        require_current_schema(database)
        with unit_of_work(database.sessions, write=True) as session:
            token, secret = create_token(session, email, calendar_slug, scope, name, system_clock())
            token_id = token.id
    except TokenError as exc:
        click.echo(f"bookwise tokens create: {exc}", err=True)
        ctx.exit(1)
    finally:
        database.dispose()
    click.echo(
        f"token {token_id} ({scope}, calendar {calendar_slug}); copy it now, it is not shown again:"
    )
    click.echo(secret)


@tokens.command("list")
@config_option
@click.pass_context
def tokens_list(ctx: click.Context, config_path: Path | None) -> None:
    """Every token: its id, user, calendar, scope, last use; never the secret."""
    from bookwise.accounts.tokens import tokens_of
    from bookwise.calendars.models import Calendar
    from bookwise.database import open_database, require_current_schema

    database = open_database(settings_from(ctx, config_path))
    try:
        require_current_schema(database)
        with database.sessions() as session:
            for token in tokens_of(session):
                calendar = session.get(Calendar, token.calendar_id)
                used = token.last_used_at.isoformat() if token.last_used_at else "never used"
                state = f"revoked {token.revoked_at.isoformat()}" if token.revoked_at else "active"
                click.echo(
                    f"{token.id}\t{token.prefix}...\t{token.user.email}\t"
                    f"{calendar.slug if calendar else '?'}\t{token.scope}\t{state}\t{used}"
                    f"\t{token.name}"
                )
    finally:
        database.dispose()


@tokens.command("revoke")
@config_option
@click.argument("token_id", type=int)
@click.pass_context
def tokens_revoke(ctx: click.Context, config_path: Path | None, token_id: int) -> None:
    """Revoke a token: refused from the next request on."""
    from bookwise.accounts.tokens import revoke_token
    from bookwise.clock import system_clock
    from bookwise.database import open_database, require_current_schema
    from bookwise.db import unit_of_work
    from bookwise.errors import NotFound

    database = open_database(settings_from(ctx, config_path))
    try:
        require_current_schema(database)
        with unit_of_work(database.sessions, write=True) as session:
            revoke_token(session, token_id, system_clock())
    except NotFound:
        click.echo(f"bookwise tokens revoke: there is no token {token_id}", err=True)
        ctx.exit(1)
    finally:
        database.dispose()
    click.echo(f"token {token_id} revoked")


@cli.group()
def keys() -> None:
    """The keys that encrypt the clients' answers in the database (docs/deployment.md)."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new encryption key (put it first in privacy.encryption_keys, then rotate)."""
    from bookwise.crypto import generate_key

    click.echo(generate_key())


@keys.command("rotate")
@config_option
@click.option(
    "--batch", default=500, show_default=True, type=click.IntRange(1, 100_000), help="Rows a step."
)
@click.pass_context
def keys_rotate(ctx: click.Context, config_path: Path | None, batch: int) -> None:
    """Encrypt every booking's answers again with the first key (and the plain ones of before,
    the waitlist's answers and the API's stored responses too), a batch at a time; then the older
    keys can be removed."""
    from bookwise.crypto import rotate_answers
    from bookwise.database import open_database, require_current_schema

    settings = settings_from(ctx, config_path)
    database = open_database(settings)
    require_current_schema(database)
    try:
        report = rotate_answers(database.engine, batch=batch)
    finally:
        database.dispose()
    click.echo(
        f"{report.total} booking(s): {report.rotated} re-encrypted with the first key, "
        f"{report.encrypted} encrypted for the first time"
    )
    if report.waitlist_entries:
        click.echo(f"{report.waitlist_entries} waitlist entry(ies) counted among them")
    if report.idempotency_keys:
        click.echo(
            f"{report.idempotency_keys} stored API response(s) (idempotency keys) counted "
            "among them"
        )
    if report.webhook_endpoints:
        click.echo(f"{report.webhook_endpoints} webhook endpoint secret(s) sealed again")


# --- retention and a client's data (docs/privacy.md) ---------------------------------------------


def _span(group: Any) -> str:
    if group.oldest_end is None:
        return ""
    return f"; booking ends {_when(group.oldest_end)} to {_when(group.newest_end)}"


@cli.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Print what is due; change nothing.")
@at_option
@click.pass_context
def retention(ctx: click.Context, config_path: Path | None, dry_run: bool, clock: Any) -> None:
    """Apply the workflows' retention now: per calendar and workflow, how many bookings lose
    their answers, clients are erased and messages purged (times in UTC). With --dry-run,
    print the same and change nothing."""
    from bookwise.config import secret_key_of
    from bookwise.database import open_database, require_current_schema
    from bookwise.privacy.retention import plan_retention, run_retention

    settings = settings_from(ctx, config_path)
    database = open_database(settings)
    try:
        require_current_schema(database)
        if dry_run:
            with database.sessions() as session:
                plan = plan_retention(session, clock())
        else:
            plan = run_retention(
                database.sessions, clock(), secret=secret_key_of(settings), actor="cli"
            )
    finally:
        database.dispose()
    for group in plan.groups:
        click.echo(
            f"{group.calendar}/{group.workflow}: {len(group.bookings)} booking(s) lose their "
            f"answers, {len(group.clients)} client(s) erased, {len(group.messages)} "
            f"message(s) purged{_entries(len(group.entries), ', {} erased')}{_span(group)}"
        )
    verb = "would be" if dry_run else "were"
    click.echo(
        f"{plan.answers} answer set(s), {plan.clients} client(s)"
        f"{_entries(plan.entries, ', {}')} and {plan.messages} message(s) {verb} removed"
        + (" (dry run: nothing changed)" if dry_run else "")
    )


def _entries(count: int, words: str) -> str:
    """``words`` with the number of waitlist entries, when there are any."""
    if not count:
        return ""
    return words.format(f"{count} waitlist entr{'y' if count == 1 else 'ies'}")


@cli.group()
def client() -> None:
    """A client's data: export it as JSON, or erase it (docs/privacy.md, "A client's rights")."""


def _calendar_of(session: Any, slug: str | None) -> Any:
    from sqlalchemy import select

    from bookwise.calendars.models import Calendar

    if slug is None:
        return None
    calendar = session.scalar(select(Calendar).where(Calendar.slug == slug))
    if calendar is None:
        raise BookwiseError(f"no calendar {slug!r}")
    return calendar


@client.command("export")
@config_option
@click.argument("email")
@click.option("--calendar", "calendar", metavar="SLUG", help="Only this calendar (default: all).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the JSON to this file (default: print it).",
)
@at_option
@click.pass_context
def client_export(
    ctx: click.Context,
    config_path: Path | None,
    email: str,
    calendar: str | None,
    output: Path | None,
    clock: Any,
) -> None:
    """Everything held about EMAIL (any case) as JSON: client records, bookings with answers,
    consents, history, messages. The export is audited."""
    import json

    from bookwise.database import open_database, require_current_schema
    from bookwise.db import unit_of_work
    from bookwise.privacy.clients import export_client, record_export

    settings = settings_from(ctx, config_path)
    database = open_database(settings)
    try:
        require_current_schema(database)
        with unit_of_work(database.sessions, write=True) as session:
            chosen = _calendar_of(session, calendar)
            data = export_client(session, chosen, email, clock())
            record_export(session, data, "cli")
    finally:
        database.dispose()
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if output is None:
        click.echo(text)
        return
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise BookwiseError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"{len(data['bookings'])} booking(s) of {len(data['clients'])} client record(s) "
               f"written to {output}")  # fmt: skip


@client.command("erase")
@config_option
@click.argument("email")
@click.option("--calendar", "calendar", metavar="SLUG", help="Erase in this calendar.")
@click.option("--all-calendars", is_flag=True, help="Erase in every calendar.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@at_option
@click.pass_context
def client_erase(
    ctx: click.Context,
    config_path: Path | None,
    email: str,
    calendar: str | None,
    all_calendars: bool,
    yes: bool,
    clock: Any,
) -> None:
    """Erase EMAIL (any case) in one calendar or all: future bookings cancelled (staff told,
    the client not), answers removed, name replaced by a pseudonym, address and phone removed,
    messages purged; the bookings stay as anonymous counts. Asks first unless --yes."""
    from bookwise.config import secret_key_of
    from bookwise.database import open_database, require_current_schema
    from bookwise.db import unit_of_work
    from bookwise.privacy.clients import erase_client, summarise_client

    if (calendar is None) == (not all_calendars):
        raise click.UsageError("give --calendar SLUG or --all-calendars (one of them)")
    settings = settings_from(ctx, config_path)
    database = open_database(settings)
    try:
        require_current_schema(database)
        now = clock()
        if not yes:
            with database.sessions() as session:
                held = summarise_client(session, _calendar_of(session, calendar), email, now)
            click.echo(
                f"{email.strip()} in {', '.join(held.calendars)}: {held.clients} client "
                f"record(s), {held.bookings} booking(s) ({held.future_bookings} to come, to be "
                f"cancelled; their staff are told), {held.answered} with answers, "
                f"{held.consents} consent(s) kept without identity, {held.messages} message(s)."
            )
            click.echo(
                "Answers, name, address and phone will be removed for good; the bookings stay "
                "as anonymous counts."
            )
            click.confirm("Erase?", abort=True)
        with unit_of_work(database.sessions, write=True) as session:
            report = erase_client(
                session,
                _calendar_of(session, calendar),
                email,
                "cli",
                now,
                secret=secret_key_of(settings),
                plugins=database.plugins,
            )
    finally:
        database.dispose()
    click.echo(
        f"erased in {', '.join(report.calendars)}: {len(report.clients)} client record(s) "
        f"now {', '.join(report.subjects)}; {report.bookings} booking(s) kept as counts, "
        f"{report.cancelled} cancelled, {report.answers} answer set(s) and {report.messages} "
        f"message(s) removed"
    )
    for uid in report.not_cancelled:
        click.echo(f"booking {uid} could not be cancelled (its workflow allows no staff "
                   f"cancellation): it keeps its time, for an erased client", err=True)  # fmt: skip


# --- entry point --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI, turning every error into one clear line and an exit code."""
    try:
        code = cli.main(args=argv, prog_name="bookwise", standalone_mode=False)
        if isinstance(code, int) and code:
            return code  # a command's ctx.exit(code), returned by click in this mode
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except ProblemsError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        return 1
    except BookwiseError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("BOOKWISE_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(
            f"internal error: {type(exc).__name__}: {message} (set BOOKWISE_DEBUG=1 to see where)",
            err=True,
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
