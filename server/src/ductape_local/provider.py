"""The outbound call that registers a wrapped link at a provider's registration endpoint."""
from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

import requests

from ductape_local.catalog import ProviderEndpoint
from ductape_local.store import ProviderRegistration, utc_now


def request_parts(endpoint: ProviderEndpoint, auth: dict[str, Any], link: str) -> dict[str, Any]:
    """The URL, headers, query and body of the provider call, with the link where the endpoint wants it."""
    headers = {str(k): str(v) for k, v in (auth.get("headers") or {}).items()}
    query = {str(k): v for k, v in (auth.get("query") or {}).items()}
    body = copy.deepcopy(auth.get("body") or {})
    url = endpoint.url
    for name, value in (auth.get("params") or {}).items():
        url = url.replace("{" + str(name) + "}", quote(str(value), safe=""))
    if endpoint.link_in == "headers":
        headers[endpoint.link_key] = link
    elif endpoint.link_in == "query":
        query[endpoint.link_key] = link
    else:
        _place(body, endpoint.link_key.split("."), link)
    return {"method": endpoint.method, "url": url, "headers": headers, "params": query, "json": body}


def _place(body: dict[str, Any], path: list[str], value: str) -> None:
    for step in path[:-1]:
        inner = body.get(step)
        if not isinstance(inner, dict):
            inner = body[step] = {}
        body = inner
    body[path[-1]] = value


def register_at_provider(endpoint: ProviderEndpoint, auth: dict[str, Any], link: str, timeout: float) -> ProviderRegistration:
    parts = request_parts(endpoint, auth, link)
    if parts["method"] == "GET" and not parts["json"]:
        parts.pop("json")
    try:
        response = requests.request(timeout=timeout, allow_redirects=False, **parts)
    except requests.RequestException as exc:
        # Only the exception's type: its text quotes the URL, and the query may hold a secret.
        return ProviderRegistration("failed", None, utc_now(), f"could not reach the provider ({type(exc).__name__})")
    if 200 <= response.status_code < 300:
        return ProviderRegistration("registered", response.status_code, utc_now(), None)
    return ProviderRegistration(
        "failed", response.status_code, utc_now(), f"provider answered HTTP {response.status_code}"
    )
