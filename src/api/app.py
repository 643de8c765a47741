"""The Litestar application."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures.state import State
from litestar.exceptions import HTTPException
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from api.console.pages import TEMPLATES, console_router
from api.correlation import correlation_middleware
from api.errors import hookledger_error, http_error, unexpected_error
from api.reference import assets_router, render_plugins
from api.routes.erasures import create_erasure
from api.routes.health import health, healthz, metrics, selftest
from api.routes.proofs import (
    checkpoint_key,
    checkpoint_of_size,
    consistency,
    inclusion,
    latest_checkpoint,
    order_evidence,
)
from api.routes.reads import order_events, order_state
from api.routes.tasks import countdown_task
from api.routes.webhooks import receive_webhook, webhook_routes
from api.services import Services
from events.errors import HookledgerError


def create_app(services: Services) -> Litestar:
    """Build the app around ready services; their start and stop run in its lifespan."""
    return Litestar(
        route_handlers=[
            *webhook_routes(list(services.providers)),
            receive_webhook,
            order_events,
            order_state,
            order_evidence,
            create_erasure,
            latest_checkpoint,
            checkpoint_key,
            checkpoint_of_size,
            consistency,
            inclusion,
            healthz,
            health,
            metrics,
            countdown_task,
            selftest,
            assets_router(),
            console_router(),
        ],
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        middleware=[correlation_middleware],
        exception_handlers={
            HookledgerError: hookledger_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
        on_startup=list(services.on_startup),
        on_shutdown=list(services.on_shutdown),
        openapi_config=OpenAPIConfig(
            title="hookledger",
            version=services.version,
            path="/schema",
            render_plugins=render_plugins(),
        ),
        request_max_body_size=services.max_body_bytes,
        # Logging is configured once by the composition root (JSON lines).
        logging_config=None,
        state=State({"services": services}),
    )
