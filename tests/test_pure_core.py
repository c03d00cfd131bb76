"""The pure core (workflow language, availability engine, state machine, template rendering,
answers, the plugin API's classes) imports nothing of Flask: it runs without an app."""

from __future__ import annotations

import subprocess
import sys

PURE = [
    "bookwise.workflows.language",
    "bookwise.workflows.loader",
    "bookwise.workflows.lifecycle",
    "bookwise.workflows.scenario_tests",
    "bookwise.availability.engine",
    "bookwise.availability.reasons",
    "bookwise.availability.assignment",
    "bookwise.bookings.answers",
    "bookwise.bookings.recurrence",
    "bookwise.notifications.rendering",
    "bookwise.notifications.quiet",
    "bookwise.plugins.api",
    "bookwise.hookspecs",
]


def test_the_pure_core_imports_no_flask() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in PURE)
        + "web = ('flask', 'flask_admin', 'flask_login', 'werkzeug')\n"
        + "print(','.join(m for m in sys.modules if m.split('.')[0] in web))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
