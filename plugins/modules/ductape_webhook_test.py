#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
module: ductape_webhook_test
short_description: Send a test event through a webhook registration and wait until the receiver took it
version_added: 0.1.0
description:
  - Sends a synthetic event through the registration of one webhook in one product environment, along the whole
    path a provider's event takes (stored by Ductape, then delivered to the receiver with retries), marked as a test
    in the delivery log and in the C(X-Ductape-Test) header the receiver gets.
  - Then waits, at most O(wait_timeout) seconds, for the delivery's outcome, reading it back, and reports every
    attempt's HTTP status and error.
  - The task fails when the receiver did not accept the event (the delivery failed, or it was still pending at the
    end of the wait), so a playbook can gate a deploy on it.
  - Needs a Ductape API with the lifecycle extension (ductape-local, C(POST /webhooks/v1/registrations/{uuid}/test)).
    A server without it fails the task naming the operation and saying that this Ductape API does not offer it; in
    check mode, which sends nothing, a registration listed without a lifecycle C(state) fails the same way.
author:
  - Ductape maintainers (@ductape)
extends_documentation_fragment:
  - ductape.webhooks.connection
  - ductape.webhooks.attributes
  - ductape.webhooks.attributes.actiongroup_ductape
options:
  product:
    description: The product's tag.
    type: str
    required: true
  access_tag:
    description: The access tag of the product's connection to the app, for example V(stripe-payments).
    type: str
    required: true
  webhook_tag:
    description: The webhook's tag; the task fails naming the app's webhooks when it defines no such one.
    type: str
    required: true
  env:
    description: The product environment's slug; the task fails naming the product's envs when it has no such one.
    type: str
    required: true
  payload:
    description:
      - The JSON object sent as the test event's body. Not given, the API sends a small synthetic one.
      - It reaches the receiver as it is; do not put a secret in it.
    type: dict
  max_attempts:
    description:
      - How many delivery attempts the test event gets (1 to 10), with the API's retry schedule between them.
      - V(1) reports the receiver's first answer; more let a receiver that is starting up still pass.
    type: int
    default: 1
  wait_timeout:
    description:
      - The most seconds to wait for the delivery's outcome after sending the event (not the connection's O(timeout),
        which bounds each HTTP request).
      - When it passes with the delivery still pending, the task fails saying so, with the attempts made so far.
    type: float
    default: 60
attributes:
  check_mode:
    support: full
    details:
      - Reads the registration and checks that a test can be sent; sends no event and says so, reporting
        RV(ignore:changed=true) as a real run would.
  diff_mode:
    support: none
    details: A test changes no registration; there is nothing to show before and after.
  idempotent:
    support: none
    details: Every run sends a new test event (reported as RV(ignore:changed=true)); check mode sends none.
