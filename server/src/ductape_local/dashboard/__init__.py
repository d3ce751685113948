"""The dashboard: a small web UI on the same server, behind the access key (router.py, sessions.py,
static/). `install(app)` mounts it; called last by create_app, so that its session check runs before
the guard's access-key check."""
from __future__ import annotations

from fastapi import FastAPI

from ductape_local.dashboard.router import page_router, router
from ductape_local.dashboard.sessions import SessionAuth, Sessions


def install(app: FastAPI) -> None:
    app.state.dashboard_sessions = Sessions()
    app.include_router(router)
    app.include_router(page_router)
    app.add_middleware(SessionAuth, sessions=app.state.dashboard_sessions)
