"""Templates, outbox, audit log, reports, users and the user's own account."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from bookwise.accounts.models import CalendarRole, User
from bookwise.audit.models import AuditEntry
from bookwise.notifications.delivery import stored_template
from bookwise.notifications.models import MessageTemplate, Notification
from tests.admin.conftest import NOW, PASSWORD, World, db, post, token

FR_CONFIRMED = "/admin/templates/confirmed/client/email/fr"


def test_a_calendar_admin_edits_its_own_copy_of_a_template(world: World) -> None:
    client = world.login("admin")
    page = client.get(FR_CONFIRMED).get_data(as_text=True)
    assert "client.name" in page and "Preview with a sample booking" in page
    response = post(
        client,
        FR_CONFIRMED,
        {
            "subject": "C'est confirmé, {{ client.name }} !",
            "text": "Bonjour {{ client.name }}, à {{ booking.start }}.",
            "op": "save",
        },
    )
    assert response.status_code == 302
    with db(world) as session:
        own = stored_template(
            session, "confirmed", "client", "email", "fr", "en", world.ids["acme"]
        )
        other = stored_template(
            session, "confirmed", "client", "email", "fr", "en", world.ids["private"]
        )
        row = session.scalar(
            select(MessageTemplate).where(MessageTemplate.calendar_id == world.ids["acme"])
        )
    assert own is not None and own.subject == "C'est confirmé, {{ client.name }} !"
    assert other is None  # the other calendar keeps the default
    assert row is not None and row.updated_by == "admin@bw.example"
    listing = client.get("/admin/templates/").get_data(as_text=True)
    assert "edited here" in listing
    reset = post(client, FR_CONFIRMED + "/reset")
    assert reset.status_code == 302
    with db(world) as session:
        assert (
            stored_template(session, "confirmed", "client", "email", "fr", "en", world.ids["acme"])
            is None
        )


def test_a_broken_template_is_refused_beside_its_part(world: World) -> None:
    client = world.login("admin")
    for subject, text, expected in (
        ("Ok", "Bonjour {{ client.name ", "text"),
        ("{{ booking.start }", "Bonjour", "subject"),
        ("Ok", "{{ ''.__class__.__mro__ }}", "not allowed"),
        ("Ok", "{{ unknown_thing }}", "unknown variable"),
    ):
        response = post(client, FR_CONFIRMED, {"subject": subject, "text": text, "op": "save"})
        assert response.status_code == 422, (subject, text)
        assert expected in response.get_data(as_text=True)
    with db(world) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(MessageTemplate)
                .where(MessageTemplate.calendar_id.is_not(None))
            )
            == 0
        )


def test_the_live_preview(world: World) -> None:
    client = world.login("admin")
    response = post(
        client,
        FR_CONFIRMED + "/preview",
        {"subject": "Pour {{ client.name }}", "text": "Le {{ booking.start }}"},
    )
    data = response.get_json()
    assert data["problems"] == [] and data["subject"] == "Pour Zoé Martin"
    assert data["text"].startswith("Le mardi 24 novembre 2026")
    broken = post(client, FR_CONFIRMED + "/preview", {"text": "{% if %}"}).get_json()
    assert broken["problems"]


def test_instance_wide_templates_are_for_superadmins(world: World) -> None:
    admin = world.login("admin")
    assert admin.get(FR_CONFIRMED + "?scope=instance").status_code == 403
    superadmin = world.login("super")
    response = superadmin.post(
        FR_CONFIRMED + "?scope=instance",
        data={
            "csrf_token": token(superadmin),
            "subject": "Partout",
            "text": "Bonjour",
            "op": "save",
            "scope": "instance",
        },
    )
    assert response.status_code == 302
    with db(world) as session:
        edited = stored_template(
            session, "confirmed", "client", "email", "fr", "en", world.ids["private"]
        )
    assert edited is not None and edited.subject == "Partout"


def test_retry_a_message_that_was_not_delivered(world: World) -> None:
    client = world.login("admin")
    page = client.get("/admin/outbox/?state=dead").get_data(as_text=True)
    assert "acme-client@client.example" in page and "connection refused" in page
    response = post(client, f"/admin/outbox/{world.ids['message_acme']}/retry")
    assert response.status_code == 302
    with db(world) as session:
        message = session.get(Notification, world.ids["message_acme"])
        assert message is not None and message.state == "pending"
        assert message.due_at == NOW  # due at once, by the application's clock
        audited = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "message.retry")
        )
    assert audited == 1
    again = post(client, f"/admin/outbox/{world.ids['message_acme']}/retry", follow_redirects=True)
    assert "Only failed or undelivered messages" in again.get_data(as_text=True)


def test_the_audit_log_shows_who_did_what(world: World) -> None:
    client = world.login("admin")
    post(client, f"/admin/outbox/{world.ids['message_acme']}/retry")
    page = client.get("/admin/audit/").get_data(as_text=True)
    assert "message.retry" in page and "admin@bw.example" in page
    filtered = client.get("/admin/audit/?action=message.retry").get_data(as_text=True)
    assert "1 entry" in filtered


def test_the_dashboard_and_the_export(world: World) -> None:
    client = world.login("admin")
    page = client.get("/admin/reports/?start=2026-11-20&end=2026-12-10").get_data(as_text=True)
    assert "<svg" in page and "Bookings per day" in page
    export = client.get("/admin/reports/export.tsv?start=2026-11-20&end=2026-12-10")
    assert export.status_code == 200
    assert export.headers["Content-Type"].startswith("text/tab-separated-values")
    text = export.get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    header = rows[0]
    assert "Topic (topic)" in header and "Health note (health)" in header
    names = [row[header.index("Client")] for row in rows[1:]]
    # A name that looks like a formula is neutralised.
    assert '\'=HYPERLINK("http://evil.example")' in names
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert len(rows) == 5
    as_csv = client.get("/admin/reports/export.csv?start=2026-11-20&end=2026-12-10")
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    assert next(iter(csv.reader(io.StringIO(as_csv.get_data().decode("utf-8-sig"))))) == header
    # The default period is the last 120 days: the coming bookings are not in it.
    default = client.get("/admin/reports/export.tsv").get_data().decode("utf-8-sig")
    assert len(default.strip().splitlines()) == 1


def test_a_viewer_exports_without_sensitive_answers(world: World) -> None:
    client = world.login("viewer")
    text = client.get("/admin/reports/export.tsv?start=2026-11-20&end=2026-12-10").get_data()
    header = text.decode("utf-8-sig").splitlines()[0]
    assert "Topic (topic)" in header and "health" not in header


def test_users_and_roles(world: World) -> None:
    client = world.login("super")
    created = post(
        client, "/admin/users/new", {"email": "new@bw.example", "name": "New", "password": PASSWORD}
    )
    assert created.status_code == 302
    with db(world) as session:
        user = session.scalar(select(User).where(User.email == "new@bw.example"))
        assert user is not None
        user_id = user.id
    role = post(
        client,
        f"/admin/users/{user_id}/",
        {"calendar_id": world.ids["acme"], "role": "staff", "staff_slug": "nobody"},
    )
    assert role.status_code == 422 and "No staff member nobody" in role.get_data(as_text=True)
    role = post(
        client,
        f"/admin/users/{user_id}/",
        {"calendar_id": world.ids["acme"], "role": "staff", "staff_slug": "cleo"},
    )
    assert role.status_code == 302
    with db(world) as session:
        granted = session.scalar(select(CalendarRole).where(CalendarRole.user_id == user_id))
        assert granted is not None and granted.staff_id == world.ids["staff_cleo"]
    short = post(client, "/admin/users/new", {"email": "x@bw.example", "password": "short"})
    assert short.status_code == 422
    assert post(client, f"/admin/users/{user_id}/active").status_code == 302
    with db(world) as session:
        assert session.get(User, user_id).active is False  # type: ignore[union-attr]


def test_change_password_signs_out_other_sessions(world: World) -> None:
    first = world.login("admin")
    second = world.login("admin")
    page = first.get("/account/password")
    assert page.status_code == 200
    wrong = post(
        first,
        "/account/password",
        {"current": "not it", "new": "a much longer password", "repeat": "a much longer password"},
    )
    assert wrong.status_code == 422
    assert "The current password is not right" in wrong.get_data(as_text=True)
    mismatch = post(
        first,
        "/account/password",
        {"current": PASSWORD, "new": "a much longer password", "repeat": "another one here"},
    )
    assert mismatch.status_code == 422
    done = post(
        first,
        "/account/password",
        {"current": PASSWORD, "new": "a much longer password", "repeat": "a much longer password"},
    )
    assert done.status_code == 302
    assert first.get("/admin/").status_code == 200
    assert second.get("/admin/").status_code == 302  # the other session ended


def test_sign_in_is_throttled_after_repeated_failures(world: World) -> None:
    client = world.app.test_client()
    for _ in range(5):
        response = client.post(
            "/login",
            data={
                "email": "admin@bw.example",
                "password": "wrong",
                "csrf_token": token(client, "/login"),
            },
        )
        assert response.status_code == 401
    locked = client.post(
        "/login",
        data={
            "email": "admin@bw.example",
            "password": PASSWORD,
            "csrf_token": token(client, "/login"),
        },
    )
    assert locked.status_code == 401
    # Locked: the right password is refused, in the words an unknown address gets (issue 15).
    assert "Wrong e-mail or password." in locked.get_data(as_text=True)


def test_the_session_cookie_is_protected(world: World) -> None:
    client = world.app.test_client()
    response = client.post(
        "/login",
        data={
            "email": "admin@bw.example",
            "password": PASSWORD,
            "csrf_token": token(client, "/login"),
        },
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # Back-office pages carry a nonce for Flask-Admin's scripts, and nothing else inline.
    page = client.get("/admin/")
    policy = page.headers["Content-Security-Policy"]
    assert "'nonce-" in policy and "unsafe-inline" not in policy
    assert page.headers["X-Frame-Options"] == "DENY"


def test_scheduled_jobs_are_listed_for_superadmins(world: World) -> None:
    from bookwise.scheduling.core import all_jobs
    from bookwise.scheduling.services import JobRunner

    bookwise = world.app.extensions["bookwise"]
    jobs = all_jobs(bookwise.settings, bookwise.database.plugins)
    runner = JobRunner(bookwise.settings, bookwise.database, jobs, clock=lambda: NOW)
    runner.run_now("complete-past")
    page = world.login("super").get("/admin/jobs/").get_data(as_text=True)
    assert "deliver-outbox" in page and "complete-past" in page
    assert "done" in page  # complete-past ran
    assert world.login("admin").get("/admin/jobs/").status_code == 403
