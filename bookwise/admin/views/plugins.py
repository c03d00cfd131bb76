"""Plugins, for superadmins: what is installed and enabled, what each adds, what went wrong."""

from __future__ import annotations

from flask_admin import expose

from bookwise.admin.base import AdminView
from bookwise.plugins.api import API_VERSION
from bookwise.web import instance


class PluginsView(AdminView):
    superadmin_only = True

    @expose("/")
    def index(self) -> str:
        host = instance().database.plugins
        plugins = sorted(host.plugins.values(), key=lambda i: (not i.core, i.name))
        return self.render(
            "bookwise_admin/plugins.html",
            plugins=plugins,
            problems=host.problems(),
            api_version=API_VERSION,
            source=instance().settings.source,
        )
