"""Choosing a staff member for a booking when the client does not. Pure.

Strategies (the workflow's ``staff.assignment``):

- ``random``: any free member, uniformly.
- ``round_robin``: the free member whose last turn is the oldest (never assigned first), in pool
  order among equals: with everyone free, the pool in order, cycling. The turns are kept in the
  database, so every process continues the same rotation; a member who was busy when their turn
  came gets the next booking they are free for.
- ``least_busy``: the free member with the fewest bookings in the week around the slot; ties go
  to the rotation order.
- ``priority``: the first free member in pool order (the service's listed order).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AssignmentContext:
    """What a strategy may look at. ``free`` is in pool order, never empty. ``turns``: each
    member's last turn in the rotation (the service's turn number when last assigned; absent:
    never); ``last_assigned``: the member of the latest turn."""

    free: Sequence[int]
    pool: Sequence[int]
    last_assigned: int | None = None
    week_counts: Mapping[int, int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    turns: Mapping[int, int] = field(default_factory=dict)


Strategy = Callable[[AssignmentContext], int]


def rotation_order(context: AssignmentContext) -> list[int]:
    """The free members in rotation order: the oldest turn first (never assigned: before all),
    in pool order among equals. Without turns (a context made by hand), those after
    ``last_assigned`` first, then the rest."""
    pool = list(context.pool)
    if context.turns:
        place = {member: index for index, member in enumerate(pool)}
        free = [member for member in pool if member in context.free]
        return sorted(free, key=lambda m: (context.turns.get(m, 0), place[m]))
    if context.last_assigned in pool:
        position = pool.index(context.last_assigned) + 1
        pool = pool[position:] + pool[:position]
    return [member for member in pool if member in context.free]


def assign_random(context: AssignmentContext) -> int:
    return context.rng.choice(list(context.free))


def assign_round_robin(context: AssignmentContext) -> int:
    return rotation_order(context)[0]


def assign_least_busy(context: AssignmentContext) -> int:
    order = rotation_order(context)
    return min(order, key=lambda member: (context.week_counts.get(member, 0), order.index(member)))


def assign_priority(context: AssignmentContext) -> int:
    return next(member for member in context.pool if member in context.free)


STRATEGIES: dict[str, Strategy] = {
    "random": assign_random,
    "round_robin": assign_round_robin,
    "least_busy": assign_least_busy,
    "priority": assign_priority,
}


def assign(name: str, context: AssignmentContext) -> int:
    """The staff member that strategy ``name`` picks among ``context.free``."""
    if not context.free:
        raise ValueError("nobody is free")
    return STRATEGIES[name](context)
