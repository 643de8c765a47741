"""The interactive API reference at ``/schema``: Swagger UI served from the
installed ``swagger-ui-bundle`` package, so the page works without a network
(a provider's engineer can read it offline; nothing loads from a CDN)."""

from __future__ import annotations

from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/schema/assets"


def assets_router() -> Router:
    """Swagger UI's scripts, styles and icons, from the package's own files."""
    return create_static_files_router(
        path=ASSETS, directories=[str(swagger_ui_path)], include_in_schema=False
    )


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at ``/schema`` (and ``/schema/swagger``), JSON at ``/schema/openapi.json``."""
    return [
        SwaggerRenderPlugin(
            js_url=f"{ASSETS}/swagger-ui-bundle.js",
            css_url=f"{ASSETS}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
            path=["/", "/swagger"],
        ),
        JsonRenderPlugin(),
    ]
