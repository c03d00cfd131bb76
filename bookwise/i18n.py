"""Languages: which one a request is served in, and where the catalogs are.

The order, first match wins: the ``lang`` parameter (then remembered in a cookie), the cookie,
the browser's Accept-Language, the calendar's default language, the instance's default.

Messages come in a language (``en``); dates and times follow a region too (:func:`format_locale`):
a British browser reads "en" text with 24-hour times and the day before the month.
"""

from __future__ import annotations

from typing import Any

import flask_babel
from babel import Locale, UnknownLocaleError
from flask import g, request
from flask_babel import Babel

from bookwise.web import instance

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
    best = _best_offered(offered)
    if best:
        return best
    calendar_locale = g.get("calendar_locale")
    if calendar_locale in offered:
        return str(calendar_locale)
    default: str = instance().settings.default_locale
    return default


def _best_offered(offered: tuple[str, ...]) -> str | None:
    """The offered language the browser prefers: its languages in order of preference, each
    matched exactly or by its language alone (``fr-CA`` is served ``fr`` before ``en;q=0.5``)."""
    for tag, _quality in request.accept_languages:
        for candidate in (tag, tag.replace("_", "-").split("-")[0]):
            for code in offered:
                if code.lower().replace("_", "-") == candidate.lower():
                    return code
    return None


def format_locale() -> Locale:
    """The locale that dates, times and numbers of the current request are written in: the
    request's language, with the region of the first language of the browser's Accept-Language
    that is this one (``en-GB`` -> en_GB, ``fr-CA`` -> fr_CA), else the language alone."""
    if "format_locale" not in g:
        from flask_babel import get_locale

        language = Locale.parse(str(get_locale()))
        chosen = language
        for tag, _quality in request.accept_languages:
            try:
                candidate = Locale.parse(tag, sep="-")
            except (ValueError, TypeError, UnknownLocaleError):
                continue  # "*", a typing mistake, a region Babel has no data for
            if candidate.language == language.language:
                chosen = candidate
                break
        g.format_locale = chosen
    found: Locale = g.format_locale
    return found


def language_name(code: str, in_locale: str | Locale) -> str:
    """The name of the language ``code`` in ``in_locale``: "en" -> "English", "anglais" (fr);
    the code itself when Babel does not know it."""
    try:
        name = Locale.parse(code).get_display_name(in_locale)
    except (ValueError, TypeError, UnknownLocaleError):
        return code
    return name or code


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
