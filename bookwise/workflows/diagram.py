"""A booking's lifecycle drawn as SVG on the server: its steps as boxes, left to right in the
order a booking reaches them, and its actions as labelled arrows. No script, no CDN; the words
are escaped, and the page lists the same moves as text for those who do not see the picture.

Pure: plain data in, markup out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

BOX_WIDTH = 150
BOX_HEIGHT = 40
COLUMN_GAP = 90
ROW_GAP = 28
MARGIN = 12


@dataclass(frozen=True)
class Step:
    name: str
    label: str
    initial: bool = False
    final: bool = False


@dataclass(frozen=True)
class Move:
    label: str
    sources: tuple[str, ...]
    target: str


def _columns(steps: Sequence[Step], moves: Sequence[Move]) -> dict[str, int]:
    """Each step's column: how many moves it is from the first step (unreached steps last)."""
    names = [step.name for step in steps]
    start = next((step.name for step in steps if step.initial), names[0] if names else None)
    column: dict[str, int] = {}
    if start is not None:
        column[start] = 0
        frontier = [start]
        while frontier:
            following = []
            for name in frontier:
                for move in moves:
                    if name in move.sources and move.target in names and move.target not in column:
                        column[move.target] = column[name] + 1
                        following.append(move.target)
            frontier = following
    last = max(column.values(), default=-1) + 1
    for name in names:
        column.setdefault(name, last)
    return column


def lifecycle_svg(steps: Sequence[Step], moves: Sequence[Move], *, title: str) -> str:
    """The steps in columns, an arrow per move and source (its label on the arrow)."""
    column = _columns(steps, moves)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for step in steps:
        index = column[step.name]
        row = rows.get(index, 0)
        rows[index] = row + 1
        place[step.name] = (
            MARGIN + index * (BOX_WIDTH + COLUMN_GAP),
            MARGIN + row * (BOX_HEIGHT + ROW_GAP),
        )
    width = MARGIN * 2 + (max(column.values(), default=0) + 1) * (BOX_WIDTH + COLUMN_GAP)
    height = MARGIN * 2 + max(rows.values(), default=1) * (BOX_HEIGHT + ROW_GAP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lifecycle" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>'
        "</defs>",
    ]
    for move in moves:
        if move.target not in place:
            continue
        for source in move.sources:
            if source in place:
                parts.append(_arrow(place[source], place[move.target], move.label))
    for step in steps:
        x, y = place[step.name]
        kind = "initial" if step.initial else "final" if step.final else "step"
        parts.append(
            f'<g class="{kind}"><rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" '
            f'rx="{BOX_HEIGHT // 2 if step.final else 6}"/>'
            f'<text x="{x + BOX_WIDTH // 2}" y="{y + BOX_HEIGHT // 2 + 5}" text-anchor="middle">'
            f"{escape(_shorten(step.label))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _arrow(start: tuple[int, int], end: tuple[int, int], label: str) -> str:
    """A move: straight from the right of one box to the left of the next column's; a curve
    over the boxes when it goes back or stays in its column."""
    (x1, y1), (x2, y2) = start, end
    mid_y1, mid_y2 = y1 + BOX_HEIGHT // 2, y2 + BOX_HEIGHT // 2
    if x2 > x1:
        sx, ex = x1 + BOX_WIDTH, x2
        path = f"M{sx},{mid_y1} C{sx + 40},{mid_y1} {ex - 40},{mid_y2} {ex},{mid_y2}"
        lx, ly = (sx + ex) / 2, (mid_y1 + mid_y2) / 2 - 6
    else:
        sx, ex = x1 + BOX_WIDTH // 2, x2 + BOX_WIDTH // 2
        top = min(y1, y2) - ROW_GAP + 4
        path = f"M{sx},{y1} C{sx},{top} {ex},{top} {ex},{y2}"
        lx, ly = (sx + ex) / 2, top + 10
    return (
        f'<g class="move"><path d="{path}" fill="none" marker-end="url(#arrow)"/>'
        f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle">{escape(_shorten(label, 22))}</text>'
        f"<title>{escape(label)}</title></g>"
    )


def _shorten(label: str, limit: int = 20) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
