"""Publishing a scenario: a page that asks in which calendars (those the user administers) and,
in the current calendar, with which staff, and says what happens to the bookings already made
(they keep the version they were made with; new bookings use the latest).

Each chosen calendar offers and publishes the scenario
(:func:`~bookwise.calendars.editing.offer_in_calendar`); the current calendar's pool becomes the
staff ticked, in their order (:func:`~bookwise.calendars.editing.update_service`). Both services
audit what they change. Nothing is written while a choice is wrong; a calendar the user does not
administer is refused (403, recorded). Stopping is a separate, explicit button.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import redirect, request, url_for
from flask_admin import expose
from flask_babel import get_locale
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bookwise.admin.access import deny
from bookwise.admin.base import ActionForm, AdminView
from bookwise.admin.display import workflow_name
from bookwise.bookings.models import Booking
from bookwise.calendars.editing import offer_in_calendar, update_service
from bookwise.calendars.models import Calendar, Service, StaffMember
from bookwise.errors import InvalidInput
from bookwise.i18n import gettext, ngettext
from bookwise.web import now
from bookwise.workflows.language import Workflow
from bookwise.workflows.models import WorkflowRecord, WorkflowVersion
from bookwise.workflows.scenario_tests import run_cases
from bookwise.workflows.services import latest_version, workflow_of


def service_in(calendar: Calendar, record: WorkflowRecord) -> Service | None:
    """The calendar's service of this scenario, when it offers it."""
    return next((s for s in calendar.services if s.workflow_id == record.id), None)


def bookable_staff(
    calendar: Calendar, service: Service | None, workflow: Workflow
) -> tuple[list[StaffMember], list[int]]:
    """The members who may take the scenario's bookings here (bookable, or already in its pool),
    its pool first in order; and those to tick: its listed pool, else everyone its tags pick."""
    listed = [link.staff_id for link in service.staff_links] if service is not None else []
    members = [
        m
        for m in calendar.staff
        if m.removed_at is None and ((m.bookable and m.invitation == "accepted") or m.id in listed)
    ]
    members.sort(key=lambda m: (m.id not in listed, listed.index(m.id) if m.id in listed else 0))
    tagged = [m.id for m in members if set(workflow.staff.tags) <= set(m.tags)]
    return members, listed or tagged


def kept_versions(
    session: Session, record: WorkflowRecord, calendar_ids: Sequence[int], moment: datetime
) -> dict[int, int]:
    """Version number -> how many bookings of the scenario in these calendars, not yet ended at
    ``moment`` and still holding their time, were made with it."""
    rows = session.execute(
        select(WorkflowVersion.number, func.count(Booking.id))
        .join(Booking, Booking.workflow_version_id == WorkflowVersion.id)
        .join(Service, Service.id == Booking.service_id)
        .where(
            Service.workflow_id == record.id,
            Service.calendar_id.in_(calendar_ids),
            Booking.end_at > moment,
            Booking.holds_slot,
        )
        .group_by(WorkflowVersion.number)
        .order_by(WorkflowVersion.number)
    )
    return {row[0]: row[1] for row in rows}


def versions_sentence(kept: dict[int, int], latest: int) -> str:
    """What publishing changes for the bookings: "3 bookings already made keep version 1; new
    bookings use version 2"."""
    total = sum(kept.values())
    if not total:
        return gettext("No booking is waiting; new bookings use version %(new)s.", new=latest)
    if set(kept) == {latest}:
        return ngettext(
            "%(num)d booking already made uses version %(new)s, like new bookings.",
            "%(num)d bookings already made use version %(new)s, like new bookings.",
            total,
            new=latest,
        )
    return ngettext(
        "%(num)d booking already made keeps version %(old)s; new bookings use version %(new)s.",
        "%(num)d bookings already made keep version %(old)s; new bookings use version %(new)s.",
        total,
        old=", ".join(str(number) for number in kept),
        new=latest,
    )


def _failing_checks(version: WorkflowVersion) -> list[str]:
    """A workflow whose checks before publishing (``tests``) fail is not published: each
    failure, said."""
    results = run_cases(workflow_of(version), version.definition.get("tests") or [])
    failed = [message for result in results for message in result.messages()]
    if not failed:
        return []
    return [
        gettext(
            "The checks before publishing fail; correct the workflow or its checks first: "
            "%(failures)s",
            failures="; ".join(failed),
        )
    ]


def _ids(values: list[str]) -> list[int] | None:
    """Posted ids in their order, without doubles; None when one is not an id."""
    if any(not (value.isdigit() and len(value) < 12) for value in values):
        return None
    return list(dict.fromkeys(int(value) for value in values))


