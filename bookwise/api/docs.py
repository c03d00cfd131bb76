"""The API's own description: ``/api/v1/openapi.json`` (OpenAPI 3.1, built by
:mod:`bookwise.api.spec` from the views' descriptions) and ``/api/v1/docs``, a browsable page.

The page is Swagger UI (5.x), whose files come with the ``swagger-ui-py`` package (Apache-2.0,
its LICENSE shipped beside them): no CDN. Its start script is a static file
(``static/api-docs.js``): the Content-Security-Policy allows no inline script.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from flask import Response, current_app, jsonify, send_from_directory, url_for
from markupsafe import escape

from bookwise.api.spec import Operation, Reply, operation
from bookwise.api.views import blueprint
from bookwise.web import instance


def _assets() -> Path:
    """Swagger UI's files, found without importing the package (its code is for other
    frameworks; we serve three of its files and nothing else)."""
    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - a dependency
        raise RuntimeError("swagger-ui-py is not installed (pip install swagger-ui-py)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


ASSETS = _assets()
# The files the page loads (and the licence): nothing else of the package is served.
SERVED = {"swagger-ui.css", "swagger-ui-bundle.js", "LICENSE"}


def _version() -> str:
    try:
        return version("bookwise")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without metadata
        return "0"


@blueprint.get("/openapi.json")
@operation(
    Operation(
        "This API's OpenAPI 3.1 description",
        "about",
        responses={200: Reply("the OpenAPI document", {"type": "object", "required": ["openapi"]})},
    )
)
def openapi() -> Response:
    from bookwise.api.spec import document

    # Built once per application: it changes only with the code (its routes and descriptions).
    base_url = instance().settings.base_url
    cache: dict[str, dict[str, Any]] = current_app.extensions.setdefault("bookwise_openapi", {})
    if base_url not in cache:
        cache[base_url] = document(current_app, base_url, _version())
    return jsonify(cache[base_url])


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bookwise API</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui" data-url="{spec}"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"""


@blueprint.get("/docs")
@operation(
    Operation(
        "A browsable page of this API (Swagger UI)",
        "about",
        responses={200: Reply("the page", None, media_type="text/html")},
    )
)
def docs() -> Response:
    page = PAGE.format(
        css=escape(url_for("api.docs_asset", name="swagger-ui.css")),
        bundle=escape(url_for("api.docs_asset", name="swagger-ui-bundle.js")),
        init=escape(url_for("static", filename="api-docs.js")),
        spec=escape(url_for("api.openapi")),
    )
    return Response(page, mimetype="text/html")


@blueprint.get("/docs/<name>")
@operation(
    Operation(
        "A file of the browsable page (Swagger UI's script, style sheet and licence)",
        "about",
        parameters=(),
        responses={200: Reply("the file", None, media_type="*/*")},
    )
)
def docs_asset(name: str) -> Response:
    if name not in SERVED:
        from bookwise.errors import NotFound

        raise NotFound(f"no file {name!r}")
    mimetype = "text/plain" if name == "LICENSE" else None
    return send_from_directory(ASSETS, name, max_age=86400, mimetype=mimetype)
