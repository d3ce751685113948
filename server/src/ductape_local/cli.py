"""The `ductape-local` command: `serve` and `seed-example`."""
from __future__ import annotations

import argparse
import logging
import sys
from importlib import resources
from pathlib import Path

from ductape_local import config
from ductape_local.catalog import SeedError
from ductape_local.config import ServerConfig, base_url_option, default_public_url, number_option
from ductape_local.delivery import retry_schedule_argument
from ductape_local.limits import guarded_protocol


class NoIngressLines(logging.Filter):
    """Drops the access line of each provider event: the delivery log records every event already,
    and one line per event cost the relay about a fifth of its accept rate."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) > 2 and str(args[2]).startswith(config.INGRESS_PREFIX))


# uvicorn's access line holds the client, the request line (path and query) and the status, never
# headers or bodies: access keys travel in headers and auth values in bodies.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"no_ingress": {"()": NoIngressLines}},
    "formatters": {
        "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(asctime)s %(levelname)s %(message)s",
                    "use_colors": False},
        "access": {"()": "uvicorn.logging.AccessFormatter", "use_colors": False,
                   "fmt": '%(asctime)s ACCESS %(client_addr)s "%(request_line)s" %(status_code)s'},
    },
    "handlers": {
        "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stderr",
                   "filters": ["no_ingress"]},
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        "ductape_local": {"handlers": ["default"], "level": "INFO", "propagate": False},
    },
}


def example_seed() -> str:
    return resources.files("ductape_local").joinpath("example_seed.yaml").read_text(encoding="utf-8")


def _seconds(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ductape-local", description="A Ductape-compatible webhook server on SQLite.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=config.DEFAULT_HOST, help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=number_option("port"), default=config.DEFAULT_PORT,
                       help="port to listen on (default: %(default)s)")
    serve.add_argument("--db", type=Path, default=Path(config.DEFAULT_DB), help="SQLite file (default: %(default)s)")
    serve.add_argument("--seed", type=Path, help="seed YAML to load; without it, the database's stored seed is used")
    serve.add_argument("--public-url", help="base URL of the wrapped links (default: http://HOST:PORT)")
    serve.add_argument("--test-mode", action="store_true", help="add the /_local/stats and /_local/faults routes")
    serve.add_argument("--provider-timeout", type=number_option("provider_timeout"),
                       default=config.DEFAULT_PROVIDER_TIMEOUT,
                       help="seconds to wait for a provider's registration endpoint (default: %(default)s)")
    serve.add_argument("--max-body", type=number_option("max_body"), default=config.DEFAULT_MAX_BODY,
                       help="largest provider event body accepted, in bytes (default: %(default)s)")
    serve.add_argument("--retry-schedule", type=retry_schedule_argument,
                       default=_seconds(config.DEFAULT_RETRY_SCHEDULE),
                       help="seconds to wait before each retry of a delivery (default: %(default)s)")
    serve.add_argument("--delivery-timeout", type=number_option("delivery_timeout"),
                       default=config.DEFAULT_DELIVERY_TIMEOUT,
                       help="seconds to wait for a receiver's answer (default: %(default)s)")
    serve.add_argument("--delivery-workers", type=number_option("delivery_workers"),
                       default=config.DEFAULT_DELIVERY_WORKERS,
                       help="delivery threads; one receiver holds at most a quarter of them (default: %(default)s)")
    serve.add_argument("--backpressure-lag", type=number_option("backpressure_lag"),
                       default=config.DEFAULT_BACKPRESSURE_LAG,
                       help="when a receiver's oldest due delivery has waited this many seconds, new events for it "
                            "are held before they are stored (back-pressure on the sender); 0 never holds "
                            "(default: %(default)s)")
    serve.add_argument("--backpressure-hold", type=number_option("backpressure_hold"),
                       default=config.DEFAULT_BACKPRESSURE_HOLD,
                       help="the longest one event is held by back-pressure, in seconds; then it is accepted anyway, "
                            "never refused (default: %(default)s)")
    serve.add_argument("--block-private-destinations", action="store_true",
                       help="refuse receiver urls that are or resolve to loopback, link-local, private or reserved "
                            "addresses, at registration and at delivery (for a deployed relay; off by default)")
    serve.add_argument("--max-request-body", type=number_option("max_request_body"),
                       default=config.DEFAULT_MAX_REQUEST_BODY,
                       help="largest control-plane request body, in bytes (default: %(default)s)")
    serve.add_argument("--body-timeout", type=number_option("body_timeout"), default=config.DEFAULT_BODY_TIMEOUT,
                       help="seconds allowed for each read of a request body; slower bodies get 408 "
                            "(default: %(default)s)")
    serve.add_argument("--header-timeout", type=number_option("header_timeout"),
                       default=config.DEFAULT_HEADER_TIMEOUT,
                       help="seconds a connection has to send a request's headers (default: %(default)s)")
    serve.add_argument("--keep-alive", type=number_option("keep_alive"), default=config.DEFAULT_KEEP_ALIVE,
                       help="seconds an idle keep-alive connection stays open (default: %(default)s)")
    serve.add_argument("--max-connections", type=number_option("max_connections"),
                       default=config.DEFAULT_MAX_CONNECTIONS,
                       help="concurrent connections and requests served; more are answered 503 (default: %(default)s)")
    serve.add_argument("--backlog", type=number_option("backlog"), default=config.DEFAULT_BACKLOG,
                       help="connections waiting to be accepted (default: %(default)s)")
    serve.add_argument("--compat", choices=config.COMPAT_MODES,
                       help="answer only what the hosted Ductape is known to answer: its three control-plane routes "
                            "and the ingress, in its shapes, behind a session token (POST /webhooks/v1/session); "
                            "every other route answers 404 (see server/README.md)")
    serve.add_argument("--ingress-url", type=base_url_option("ingress_url"),
                       help="base URL of the wrapped links when providers reach them on another host than the API "
                            "(like https://webhooks.ductape.app); this server accepts them on its own port too, and "
                            "listens on the url's port for events only when it is a loopback address or --host "
                            "(default: the public url)")
    serve.add_argument("--session-ttl", type=number_option("session_ttl"), default=config.DEFAULT_SESSION_TTL,
                       help="seconds a compat-mode session token stays valid (default: %(default)s)")
    commands.add_parser("seed-example", help="print a commented example seed")
    return parser


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ductape_local.app import create_app

    config_ = ServerConfig(
        db_path=args.db,
        public_url=args.public_url or default_public_url(args.host, args.port),
        seed_path=args.seed,
        test_mode=args.test_mode,
        provider_timeout=args.provider_timeout,
        max_body=args.max_body,
        retry_schedule=args.retry_schedule,
        delivery_timeout=args.delivery_timeout,
        delivery_workers=args.delivery_workers,
        backpressure_lag=args.backpressure_lag,
        backpressure_hold=args.backpressure_hold,
        host=args.host,
        port=args.port,
        block_private_destinations=args.block_private_destinations,
        max_request_body=args.max_request_body,
        body_timeout=args.body_timeout,
        header_timeout=args.header_timeout,
        keep_alive=args.keep_alive,
        max_connections=args.max_connections,
        backlog=args.backlog,
        compat=args.compat,
        ingress_url=args.ingress_url,
        session_ttl=args.session_ttl,
    )
    try:
        app = create_app(config_)
    except SeedError as exc:
        print(f"ductape-local: seed error: {exc}", file=sys.stderr)
        return 2
    catalog = app.state.catalog
    definitions = sum(len(a.webhooks) for a in catalog.apps.values())
    source = f"seed {config_.seed_path}" if config_.seed_path else f"the seed stored in {config_.db_path}"
    print(f"ductape-local: loaded {source} (products: {len(catalog.products)}, apps: {len(catalog.apps)}, webhook "
          f"definitions: {definitions}); links on {config_.link_base}" + ("; test mode" if config_.test_mode else "")
          + (f"; compat mode {config_.compat}" if config_.compat else ""),
          file=sys.stderr)
    options = dict(log_config=LOG_CONFIG, timeout_graceful_shutdown=3,
                   http=guarded_protocol(config_.header_timeout, config_.body_timeout),
                   timeout_keep_alive=config_.keep_alive, limit_concurrency=config_.max_connections,
                   backlog=config_.backlog)
    listener = config_.ingress_listener
    if listener is None:
        uvicorn.run(app, host=args.host, port=args.port, **options)
        return 0
    # One server on two sockets (one lifespan, one delivery worker): the API's, and the ingress url's,
    # which answers provider events only (DuctapeLocalApp.ingress_only_port).
    server_config = uvicorn.Config(app, host=args.host, port=args.port, **options)
    sockets = [server_config.bind_socket(),
               uvicorn.Config(app, host=listener[0], port=listener[1], **options).bind_socket()]
    server = uvicorn.Server(server_config)
    server.run(sockets=sockets)
    return 0 if server.started else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "seed-example":
        sys.stdout.write(example_seed())
        return 0
    return serve(args)
