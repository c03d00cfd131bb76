"""Public pages: the list of calendars and each calendar's page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template
from flask_babel import get_locale
from sqlalchemy import select, text
from sqlalchemy.orm import selectinload

from bookwise.calendars.models import Calendar, Service
from bookwise.errors import NotFound
from bookwise.formatting import human_duration
from bookwise.web import db_session
from bookwise.workflows.language import Text
from bookwise.workflows.services import current_version, workflow_of

blueprint = Blueprint("public", __name__, template_folder="templates")


@blueprint.get("/healthz")
def health() -> Response:
    """For load balancers and monitoring: 200 when the database answers."""
    db_session().execute(text("SELECT 1"))
    return jsonify(status="ok")


@blueprint.get("/")
def index() -> str:
    calendars = db_session().scalars(
        select(Calendar).where(Calendar.published).order_by(Calendar.name)
    )
    locale = str(get_locale())
    return render_template(
        "public/index.html",
        calendars=[
            {
                "slug": c.slug,
                "name": c.name,
                "description": Text.of(c.description).get(locale, c.default_locale),
            }
            for c in calendars
        ],
    )


@blueprint.get("/<slug>")
def calendar_page(slug: str) -> str:
    session = db_session()
    calendar = session.scalar(
        select(Calendar)
        .where(Calendar.slug == slug, Calendar.published)
        .options(selectinload(Calendar.services).selectinload(Service.workflow))
    )
    if calendar is None:
        raise NotFound(slug)
    g.calendar_locale = calendar.default_locale
    locale = str(get_locale())
    services: list[dict[str, Any]] = []
    for service in calendar.services:
        if not service.active:
            continue
        workflow = workflow_of(current_version(session, service.workflow.slug))
        services.append(
            {
                "id": workflow.id,
                "name": workflow.name.get(locale, calendar.default_locale),
                "description": workflow.description.get(locale, calendar.default_locale),
                "duration": human_duration(workflow.duration, locale),
                "capacity": workflow.capacity,
                "location": workflow.location.type,
            }
        )
    return render_template(
        "public/calendar.html",
        calendar=calendar,
        description=Text.of(calendar.description).get(locale, calendar.default_locale),
        services=services,
    )
