"""Message templates keep their versions: the history, a version's changes, restoring one."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from bookwise.audit.models import AuditEntry
from bookwise.notifications.delivery import stored_template
from bookwise.notifications.models import MessageTemplate, MessageTemplateVersion
from bookwise.notifications.rendering import TemplateParts
from bookwise.notifications.services import (
    InvalidTemplate,
    TemplateKey,
    effective_template,
    restore_template_version,
    save_template,
    template_versions,
)
from tests.admin.conftest import NOW, World, db, post

EN_CONFIRMED = "/admin/templates/confirmed/client/email/en"
HISTORY = EN_CONFIRMED + "/history"
KEY = TemplateKey("confirmed", "client", "email", "en")


def save(client: Any, text: str, subject: str = "Confirmed", **extra: str) -> Any:
    return post(client, EN_CONFIRMED, {"subject": subject, "text": text, "op": "save", **extra})


def versions(world: World, calendar: str | None = "acme") -> list[tuple[Any, ...]]:
    """(number, action, author, text, comment) of a template's versions, newest first."""
    with db(world) as session:
        found = template_versions(session, KEY, None if calendar is None else world.ids[calendar])
        return [(v.number, v.action, v.author, v.body_text, v.comment) for v in found]


def count_versions(world: World) -> int:
    with db(world) as session:
        return int(session.scalar(select(func.count()).select_from(MessageTemplateVersion)) or 0)


def original(world: World) -> TemplateParts:
    """The wording acme's messages use before any change (the shipped one)."""
    with db(world) as session:
        current = effective_template(session, KEY, world.ids["acme"])
        assert current is not None
        return current.parts


def test_two_saves_make_two_versions_with_their_authors(world: World) -> None:
    default = original(world).text
    client = world.login("admin")
    assert save(client, "Hello {{ client.name }}.\nSee you.").status_code == 302
    response = save(client, "Hello {{ client.name }}.\nSee you soon.", comment="Warmer")
    assert response.status_code == 302
    assert versions(world) == [
        (3, "saved", "admin@bw.example", "Hello {{ client.name }}.\nSee you soon.", "Warmer"),
        (2, "saved", "admin@bw.example", "Hello {{ client.name }}.\nSee you.", None),
        # The wording the first save replaced: there is always something to go back to.
        (1, "default", None, default, None),
    ]
    page = client.get(HISTORY).get_data(as_text=True)
    assert "v3" in page and "v2" in page and "v1" in page
    assert page.count("admin@bw.example") >= 2 and "Warmer" in page
    assert "edited" in page and "before the first change" in page
    # When, in the calendar's time zone (the application's clock: 09:00 UTC, 10:00 in Paris).
    assert "10:00" in page
    edit = client.get(EN_CONFIRMED).get_data(as_text=True)
    assert f'href="{HISTORY}"' in edit


def test_saving_the_same_wording_records_no_version(world: World) -> None:
    client = world.login("admin")
    # The wording in force, saved unchanged: still nothing to record.
    parts = original(world)
    unchanged = save(client, parts.text, subject=parts.subject or "", html=parts.html or "")
    assert unchanged.status_code == 302
    assert count_versions(world) == 0
    save(client, "Same {{ client.name }}")
    before = count_versions(world)
    assert before == 2
    assert save(client, "Same {{ client.name }}").status_code == 302
    assert count_versions(world) == before


def test_a_version_shows_the_changed_lines(world: World) -> None:
    client = world.login("admin")
    save(client, "Line one\nLine two\nLine three")
    save(client, "Line one\nLine 2\nLine three", subject="New subject")
    page = client.get(HISTORY + "/3").get_data(as_text=True)
    assert '<span class="del"><span class="sr-only">removed: </span>-Line two</span>' in page
    assert '<span class="add"><span class="sr-only">added: </span>+Line 2</span>' in page
    assert "+New subject" in page and "-Confirmed" in page
    assert "-Line one" not in page  # unchanged lines are context, not changes
    assert "Restore this version" not in page  # v3 is the current wording
    # Against another version, chosen with ?against=
    against = client.get(HISTORY + "/3?against=1").get_data(as_text=True)
    assert "Changes from v1 to v3" in against and "+Line 2" in against
    older = client.get(HISTORY + "/2").get_data(as_text=True)
    assert "Restore this version" in older and "Line two" in older


def test_restoring_a_version_makes_it_current_again(world: World) -> None:
    client = world.login("admin")
    save(client, "First wording {{ client.name }}")
    save(client, "Second wording {{ client.name }}")
    response = post(client, HISTORY + "/2/restore")
    assert response.status_code == 302 and response.headers["Location"].endswith(EN_CONFIRMED)
    numbers = versions(world)
    assert numbers[0] == (
        4,
        "restored",
        "admin@bw.example",
        "First wording {{ client.name }}",
        "Restored version 2",
    )
    with db(world) as session:
        used = stored_template(
            session, "confirmed", "client", "email", "en", "en", world.ids["acme"]
        )
        restored = session.scalar(
            select(AuditEntry).where(AuditEntry.action == "template.restored")
        )
    assert used is not None and used.text == "First wording {{ client.name }}"
    assert restored is not None and restored.details == {"version": 2, "new_version": 4}
    # Restoring the current wording again adds nothing.
    again = post(client, HISTORY + "/4/restore", follow_redirects=True)
    assert "This is already the current version." in again.get_data(as_text=True)
    assert len(versions(world)) == 4


