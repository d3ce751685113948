#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
module: ductape_webhook
short_description: Register a webhook with Ductape in several product environments at once
version_added: 0.1.0
description:
  - Makes the Ductape registrations of one webhook match what is listed in O(envs), in one request.
    For each listed product environment, Ductape forwards the app's events to the receiver O(envs[].url)
    with O(envs[].method) through its wrapped link.
  - Where the app's provider allows registration by API, Ductape also registers the wrapped link at the provider,
    using O(envs[].auth) as that request's authentication and structure (Ductape's C(webhooks.enable)).
  - The current registrations are read first and compared on url, method and a digest of the auth; only the envs
    that differ are written. Environments not listed are never touched.
  - With O(state=absent), the registrations of the listed environments are removed, and nothing else.
  - O(webhooks) does the same for several webhooks in one task (the batch form), instead of O(access_tag),
    O(webhook_tag) and O(envs); a loop over many webhooks costs a task invocation per item, the batch one in all.
author:
  - Ductape maintainers (@ductape)
extends_documentation_fragment:
  - ductape.webhooks.connection
options:
  product:
    description: The product's tag.
    type: str
    required: true
  access_tag:
    description:
      - The access tag of the product's connection to the app (the provider), for example V(stripe-payments).
      - Required with O(webhook_tag) and O(envs) unless O(webhooks) is given; not together with O(webhooks).
    type: str
  webhook_tag:
    description:
      - The tag of the webhook, one that the app defines, for example V(payment_succeeded).
      - Required with O(access_tag) and O(envs) unless O(webhooks) is given; not together with O(webhooks).
    type: str
  envs:
    description:
      - The product environments to register the webhook in, each listed once.
      - Every listed env is checked before anything is written; one bad env fails the task with no change made.
      - Required with O(access_tag) and O(webhook_tag) unless O(webhooks) is given; not together with O(webhooks).
    type: list
    elements: dict
    suboptions:
      slug:
        description: The product environment's slug, for example V(prd).
        type: str
        required: true
      url:
        description:
          - The receiver that Ductape forwards this env's events to, an absolute C(http://) or C(https://) URL.
          - Required with O(state=present); ignored with O(state=absent).
        type: str
      method:
        description: The HTTP method Ductape forwards events with.
        type: str
        choices: [GET, POST, PUT, PATCH, DELETE]
        default: POST
      auth:
        description:
          - Authentication and structure of the request that registers the link at the provider
            (Ductape's C(IActionRequest)), a mapping with any of the parts C(headers) (request headers,
            for example C(Authorization)), C(query) (query string parameters), C(body) (body fields) and
            C(params) (path parameters), each a mapping of names to values. Absent parts count as empty.
          - Never shown in results, diffs, errors or logs, not even when it has the wrong shape; then the
            error names the env and the part, and says what kind of value it got, but not the value.
          - Compared by digest, so a changed value is noticed without the stored one ever being read.
        type: raw
  webhooks:
    description:
      - The batch form, several webhooks in one task, instead of O(access_tag), O(webhook_tag) and O(envs).
        O(product) and O(state) apply to all of them.
      - Every env of every webhook is checked before anything is written; any problem fails the task with no
        change made, and the message names each one as C(webhooks[i].envs[j].field).
      - Then each webhook is read (one short listing), compared and written (one register request, or the
        deletes with O(state=absent)) in turn, with one HTTP session for the whole task.
      - A webhook whose call fails does not stop the others; the task then fails naming each failed webhook,
        and its result still reports every one, in RV(webhooks). Only an error that concerns every webhook (the API cannot be
        reached or does not answer in time, or refuses the access key or the product) leaves the remaining ones
        out, reported as failed and not attempted.
      - An empty list does nothing.
    type: list
    elements: dict
    suboptions:
      access_tag:
        description: As O(access_tag), for this webhook.
        type: str
        required: true
      webhook_tag:
        description: As O(webhook_tag), each webhook listed once.
        type: str
        required: true
      envs:
        description: As O(envs), for this webhook.
        type: list
        elements: dict
        required: true
        suboptions:
          slug:
            description: As O(envs[].slug).
            type: str
            required: true
          url:
            description: As O(envs[].url).
            type: str
          method:
            description: As O(envs[].method).
            type: str
            choices: [GET, POST, PUT, PATCH, DELETE]
            default: POST
          auth:
            description: As O(envs[].auth), never shown either.
            type: raw
  state:
    description:
      - V(present) creates or updates the registration of each listed env.
      - V(absent) removes the registration of each listed env; only O(envs[].slug) is needed.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Reads the current registrations and makes the same decisions; sends no write.
  diff_mode:
    support: full
    description: Shows url, method and auth of each written env before and after, every auth value masked.
  action_group:
    description: Use C(group/ductape.webhooks.ductape) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - ductape.webhooks.ductape
  idempotent:
    support: full
    description: A second run with the same options reports RV(ignore:changed=false) and sends no write.
