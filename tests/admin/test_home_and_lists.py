"""The back office's home across calendars, its switcher, the lists' links to a booking, its page
layout (language, landmarks) and two wordings (a consent's language, a service open to all)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bookwise.calendars.editing import offer_workflow
from bookwise.calendars.models import Calendar, StaffMember
from bookwise.db import unit_of_work
from bookwise.workflows.editing import check_text
from bookwise.workflows.services import create_workflow
from bookwise.workflows.sources import check_context
from tests.admin.conftest import World, post

OPEN_DOOR = """\
id: open-door
name: {en: Open door, fr: Porte ouverte}
duration: 30m
booking_window: {min_notice: 0m, max_ahead: 400d}
notifications: []
"""


def page(client: Any, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def overview_row(html: str, name: str) -> str:
    """The line of the home's "All your calendars" table about calendar ``name``."""
    table = re.search(r'<table class="[^"]*calendars-overview.*?</table>', html, re.S)
    assert table, "no overview of the calendars on the home page"
    for row in re.findall(r"<tr.*?</tr>", table.group(0), re.S):
        if f">{name}</a>" in row:
            return str(row)
    raise AssertionError(f"no line for {name} in the overview")


# --- the home across calendars ----------------------------------------------------------------


def test_a_superadmins_home_shows_what_waits_in_every_calendar(world: World) -> None:
    client = world.login("super")
    # The home is on the private club, where nothing waits; two reviews wait at Acme.
    post(client, "/admin/switch", {"calendar_id": world.ids["private"]})
    html = page(client, "/admin/")
    assert "Private club" in re.search(r"<h1.*?</h1>", html, re.S).group(0)  # type: ignore[union-attr]
    assert "All your calendars" in html
    acme = overview_row(html, "Acme Advice")
    waiting = f'href="/admin/?calendar={world.ids["acme"]}#waiting"'
    assert waiting in acme
    assert re.search(re.escape(waiting) + r'>2<span class="sr-only">: Acme Advice, waiting', acme)
    private = overview_row(html, "Private club")
    assert 'aria-current="page"' in private and "#waiting" not in private


def test_a_line_of_the_overview_opens_that_calendars_home(world: World) -> None:
    client = world.login("super")
    post(client, "/admin/switch", {"calendar_id": world.ids["private"]})
    response = client.get(f"/admin/?calendar={world.ids['acme']}")
    assert response.status_code == 302 and response.location == "/admin/"
    html = page(client, "/admin/")
    assert "Acme Advice" in re.search(r"<h1.*?</h1>", html, re.S).group(0)  # type: ignore[union-attr]
    waiting = html.split('id="waiting"', 1)[1]
    for key in ("acme_review_ana", "acme_review_ben"):
        assert f'href="/admin/bookings/{world.ids[key]}"' in waiting


def test_the_overview_opens_no_calendar_the_user_may_not_see(world: World) -> None:
    client = world.login("other")  # admin of the private club only
    assert client.get(f"/admin/?calendar={world.ids['acme']}").status_code == 403
    assert client.get("/admin/?calendar=acme").status_code == 403


def test_a_user_of_one_calendar_has_no_overview(world: World) -> None:
    for who in ("admin", "ana"):
        html = page(world.login(who), "/admin/")
        assert "calendars-overview" not in html, who


def test_a_staff_member_counts_only_their_own_bookings(world: World) -> None:
    from bookwise.accounts.services import find_user, grant_role

    with unit_of_work(world.app.extensions["bookwise"].database.sessions) as session:
        ana = find_user(session, "ana@bw.example")
        assert ana is not None
        grant_role(session, ana, world.ids["private"], "viewer")
    html = page(world.login("ana"), "/admin/")
    acme = overview_row(html, "Acme Advice")
    # Two reviews wait at Acme, one of them Ana's: she sees hers.
    assert re.search(r'#waiting">1<span', acme), acme


# --- the calendar switcher ------------------------------------------------------------------


def test_the_switcher_switches_on_change_with_the_scripts_file_and_without_it(
    world: World,
) -> None:
    client = world.login("super")
    html = page(client, "/admin/")
    form = re.search(r'<form class="[^"]*calendar-switcher.*?</form>', html, re.S)
    assert form is not None
    # Without JavaScript, the button; with it, admin.js (no inline script: the CSP forbids it).
    assert '<button type="submit"' in form.group(0)
    assert 'aria-describedby="bw-calendar-hint"' in form.group(0)
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "/static/admin.js" in html
    script = page(client, "/static/admin.js")
    assert "calendar-switcher" in script and "submit()" in script


# --- lists: the client's name opens the booking -----------------------------------------------


