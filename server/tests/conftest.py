"""Shared fixtures: one ductape-local (example seed) per module, and a small authenticated client."""
from __future__ import annotations

import socket
from typing import Any

import pytest
import requests
import yaml

from ductape_local.testing import LocalServer

PRODUCT = "my-product"
STRIPE = "stripe-payments"

_HELD_SOCKETS: list[socket.socket] = []


def held_closed_url() -> str:
    """A URL on a loopback port held bound (never listening) for the whole test run: connections to it
    are refused, and no other program can take the port. Use it where nothing must be reached (a
    receiver or provider that must fail), never a fixed port that something may listen on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _HELD_SOCKETS.append(sock)
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


# One held port for the whole session: the receiver of registrations whose deliveries must fail.
CLOSED_URL = held_closed_url()


@pytest.fixture(scope="session")
def closed_url() -> str:
    return CLOSED_URL


class Api:
    """requests against one server, with its access key unless told otherwise."""

    def __init__(self, server: LocalServer, key: str | None = "default"):
        self.server = server
        self.key = server.access_key if key == "default" else key

    def call(self, method: str, path: str, *, key: str | None = "default", **kwargs: Any) -> requests.Response:
        key = self.key if key == "default" else key
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {key}")
        return requests.request(method, self.server.url + path, headers=headers, timeout=30, **kwargs)

    def register(self, webhook_tag: str = "payment_succeeded", envs: list[dict[str, Any]] | None = None,
                 **overrides: Any) -> requests.Response:
        body = {"product": PRODUCT, "access_tag": STRIPE, "webhook_tag": webhook_tag,
                "envs": envs if envs is not None else [{"slug": "prd", "url": "https://api.example.com/hook"}]}
        body.update(overrides)
        return self.call("POST", "/webhooks/v1/register", json=body)

    def generate_link(self, **overrides: Any) -> requests.Response:
        body = {"product": PRODUCT, "access_tag": STRIPE, "webhook_tag": "payment_succeeded", "env": "dev",
                "url": f"{CLOSED_URL}/hook", "method": "POST"}
        body.update(overrides)
        return self.call("POST", "/webhooks/v1/generate-link", json=body)

    def webhooks(self, **params: Any) -> requests.Response:
        params = {"product": PRODUCT, "access_tag": STRIPE, **params}
        return self.call("GET", "/webhooks/v1/webhooks", params=params)

    def delete(self, uuid: str, **kwargs: Any) -> requests.Response:
        return self.call("DELETE", f"/webhooks/v1/registrations/{uuid}", **kwargs)


CASE_TAGS = [f"case_{i:02d}" for i in range(60)]


def shared_seed() -> dict[str, Any]:
    """The example seed plus spare stripe webhooks, so that tests sharing one server never share a webhook."""
    seed = example_seed()
    seed["apps"][0]["webhooks"] += [{"tag": tag, "name": tag.replace("_", " ")} for tag in CASE_TAGS]
    return seed


@pytest.fixture(scope="module")
def server():
    with LocalServer(shared_seed()) as running:
        yield running


@pytest.fixture(scope="module")
def case_tags():
    return iter(CASE_TAGS)


@pytest.fixture
def tag(case_tags) -> str:
    """A stripe webhook that no other test of the module touches."""
    return next(case_tags)


@pytest.fixture
def api(server: LocalServer) -> Api:
    return Api(server)


def data_of(response: requests.Response, status: int = 200) -> Any:
    body = response.json()
    assert response.status_code == status, body
    assert body["status"] is True and body["meta"] is not None, body
    return body["data"]


def error_of(response: requests.Response, status: int) -> str:
    body = response.json()
    assert response.status_code == status, body
    assert body["status"] is False and body["meta"] == {} and "data" not in body, body
    assert isinstance(body["errors"], str) and body["errors"], body
    return body["errors"]


def example_seed() -> dict[str, Any]:
    from ductape_local.cli import example_seed as example_seed_text

    return yaml.safe_load(example_seed_text())


def registered(api: Api, **kwargs: Any) -> dict[str, Any]:
    """The registrations of one register call, by env slug."""
    return {r["productEnv"]: r for r in data_of(api.register(**kwargs))["envs"]}


def live_registrations(api: Api, access_tag: str = STRIPE, webhook_tag: str | None = None) -> list[dict[str, Any]]:
    listing = data_of(api.webhooks(access_tag=access_tag, limit=250))
    return [dict(r, webhook_tag=w["tag"]) for w in listing for r in w["config"]
            if webhook_tag is None or w["tag"] == webhook_tag]