notes:
  - A provider registration that fails leaves the Ductape registration stored; the task fails naming the env and
    the provider's HTTP status, and running it again retries the provider.
seealso:
  - module: ductape.webhooks.ductape_webhook_link
    description: For a provider whose dashboard needs the link pasted by a person.
  - module: ductape.webhooks.ductape_webhook_info
  - name: The ductape.webhooks.register role
    link: https://github.com/ductape/ansible-collection-webhooks/tree/main/roles/register
    description: Registers every webhook in every environment of the inventory.
"""

EXAMPLES = r"""
- name: Register payment_succeeded in production and staging
  ductape.webhooks.ductape_webhook:
    api_url: https://api.ductape.app
    access_key: "{{ vault_ductape_access_key }}"
    product: my-product
    access_tag: stripe-payments
    webhook_tag: payment_succeeded
    envs:
      - slug: prd
        url: https://api.example.com/hooks/stripe/payment-succeeded
        auth:
          headers:
            Authorization: "Bearer {{ vault_stripe_live_key }}"
      - slug: stg
        url: https://stg.example.com/hooks/stripe/payment-succeeded
        method: PUT
        auth:
          headers:
            Authorization: "Bearer {{ vault_stripe_test_key }}"
  register: registration

- name: Show the wrapped links
  ansible.builtin.debug:
    msg: "{{ registration.envs | items2dict(key_name='slug', value_name='link') }}"

- name: Set the connection once for every ductape task
  module_defaults:
    group/ductape.webhooks.ductape:
      api_url: http://127.0.0.1:4311
      access_key: "{{ vault_ductape_access_key }}"
  block:
    - name: Stop forwarding charge_refunded in dev
      ductape.webhooks.ductape_webhook:
        product: my-product
        access_tag: stripe-payments
        webhook_tag: charge_refunded
        envs:
          - slug: dev
        state: absent

- name: Register several webhooks in one task (the batch form)
  ductape.webhooks.ductape_webhook:
    product: my-product
    webhooks:
      - access_tag: stripe-payments
        webhook_tag: payment_succeeded
        envs:
          - slug: prd
            url: https://api.example.com/hooks/stripe/payment-succeeded
            auth:
              headers:
                Authorization: "Bearer {{ vault_stripe_live_key }}"
      - access_tag: paystack-payments
        webhook_tag: transfer_success
        envs:
          - slug: prd
            url: https://api.example.com/hooks/paystack/transfer-success
          - slug: stg
            url: https://stg.example.com/hooks/paystack/transfer-success
  register: batch

- name: Show the webhooks that changed
  ansible.builtin.debug:
    msg: "{{ batch.webhooks | selectattr('changed') | map(attribute='webhook_tag') | list }}"
"""

RETURN = r"""
changed:
  description: Whether any listed env was created, updated or deleted (or would be, in check mode).
  returned: always
  type: bool
