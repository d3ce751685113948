"""Upserting registrations, and registering their wrapped links at providers when that is due."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ductape_local.catalog import Catalog, Connection, ProviderEndpoint, WebhookDefinition
from ductape_local.config import INGRESS_PREFIX
from ductape_local.envelope import ApiError, quoted
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
        return f"{self.public_url}{INGRESS_PREFIX}{uuid}"

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

    def rotate(self, registration: Registration, grace_seconds: int,
               endpoint: ProviderEndpoint | None, expected_generation: int | None = None) -> RegistrationResult:
        """A new uuid and link for one registration (the old one retired, with its grace period); in
        full mode (`endpoint`: the app env's registration endpoint) the provider is then given the new
        link, as register does. A failed provider call keeps the rotation (provider_failure says why).
        With `expected_generation`, only a registration still at that generation is rotated; another
        answers 409 naming both (generation_conflict), so a retried rotate never rotates twice."""
        outcome = self.store.rotate(registration.uuid, grace_seconds, provider_due=endpoint is not None,
                                    expected_generation=expected_generation)
        if outcome is None:  # deleted or rotated by a concurrent request
            found = self.store.lookup_link(registration.uuid)
            if expected_generation is not None and found is not None and found.retired is not None:
                raise generation_conflict(registration.uuid, found.registration.generation, expected_generation)
            raise ApiError(404, f"uuid: no registration {quoted(registration.uuid)}")
        rotated, done = outcome
        if not done:
            raise generation_conflict(registration.uuid, rotated.generation, expected_generation)
        failure = None
        if endpoint is not None:
            # Outside any write transaction, like register's call.
            result = register_at_provider(endpoint, rotated.auth, self.link(rotated.uuid), self.provider_timeout)
            rotated = self.store.record_provider_registration(rotated.uuid, result) or rotated
            if result.status == "failed":
                failure = f"provider registration failed for env {rotated.product_env}: {result.error}"
        return RegistrationResult(rotated, created=False, changed=True, provider_failure=failure)


def generation_conflict(uuid: str, generation: int, expected_generation: int) -> ApiError:
    """The 409 of a conditional rotate whose registration is no longer at the generation the caller saw;
    meta carries both generations (never the current uuid or link)."""
    return ApiError(
        409, f"expected_generation: the registration of uuid {quoted(uuid)} is at generation {generation}, not "
             f"the expected {expected_generation}; it was not rotated again (the webhooks listing shows its "
             "current uuid and link)",
        meta={"generation": generation, "expected_generation": expected_generation})


def registration_for_route(store: Store, catalog: Catalog, products: frozenset[str], uuid: str) -> Registration:
    """The live registration a `/registrations/{uuid}...` route acts on. Another product's uuid answers
    as an unknown one (404): a key learns nothing of other products. A uuid the registration had
    before a rotation answers 410 naming it as rotated, without revealing the current link."""
    found = store.lookup_link(uuid)
    registration = found.registration if found else None
    if (registration is None or registration.product not in products
            or registration.product not in catalog.products):
        raise ApiError(404, f"uuid: no registration {quoted(uuid)}")
    if found.retired is not None:
        raise ApiError(410, f"uuid: {quoted(uuid)} is an earlier link of a registration that was rotated at "
                            f"{found.retired.retired_at}; use the registration's current uuid (the webhooks "
                            "listing shows it)")
    if registration.deleted_at is not None:
        raise ApiError(404, f"uuid: no registration {quoted(uuid)}")
    return registration
