"""Bookwise.

``from bookwise import create_app`` gives the application factory. It is imported on first use,
not here: the pure core (workflow language, availability engine, ...) lives in this package and
must import without Flask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bookwise.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from bookwise.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
