"""API docs at ``/docs`` from local files only (the server works offline).

The ``fastapi-offline`` package (a dependency of the server, MIT) ships Swagger UI 5's
bundle and stylesheet (Swagger UI 4, as in ``swagger-ui-bundle``, cannot read the
OpenAPI 3.1 schema FastAPI writes); only those files are used, served from
``/docs/assets/``. The page has no inline script (its start-up code is
``/docs/init.js``), so it runs under the server's Content-Security-Policy. Without
the package ``/docs`` is a plain page listing the operations. ``/openapi.json``
stays as it is in both cases.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from posekit.server.authz import Permission, allow

__all__ = ["install_docs", "swagger_ui_dir"]

_PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>{title} - API docs</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script src="/docs/init.js"></script>
  </body>
</html>
"""
# Requests from "Try it out" carry the header the cross-site guard asks of browsers;
# no validator badge (it would call an outside service).
_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
  requestInterceptor: (request) => {
    request.headers["X-Posekit-Client"] = "docs";
    return request;
  },
});
"""


def swagger_ui_dir() -> Path | None:
    """The folder of Swagger UI's files, or None without ``fastapi-offline``."""
    from importlib.util import find_spec

    spec = find_spec("fastapi_offline")  # not imported: only its files are used
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "static"
    ok = (folder / "swagger-ui-bundle.js").is_file() and (folder / "swagger-ui.css").is_file()
    return folder if ok else None


def _operations_page(app: FastAPI) -> str:
    rows = []
    for path, operations in sorted(app.openapi().get("paths", {}).items()):
        for method, operation in operations.items():
            summary = operation.get("summary") or operation.get("operationId") or ""
            rows.append(
                f"<li><code>{html.escape(method.upper())} {html.escape(path)}</code> "
                f"{html.escape(summary)}</li>"
            )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8" />'
        f"<title>{html.escape(app.title)} - API</title></head><body>"
        f"<h1>{html.escape(app.title)} API</h1><p>The schema: "
        '<a href="/openapi.json">/openapi.json</a>. Install <code>fastapi-offline</code> '
        "for the interactive docs.</p><ul>" + "".join(rows) + "</ul></body></html>"
    )


def install_docs(app: FastAPI) -> None:
    """Add ``/docs`` (and its assets) to an app created with ``docs_url=None``."""
    from fastapi.staticfiles import StaticFiles

    folder = swagger_ui_dir()

    @app.get("/docs", include_in_schema=False, dependencies=[allow(Permission.PUBLIC)])
    def docs() -> HTMLResponse:
        if folder is None:
            return HTMLResponse(_operations_page(app))
        return HTMLResponse(_PAGE.format(title=html.escape(app.title)))

    @app.get("/docs/init.js", include_in_schema=False, dependencies=[allow(Permission.PUBLIC)])
    def docs_init() -> Response:
        return Response(_INIT, media_type="text/javascript")

    if folder is not None:
        app.mount("/docs/assets", StaticFiles(directory=folder), name="docs-assets")
