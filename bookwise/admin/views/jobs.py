"""Scheduled jobs, for superadmins: the registry as ``bookwise jobs`` shows it."""

from __future__ import annotations

from datetime import datetime

from flask_admin import expose
from flask_babel import get_locale

from bookwise.admin.base import AdminView
from bookwise.formatting import format_when
from bookwise.scheduling.core import job_statuses
from bookwise.web import instance


class JobsView(AdminView):
    superadmin_only = True

    @expose("/")
    def index(self) -> str:
        bookwise = instance()
        locale = str(get_locale() or "en")

        def when(moment: datetime | None) -> str:
            return format_when(moment, "UTC", locale) if moment is not None else ""

        return self.render(
            "bookwise_admin/jobs.html",
            jobs=job_statuses(bookwise.settings, bookwise.database),
            when=when,
        )
