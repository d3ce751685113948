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
  - An API that gives no auth digest (the hosted Ductape, as far as known) cannot show whether the stored auth
    is the one given; O(auth_unknown) says what the task does then, and it is never reported unchanged in
    silence. See the guide "Ductape's API and this collection".
  - With O(state=absent), the registrations of the listed environments are removed, and nothing else.
  - O(webhooks) does the same for several webhooks in one task (the batch form), instead of O(access_tag),
    O(webhook_tag) and O(envs); a loop over many webhooks costs a task invocation per item, the batch one in all.
author:
  - Ductape maintainers (@ductape)
extends_documentation_fragment:
  - ductape.webhooks.connection
  - ductape.webhooks.connection.parallelism
  - ductape.webhooks.attributes
  - ductape.webhooks.attributes.actiongroup_ductape
options:
  product:
    description:
      - The product's tag, for example V(my-product), or workspace-prefixed as Ductape writes it, V(acme_space:shop).
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
          - Credentials inside it (C(user:pass@), C(?token=)) are shown masked in every output; a changed one is
            still noticed where the API gives the url's digest.
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
          - Compared by digest, so a changed value is noticed without the stored one ever being read. The API's
            C(auth_digest) is salted per registration (C(hmac-sha256:<salt>:<hex>)); the module reads the salt from
            it and computes the same HMAC of this auth. Older servers' C(sha256:<hex>) is understood too.
        type: raw
  webhooks:
    description:
      - The batch form, several webhooks in one task, instead of O(access_tag), O(webhook_tag) and O(envs).
        O(product) and O(state) apply to all of them.
      - Every env of every webhook is checked before anything is written; any problem fails the task with no
        change made, and the message names each one as C(webhooks[i].envs[j].field).
      - Then the webhooks are read (see O(parallelism) for the rule), compared, and written (one register request
        per webhook, or one delete per env with O(state=absent)), up to O(parallelism) requests at once, on one HTTP
        connection pool for the whole task.
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
      - V(absent) needs C(DELETE /webhooks/v1/registrations/{uuid}), an extension of ductape-local that the hosted
        Ductape is not known to offer; a server without it fails the env naming the operation and saying so.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    details: Reads the current registrations and makes the same decisions; sends no write.
  diff_mode:
    support: full
    details:
      - Shows, for each env that is written, the keys that change (url masked, method, auth with every value masked)
        before and after; all of them for an env created or removed.
  idempotent:
    support: full
    details: A second run with the same options reports RV(ignore:changed=false) and sends no write.
notes:
  - A provider registration that fails leaves the Ductape registration stored; the task fails naming the env and
    the provider's HTTP status, reports RV(ignore:changed=true) (the registration was written), and running it again
    retries the provider.
  - Anything written is reported as a change, also when the task fails afterwards (a later delete failing).
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
  description:
    - Whether any listed env was created, updated or deleted (or would be, in check mode); also true when the task
      failed after writing something.
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
  returned: with O(envs), unless an option was refused before any request
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
      description:
        - The Ductape-wrapped link that forwards to O(envs[].url); stable for the life of the registration.
        - Always the link the API answered, never one made from O(api_url); null where the API's answers carry
          none (the hosted Ductape's register and listing, as far as known; M(ductape.webhooks.ductape_webhook_link)
          asks for it).
      type: str
      sample: https://webhooks.ductape.app/webhooks/v1/process/0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
    url:
      description: The receiver URL, credentials in it masked.
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
    auth_compared:
      description:
        - V(false) when the API gave no auth digest for the env, so that the stored auth could not be compared
          with O(envs[].auth); what was done is what O(auth_unknown) says, and the task warns.
      returned: when the stored auth could not be compared
      type: bool
      sample: false
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
    - For each written env, the keys that change (url, method, auth with every value masked) before and after; all
      of them for a created or removed env, and for an env sent again only because its provider does not hold the
      link yet. Only with C(--diff).
    - With O(webhooks), one more level keyed C(ACCESS_TAG/WEBHOOK_TAG), holding the webhooks that write only.
  returned: when diff mode is on
  type: dict
  sample:
    before: {prd: {url: https://old.example.com/hook}, stg: {auth: {headers: {Authorization: "********"}}}}
    after: {prd: {url: https://api.example.com/hook}, stg: {auth: {headers: {Authorization: "******** (changed)"}}}}
"""

from ansible_collections.ductape.webhooks.plugins.module_utils._engine import (
    DEFAULT_PARALLELISM,
    batch_report,
    check_states,
    converge,
    form_problem,
    parallelism_problems,
    refusal,
    single_report,
    webhook_states,
)
from ansible_collections.ductape.webhooks.plugins.module_utils._module_host import run_as_module
from ansible_collections.ductape.webhooks.plugins.module_utils._rules import HTTP_METHODS
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import (
    DuctapeApiError,
    client_for,
    connection_argument_spec,
)


def argument_spec():
    spec = connection_argument_spec()
    envs = dict(type="list", elements="dict", options=dict(
        slug=dict(type="str", required=True),
        url=dict(type="str"),
        method=dict(type="str", choices=list(HTTP_METHODS), default="POST"),
        # raw, not a dict with options: a value of the wrong shape must still be registered as
        # no_log before it is refused, or the failed task's invocation would show it in clear.
        # The engine checks the shape (_rules.auth_problems) without showing the value.
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
        parallelism=dict(type="int", default=DEFAULT_PARALLELISM),
    )
    return spec


SINGLE_FORM = ("access_tag", "webhook_tag", "envs")
ARGUMENT_SPEC_OPTIONS = dict(mutually_exclusive=[("webhooks", option) for option in SINGLE_FORM])


def run(params, check_mode, want_diff, warn):
    """Parse, converge, report; shared with the action plugin that runs it in the controller process."""
    problem = form_problem(params, SINGLE_FORM)
    if problem:
        return refusal([problem])
    batch = params.get("webhooks") is not None
    webhooks = webhook_states(params, link_only=False)
    problems = parallelism_problems(params["parallelism"]) + check_states(webhooks, params["state"])
    if problems:
        return refusal(problems, "nothing was written: " if batch else "")
    try:
        client = client_for(params, warn, pool_size=params["parallelism"])
    except DuctapeApiError as error:
        return refusal([str(error)])
    outcomes = converge(client, params["product"], webhooks, params["state"], check_mode, params["parallelism"])
    return batch_report(outcomes, want_diff) if batch else single_report(outcomes[0], want_diff)


def main():
    run_as_module(argument_spec(), ARGUMENT_SPEC_OPTIONS, run)


if __name__ == "__main__":
    main()
