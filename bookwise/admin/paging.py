"""Pages of a long list: the items of one page, and links to the others."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    def args(self, current: Mapping[str, Any], number: int) -> dict[str, Any]:
        """The query arguments of page ``number``, keeping the list's filters."""
        return {**{k: v for k, v in current.items() if k != "page"}, "page": number}


def paginate(session: Session, query: Select[T], args: Mapping[str, str], per_page: int) -> Page[T]:
    """One page of ``query`` (``?page=N``, from 1; out-of-range numbers show the nearest page)."""
    raw = args.get("page", "1")
    number = int(raw) if raw.isdigit() and len(raw) < 7 else 1
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // per_page))
    number = min(max(number, 1), pages)
    items = list(session.scalars(query.limit(per_page).offset((number - 1) * per_page)))
    return Page(items=items, number=number, per_page=per_page, total=total)