msg:
  description:
    - Why the task failed. With O(webhooks), it names each failed webhook, as C(ACCESS_TAG/WEBHOOK_TAG) and the reason.
  returned: failure
  type: str
  sample: "1 of 3 webhooks failed: stripe-payments/charge_refunded: register stripe-payments/charge_refunded in sbx: HTTP 422: ..."
envs:
  description: One entry per listed env, in the order given.
  returned: success, with O(envs)
  type: list
  elements: dict
  contains:
    slug:
      description: The product environment's slug.
      type: str
      sample: prd
    action:
      description:
        - V(created), V(updated), V(unchanged), V(deleted), or V(absent) (O(state=absent) and nothing was registered).
        - In check mode, what a real run would do.
      type: str
      sample: updated
    uuid:
      description: The registration's uuid; null where none exists (yet, in check mode).
      type: str
      sample: 0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
    link:
      description: The Ductape-wrapped link that forwards to O(envs[].url); stable for the life of the registration.
      type: str
      sample: https://webhooks.ductape.app/webhooks/v1/process/0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
    url:
      description: The receiver URL.
      type: str
      sample: https://api.example.com/hooks/stripe/payment-succeeded
    method:
      description: The HTTP method events are forwarded with.
      type: str
      sample: POST
    provider_registration:
      description:
        - Whether Ductape registered the link at the provider; null where the app's environment has no
          registration endpoint (paste the link in the provider's dashboard instead).
        - Keys C(status) (V(registered) or V(failed); V(pending) while the call is under way or when the server
          stopped during it), C(http_status), C(at), C(error).
        - An env whose status is not V(registered) counts as V(updated) on the next run, which sends the
          registration again so that the provider is asked again.
      type: dict
      sample: {status: registered, http_status: 200, at: "2026-01-15T10:02:03Z", error: null}
webhooks:
  description:
    - With O(webhooks), one entry per webhook in the order given, also when the task failed.
  returned: with O(webhooks), unless an option was refused before any request
  type: list
  elements: dict
  contains:
    access_tag:
      description: The webhook's access tag.
      type: str
      sample: stripe-payments
    webhook_tag:
      description: The webhook's tag.
      type: str
      sample: payment_succeeded
    changed:
      description: Whether any of its envs was created, updated or deleted (or would be, in check mode).
      type: bool
    envs:
      description:
        - One entry per env of the webhook, each as RV(envs) describes.
        - For a failed webhook, C(action) is null for an env whose write did not happen, and for every env when
          its registrations could not be read.
      type: list
      elements: dict
    failed:
      description: True when this webhook's read or write failed.
      type: bool
      returned: when it failed
    msg:
      description: Why this webhook failed.
      type: str
      returned: when it failed
diff:
  description:
    - Url, method and masked auth of each written env, before and after. Only with C(--diff).
    - With O(webhooks), one more level keyed C(ACCESS_TAG/WEBHOOK_TAG), holding the webhooks that write only.
  returned: when diff mode is on
  type: dict
  sample:
    before: {prd: {url: https://old.example.com/hook, method: POST, auth: {headers: {Authorization: "********"}}}}
    after: {prd: {url: https://api.example.com/hook, method: POST, auth: {headers: {Authorization: "********"}}}}
"""

from ansible_collections.ductape.webhooks.plugins.module_utils._module_host import run_as_module

from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import (
    HTTP_METHODS,
    DuctapeApiError,
    client_for,
    connection_argument_spec,
)
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_webhooks import (
    CREATED,
    DELETED,
    UPDATED,
    WRITING_ACTIONS,
    check_envs,
    env_result,
    find_webhook,
    plan_registration,
    quoted,
    registration_diff,
    registrations_by_env,
)


def argument_spec():
    spec = connection_argument_spec()
    envs = dict(type="list", elements="dict", options=dict(
        slug=dict(type="str", required=True),
        url=dict(type="str"),
        method=dict(type="str", choices=list(HTTP_METHODS), default="POST"),
        # raw, not a dict with options: a value of the wrong shape must still be registered as
        # no_log before it is refused, or the failed task's invocation would show it in clear.
        # check_envs checks the shape (a mapping of AUTH_PARTS, each a mapping).
        auth=dict(type="raw", no_log=True),
    ))
    spec.update(
        product=dict(type="str", required=True),
        # One webhook (access_tag, webhook_tag, envs) or several (webhooks): run() says which are missing.
        access_tag=dict(type="str"),
        webhook_tag=dict(type="str"),
        envs=envs,
        webhooks=dict(type="list", elements="dict", options=dict(
            access_tag=dict(type="str", required=True),
            webhook_tag=dict(type="str", required=True),
            envs=dict(envs, required=True),
        )),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    return spec


SINGLE_FORM = ("access_tag", "webhook_tag", "envs")
ARGUMENT_SPEC_OPTIONS = dict(mutually_exclusive=[("webhooks", option) for option in SINGLE_FORM])

# A failed call with one of these statuses concerns every webhook of a batch (the API cannot be
# reached or does not answer in time, or refuses the key or the product): the others are not attempted.
_FAILS_EVERY_WEBHOOK = (None, 401, 403)


def _failure(message):
    return dict(failed=True, changed=False, msg=message)


def _form_problem(params):
    """The message when neither form, or only part of the single one, is given."""
    if params.get("webhooks") is not None:
        return None
    missing = [option for option in SINGLE_FORM if params.get(option) is None]
    if len(missing) == len(SINGLE_FORM):
        return ("one of the two forms is required: access_tag, webhook_tag and envs (one webhook), "
                "or webhooks (several)")
    if missing:
        return "missing required arguments: %s" % ", ".join(sorted(missing))
    return None


def _converge(client, product, access_tag, webhook_tag, envs, state, check_mode, progress):
    """One webhook: one read, the comparison, one register request or the deletes.

    ``progress`` receives the ``plan`` once it is made and, in ``written``, {env: what the server
    answered} as the writes succeed: a caller still knows both when a later call raises DuctapeApiError.
    """
    written = progress.setdefault("written", {})
    webhook = find_webhook(client.webhooks(product, access_tag, webhook_tag), webhook_tag)
    if webhook is None:
        raise DuctapeApiError("webhook_tag: %s is not a webhook of the app behind access tag %s"
                              % (quoted(webhook_tag), quoted(access_tag)), status=404)
    plan = progress["plan"] = plan_registration(registrations_by_env(webhook), envs, state)
    if not check_mode:
        to_register = [desired for slug, action, current, desired in plan if action in (CREATED, UPDATED)]
        if to_register:
            answer = client.register(product, access_tag, webhook_tag, to_register)
            written.update((env.get("productEnv"), env) for env in answer.get("envs") or [])
        for slug, action, current, desired in plan:
            if action == DELETED:
                written[slug] = client.delete_registration(current["uuid"], env=slug)


def _env_results(plan, written):
    results = []
    for slug, action, current, desired in plan:
        # What the server answered wins; before a write (check mode) the desired url and method are shown.
        answered = written.get(slug)
        results.append(env_result(slug, action, answered or current, None if answered else desired))
    return results


def run(params, check_mode, want_diff, warn):
    """The module's whole work, shared with the action plugin that runs it in the controller process."""
    problem = _form_problem(params)
    if problem:
        return _failure(problem)
    if params.get("webhooks") is not None:
        return _run_batch(params, check_mode, want_diff, warn)
    state = params["state"]
    envs = params["envs"] or []
    problems = check_envs(envs, state)
    if problems:
        return _failure("; ".join(problems))
    progress = {}
    try:
        client = client_for(params, warn)
        _converge(client, params["product"], params["access_tag"], params["webhook_tag"], envs, state,
                  check_mode, progress)
    except DuctapeApiError as error:
        return _failure(str(error))
    plan, written = progress["plan"], progress["written"]

    result = dict(changed=any(action in WRITING_ACTIONS for slug, action, current, desired in plan),
                  envs=_env_results(plan, written))
    if want_diff:
        result["diff"] = registration_diff(plan)
    return result


def _batch_problems(webhooks, state):
    """Every problem of every webhook of the batch, each naming webhooks[i] and the field."""
    problems = []
    first_index = {}
    for index, webhook in enumerate(webhooks):
        name = "%s/%s" % (webhook["access_tag"], webhook["webhook_tag"])
        if name in first_index:
            problems.append("webhooks[%d]: webhook %s is listed twice (webhooks[%d] and webhooks[%d]); "
                            "list each webhook once" % (index, quoted(name), first_index[name], index))
        else:
            first_index[name] = index
        problems.extend("webhooks[%d].%s (webhook %s)" % (index, problem, quoted(name))
                        for problem in check_envs(webhook["envs"] or [], state))
    return problems


def _run_batch(params, check_mode, want_diff, warn):
    """Several webhooks in one call: all validated first, then each read, compared and written in turn.

    A webhook whose call fails does not stop the others; the module fails at the end naming each one.
    """
    state, product = params["state"], params["product"]
    webhooks = params["webhooks"]
    problems = _batch_problems(webhooks, state)
    if problems:
        return _failure("nothing was written: " + "; ".join(problems))
    try:
        client = client_for(params, warn)
    except DuctapeApiError as error:
        return _failure(str(error))

    outcomes = []
    before, after = {}, {}
    stopped_by = None
    for webhook in webhooks:
        access_tag, webhook_tag, envs = webhook["access_tag"], webhook["webhook_tag"], webhook["envs"]
        name = "%s/%s" % (access_tag, webhook_tag)
        outcome = dict(access_tag=access_tag, webhook_tag=webhook_tag)
        progress, error = {}, None
        if stopped_by is not None:
            error = "not attempted: %s" % stopped_by
        else:
            try:
                _converge(client, product, access_tag, webhook_tag, envs, state, check_mode, progress)
            except DuctapeApiError as failure:
                error = str(failure)
                if failure.status in _FAILS_EVERY_WEBHOOK:
                    stopped_by = ("the call for %s failed in a way that concerns every webhook (the API cannot be "
                                  "reached or does not answer, or refuses the key or the product)" % name)
        plan, written = progress.get("plan"), progress.get("written", {})
        if error is None:
            outcome["changed"] = any(action in WRITING_ACTIONS for slug, action, current, desired in plan)
            outcome["envs"] = _env_results(plan, written)
        else:
            # Only what was really written counts; a planned write that did not happen has no action.
            if plan is None:  # the read failed: what was asked is all there is to show
                plan = [(env["slug"], None, None, dict(url=env.get("url"), method=env.get("method")))
                        for env in envs]
            else:
                plan = [(slug, action if action not in WRITING_ACTIONS or slug in written else None, current, desired)
                        for slug, action, current, desired in plan]
            outcome.update(changed=bool(written), envs=_env_results(plan, written), failed=True, msg=error)
        if want_diff:
            diff = registration_diff(plan)
            if diff["before"]:
                before[name] = diff["before"]
            if diff["after"]:
                after[name] = diff["after"]
        outcomes.append(outcome)

    result = dict(changed=any(outcome["changed"] for outcome in outcomes), webhooks=outcomes)
    if want_diff:
        result["diff"] = dict(before=before, after=after)
    failed = [outcome for outcome in outcomes if outcome.get("failed")]
    if failed:
        result.update(failed=True, msg="%d of %d webhooks failed: %s" % (
            len(failed), len(outcomes),
            "; ".join("%s/%s: %s" % (outcome["access_tag"], outcome["webhook_tag"], outcome["msg"])
                      for outcome in failed)))
    return result


def main():
    run_as_module(argument_spec(), ARGUMENT_SPEC_OPTIONS, run)


if __name__ == "__main__":
    main()