def test_a_refused_template_writes_no_version(world: World) -> None:
    client = world.login("admin")
    response = save(client, "Hello {{ client.name ")
    assert response.status_code == 422
    assert count_versions(world) == 0
    save(client, "Valid {{ client.name }}")
    assert count_versions(world) == 2
    # A version that no longer renders (a variable since removed, say) is refused on restore,
    # and nothing is written: neither the template nor a version.
    with db(world) as session:
        session.add(
            MessageTemplateVersion(
                calendar_id=world.ids["acme"],
                name="confirmed",
                audience="client",
                channel="email",
                locale="en",
                number=3,
                body_text="{{ gone_variable }}",
                action="saved",
                created_at=NOW,
            )
        )
        session.commit()
    refused = post(client, HISTORY + "/3/restore", follow_redirects=True)
    assert "Version 3 cannot be restored" in refused.get_data(as_text=True)
    assert "gone_variable" in refused.get_data(as_text=True)
    assert len(versions(world)) == 3
    with db(world) as session:
        own = session.scalar(
            select(MessageTemplate).where(MessageTemplate.calendar_id == world.ids["acme"])
        )
        assert own is not None and own.body_text == "Valid {{ client.name }}"
        with pytest.raises(InvalidTemplate, match="gone_variable"):
            restore_template_version(session, KEY, world.ids["acme"], 3, author="x")


def test_resetting_records_a_version(world: World) -> None:
    default = original(world).text
    client = world.login("admin")
    save(client, "Own wording {{ client.name }}")
    assert post(client, EN_CONFIRMED + "/reset").status_code == 302
    assert [v[:4] for v in versions(world)] == [
        (3, "reset", "admin@bw.example", default),
        (2, "saved", "admin@bw.example", "Own wording {{ client.name }}"),
        (1, "default", None, default),
    ]
    page = client.get(HISTORY).get_data(as_text=True)
    assert "reset to the default" in page


def test_calendar_admins_see_only_their_calendars_history(world: World) -> None:
    admin = world.login("admin")
    save(admin, "Acme only wording", comment="acme's note")
    other = world.login("other")  # the admin of the calendar "private"
    own = other.get(HISTORY)
    assert own.status_code == 200
    body = own.get_data(as_text=True)
    assert "acme&#39;s note" not in body and "admin@bw.example" not in body
    assert "No change yet" in body
    assert other.get(HISTORY + "/2").status_code == 404
    assert post(other, HISTORY + "/1/restore").status_code == 404
    # The instance's wording is the superadmins'.
    for client in (admin, other):
        assert client.get(HISTORY + "?scope=instance").status_code == 403
        assert client.get(HISTORY + "/1?scope=instance").status_code == 403
        assert post(client, HISTORY + "/1/restore?scope=instance").status_code == 403
    viewer = world.login("viewer")
    assert viewer.get(HISTORY).status_code == 403
    assert versions(world, "private") == []
    assert len(versions(world)) == 2


def test_the_instance_has_its_own_history(world: World) -> None:
    superadmin = world.login("super")
    response = post(
        superadmin,
        EN_CONFIRMED + "?scope=instance",
        {"subject": "Everywhere", "text": "For every calendar", "op": "save", "scope": "instance"},
    )
    assert response.status_code == 302
    assert [v[:3] for v in versions(world, None)] == [
        (2, "saved", "super@bw.example"),
        (1, "default", None),
    ]
    assert versions(world) == []  # acme's copy has no history of its own
    page = superadmin.get(HISTORY + "?scope=instance").get_data(as_text=True)
    assert "For every calendar" not in page and "v2" in page
    assert "scope=instance" in re.search(r'href="([^"]*/history/1[^"]*)"', page).group(1)
    version = superadmin.get(HISTORY + "/2?scope=instance").get_data(as_text=True)
    assert "+For every calendar" in version


def test_bad_version_numbers_are_404(world: World) -> None:
    client = world.login("admin")
    assert client.get(HISTORY + "/1").status_code == 404  # no version yet
    save(client, "Some wording")
    assert client.get(HISTORY + "/1").status_code == 200
    assert client.get(HISTORY + "/9").status_code == 404
    assert client.get(HISTORY + "/99999999999999999999999").status_code == 404
    assert client.get(HISTORY + "/0").status_code == 404
    assert client.get(HISTORY + "/-1").status_code == 404
    assert post(client, HISTORY + "/9/restore").status_code == 404
    assert post(client, HISTORY + "/99999999999999999999999/restore").status_code == 404
    for against in ("abc", "²", "99999999999", "7"):
        assert client.get(HISTORY + f"/2?against={against}").status_code == 200
    assert client.get("/admin/templates/nothing/client/email/en/history").status_code == 404


def test_versions_are_numbered_per_template_in_one_transaction(world: World) -> None:
    """The services alone: each calendar's copy and the instance number their own versions, and
    a refused save leaves the session without a version."""
    with db(world) as session:
        acme, private = world.ids["acme"], world.ids["private"]
        for calendar_id, text in ((acme, "A1"), (acme, "A2"), (private, "P1"), (None, "I1")):
            save_template(
                session, KEY, TemplateParts(text=text), calendar_id=calendar_id, author="t", now=NOW
            )
        with pytest.raises(InvalidTemplate):
            save_template(
                session, KEY, TemplateParts(text="{% if %}"), calendar_id=acme, author="t"
            )
        numbers = {
            scope: [(v.number, v.body_text) for v in template_versions(session, KEY, scope)]
            for scope in (acme, private, None)
        }
        assert [n for n, _ in numbers[acme]] == [3, 2, 1]
        assert numbers[acme][:2] == [(3, "A2"), (2, "A1")]
        assert [n for n, _ in numbers[private]] == [2, 1]
        assert [n for n, _ in numbers[None]] == [2, 1] and numbers[None][0][1] == "I1"
        created = template_versions(session, KEY, acme)[0].created_at
        assert created == NOW
