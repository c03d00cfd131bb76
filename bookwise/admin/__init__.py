"""The back office: Flask-Admin views behind Flask-Login, with roles per calendar."""

from __future__ import annotations

import secrets

from flask import Blueprint, Flask, g
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import lazy_gettext

assets = Blueprint("bookwise_admin", __name__, template_folder="templates")


def csp_nonce() -> str:
    """This response's nonce for the back office's inline scripts (see the CSP in bookwise.app)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def init_admin(app: Flask) -> Admin:
    """Build the back office of ``app`` (one :class:`Admin` per application)."""
    from bookwise.admin.views.bookings import BookingsView
    from bookwise.admin.views.calendars import CalendarsView, ServicesView, StaffView
    from bookwise.admin.views.clients import ClientsView
    from bookwise.admin.views.home import HomeView
    from bookwise.admin.views.jobs import JobsView
    from bookwise.admin.views.plugins import PluginsView
    from bookwise.admin.views.records import AuditView, OutboxView
    from bookwise.admin.views.reports import ReportsView
    from bookwise.admin.views.templates import TemplatesView
    from bookwise.admin.views.tokens import TokensView
    from bookwise.admin.views.users import UsersView
    from bookwise.admin.views.waitlist import WaitlistView
    from bookwise.admin.views.webhooks import WebhooksView
    from bookwise.admin.views.workflows import WorkflowsView

    app.register_blueprint(assets)
    admin = Admin(
        app,
        name="Bookwise",
        url="/admin",
        index_view=HomeView(name=lazy_gettext("Home"), url="/admin", endpoint="admin"),
        theme=Bootstrap4Theme(base_template="bookwise_admin/master.html", fluid=True),
        csp_nonce_generator=csp_nonce,
    )
    views = [
        (BookingsView, lazy_gettext("Bookings"), "bookings", None),
        (StaffView, lazy_gettext("Staff"), "staff", None),
        (ServicesView, lazy_gettext("Services"), "services", None),
        (WorkflowsView, lazy_gettext("Scenarios"), "workflows", None),
        (ReportsView, lazy_gettext("Reports"), "reports", None),
        (ClientsView, lazy_gettext("Clients"), "clients", None),
        (WaitlistView, lazy_gettext("Waitlist"), "waitlist", None),
        (TemplatesView, lazy_gettext("Messages"), "templates", lazy_gettext("Settings")),
        (CalendarsView, lazy_gettext("Calendars"), "calendars", lazy_gettext("Settings")),
        (OutboxView, lazy_gettext("Outbox"), "outbox", lazy_gettext("Settings")),
        (WebhooksView, lazy_gettext("Webhooks"), "webhooks", lazy_gettext("Settings")),
        (AuditView, lazy_gettext("Audit log"), "audit", lazy_gettext("Settings")),
        (UsersView, lazy_gettext("Users"), "users", lazy_gettext("Settings")),
        (PluginsView, lazy_gettext("Plugins"), "plugins", lazy_gettext("Settings")),
        (JobsView, lazy_gettext("Scheduled jobs"), "jobs", lazy_gettext("Settings")),
        (TokensView, lazy_gettext("API tokens"), "tokens", lazy_gettext("Settings")),
    ]
    for view, name, endpoint, category in views:
        admin.add_view(
            view(name=name, endpoint=endpoint, url=f"/admin/{endpoint}", category=category)
        )
    return admin
