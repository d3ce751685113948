"""Upserting registrations, and registering their wrapped links at providers when that is due."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ductape_local.catalog import Connection, WebhookDefinition
from ductape_local.provider import register_at_provider
from ductape_local.store import ProviderRegistration, Registration, RegistrationKey, Store, utc_now


@dataclass(frozen=True)
class DesiredRegistration:
    product_env: str
    url: str
    method: str
    auth: dict[str, Any] | None  # None: keep whatever auth is stored (link mode sends none)


@dataclass(frozen=True)
class RegistrationResult:
    registration: Registration
    created: bool
    changed: bool
    provider_failure: str | None


class Registrar:
    def __init__(self, store: Store, public_url: str, provider_timeout: float):
        self.store = store
        self.public_url = public_url.rstrip("/")
        self.provider_timeout = provider_timeout

    def link(self, uuid: str) -> str:
        return f"{self.public_url}/webhooks/v1/process/{uuid}"

    def apply(
        self,
        product: str,
        connection: Connection,
        webhook: WebhookDefinition,
        desired: list[DesiredRegistration],
        register_at_providers: bool,
    ) -> list[RegistrationResult]:
        results = []
        for wanted in desired:
            app_env = connection.envs[wanted.product_env]
            key = RegistrationKey(product, connection.access_tag, webhook.tag, wanted.product_env)
            outcome = self.store.upsert_registration(key, app_env, wanted.url, wanted.method, wanted.auth)
            registration, changed, failure = outcome.registration, outcome.changed, None
            endpoint = webhook.registration.get(app_env) if register_at_providers else None
            previous = registration.provider_registration
            # A link that the provider does not hold yet (never sent, or refused last time) is sent again
            # even when nothing else changed: the desired state includes the provider knowing the link.
            if endpoint and (changed or previous is None or previous.status != "registered"):
                # "pending" is committed before the call: if the server dies during it, the listing shows
                # that the provider's answer is missing (null would read as "no registration endpoint"),
                # and a client sends the registration again.
                registration = self.store.record_provider_registration(
                    registration.uuid, ProviderRegistration("pending", None, utc_now(), None)) or registration
                # Outside any write transaction: a slow provider must not hold SQLite's write lock.
                result = register_at_provider(endpoint, registration.auth, self.link(registration.uuid),
                                              self.provider_timeout)
                registration = self.store.record_provider_registration(registration.uuid, result) or registration
                changed = True
                if result.status == "failed":
                    failure = f"provider registration failed for env {wanted.product_env}: {result.error}"
            results.append(RegistrationResult(registration, outcome.created, changed, failure))
        return results