notes:
  - The receiver sees the test event with the headers of any event (C(X-Ductape-Event-Id), C(X-Ductape-Webhook-Tag),
    C(X-Ductape-Env)) plus C(X-Ductape-Test) set to C(true); a receiver can skip its side effects on it.
  - A disabled registration cannot be tested; enable it first (M(ductape.webhooks.ductape_webhook) with
    O(ductape.webhooks.ductape_webhook#module:state=present)).
seealso:
  - module: ductape.webhooks.ductape_webhook_delivery_info
    description: Reads the delivery of the test event (RV(event_id)) and every other one.
  - module: ductape.webhooks.ductape_webhook
"""

EXAMPLES = r"""
- name: Prove that production receives payment_succeeded before the deploy goes on
  ductape.webhooks.ductape_webhook_test:
    api_url: https://api.ductape.app
    access_key: "{{ vault_ductape_access_key }}"
    product: my-product
    access_tag: stripe-payments
    webhook_tag: payment_succeeded
    env: prd
  register: webhook_test

- name: Show how the receiver answered
  ansible.builtin.debug:
    msg: "{{ webhook_test.attempts | map(attribute='status_code') | list }}"

- name: Give a receiver that is starting up three attempts, with a payload of our own
  ductape.webhooks.ductape_webhook_test:
    product: my-product
    access_tag: stripe-payments
    webhook_tag: payment_succeeded
    env: stg
    max_attempts: 3
    wait_timeout: 120
    payload:
      type: payment_succeeded
      test: true
"""

RETURN = r"""
changed:
  description:
    - True when a test event was sent, and in check mode when one would be; false when the task was refused before
      sending.
  returned: always
  type: bool
msg:
  description: What happened, or why the task failed (the receiver's answers, a timeout, a disabled registration).
  returned: always
  type: str
  sample: "the receiver did not accept the test event evt_1c9e...: attempt 1: HTTP 500 (receiver answered HTTP 500)"
event_id:
  description: The test event's id (the receiver gets it in C(X-Ductape-Event-Id)); null in check mode.
  returned: when the event was sent, and in check mode
  type: str
  sample: evt_5b0c6f3e9d8a4c1f8e2a7b6d5c4e3f21
registration_uuid:
  description: The uuid of the registration the event went through.
  returned: when the registration was found
  type: str
  sample: 0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
link:
  description: The registration's wrapped link.
  returned: when the registration was found
  type: str
  sample: https://webhooks.ductape.app/webhooks/v1/process/0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
status:
  description:
    - V(delivered) (the receiver accepted it), V(failed) (it did not, on the last attempt), V(pending) (no outcome
      within O(wait_timeout)), or V(not_sent) in check mode.
  returned: when the registration was found
  type: str
  sample: delivered
attempts:
  description: Every delivery attempt, oldest first.
  returned: when the event was sent
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
    - {n: 1, at: "2026-12-02T02:30:00.120Z", status_code: 500, latency_ms: 3.2, error: receiver answered HTTP 500}
delivery:
  description:
    - The test event's delivery as M(ductape.webhooks.ductape_webhook_delivery_info) returns one (with C(test) true),
      urls masked.
  returned: when the event was sent
  type: dict
waited:
  description: Seconds spent waiting for the outcome.
  returned: when the event was sent
  type: float
  sample: 0.4
"""

import time

from ansible_collections.ductape.webhooks.plugins.module_utils._engine import (
    check_mode_not_offered,
    filter_problems,
    is_disabled,
    mask_urls_deep,
    refusal,
    registrations_by_env,
)
from ansible_collections.ductape.webhooks.plugins.module_utils._module_host import run_as_module
from ansible_collections.ductape.webhooks.plugins.module_utils._rules import quoted
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import (
    DuctapeApiError,
    client_for,
    connection_argument_spec,
)

MAX_ATTEMPTS = 10
# How often the delivery is read while it is pending: from FIRST_POLL seconds, growing to LAST_POLL.
FIRST_POLL = 0.1
LAST_POLL = 1.0
_clock = time.monotonic
_sleep = time.sleep


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        product=dict(type="str", required=True),
        access_tag=dict(type="str", required=True),
        webhook_tag=dict(type="str", required=True),
        env=dict(type="str", required=True),
        payload=dict(type="dict"),
        max_attempts=dict(type="int", default=1),
        wait_timeout=dict(type="float", default=60.0),
    )
    return spec


ARGUMENT_SPEC_OPTIONS = {}


def option_problems(params):
    problems = []
    attempts = params["max_attempts"]
    if not 1 <= attempts <= MAX_ATTEMPTS:
        problems.append("max_attempts: must be from 1 to %d (got %s)" % (MAX_ATTEMPTS, quoted(attempts)))
    if not params["wait_timeout"] > 0:
        problems.append("wait_timeout: must be more than 0 seconds (got %s)" % quoted(params["wait_timeout"]))
    return problems


def attempts_text(attempts):
    """``attempt 1: HTTP 500 (receiver answered HTTP 500); attempt 2: no answer (timed out)``."""
    lines = []
    for attempt in attempts:
        code = attempt.get("status_code")
        answer = "HTTP %s" % code if code is not None else "no answer"
        error = attempt.get("error")
        lines.append("attempt %s: %s%s" % (attempt.get("n"), answer, " (%s)" % error if error else ""))
    return "; ".join(lines) or "no attempt was made"


def wait_for_outcome(client, event_id, wait_timeout):
    """(delivery or None, seconds waited): read until it is no longer pending, or wait_timeout passed."""
    started = _clock()
    pause = FIRST_POLL
    while True:
        delivery = client.delivery(event_id)
        waited = _clock() - started
        if delivery is not None and delivery.get("status") != "pending":
            return delivery, waited
        if waited >= wait_timeout:
            return delivery, waited
        _sleep(min(pause, max(0.0, wait_timeout - waited)))
        pause = min(LAST_POLL, pause * 1.5)


def run(params, check_mode, want_diff, warn):
    """Find the registration, send the test, wait for its outcome, report every attempt."""
    problems = option_problems(params)
    if problems:
        return refusal(problems)
    name = "%s/%s in env %s" % (params["access_tag"], params["webhook_tag"], params["env"])
    found = {}
    event_id = None
    try:
        client = client_for(params, warn)
        problems, reading = filter_problems(client, params["product"], params["access_tag"], params["webhook_tag"],
                                            params["env"])
        if problems:
            return refusal(problems)
        registration = registrations_by_env(reading.webhook).get(params["env"])
        if registration is None:
            return refusal(["%s has no registration to test; register it first (ductape.webhooks.ductape_webhook)"
                            % name])
        found = dict(registration_uuid=registration.get("uuid"), link=registration.get("link"))
        if is_disabled(registration):
            return dict(refusal(["%s is disabled: its link stores no event, so a test cannot pass; enable it first "
                                 "(ductape.webhooks.ductape_webhook with state=present)" % name]), **found)
        if check_mode:
            problem = check_mode_not_offered("send a test event through %s" % name, registration)
            if problem:
                return dict(refusal([problem]), **found)
            return dict(found, changed=True, event_id=None, status="not_sent",
                        msg="check mode: no test event was sent through %s" % name)
        sent = client.send_test(registration["uuid"], payload=params["payload"], max_attempts=params["max_attempts"],
                                env=params["env"])
        event_id = sent.get("event_id")
        if not event_id:
            return dict(refusal(["send a test event through %s: the API's answer gave no event_id" % name]),
                        changed=True, **found)
        delivery, waited = wait_for_outcome(client, event_id, params["wait_timeout"])
    except DuctapeApiError as error:
        if event_id is None:
            return dict(refusal([str(error)]), **found)
        # Sent, but its outcome could not be read: the event exists, and the message says which it is.
        return dict(refusal(["the test event %s was sent through %s, but %s" % (event_id, name, error)]),
                    changed=True, event_id=event_id, **found)
    delivery = mask_urls_deep(delivery or {})
    attempts = delivery.get("attempts") or []
    status = delivery.get("status") or "pending"
    result = dict(found, changed=True, event_id=event_id, status=status, attempts=attempts, delivery=delivery,
                  waited=round(waited, 3))
    if status == "delivered":
        result["msg"] = "the receiver accepted the test event %s through %s: %s" % (
            event_id, name, attempts_text(attempts))
    elif status == "failed":
        result.update(failed=True, msg="the receiver did not accept the test event %s through %s: %s" % (
            event_id, name, attempts_text(attempts)))
    else:
        # An attempt still waiting for the receiver's answer is not in the log yet.
        so_far = "after: %s" % attempts_text(attempts) if attempts else "with no attempt ended yet"
        result.update(failed=True, msg=(
            "the test event %s through %s had no outcome within wait_timeout (%s s); still pending %s. "
            "Raise wait_timeout, or read it later with ductape.webhooks.ductape_webhook_delivery_info event_id=%s"
            % (event_id, name, params["wait_timeout"], so_far, event_id)))
    return result


def main():
    run_as_module(argument_spec(), ARGUMENT_SPEC_OPTIONS, run)


if __name__ == "__main__":
    main()
