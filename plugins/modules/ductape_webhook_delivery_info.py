#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
module: ductape_webhook_delivery_info
short_description: Read the delivery log of provider events relayed through Ductape wrapped links
version_added: 0.1.0
description:
  - Lists the deliveries of provider events that reached Ductape through a wrapped link, newest
    first, each with every attempt made to forward it to the product's receiver (time, HTTP status,
    latency, error), and counts them by status.
  - With O(product), also reports the events that Ductape refused at the door (a provider signature
    that did not verify) and the repeats of provider events that it acknowledged without delivering
    them again, for the same filters, with the reason of the last refusal.
  - Use it to check that a webhook works end to end after registering it, or to find the events
    that failed and why.
  - Read only; never changes anything and never returns a secret (no headers and no bodies of events, credentials
    inside urls masked).
  - The deliveries routes are an extension of ductape-local that the hosted Ductape is not known to offer; a server
    without them fails the task naming the operation and saying that this Ductape API does not offer it (see the
    guide "Ductape's API and this collection").
author:
  - Ductape maintainers (@ductape)
extends_documentation_fragment:
  - ductape.webhooks.connection
  - ductape.webhooks.attributes
  - ductape.webhooks.attributes.actiongroup_ductape
  - ductape.webhooks.attributes.info_module
