"""Upserting registrations, and registering their wrapped links at providers when that is due."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ductape_local.catalog import Connection, WebhookDefinition
from ductape_local.provider import register_at_provider
from ductape_local.store import Registration, RegistrationKey, Store, UpsertOutcome, UpsertRequest


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
        """Write every env of one request in one transaction, then call the providers that are due."""
        endpoints = {}
        wanted = []
        for item in desired:
            app_env = connection.envs[item.product_env]
            key = RegistrationKey(product, connection.access_tag, webhook.tag, item.product_env)
            wanted.append(UpsertRequest(key, app_env, item.url, item.method, item.auth))
            endpoints[item.product_env] = webhook.registration.get(app_env) if register_at_providers else None

        def provider_due(outcome: UpsertOutcome) -> bool:
            # A link that the provider does not hold yet (never sent, or refused last time) is sent again
            # even when nothing else changed: the desired state includes the provider knowing the link.
            # Its "pending" is committed before the call: if the server dies during it, the listing shows
            # that the provider's answer is missing (null would read as "no registration endpoint").
            previous = outcome.registration.provider_registration
            return bool(endpoints[outcome.registration.product_env]) and (
                outcome.changed or previous is None or previous.status != "registered")

        results = []
        for item, outcome in zip(desired, self.store.upsert_registrations(wanted, provider_due)):
            registration, changed, failure = outcome.registration, outcome.changed, None
            if outcome.provider_due:
                # Outside any write transaction: a slow provider must not hold SQLite's write lock.
                result = register_at_provider(endpoints[item.product_env], registration.auth,
                                              self.link(registration.uuid), self.provider_timeout)
                registration = self.store.record_provider_registration(registration.uuid, result) or registration
                changed = True
                if result.status == "failed":
                    failure = f"provider registration failed for env {item.product_env}: {result.error}"
            results.append(RegistrationResult(registration, outcome.created, changed, failure))
        return results
