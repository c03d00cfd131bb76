"""Errors a person reads: one clear line each, naming the file, line and key where there is one."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a file: where it is and what to do about it.

    ``line`` and ``column`` are 1-based, as editors count them.
    """

    file: str
    line: int | None
    column: int | None
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"


class BookwiseError(Exception):
    """Base of every error meant for a person: ``str(error)`` is what they read."""


class ConfigError(BookwiseError):
    """The instance configuration cannot be used."""


class ProblemsError(BookwiseError):
    """One or more files are invalid; ``problems`` says where and why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=_problem_order)
        super().__init__("\n".join(str(p) for p in self.problems))


def N_(text: str) -> str:
    """Marks ``text`` for the catalogs without translating it here (pure code words its messages
    with this; the web layer translates them in the reader's language)."""
    return text


@dataclass(frozen=True)
class Message:
    """A message to translate later: its catalog id and the values it names."""

    text: str
    values: Mapping[str, object] = field(default_factory=dict)

    def translate(self, gettext: Callable[..., str]) -> str:
        return gettext(self.text, **self.values)


class InvalidInput(BookwiseError):
    """Values typed in a form cannot be saved: field name -> what is wrong with it."""

    def __init__(self, problems: Mapping[str, Message]) -> None:
        self.problems = dict(problems)
        super().__init__(
            "; ".join(f"{name}: {m.text % dict(m.values)}" for name, m in self.problems.items())
        )


class NotFound(BookwiseError):
    """A calendar, service, workflow or booking that the caller named does not exist."""


def did_you_mean(value: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` when one candidate is close to ``value`` (a likely typo), else
    ``""``."""
    value = str(value)
    options = sorted(candidates)
    close = difflib.get_close_matches(value, options, n=1, cutoff=0.75) or [
        option
        for option in options
        if min(len(option), len(value)) >= 3
        and (value.startswith(option) or option.startswith(value))
    ]
    return f"; did you mean {close[0]!r}?" if close else ""


def errors_only(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that stop a file from being used (warnings left out)."""
    return [p for p in problems if p.severity == "error"]


def _problem_order(problem: Problem) -> tuple[str, int, int]:
    return (problem.file, problem.line or 0, problem.column or 0)


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Problems ordered by file, then line and column, as a reader goes through the file."""
    return sorted(problems, key=_problem_order)
