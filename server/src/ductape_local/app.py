"""Builds the ductape-local ASGI application from a ServerConfig."""
from __future__ import annotations

from fastapi import FastAPI

from ductape_local import __version__, control_plane, ingress, test_mode
from ductape_local.catalog import Catalog, SeedError, load_seed_file, parse_catalog
from ductape_local.config import ServerConfig
from ductape_local.envelope import install_error_handlers
from ductape_local.limits import Guard
from ductape_local.registrations import Registrar
from ductape_local.store import Store


def load_catalog(store: Store, config: ServerConfig) -> Catalog:
    """The seed given now replaces the stored catalog; registrations are never touched by it."""
    if config.seed_path is not None:
        catalog = load_seed_file(config.seed_path)
        store.save_catalog(catalog.to_document())
        return catalog
    document = store.load_catalog()
    if document is None:
        raise SeedError(f"database {config.db_path} holds no seed yet: pass --seed FILE "
                        "(`ductape-local seed-example` prints one)")
    return parse_catalog(document)


def create_app(config: ServerConfig) -> FastAPI:
    store = Store(config.db_path)
    app = FastAPI(title="ductape-local", version=__version__, strict_content_type=False, lifespan=ingress.lifespan)
    app.state.config = config
    app.state.store = store
    app.state.catalog = load_catalog(store, config)
    app.state.registrar = Registrar(store, config.public_url, config.provider_timeout)
    app.state.middleware = ingress.Middleware(store, config)
    install_error_handlers(app)
    app.include_router(control_plane.router)
    app.include_router(ingress.router)
    if config.test_mode:
        test_mode.install(app)
    # Added last, so outermost: it answers every failure of the routes and middleware inside it.
    app.add_middleware(Guard, fastapi_app=app, max_request_body=config.max_request_body,
                       body_timeout=config.body_timeout, test_mode=config.test_mode)
    return app
