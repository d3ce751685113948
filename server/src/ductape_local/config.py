"""How one ductape-local process was asked to run."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ductape_local.delivery import DEFAULT_DELIVERY_TIMEOUT, DEFAULT_RETRY_SCHEDULE, DEFAULT_WORKERS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4311


@dataclass(frozen=True)
class ServerConfig:
    db_path: Path
    public_url: str
    seed_path: Path | None = None
    test_mode: bool = False
    provider_timeout: float = 5.0
    max_body: int = 1024 * 1024
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT
    # delivery worker threads; one receiver (scheme, host, port) holds at most a quarter of them
    delivery_workers: int = DEFAULT_WORKERS
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    block_private_destinations: bool = False

    @property
    def listen_addresses(self) -> tuple[tuple[str, int], ...]:
        """(host, port) pairs on which this server's links arrive: where it listens, and the public url."""
        addresses = [(self.host, self.port)]
        try:
            public = urlsplit(self.public_url)
            if public.hostname:
                addresses.append((public.hostname, public.port or (443 if public.scheme == "https" else 80)))
        except ValueError:
            pass
        return tuple(addresses)


def default_public_url(host: str, port: int) -> str:
    # A wildcard bind address is not something a provider could call back on.
    reachable_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in reachable_host:
        reachable_host = f"[{reachable_host}]"
    return f"http://{reachable_host}:{port}"