options:
  product:
    description:
      - Only deliveries of this product (its tag).
      - Without it, the deliveries of every product that the access key may use.
    type: str
  access_tag:
    description: Only deliveries for this app connection (its access tag).
    type: str
  webhook_tag:
    description:
      - Only deliveries of this webhook (its tag).
      - With O(product) and O(access_tag), the task fails when the app defines no such webhook, naming the ones it does;
        otherwise ductape-local refuses a webhook that no app of the product (or of the access key's products) defines.
    type: str
  env:
    description:
      - Only deliveries in this product environment (its slug, for example C(prd)).
      - The task fails when the product has no such env, naming its envs (read first with O(product) and
        O(access_tag); otherwise ductape-local refuses it).
    type: str
  status:
    description:
      - Only deliveries in this state.
      - V(pending) is waiting for its first or next attempt; V(delivered) reached the receiver with a 2xx
        answer; V(failed) gave up after the last retry or on an answer that is not worth retrying.
    type: str
    choices: [pending, delivered, failed]
  event_id:
    description:
      - One delivery, by the event id that the wrapped link answered with (and that the receiver gets
        in C(X-Ductape-Event-Id)).
      - The other filters are ignored. An unknown id returns no delivery rather than failing.
    type: str
  limit:
    description:
      - The most deliveries to return, newest first. Pages of the API are followed until it is reached.
    type: int
    default: 50
notes:
  - The delivery log is a feature of the Ductape middleware as the C(ductape-local) server implements it
    (C(GET /webhooks/v1/deliveries)); the rejected and duplicate counts come from its summary
    (C(GET /webhooks/v1/deliveries/summary)), which needs O(product).
seealso:
  - module: ductape.webhooks.ductape_webhook
  - module: ductape.webhooks.ductape_webhook_info
"""

EXAMPLES = r"""
- name: Check the failed deliveries of the Stripe connection in production
  ductape.webhooks.ductape_webhook_delivery_info:
    product: my-product
    access_tag: stripe-payments
    env: prd
    status: failed
  register: failed_deliveries

- name: Stop when any delivery failed
  ansible.builtin.assert:
    that: failed_deliveries.counts.failed == 0
    fail_msg: "{{ failed_deliveries.deliveries | map(attribute='last_error') | list }}"

- name: Read the Stripe connection's ingress counts
  ductape.webhooks.ductape_webhook_delivery_info:
    product: my-product
    access_tag: stripe-payments
    limit: 1
  register: stripe_ingress

- name: Say why events were refused (a signing secret out of date?)
  ansible.builtin.debug:
    msg: "{{ stripe_ingress.counts.rejected }} refused, the last: {{ stripe_ingress.last_rejection.reason }}"
  when: stripe_ingress.counts.rejected > 0

- name: Look up one event that a provider says it sent
  ductape.webhooks.ductape_webhook_delivery_info:
    event_id: evt_5b0c6f3e9d8a4c1f8e2a7b6d5c4e3f21
    api_url: https://api.ductape.app
    access_key: "{{ vault_ductape_access_key }}"
  register: one_event

- name: The ten most recent deliveries of one webhook
  ductape.webhooks.ductape_webhook_delivery_info:
    product: my-product
    webhook_tag: payment_succeeded
    limit: 10
"""

RETURN = r"""
deliveries:
  description: The deliveries found, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    event_id:
      description: The event's id; the receiver gets it in C(X-Ductape-Event-Id) to drop duplicates.
      type: str
      sample: evt_5b0c6f3e9d8a4c1f8e2a7b6d5c4e3f21
    registration_uuid:
      description: The uuid of the registration whose wrapped link received the event.
      type: str
      sample: 0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
    product:
      description: The product's tag.
      type: str
      sample: my-product
    access_tag:
      description: The app connection's access tag.
      type: str
      sample: stripe-payments
    webhook_tag:
      description: The webhook's tag.
      type: str
      sample: payment_succeeded
    env:
      description: The product environment's slug.
      type: str
      sample: prd
    method:
      description: The HTTP method used to forward the event to the receiver.
      type: str
      sample: POST
    status:
      description: V(pending), V(delivered) or V(failed).
      type: str
      sample: delivered
    attempt_count:
      description: How many attempts were made so far.
      type: int
      sample: 1
    received_at:
      description: When the event reached Ductape (ISO 8601, UTC).
      type: str
      sample: "2026-01-15T10:02:03.120Z"
    delivered_at:
      description: When the receiver last accepted it; null until then.
      type: str
      sample: "2026-01-15T10:02:03.141Z"
    next_attempt_at:
      description: When the next attempt is due; null unless the delivery is pending.
      type: str
      sample: null
    last_error:
      description: What went wrong in the latest attempt; null when it succeeded.
      type: str
      sample: null
    duplicates:
      description:
        - How many repeats of this event (the same provider event id within the webhook's dedup window)
          Ductape acknowledged without delivering them again; 0 from a server that does not deduplicate.
      type: int
      sample: 0
    attempts:
      description: Every attempt, oldest first.
      type: list
      elements: dict
      contains:
        n:
          description: The attempt's number, from 1.
          type: int
        at:
          description: When it started (ISO 8601, UTC).
          type: str
        status_code:
          description: The receiver's HTTP status; null for a connection error or a timeout.
          type: int
        latency_ms:
          description: How long the attempt took, in milliseconds.
          type: float
        error:
          description: Why the attempt did not succeed; null when it did.
          type: str
  sample:
    - event_id: evt_5b0c6f3e9d8a4c1f8e2a7b6d5c4e3f21
      registration_uuid: 0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
      product: my-product
      access_tag: stripe-payments
      webhook_tag: payment_succeeded
      env: prd
      method: POST
      status: delivered
      attempt_count: 2
      received_at: "2026-01-15T10:02:03.120Z"
      delivered_at: "2026-01-15T10:02:04.188Z"
      next_attempt_at: null
      last_error: null
      attempts:
        - {n: 1, at: "2026-01-15T10:02:03.122Z", status_code: 503, latency_ms: 4.1, error: receiver answered HTTP 503}
        - {n: 2, at: "2026-01-15T10:02:04.170Z", status_code: 200, latency_ms: 17.9, error: null}
counts:
  description: How many of the returned deliveries are in each state.
  returned: always
  type: dict
  contains:
    pending:
      description: Deliveries waiting for an attempt.
      type: int
    delivered:
      description: Deliveries the receiver accepted.
      type: int
    failed:
      description: Deliveries given up on.
      type: int
    rejected:
      description:
        - Events refused because their provider signature did not verify (answered 401, never stored),
          since the registrations were made, for O(product) and the O(access_tag), O(webhook_tag) and O(env) filters
          (not O(status) or O(limit)).
        - Null without O(product), or with O(event_id).
      type: int
    duplicates:
      description:
        - Repeats of provider events acknowledged and not delivered again, for the same filters as RV(counts.rejected).
        - Null without O(product), or with O(event_id).
      type: int
  sample: {pending: 0, delivered: 9, failed: 1, rejected: 2, duplicates: 1}
last_rejection:
  description:
    - The latest refused event for the filters of RV(counts.rejected); null when there was none, without
      O(product), or with O(event_id).
    - The reason says what was wrong with the request; it never holds a secret or a signature.
  returned: always
  type: dict
  contains:
    reason:
      description: Why the event was refused.
      type: str
    at:
      description: When (ISO 8601, UTC).
      type: str
    registration_uuid:
      description: The registration whose wrapped link refused it.
      type: str
  sample:
    reason: "signature verification failed: the Stripe-Signature timestamp is 3600 s old, beyond the tolerance of 300 s (a replayed or delayed event)"
    at: "2026-01-15T10:02:03.120Z"
    registration_uuid: 0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
"""

from ansible_collections.ductape.webhooks.plugins.module_utils._engine import filter_problems as engine_filter_problems
from ansible_collections.ductape.webhooks.plugins.module_utils._engine import mask_urls_deep, refusal
from ansible_collections.ductape.webhooks.plugins.module_utils._module_host import run_as_module
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import (
    DuctapeApiError,
    client_for,
    connection_argument_spec,
)

STATUSES = ("pending", "delivered", "failed")


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        product=dict(type="str"),
        access_tag=dict(type="str"),
        webhook_tag=dict(type="str"),
        env=dict(type="str"),
        status=dict(type="str", choices=list(STATUSES)),
        event_id=dict(type="str"),
        limit=dict(type="int", default=50),
    )
    return spec


ARGUMENT_SPEC_OPTIONS = {}


def counts_by_status(deliveries):
    counts = dict.fromkeys(STATUSES, 0)
    for delivery in deliveries:
        if delivery.get("status") in counts:
            counts[delivery["status"]] += 1
    return counts


def filter_problems(client, params):
    """The filters checked with ductape_webhook's read and rules (the engine's filter_problems), where the
    API lets us: with product and access_tag, and a webhook_tag or env to check; otherwise nothing to check."""
    product, access_tag, webhook_tag, env = (params[name] for name in ("product", "access_tag", "webhook_tag", "env"))
    if not (product and access_tag and (env or webhook_tag)):
        return []
    return engine_filter_problems(client, product, access_tag, webhook_tag, env)[0]


def run(params, check_mode, want_diff, warn):
    """Check, read, report; shared with the action plugin that runs it in the controller process."""
    if params["limit"] < 1:
        return refusal(["limit: must be 1 or more (got %d)" % params["limit"]])
    summary = None
    try:
        client = client_for(params, warn)
        if params["event_id"]:
            found = client.delivery(params["event_id"])
            deliveries = [] if found is None else [found]
        else:
            problems = filter_problems(client, params)
            if problems:
                return refusal(problems)
            filters = dict((name, params[name]) for name in ("product", "access_tag", "webhook_tag", "env", "status"))
            deliveries = client.deliveries(limit=params["limit"], **filters)
            if params["product"]:
                summary = client.delivery_summary(
                    params["product"], params["access_tag"], params["webhook_tag"], params["env"])
    except DuctapeApiError as error:
        return refusal([str(error)])
    deliveries = mask_urls_deep(deliveries)
    counts = counts_by_status(deliveries)
    counts["rejected"] = summary.get("rejected") if summary is not None else None
    counts["duplicates"] = summary.get("duplicates") if summary is not None else None
    last_rejection = summary.get("last_rejection") if summary is not None else None
    return {"changed": False, "deliveries": deliveries, "counts": counts, "last_rejection": last_rejection}


def main():
    run_as_module(argument_spec(), ARGUMENT_SPEC_OPTIONS, run)


if __name__ == "__main__":
    main()
