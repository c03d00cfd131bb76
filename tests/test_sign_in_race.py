"""Sign-in attempts on one account at once, over real HTTP, on SQLite and PostgreSQL (issue 15).

15 clients sign in together, 14 with a wrong password and one with the right one: the attempts
are checked one after another (the account's row is locked, or SQLite's write lock held), so no
failed attempt is lost, the account ends locked after ``MAX_FAILED_LOGINS`` of them, and no client
gets a 500. A locked account answers exactly as an unknown address does.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from bookwise.accounts.models import User
from bookwise.accounts.services import MAX_FAILED_LOGINS, create_user
from bookwise.audit.models import AuditEntry

EMAIL = "race@bw.example"
PASSWORD = "correct-horse-battery-staple-42"
CLIENTS = 15


@pytest.fixture
def signing_app(app: Any) -> Any:
    # The clients post bare forms; CSRF is tested elsewhere (tests/test_web.py).
    app.config["WTF_CSRF_ENABLED"] = False
    # The database must count the attempts one by one on its own (rate limits count per web
    # process, and CLIENTS attempts on one account exceed them): tests/test_rate_limits.py.
    app.extensions["bookwise_limiter"].enabled = False
    with app.extensions["bookwise"].database.sessions() as session:
        create_user(session, EMAIL, PASSWORD)
        session.commit()
    return app


@pytest.fixture
def server(signing_app: Any) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, signing_app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _sign_in(url: str, password: str) -> int:
    body = urllib.parse.urlencode({"email": EMAIL, "password": password}).encode()
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(f"{url}/login", data=body), timeout=60) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def _user(app: Any) -> tuple[User, int]:
    with app.extensions["bookwise"].database.sessions() as session:
        user = session.scalar(sa.select(User).where(User.email == EMAIL))
        assert user is not None
        locks = session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "user.locked", AuditEntry.object_id == str(user.id))
        )
        return user, int(locks or 0)


def test_parallel_sign_ins_are_counted_one_by_one(
    server: str, signing_app: Any, now: datetime
) -> None:
    passwords = [f"wrong-password-{n}" for n in range(CLIENTS - 1)] + [PASSWORD]
    barrier = threading.Barrier(CLIENTS)
    answers: list[tuple[str, int]] = []
    lock = threading.Lock()

    def client(password: str) -> None:
        barrier.wait()
        status = _sign_in(server, password)
        with lock:
            answers.append((password, status))

    threads = [threading.Thread(target=client, args=(p,)) for p in passwords]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = Counter(status for _, status in answers)
    # A sign-in that waited longer than SIGN_IN_LOCK_TIMEOUT_MS for the others (a loaded
    # machine: each checks a scrypt hash in turn) is told to try again (503), never let in.
    assert set(statuses) <= {302, 401, 503}, statuses
    assert statuses[503] <= 3, statuses
    assert all(status in (401, 503) for password, status in answers if password != PASSWORD)
    user, locks = _user(signing_app)
    # Every failed attempt was counted: the fifth locked the account (once), none was lost.
    assert user.locked_until is not None and user.locked_until > now
    assert user.failed_logins == 0
    assert locks == 1
    right = dict(answers)[PASSWORD]
    # Signed in only if fewer than MAX_FAILED_LOGINS wrong ones came before it; then it was
    # recorded. Refused only if the account was already locked.
    assert (right == 302) == (user.last_login_at is not None)


def test_a_locked_account_answers_like_an_unknown_address(signing_app: Any) -> None:
    client = signing_app.test_client()
    for n in range(MAX_FAILED_LOGINS):
        wrong = client.post("/login", data={"email": EMAIL, "password": f"wrong-{n}"})
        assert wrong.status_code == 401
    assert _user(signing_app)[0].locked_until is not None

    locked = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
    unknown_email = "nobody@bw.example"
    unknown = client.post("/login", data={"email": unknown_email, "password": PASSWORD})

    assert locked.status_code == unknown.status_code == 401
    assert locked.headers.get("Retry-After") is None and unknown.headers.get("Retry-After") is None
    # The form shows back the address typed; apart from it, the pages are the same.
    locked_page = locked.get_data(as_text=True).replace(EMAIL, "ADDRESS")
    unknown_page = unknown.get_data(as_text=True).replace(unknown_email, "ADDRESS")
    assert locked_page == unknown_page
    assert "Wrong e-mail or password." in locked_page
