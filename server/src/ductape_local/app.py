"""Builds the ductape-local ASGI application from a ServerConfig."""
from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from ductape_local import __version__, compat, control_plane, deliveries, ingress, lifecycle, test_mode
from ductape_local.catalog import Catalog, SeedError, load_seed_file, parse_catalog
from ductape_local.config import ServerConfig
from ductape_local.dashboard import install as install_dashboard
from ductape_local.envelope import failure_response, install_error_handlers
from ductape_local.limits import Guard
from ductape_local.registrations import Registrar
from ductape_local.store import Store
from ductape_local.verification import IngressRules


def load_catalog(store: Store, config: ServerConfig) -> tuple[Catalog, IngressRules]:
    """The catalog and its ingress rules, every signing secret read (SeedError if one cannot be).
    The seed given now replaces the stored catalog once all of that succeeded, so a refused seed
    leaves the stored one as it was; registrations are never touched by it."""
    if config.seed_path is not None:
        catalog = load_seed_file(config.seed_path)
        rules = IngressRules.for_catalog(catalog)
        store.save_catalog(catalog.to_document())
        return catalog, rules
    document = store.load_catalog()
    if document is None:
        raise SeedError(f"database {config.db_path} holds no seed yet: pass --seed FILE "
                        "(`ductape-local seed-example` prints one)")
    catalog = parse_catalog(document)
    return catalog, IngressRules.for_catalog(catalog)


class DuctapeLocalApp(FastAPI):
    """FastAPI, except that provider events go straight to the relay's accept path (`event_handler`),
    before FastAPI's middleware and routing: see ingress.EventIngress. Nothing added with
    `add_middleware` sees them, so `create_app` wraps `event_handler` itself in what events need."""

    event_handler: ASGIApp | None = None
    # The port of the --ingress-url listener, which answers provider events and nothing else.
    ingress_only_port: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.event_handler is not None and scope["type"] == "http" and ingress.is_event_request(scope):
            await self.event_handler(scope, receive, send)
            return
        if (self.ingress_only_port is not None and scope["type"] == "http"
                and (scope.get("server") or (None, None))[1] == self.ingress_only_port):
            await failure_response(404, f"no such route: {scope['method']} {scope['path']} (this port is the "
                                        "ingress: /webhooks/v1/process/<uuid> only)")(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(config: ServerConfig) -> FastAPI:
    store = Store(config.db_path)
    app = DuctapeLocalApp(title="ductape-local", version=__version__, strict_content_type=False, lifespan=ingress.lifespan)
    app.state.config = config
    app.state.store = store
    # every signing secret is read now: one that cannot be read refuses the start (SeedError)
    app.state.catalog, rules = load_catalog(store, config)
    app.state.registrar = Registrar(store, config.link_base, config.provider_timeout)
    app.state.middleware = ingress.Middleware(store, config, rules)
    listener = config.ingress_listener
    app.ingress_only_port = listener[1] if listener else None
    install_error_handlers(app)
    app.include_router(control_plane.router)
    app.include_router(ingress.router)
    app.include_router(lifecycle.router)
    app.include_router(deliveries.router)
    event_handler = app.state.middleware.ingress
    if config.test_mode:
        test_mode.install(app)
        # events are counted and faulted like any route's requests
        event_handler = test_mode.RequestAccounting(event_handler, fastapi_app=app, state=app.state.test_mode)
    guard_options = {"fastapi_app": app, "max_request_body": config.max_request_body,
                     "body_timeout": config.body_timeout, "test_mode": config.test_mode}
    # Added last, so outermost: it answers every failure of the routes and middleware inside it.
    app.add_middleware(Guard, **guard_options)
    if config.compat:
        # Outside the guard: what compat mode does not offer is answered before anything else reads it.
        app.state.session_tokens = compat.install(app, config)
    # The same guard in front of the events, which bypass the middleware stack: on the ingress prefix
    # it adds only a try block (quiet hang-ups, a failure answered 500 with one line naming its type,
    # a test-mode crash fault included); the event's body is bounded by the accept path (--max-body)
    # and its time by the protocol (limits.guarded_protocol), as for any request.
    app.event_handler = Guard(event_handler, **guard_options)
    install_dashboard(app)  # last: its session check runs outside the guard (dashboard/sessions.py)
    return app
