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
  - With O(state=disabled), the registrations of the listed environments stop forwarding; each keeps its uuid and
    link, which answers HTTP 410 and stores nothing, until O(state=present) enables it again on the same link.
  - O(link_generation) and O(rotate_older_than) rotate a registration's link declaratively (a new uuid and link;
    the old link keeps working for O(rotation_grace) seconds), only when the registration is below the generation or
    its link is older than the age, so a second run with the same options rotates nothing.
  - With O(prune) (batch form), the registrations of the listed access tags that the task neither lists nor keeps
    (O(prune_keep)) are removed or disabled; without it, nothing that is not listed is ever touched.
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
          - With O(state=disabled), optional. Given, the registration is created or updated to it first, then
            disabled; not given, an existing registration is only disabled, and none is created.
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
      - V(present) creates or updates the registration of each listed env, and enables it again where it is
        disabled (the same uuid and link).
      - V(absent) removes the registration of each listed env; only O(envs[].slug) is needed.
      - V(disabled) disables the registration of each listed env (see O(envs[].url)); its link answers HTTP 410
        and stores nothing, the registration keeps its uuid and link. Needs a Ductape API with the lifecycle
        extension (ductape-local); a server without it fails the env naming the operation, and so does check
        mode where the server lists the registration with no lifecycle C(state).
      - In check mode, V(absent) cannot tell whether the server offers the removal (its rows carry no sign of it)
        and reports the env as it would be deleted.
      - V(absent) needs C(DELETE /webhooks/v1/registrations/{uuid}), an extension of ductape-local that the hosted
        Ductape is not known to offer; a server without it fails the env naming the operation and saying so.
    type: str
    choices: [present, absent, disabled]
    default: present
  link_generation:
    description:
      - Rotate the link of every listed env's registration until its C(generation) reaches this number (a new
        registration starts at 1, each rotation adds 1). A registration at or above it is left as it is, so the
        same value never rotates twice. Raise it by one to rotate once.
      - Each rotation gives the registration a new uuid and link (reported in RV(envs[].link)); in full mode Ductape
        registers the new link at the provider. A new registration is never rotated.
      - When one run needs more than one rotation, only the link from before the last one keeps working for
        O(rotation_grace); raise it one step at a time when a provider holds the link.
      - Only with O(state=present). Needs a Ductape API with the lifecycle extension (ductape-local); other APIs fail
        the webhook naming the option.
    type: int
  rotate_older_than:
    description:
      - Rotate the link of every listed env's registration whose link was made (C(link_created_at)) at least this
        long ago, for example V(90d); units C(s), C(m), C(h), C(d), C(w). The new link is new, so the next run
        leaves it alone until it is that old in turn.
      - Together with O(link_generation), a registration is rotated when either says so.
      - Only with O(state=present).
    type: str
  rotation_grace:
    description:
      - Seconds (0 to 604800, 7 days) during which the old link keeps forwarding after a rotation, to the same
        receiver, so that a provider can be switched to the new link without losing an event. 0 retires it at once
        (it answers HTTP 410).
      - The result's C(previous_link) says until when the old link works.
    type: int
    default: 0
  prune:
    description:
      - Only with O(webhooks). The registrations of the access tags that O(webhooks) and O(prune_keep) name, which
        neither lists (by webhook tag and env), are V(absent) (removed) or V(disabled).
      - They are reported after the listed webhooks in RV(webhooks), marked C(pruned), in check mode too.
      - Not set, nothing that the task does not list is ever touched.
    type: str
    choices: [absent, disabled]
  prune_keep:
    description:
      - With O(prune), registrations that another task declares (the role's link-mode environments), kept as if
        listed. Their access tags are pruned too.
    type: list
    elements: dict
    suboptions:
      access_tag:
        description: The access tag.
        type: str
        required: true
      webhook_tag:
        description: The webhook tag.
        type: str
        required: true
      envs:
        description: The env slugs to keep.
        type: list
        elements: str
        required: true
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
    details:
      - A second run with the same options reports RV(ignore:changed=false) and sends no write; a rotation is due
        only below O(link_generation) or past O(rotate_older_than), which the first run's rotation ends.
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

- name: Stop forwarding payment_succeeded in staging, keeping its link for later
  ductape.webhooks.ductape_webhook:
    product: my-product
    access_tag: stripe-payments
    webhook_tag: payment_succeeded
    envs:
      - slug: stg
    state: disabled

- name: Give the production link a new uuid, the old one working one more hour
  ductape.webhooks.ductape_webhook:
    product: my-product
    access_tag: stripe-payments
    webhook_tag: payment_succeeded
    envs:
      - slug: prd
        url: https://api.example.com/hooks/stripe/payment-succeeded
    link_generation: 2
    rotation_grace: 3600
  register: rotated

- name: Show the new link and until when the old one works
  ansible.builtin.debug:
    msg: "{{ rotated.envs[0].link }} (old link until {{ rotated.envs[0].previous_link.expires_at | default('now') }})"

- name: Rotate every link older than 90 days
  ductape.webhooks.ductape_webhook:
    product: my-product
    access_tag: stripe-payments
    webhook_tag: payment_succeeded
    envs:
      - slug: prd
        url: https://api.example.com/hooks/stripe/payment-succeeded
    rotate_older_than: 90d
    rotation_grace: 86400

- name: Register what is listed and disable every other registration of the app
  ductape.webhooks.ductape_webhook:
    product: my-product
    webhooks:
      - access_tag: stripe-payments
        webhook_tag: payment_succeeded
        envs:
          - slug: prd
            url: https://api.example.com/hooks/stripe/payment-succeeded
    prune: disabled

- name: A new product on the hosted Ductape, named as Ductape names it (workspace-prefixed tags, envs snd and prd)
  module_defaults:
    group/ductape.webhooks.ductape:
      api_url: https://api.ductape.app
      access_key: "{{ vault_ductape_access_key }}"
      auth_header: x-access-token
      auth_unknown: send
  ductape.webhooks.ductape_webhook:
    product: acme_space:shop
    access_tag: ductape:paystack
    webhook_tag: charge_success
    envs:
      - slug: snd
        url: https://snd.shop.example.com/hooks/paystack/charge-success
      - slug: prd
        url: https://shop.example.com/hooks/paystack/charge-success
        auth:
          headers:
            Authorization: "Bearer {{ vault_paystack_secret_key }}"
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
        - V(created), V(updated), V(unchanged), V(deleted), or V(absent) (O(state=absent) and nothing was registered;
          O(state=disabled) without a url and nothing registered).
        - V(enabled), V(disabled) or V(rotated) when only the registration's state or link changes (a created or
          updated one says V(created) or V(updated), and RV(envs[].state) and RV(envs[].rotated) say the rest).
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
    state:
      description:
        - V(enabled) or V(disabled), after the task (in check mode, what it would be); null where no registration
          exists.
      type: str
      returned: when the API reports the registration's lifecycle (ductape-local), or a lifecycle step was asked for
      sample: enabled
    generation:
      description: The link's generation, 1 at creation and one more per rotation (in check mode, what it would be).
      type: int
      returned: when the API reports the registration's lifecycle (ductape-local), or a lifecycle step was asked for
      sample: 2
    link_created_at:
      description: When the current link was made (ISO 8601, UTC); the age O(rotate_older_than) compares.
      type: str
      returned: when the API reports the registration's lifecycle (ductape-local), or a lifecycle step was asked for
      sample: "2026-12-02T02:10:00Z"
    previous_link:
      description:
        - During a rotation's grace period, the old link, still forwarding, with C(uuid), C(link) and C(expires_at);
          else null.
      type: dict
      returned: when the API reports the registration's lifecycle (ductape-local), or a lifecycle step was asked for
      sample:
        uuid: 0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
        link: https://webhooks.ductape.app/webhooks/v1/process/0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
        expires_at: "2026-12-02T03:10:00Z"
    rotated:
      description:
        - How many times the link was rotated (in check mode, would be); RV(envs[].link) is then the new link (in
          check mode still the current one).
      type: int
      returned: with O(link_generation) or O(rotate_older_than)
      sample: 1
    auth_compared:
      description:
        - V(false) when the API gave no auth digest for the env, so that the stored auth could not be compared
          with O(envs[].auth); what was done is what O(auth_unknown) says, and the task warns.
      returned: when the stored auth could not be compared
      type: bool
      sample: false
    provider_reported:
      description:
        - V(false) when the API's registration does not say whether Ductape registered the link at the provider
          (the hosted Ductape's answers carry no provider status); C(provider_registration) is then null because it
          is unknown, not because the app's environment has no registration endpoint.
      returned: when the API did not report the provider registration
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
      description: The webhook's tag (C(*) in the failure of an access tag whose registrations could not be read
        for O(prune)).
      type: str
      sample: payment_succeeded
    pruned:
      description: True for a webhook that O(webhooks) does not list, whose registrations O(prune) removes or disables.
      type: bool
      returned: with O(prune), for the pruned webhooks
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
    - A state change shows C(state) before and after; a rotation C(link) (and C(generation)) before and after, the new
      link as C((new link, assigned by the server)) in check mode.
    - With O(webhooks), one more level keyed C(ACCESS_TAG/WEBHOOK_TAG), holding the webhooks that write only.
  returned: when diff mode is on
  type: dict
  sample:
    before: {prd: {url: https://old.example.com/hook}, stg: {auth: {headers: {Authorization: "********"}}}}
    after: {prd: {url: https://api.example.com/hook}, stg: {auth: {headers: {Authorization: "******** (changed)"}}}}
"""

from ansible_collections.ductape.webhooks.plugins.module_utils._engine import (
    DEFAULT_PARALLELISM,
    STATES,
    batch_report,
    check_states,
    converge,
    form_problem,
    parallelism_problems,
    prune_of,
    refusal,
    rotation_of,
    rotation_problems,
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
        state=dict(type="str", choices=list(STATES), default="present"),
        link_generation=dict(type="int"),
        rotate_older_than=dict(type="str"),
        rotation_grace=dict(type="int", default=0),
        prune=dict(type="str", choices=["absent", "disabled"]),
        prune_keep=dict(type="list", elements="dict", options=dict(
            access_tag=dict(type="str", required=True),
            webhook_tag=dict(type="str", required=True),
            envs=dict(type="list", elements="str", required=True),
        )),
        parallelism=dict(type="int", default=DEFAULT_PARALLELISM),
    )
    return spec


SINGLE_FORM = ("access_tag", "webhook_tag", "envs")
ARGUMENT_SPEC_OPTIONS = dict(mutually_exclusive=[("webhooks", option) for option in SINGLE_FORM],
                             required_by=dict(prune=("webhooks",), prune_keep=("prune",)))


def run(params, check_mode, want_diff, warn):
    """Parse, converge, report; shared with the action plugin that runs it in the controller process."""
    problem = form_problem(params, SINGLE_FORM)
    if problem:
        return refusal([problem])
    batch = params.get("webhooks") is not None
    problems = parallelism_problems(params["parallelism"]) + rotation_problems(params)
    webhooks = webhook_states(params, link_only=False, rotation=None if problems else rotation_of(params))
    problems += check_states(webhooks, params["state"])
    if problems:
        return refusal(problems, "nothing was written: " if batch else "")
    try:
        client = client_for(params, warn, pool_size=params["parallelism"])
    except DuctapeApiError as error:
        return refusal([str(error)])
    outcomes = converge(client, params["product"], webhooks, params["state"], check_mode, params["parallelism"],
                        prune=prune_of(params))
    return batch_report(outcomes, want_diff) if batch else single_report(outcomes[0], want_diff)


def main():
    run_as_module(argument_spec(), ARGUMENT_SPEC_OPTIONS, run)


if __name__ == "__main__":
    main()