class PublishMixin(AdminView):
    """The scenarios view's publishing page (a base of
    :class:`~bookwise.admin.views.workflows.WorkflowsView`, whose ``_record`` it calls)."""

    def _administered(self) -> list[Calendar]:
        """The calendars the user administers, by name."""
        ids = self.access.calendar_ids("admin")
        query = select(Calendar).order_by(Calendar.name)
        if ids is not None:
            query = query.where(Calendar.id.in_(ids))
        return list(self.db.scalars(query))

    @expose("/<slug>/publish", methods=("GET", "POST"))
    def publish(self, slug: str) -> Any:
        record = self._record(slug)
        calendar = self.calendar
        self.require(calendar.id, "admin", "publish workflow")
        if request.method == "GET":
            return self._publish_page(record, [calendar.id], None, [])
        if not ActionForm().validate_on_submit():
            deny(self.access, "publish workflow without a valid form", calendar.id)
        if request.form.get("op") == "withdraw":
            return self._withdraw(record, calendar)
        return self._publish(record, calendar)

    def _publish(self, record: WorkflowRecord, calendar: Calendar) -> Any:
        version = latest_version(self.db, record.id)
        assert version is not None
        chosen = _ids(request.form.getlist("calendar"))
        staff = _ids(request.form.getlist("staff"))
        administered = {c.id: c for c in self._administered()}
        for calendar_id in chosen or []:
            if calendar_id not in administered:
                deny(self.access, "publish workflow in a calendar", calendar_id)
        members, _ = bookable_staff(calendar, service_in(calendar, record), workflow_of(version))
        problems = []
        if chosen is None or staff is None:
            problems.append(gettext("Choose the calendars and staff members from the lists."))
        elif not chosen:
            problems.append(gettext("Choose at least one calendar."))
        elif calendar.id in chosen and not staff:
            problems.append(gettext("Choose at least one staff member."))
        elif calendar.id in chosen and not set(staff) <= {m.id for m in members}:
            problems.append(gettext("Choose staff members of this calendar only."))
        problems += _failing_checks(version)
        if problems:
            return self._publish_page(record, chosen or [], staff, problems, 422)
        assert chosen is not None
        assert staff is not None
        for calendar_id in chosen:
            service = offer_in_calendar(
                self.db, administered[calendar_id], record, actor=self.actor, publish=True
            )
            if calendar_id == calendar.id:
                update_service(
                    self.db,
                    service,
                    active=True,
                    pool_by_tags=False,
                    staff_ids=staff,
                    actor=self.access.actor,
                    ip=request.remote_addr,
                )
        names = ", ".join(administered[c].name for c in chosen)
        self.commit(
            gettext("Published: clients can book it now.")
            + " "
            + gettext("Calendars: %(names)s.", names=names)
        )
        return redirect(url_for(".details", slug=record.slug))

    def _withdraw(self, record: WorkflowRecord, calendar: Calendar) -> Response:
        """Stop offering the scenario here: clients can no longer book it; bookings made stay."""
        service = service_in(calendar, record)
        if service is None or not service.active:
            self.fail(gettext("It is not published in this calendar."))
            return redirect(url_for(".details", slug=record.slug))
        try:
            update_service(
                self.db,
                service,
                active=False,
                pool_by_tags=service.pool_by_tags,
                staff_ids=[link.staff_id for link in service.staff_links],
                actor=self.access.actor,
                ip=request.remote_addr,
            )
        except InvalidInput as invalid:
            self.fail("; ".join(m.translate(gettext) for m in invalid.problems.values()))
        else:
            self.commit(
                gettext("No longer offered here: the bookings already made stay as they are.")
            )
        return redirect(url_for(".details", slug=record.slug))

    def _publish_page(
        self,
        record: WorkflowRecord,
        chosen: list[int],
        staff: list[int] | None,
        problems: list[str],
        status: int = 200,
    ) -> Any:
        version = latest_version(self.db, record.id)
        assert version is not None
        workflow = workflow_of(version)
        calendar = self.calendar
        service = service_in(calendar, record)
        members, ticked = bookable_staff(calendar, service, workflow)
        calendars = self._administered()
        locale = str(get_locale())
        return self.render(
            "bookwise_admin/workflows/publish.html",
            record=record,
            name=workflow_name(workflow, locale, calendar.default_locale),
            version=version,
            calendars=[
                {
                    "calendar": c,
                    "chosen": c.id in chosen,
                    "service": service_in(c, record),
                }
                for c in calendars
            ],
            members=members,
            ticked=ticked if staff is None else staff,
            tags=workflow.staff.tags,
            by_priority=workflow.staff.assignment == "priority",
            service=service,
            sentence=versions_sentence(
                kept_versions(self.db, record, [c.id for c in calendars], now()), version.number
            ),
            problems=problems,
            form=ActionForm(),
        ), status
