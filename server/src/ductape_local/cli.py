"""The `ductape-local` command: `serve` and `seed-example`."""
from __future__ import annotations

import argparse
import logging
import sys
from importlib import resources
from pathlib import Path

from ductape_local.catalog import SeedError
from ductape_local.config import ServerConfig, default_public_url
from ductape_local.delivery import retry_schedule_argument

INGRESS_PATH = "/webhooks/v1/process/"


class NoIngressLines(logging.Filter):
    """Drops the access line of each provider event: the delivery log records every event already,
    and one line per event cost the relay about a fifth of its accept rate."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) > 2 and str(args[2]).startswith(INGRESS_PATH))


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ductape-local", description="A Ductape-compatible webhook server on SQLite.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=4311, help="port to listen on (default: %(default)s)")
    serve.add_argument("--db", type=Path, default=Path("ductape-local.db"), help="SQLite file (default: %(default)s)")
    serve.add_argument("--seed", type=Path, help="seed YAML to load; without it, the database's stored seed is used")
    serve.add_argument("--public-url", help="base URL of the wrapped links (default: http://HOST:PORT)")
    serve.add_argument("--test-mode", action="store_true", help="add the /_local/stats and /_local/faults routes")
    serve.add_argument("--provider-timeout", type=float, default=5.0,
                       help="seconds to wait for a provider's registration endpoint (default: %(default)s)")
    serve.add_argument("--max-body", type=int, default=1024 * 1024,
                       help="largest provider event body accepted, in bytes (default: %(default)s)")
    serve.add_argument("--retry-schedule", type=retry_schedule_argument, default="1,5,30,120,600",
                       help="seconds to wait before each retry of a delivery (default: %(default)s)")
    serve.add_argument("--delivery-timeout", type=float, default=10.0,
                       help="seconds to wait for a receiver's answer (default: %(default)s)")
    serve.add_argument("--block-private-destinations", action="store_true",
                       help="refuse receiver urls that are or resolve to loopback, link-local, private or reserved "
                            "addresses, at registration and at delivery (for a deployed relay; off by default)")
    commands.add_parser("seed-example", help="print a commented example seed")
    return parser


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ductape_local.app import create_app

    config = ServerConfig(
        db_path=args.db,
        public_url=args.public_url or default_public_url(args.host, args.port),
        seed_path=args.seed,
        test_mode=args.test_mode,
        provider_timeout=args.provider_timeout,
        max_body=args.max_body,
        retry_schedule=args.retry_schedule,
        delivery_timeout=args.delivery_timeout,
        host=args.host,
        port=args.port,
        block_private_destinations=args.block_private_destinations,
    )
    try:
        app = create_app(config)
    except SeedError as exc:
        print(f"ductape-local: seed error: {exc}", file=sys.stderr)
        return 2
    catalog = app.state.catalog
    definitions = sum(len(a.webhooks) for a in catalog.apps.values())
    source = f"seed {config.seed_path}" if config.seed_path else f"the seed stored in {config.db_path}"
    print(f"ductape-local: loaded {source} (products: {len(catalog.products)}, apps: {len(catalog.apps)}, webhook "
          f"definitions: {definitions}); links on {config.public_url}" + ("; test mode" if config.test_mode else ""),
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_config=LOG_CONFIG, timeout_graceful_shutdown=3)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "seed-example":
        sys.stdout.write(example_seed())
        return 0
    return serve(args)
