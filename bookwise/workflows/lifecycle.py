"""The state machine of a booking: states, named transitions, and who may make them.

Pure: no Flask, no database. A workflow without ``states`` gets :data:`DEFAULT_LIFECYCLE`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Role = Literal["client", "staff", "admin", "system"]
ROLES: tuple[Role, ...] = ("client", "staff", "admin", "system")


@dataclass(frozen=True)
class State:
    name: str
    initial: bool = False
    final: bool = False
    holds_slot: bool = True
    label: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    name: str
    sources: tuple[str, ...]
    target: str
    by: tuple[Role, ...] = ("staff",)
    label: Mapping[str, str] = field(default_factory=dict)

    def allows(self, role: Role) -> bool:
        """Whether ``role`` may make this move. Calendar admins may do whatever staff may."""
        return role in self.by or (role == "admin" and "staff" in self.by)


class TransitionNotAllowed(Exception):
    """The move is unknown, not possible from the current state, or not for this role."""

    def __init__(self, message: str, code: str = "transition_not_allowed") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Lifecycle:
    states: Mapping[str, State]
    transitions: tuple[Transition, ...]

    @property
    def initial(self) -> str:
        return next(s.name for s in self.states.values() if s.initial)

    def holds_slot(self, state: str) -> bool:
        """Whether a booking in ``state`` keeps its time taken."""
        return self.states[state].holds_slot if state in self.states else False

    @property
    def needs_approval(self) -> bool:
        """A booking starts waiting: staff move it from the initial state to one that goes on
        (``requested`` -> ``approve`` -> ``confirmed``), not only to an end."""
        initial = self.initial
        return any(
            initial in t.sources
            and "client" not in t.by
            and t.target in self.states
            and not self.states[t.target].final
            for t in self.transitions
        )

    def is_final(self, state: str) -> bool:
        return state in self.states and self.states[state].final

    def available(self, state: str, role: Role | None = None) -> list[Transition]:
        """Transitions that leave ``state`` (and that ``role`` may make, when given)."""
        return [
            t for t in self.transitions if state in t.sources and (role is None or t.allows(role))
        ]

    def find(self, state: str, name: str, role: Role) -> Transition:
        """The move ``name`` out of ``state`` for ``role``; else :class:`TransitionNotAllowed`."""
        named = [t for t in self.transitions if t.name == name]
        if not named:
            raise TransitionNotAllowed(f"this booking has no action {name!r}", "unknown_transition")
        from_here = [t for t in named if state in t.sources]
        if not from_here:
            raise TransitionNotAllowed(
                f"{name!r} is not possible while the booking is {state!r}", "invalid_state"
            )
        for transition in from_here:
            if transition.allows(role):
                return transition
        raise TransitionNotAllowed(f"{name!r} cannot be done by {role}", "forbidden")

    @classmethod
    def from_definition(
        cls,
        states: Mapping[str, Mapping[str, Any] | None],
        transitions: Iterable[Mapping[str, Any]],
    ) -> Lifecycle:
        """Build from the ``states`` and ``transitions`` keys of a (validated) workflow."""
        built: dict[str, State] = {}
        for name, given in states.items():
            options = given or {}
            final = bool(options.get("final", False))
            built[name] = State(
                name=name,
                initial=bool(options.get("initial", False)),
                final=final,
                holds_slot=bool(options.get("holds_slot", not final)),
                label=_text(options.get("label")),
            )
        moves = tuple(
            Transition(
                name=t["name"],
                sources=one_or_many(t["from"]),
                target=t["to"],
                by=one_or_many(t.get("by", "staff")),
                label=_text(t.get("label")),
            )
            for t in transitions
        )
        return cls(states=MappingProxyType(built), transitions=moves)


def one_or_many(value: Any) -> tuple[Any, ...]:
    """The language lets one value stand for a list of one: ``to: client`` = ``to: [client]``."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def _text(value: Any) -> Mapping[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"": value}
    return dict(value)


DEFAULT_STATES: dict[str, dict[str, Any]] = {
    "confirmed": {"initial": True},
    "cancelled": {"final": True},
    "completed": {"final": True},
    "no_show": {"final": True},
}

DEFAULT_TRANSITIONS: list[dict[str, Any]] = [
    {"name": "cancel", "from": "confirmed", "to": "cancelled", "by": ["client", "staff"]},
    {"name": "complete", "from": "confirmed", "to": "completed", "by": ["staff", "system"]},
    {"name": "no_show", "from": "confirmed", "to": "no_show", "by": "staff"},
]

DEFAULT_LIFECYCLE = Lifecycle.from_definition(DEFAULT_STATES, DEFAULT_TRANSITIONS)

# Events that are not the entry into a state.
RESCHEDULED = "rescheduled"
REMINDER = "reminder"
FOLLOW_UP = "follow_up"
TIMED_EVENTS = (REMINDER, FOLLOW_UP)

# Bookings that staff approve first: requested, then confirmed or declined.
APPROVAL_STATES: dict[str, dict[str, Any]] = {
    "requested": {"initial": True},
    "confirmed": {},
    "declined": {"final": True},
    "cancelled": {"final": True},
    "completed": {"final": True},
    "no_show": {"final": True},
}

APPROVAL_TRANSITIONS: list[dict[str, Any]] = [
    {"name": "approve", "from": "requested", "to": "confirmed", "by": "staff"},
    {"name": "decline", "from": "requested", "to": "declined", "by": "staff"},
    {
        "name": "cancel",
        "from": ["requested", "confirmed"],
        "to": "cancelled",
        "by": ["client", "staff"],
    },
    {"name": "complete", "from": "confirmed", "to": "completed", "by": ["staff", "system"]},
    {"name": "no_show", "from": "confirmed", "to": "no_show", "by": "staff"},
]
