"""The web pages of the foundation: calendars, languages, sign-in, errors, headers."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.accounts.services import create_user
from bookwise.calendars.models import Calendar


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def make_user(app: Any, email: str = "ann@example.org", password: str = "a long password") -> None:
    with app.extensions["bookwise"].database.sessions() as session, session.begin():
        create_user(session, email, password, name="Ann")


def test_home_lists_published_calendars(client: Any, app: Any) -> None:
    with app.extensions["bookwise"].database.sessions() as session, session.begin():
        hidden = session.scalar(sa.select(Calendar).where(Calendar.slug == "bright-minds"))
        hidden.published = False
    page = client.get("/").get_data(as_text=True)
    assert "Cabinet médical des Lilas" in page
    assert "Bright Minds" not in page  # unpublished
    assert client.get("/bright-minds").status_code == 404
    # Kept out of search engines: not listed, but its link works.
    assert "Northwind Talent" not in page
    assert client.get("/northwind-hr").status_code == 200


def test_calendar_page_in_each_language(app: Any) -> None:
    german = app.test_client().get("/bright-minds", headers={"Accept-Language": "de-DE,de;q=0.9"})
    text = german.get_data(as_text=True)
    assert "Nachhilfestunde" in text and "1 Stunde und 30 Minuten" in text
    assert "Gruppe mit höchstens 6 Personen" in text
    page = app.test_client().get("/clinique-des-lilas?lang=fr").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "Consultation" in page and "20 minutes" in page and "Prestations" in page
    assert "Sur place" in page


def test_calendar_language_when_the_browser_says_nothing(app: Any) -> None:
    page = app.test_client().get("/clinique-des-lilas").get_data(as_text=True)
    assert '<html lang="fr">' in page


def test_language_choice_is_remembered(client: Any) -> None:
    response = client.get("/?lang=es")
    assert "bookwise_lang=es" in response.headers["Set-Cookie"]
    assert "Reservar una cita" in client.get("/").get_data(as_text=True)


def test_unknown_language_falls_back_quietly(client: Any) -> None:
    response = client.get("/northwind-hr?lang=xx")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Candidate interview" in response.get_data(as_text=True)


def test_noindex_when_indexing_is_off(client: Any) -> None:
    assert 'content="noindex, nofollow"' in client.get("/northwind-hr").get_data(as_text=True)
    assert "noindex" not in client.get("/clinique-des-lilas").get_data(as_text=True)


def test_pages_cannot_be_framed(client: Any) -> None:
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_pages_are_friendly_404s(client: Any) -> None:
    response = client.get("/no-such-calendar?lang=fr")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "Page introuvable" in page and "Traceback" not in page


def test_text_from_data_is_escaped(client: Any, app: Any) -> None:
    with app.extensions["bookwise"].database.sessions() as session, session.begin():
        calendar = session.scalar(sa.select(Calendar).where(Calendar.slug == "northwind-hr"))
        calendar.name = "<script>alert(1)</script>"
    page = client.get("/northwind-hr").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_oversized_bodies_are_refused(client: Any) -> None:
    response = client.post("/login", data={"email": "x" * 70_000})
    assert response.status_code == 413


def test_health(client: Any) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_sign_in_and_out(client: Any, app: Any) -> None:
    make_user(app)
    form = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login",
        data={
            "email": "ANN@example.org",
            "password": "a long password",
            "csrf_token": csrf_token(form),
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    account = client.get("/account").get_data(as_text=True)
    assert "Signed in as ann@example.org." in account
    # Signing out takes a POST with the form's token; a link cannot do it.
    client.get("/logout")
    assert client.get("/account").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(account)})
    assert client.get("/account").status_code == 302


def test_wrong_password_then_lockout(client: Any, app: Any) -> None:
    make_user(app)
    token = csrf_token(client.get("/login").get_data(as_text=True))
    for _ in range(5):
        response = client.post(
            "/login", data={"email": "ann@example.org", "password": "nope", "csrf_token": token}
        )
        assert response.status_code == 401
        assert "Wrong e-mail or password." in response.get_data(as_text=True)
    locked = client.post(
        "/login",
        data={"email": "ann@example.org", "password": "a long password", "csrf_token": token},
    )
    assert locked.status_code == 401
    # Locked: the right password is refused, in the words an unknown address gets (issue 15).
    assert "Wrong e-mail or password." in locked.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client: Any, app: Any) -> None:
    make_user(app)
    response = client.post(
        "/login", data={"email": "ann@example.org", "password": "a long password"}
    )
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    assert client.get("/account").status_code == 302


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "/\\evil.example", "https://evil.example", "/\\/evil.example"]
)
def test_no_open_redirect_after_sign_in(client: Any, app: Any, target: str) -> None:
    make_user(app)
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": "ann@example.org", "password": "a long password", "csrf_token": token},
    )
    assert response.headers["Location"] == "/account"


def test_error_pages_speak_the_visitors_language(client: Any) -> None:
    page = client.post("/northwind-hr?lang=fr").get_data(as_text=True)
    assert "Action non autorisée" in page
    assert "method is not allowed" not in page
