#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
module: ductape_webhook_replay
short_description: Deliver stored provider events again, by event id or by filter
version_added: 0.1.0
description:
  - Queues deliveries that Ductape stored for delivery once more to their registration's receiver, with a fresh set
    of attempts, for the events given by O(event_ids), or those that match the filters (O(access_tag), O(webhook_tag),
    O(env), O(registration_uuid), O(status), O(received_after), O(received_before)), at most O(limit) of them.
  - The usual case is the events that failed (O(status=failed), given up on after the last retry) once the receiver
    is fixed.
  - A delivery that is being attempted at that moment is skipped, and counted in RV(skipped_in_flight).
  - Needs a Ductape API with the lifecycle extension (ductape-local, C(POST /webhooks/v1/deliveries/replay)).
author:
  - Ductape maintainers (@ductape)
extends_documentation_fragment:
  - ductape.webhooks.connection
  - ductape.webhooks.attributes
  - ductape.webhooks.attributes.actiongroup_ductape
options:
  product:
    description: The product's tag; only its deliveries are replayed.
    type: str
    required: true
  event_ids:
    description:
      - The events to replay, by the event id that the wrapped link answered with (at most 1000). Ids the API does
        not know are not counted in RV(matched).
      - Not together with the filters.
    type: list
    elements: str
  access_tag:
    description:
      - Only deliveries for this app connection (its access tag). It is read first; the task fails when the product has
        no such access tag, before anything is replayed.
    type: str
  webhook_tag:
    description:
      - Only deliveries of this webhook. With O(access_tag), the task fails when the app defines no such webhook,
        naming the ones it does; without it, ductape-local refuses a webhook that none of the product's apps defines.
    type: str
  env:
    description:
      - Only deliveries in this product environment. The task fails when the product has no such env, naming its
        envs (read first with O(access_tag); without it, ductape-local refuses it), before anything is replayed.
    type: str
  registration_uuid:
    description: Only deliveries of the registration with this uuid (RV(ductape.webhooks.ductape_webhook#module:envs[].uuid)).
    type: str
  status:
    description:
      - Only deliveries in this state. V(failed) are the ones given up on (dead letters); V(delivered) are replayed
        too when asked (a receiver that lost what it had accepted); V(pending) are waiting for an attempt already.
    type: str
    choices: [pending, delivered, failed]
  received_after:
    description: Only events that reached Ductape at or after this time (ISO 8601, for example V(2026-12-01T00:00:00Z)).
    type: str
  received_before:
    description: Only events that reached Ductape before this time (ISO 8601).
    type: str
  limit:
    description:
      - The most deliveries to queue in this task (1 to 1000); RV(truncated) says that more matched. Run the task
        again to queue the next ones.
    type: int
    default: 100
attributes:
  check_mode:
    support: full
    details:
      - Asks the API how many deliveries would be queued (its dry run), and queues none; RV(ignore:changed) says whether
        a real run would queue any.
  diff_mode:
    support: none
    details: Replaying changes no registration; RV(event_ids) says which deliveries are queued.
  idempotent:
    support: partial
    details:
      - RV(ignore:changed) is true when something was queued. A second run queues the same deliveries again while
        they still match the filters; filter by O(status=failed) (or O(event_ids) of failed ones) so that the
        deliveries that then succeed are left alone.
notes:
  - At least one filter or O(event_ids) is needed, so that a forgotten option does not replay everything.
seealso:
  - module: ductape.webhooks.ductape_webhook_delivery_info
    description: Find the deliveries to replay, and read their attempts afterwards.
  - module: ductape.webhooks.ductape_webhook_test
"""

EXAMPLES = r"""
- name: How many failed deliveries of the Stripe connection in production would be replayed
  ductape.webhooks.ductape_webhook_replay:
    api_url: https://api.ductape.app
    access_key: "{{ vault_ductape_access_key }}"
    product: my-product
    access_tag: stripe-payments
    env: prd
    status: failed
  check_mode: true
  register: would_replay

- name: Replay them, once the receiver is fixed
  ductape.webhooks.ductape_webhook_replay:
    product: my-product
    access_tag: stripe-payments
    env: prd
    status: failed
    received_after: "2026-12-01T00:00:00Z"
    limit: 500
  register: replayed

- name: Replay two events a provider asked about
  ductape.webhooks.ductape_webhook_replay:
    product: my-product
    event_ids:
      - evt_5b0c6f3e9d8a4c1f8e2a7b6d5c4e3f21
      - evt_1f2e3d4c5b6a79880f1e2d3c4b5a6978
"""

RETURN = r"""
changed:
  description: True when at least one delivery was queued; in check mode, when at least one would be (RV(would_queue)).
  returned: always
  type: bool
msg:
  description: How many deliveries matched and were (or would be) queued, and why the others were not, or why the task
    failed.
  returned: always
  type: str
  sample: "3 deliveries matched, 2 queued for delivery again, 1 of a deleted registration not queued (no receiver to deliver to)"
matched:
  description: How many deliveries matched (at most O(limit)).
  returned: success
  type: int
  sample: 3
queued:
  description: How many were queued for delivery again; 0 in check mode.
  returned: success
  type: int
  sample: 3
would_queue:
  description:
    - In check mode, how many a real run would queue; RV(matched) less RV(skipped_in_flight) and RV(skipped_deleted).
  returned: in check mode
  type: int
  sample: 3
skipped_in_flight:
  description: How many matched but were being attempted at that moment, and were left to that attempt.
  returned: success
  type: int
  sample: 0
skipped_deleted:
  description:
    - How many matched but belong to a registration that was deleted since; they have no receiver to go to and are not
      queued.
  returned: success
  type: int
  sample: 0
event_ids:
  description: The ids of the deliveries that matched, in the API's order.
  returned: success
  type: list
  elements: str
  sample: [evt_5b0c6f3e9d8a4c1f8e2a7b6d5c4e3f21]
truncated:
  description: True when more deliveries matched than O(limit); run again to queue the next ones.
  returned: success
  type: bool
  sample: false
dry_run:
  description: True in check mode (the API counted, queued nothing).
  returned: success
  type: bool
"""

from ansible_collections.ductape.webhooks.plugins.module_utils._engine import filter_problems, parse_time, refusal
from ansible_collections.ductape.webhooks.plugins.module_utils._module_host import run_as_module
from ansible_collections.ductape.webhooks.plugins.module_utils._rules import quoted
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import (
    DuctapeApiError,
    client_for,
    connection_argument_spec,
)

MAX_REPLAY = 1000
FILTERS = ("access_tag", "webhook_tag", "env", "registration_uuid", "status", "received_after", "received_before")


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        product=dict(type="str", required=True),
        event_ids=dict(type="list", elements="str"),
        access_tag=dict(type="str"),
        webhook_tag=dict(type="str"),
        env=dict(type="str"),
        registration_uuid=dict(type="str"),
        status=dict(type="str", choices=["pending", "delivered", "failed"]),
        received_after=dict(type="str"),
        received_before=dict(type="str"),
        limit=dict(type="int", default=100),
    )
    return spec


ARGUMENT_SPEC_OPTIONS = dict(mutually_exclusive=[("event_ids", name) for name in FILTERS])


def option_problems(params):
    problems = []
    event_ids = params.get("event_ids")
    if event_ids is not None:
        if not event_ids:
            problems.append("event_ids: give at least one event id (got an empty list)")
        elif len(event_ids) > MAX_REPLAY:
            problems.append("event_ids: at most %d per task (got %d)" % (MAX_REPLAY, len(event_ids)))
        problems.extend("event_ids[%d]: must be an event id (got %s)" % (index, quoted(value))
                        for index, value in enumerate(event_ids) if not isinstance(value, str) or not value.strip())
    elif not any(params.get(name) for name in FILTERS):
        problems.append("give event_ids or at least one filter (%s); nothing is replayed without one"
                        % ", ".join(FILTERS))
    if not 1 <= params["limit"] <= MAX_REPLAY:
        problems.append("limit: must be from 1 to %d (got %s)" % (MAX_REPLAY, quoted(params["limit"])))
    times = {}
    for name in ("received_after", "received_before"):
        if params.get(name) is not None:
            times[name] = parse_time(params[name])
            if times[name] is None:
                problems.append("%s: must be an ISO 8601 time such as 2026-12-01T00:00:00Z (got %s)"
                                % (name, quoted(params[name])))
    if times.get("received_after") and times.get("received_before") and \
            times["received_after"] >= times["received_before"]:
        problems.append("received_after (%s) must be before received_before (%s)"
                        % (params["received_after"], params["received_before"]))
    return problems


def run(params, check_mode, want_diff, warn):
    """Check, ask the API to replay (or count, in check mode), report."""
    problems = option_problems(params)
    if problems:
        return refusal(problems)
    try:
        client = client_for(params, warn)
        if params.get("access_tag"):
            # One read: an unknown access tag, webhook or env is refused, never counted as 0 matched.
            problems = filter_problems(client, params["product"], params["access_tag"], params.get("webhook_tag"),
                                       params.get("env"))[0]
            if problems:
                return refusal(problems)
        filters = dict((name, params.get(name)) for name in FILTERS)
        answer = client.replay(params["product"], event_ids=params.get("event_ids"), dry_run=check_mode,
                               limit=params["limit"], **filters)
    except DuctapeApiError as error:
        return refusal([str(error)])
    matched = answer.get("matched") or 0
    queued = 0 if check_mode else (answer.get("queued") or 0)
    skipped = answer.get("skipped_in_flight") or 0
    deleted = answer.get("skipped_deleted") or 0
    result = dict(matched=matched, queued=queued, skipped_in_flight=skipped, skipped_deleted=deleted,
                  event_ids=list(answer.get("event_ids") or []), truncated=bool(answer.get("truncated")),
                  dry_run=bool(check_mode))
    more = " (more matched than limit %d: run again for the next ones)" % params["limit"] if result["truncated"] else ""
    left = "".join(text % count for text, count in (
        (", %d being attempted now left alone", skipped),
        (", %d of a deleted registration not queued (no receiver to deliver to)", deleted)) if count)
    if check_mode:
        result["would_queue"] = max(0, matched - skipped - deleted)
        result["changed"] = result["would_queue"] > 0
        result["msg"] = "check mode: %d deliveries matched, %d would be queued for delivery again%s%s" % (
            matched, result["would_queue"], left, more)
    else:
        result["changed"] = queued > 0
        result["msg"] = "%d deliveries matched, %d queued for delivery again%s%s" % (matched, queued, left, more)
    return result


def main():
    run_as_module(argument_spec(), ARGUMENT_SPEC_OPTIONS, run)


if __name__ == "__main__":
    main()