def client_link(world: World, key: str, name: str = "Zoé Client") -> str:
    return f'<a href="/admin/bookings/{world.ids[key]}">{name}</a>'


def test_the_clients_name_opens_the_booking_in_the_bookings_list(world: World) -> None:
    html = page(world.login("admin"), "/admin/bookings/")
    assert client_link(world, "acme_consult") in html
    assert client_link(world, "acme_review_ana") in html
    # A name that looks like a formula is a link too, and still escaped.
    assert f'<a href="/admin/bookings/{world.ids["acme_visit"]}">=HYPERLINK(' in html
    assert '<a href="http://evil.example"' not in html
    assert f'data-href="/admin/bookings/{world.ids["acme_consult"]}"' in html


def test_the_clients_name_opens_the_booking_on_the_home_page(world: World) -> None:
    html = page(world.login("admin"), "/admin/")
    waiting = html.split('id="waiting"', 1)[1]
    assert client_link(world, "acme_review_ana") in waiting


def test_the_clients_name_opens_the_booking_among_a_staff_members_bookings(
    world: World,
) -> None:
    html = page(world.login("admin"), f"/admin/staff/{world.ids['staff_ana']}/remove")
    assert client_link(world, "acme_review_ana") in html


# --- the page: language and landmarks ---------------------------------------------------------


def test_back_office_pages_say_their_language_and_have_one_main(world: World) -> None:
    client = world.login("admin")
    for path, lang in (("/admin/", "en"), ("/admin/bookings/?lang=fr", "fr")):
        html = page(client, path)
        assert re.search(rf'<html lang="{lang}">', html), path
        assert html.count("<main") == 1 and "<header" in html
        body = html.split("<body>", 1)[1]
        # Nothing shown outside the landmarks but the skip link.
        outside = re.sub(
            r"<header.*?</header>|<main.*?</main>|<script.*?</script>", "", body, flags=re.S
        )
        skip = "Aller au contenu" if lang == "fr" else "Skip to content"
        assert re.sub(r"<[^>]+>|\s", "", outside) == skip.replace(" ", "")


# --- wording ----------------------------------------------------------------------------------


def test_a_consent_names_its_language_in_the_admins_language(world: World) -> None:
    client = world.login("admin")
    booking = world.ids["acme_consult"]
    html = page(client, f"/admin/bookings/{booking}")
    assert re.search(r"Given on [^<]+, in English\.", html)
    assert ", in en." not in html
    html = page(client, f"/admin/bookings/{booking}?lang=fr")
    assert re.search(r"Donné le [^<]+, langue : anglais\.", html)


def test_a_service_open_to_every_staff_member_says_so(world: World) -> None:
    database = world.app.extensions["bookwise"].database
    context, _ = check_context(world.app.extensions["bookwise"].settings)
    checked, problems = check_text(OPEN_DOOR, "open-door.yaml", context)
    assert checked is not None, problems
    with unit_of_work(database.sessions) as session:
        acme = session.get(Calendar, world.ids["acme"])
        assert acme is not None
        record = create_workflow(session, checked, acme.id, origin="admin", author="test")
        service = offer_workflow(session, acme, record, "test", None)
        session.flush()
        service_id = service.id
    html = page(world.login("admin"), f"/admin/services/{service_id}/")
    label = re.search(r'<label class="form-check-label" for="pool-tags">(.*?)</label>', html, re.S)
    assert label is not None
    assert "the tags" not in label.group(1) and "—" not in label.group(1)
    assert "Every bookable staff member: Ana, Ben, Cléo" in label.group(1)
    # Who is listed follows the bookings' rule: a member who takes no bookings is not.
    with unit_of_work(database.sessions) as session:
        ben = session.scalar(select(StaffMember).where(StaffMember.slug == "ben"))
        assert ben is not None
        ben.bookable = False
    html = page(world.login("admin"), f"/admin/services/{service_id}/")
    assert "Every bookable staff member: Ana, Cléo<" in html


def test_a_static_file_never_puts_back_an_older_session(world: World) -> None:
    """Sessions are permanent, so each answer sends the cookie again; a stylesheet requested
    beside the calendar switcher's POST and answered after it put back the calendar chosen
    before (seen in CI, in Chromium). Static files send no cookie; pages still refresh it."""
    client = world.login("super")
    before = client.get_cookie("session")
    assert before is not None
    post(client, "/admin/switch", {"calendar_id": world.ids["private"]})
    # A static file answered after the switch, to a request that left with the older cookie.
    client.set_cookie("session", before.value)
    static = client.get("/static/admin.css")
    assert static.status_code == 200
    assert "Set-Cookie" not in static.headers
    assert "Set-Cookie" in client.get("/admin/").headers  # a page still refreshes it
