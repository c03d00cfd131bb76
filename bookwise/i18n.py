"""Languages: which one a request is served in, and where the catalogs are.

The order, first match wins: the ``lang`` parameter (then remembered in a cookie), the cookie,
the browser's Accept-Language, the calendar's default language, the instance's default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask_babel
from flask import g, request
from flask_babel import Babel

from bookwise.web import instance

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANG_COOKIE = "bookwise_lang"

babel = Babel()


def offered_locales() -> tuple[str, ...]:
    locales: tuple[str, ...] = instance().settings.locales
    return locales


def select_locale() -> str:
    """The language of the current request (see the module docstring)."""
    offered = offered_locales()
    asked = request.args.get("lang")
    if asked in offered:
        g.remember_lang = asked
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in offered:
        return cookie
    best = request.accept_languages.best_match(offered)
    if best:
        return best
    calendar_locale = g.get("calendar_locale")
    if calendar_locale in offered:
        return str(calendar_locale)
    default: str = instance().settings.default_locale
    return default


def language_choices() -> list[dict[str, str]]:
    """The offered languages, each named in itself ("français", "Deutsch"), for the switcher."""
    from babel import Locale
    from flask_babel import get_locale

    current = str(get_locale())
    return [
        {
            "code": code,
            "name": (Locale.parse(code).get_display_name(code) or code).capitalize(),
            "current": "true" if code == current else "",
        }
        for code in offered_locales()
    ]


def gettext(string: str, **variables: Any) -> str:
    """Flask-Babel's ``gettext``, typed: the text in the request's language."""
    return str(flask_babel.gettext(string, **variables))


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """Flask-Babel's ``ngettext``, typed; ``%(num)d`` is filled in."""
    return str(flask_babel.ngettext(singular, plural, num, **variables))


def contact_label(field_id: str) -> str:
    """The platform's own label of a contact field a workflow did not word itself."""
    labels = {"name": gettext("Your name"), "email": gettext("Your e-mail address")}
    return labels.get(field_id, field_id)
