#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
module: ductape_webhook_link
short_description: Get the Ductape-wrapped link of a webhook in one environment, to paste into a provider's dashboard
version_added: 0.1.0
description:
  - Makes sure Ductape has a registration that forwards the webhook's events in environment O(env) to O(url)
    with O(method), and returns its wrapped link (Ductape's C(webhooks.generateLink)).
  - For a provider whose webhooks are set up by a person in its dashboard, not by API. Ductape does not call the
    provider; any auth stored by an earlier full registration (M(ductape.webhooks.ductape_webhook)) is kept.
  - The current registration is read first; nothing is written when url and method already match, and the same
    link comes back every time for the life of the registration.
  - A registration that M(ductape.webhooks.ductape_webhook) disabled (O(ductape.webhooks.ductape_webhook#module:state=disabled))
    is enabled again, on the same link, where the API reports the state (ductape-local).
  - The link is always the one the API answered (a string, as the hosted Ductape answers, or a registration),
    never one made from O(api_url). When the API's listing does not carry links (the hosted Ductape), the link of
    an unchanged env is asked for again with generate-link, which changes nothing; in check mode it is then null.
  - O(webhooks) does the same for several webhooks and envs in one task (the batch form), instead of O(access_tag),
    O(webhook_tag), O(env), O(url) and O(method); the reads and writes are those of
    M(ductape.webhooks.ductape_webhook)'s batch form (see O(parallelism)), one generate-link request per env that
    differs.
author:
  - Ductape maintainers (@ductape)
extends_documentation_fragment:
  - ductape.webhooks.connection
  - ductape.webhooks.connection.parallelism
  - ductape.webhooks.attributes
  - ductape.webhooks.attributes.actiongroup_ductape
options:
  product:
    description: The product's tag.
    type: str
    required: true
  access_tag:
    description:
      - The access tag of the product's connection to the app, for example V(paystack-payments).
      - Required, with O(webhook_tag), O(env) and O(url), unless O(webhooks) is given; not together with O(webhooks).
    type: str
  webhook_tag:
    description: The tag of the webhook, one that the app defines. Single form only.
    type: str
  env:
    description: The product environment's slug, for example V(stg). Single form only.
    type: str
  url:
    description:
      - The receiver that Ductape forwards the events to, an absolute C(http://) or C(https://) URL. Single form only.
      - Credentials inside it (C(user:pass@), C(?token=)) are shown masked in every output.
    type: str
  method:
    description: The HTTP method Ductape forwards events with. Single form only (default V(POST)).
    type: str
    choices: [GET, POST, PUT, PATCH, DELETE]
  webhooks:
    description:
      - The batch form, several webhooks in one task, instead of the single form's options; O(product) applies to all.
      - Every env of every webhook is checked before anything is sent; any problem fails the task with no change made,
        naming each one as C(webhooks[i].envs[j].field).
      - A webhook whose call fails does not stop the others; the task then fails naming each failed webhook, and
        its result still reports every one in RV(webhooks).
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
        description: The envs that need their link, each listed once.
        type: list
        elements: dict
        required: true
        suboptions:
          slug:
            description: As O(env).
            type: str
            required: true
          url:
            description: As O(url).
            type: str
            required: true
          method:
            description: As O(method).
            type: str
            choices: [GET, POST, PUT, PATCH, DELETE]
            default: POST
attributes:
  check_mode:
    support: full
    description: Returns the existing link, or RV(link=null) where a registration would be created; sends no write.
  diff_mode:
    support: full
    description: Shows the env's url (masked) and method before and after.
  idempotent:
    support: full
    description: Asking again for the same url and method returns the same link with RV(ignore:changed=false) and no write.
seealso:
  - module: ductape.webhooks.ductape_webhook
    description: Full registration, where Ductape registers the link at the provider itself.
  - module: ductape.webhooks.ductape_webhook_info
"""

EXAMPLES = r"""
- name: Get the link to paste into Paystack's dashboard for staging
  ductape.webhooks.ductape_webhook_link:
    api_url: https://api.ductape.app
    access_key: "{{ vault_ductape_access_key }}"
    product: my-product
    access_tag: paystack-payments
    webhook_tag: charge_success
    env: stg
    url: https://stg.example.com/hooks/paystack/charge-success
  register: paystack_link

- name: Tell the operator what to paste
  ansible.builtin.debug:
    msg: "Paste {{ paystack_link.link }} into Paystack's dashboard (test mode) for charge.success"

- name: The links of several webhooks in one task (the batch form)
  ductape.webhooks.ductape_webhook_link:
    product: my-product
    webhooks:
      - access_tag: paystack-payments
        webhook_tag: charge_success
        envs:
          - slug: stg
            url: https://stg.example.com/hooks/paystack/charge-success
          - slug: prd
            url: https://api.example.com/hooks/paystack/charge-success
  register: links

- name: The sandbox link of a new product named as Ductape names it (workspace-prefixed tags, env snd)
  ductape.webhooks.ductape_webhook_link:
    product: acme_space:shop
    access_tag: ductape:paystack
    webhook_tag: charge_success
    env: snd
    url: https://snd.shop.example.com/hooks/paystack/charge-success
  register: sandbox_link
"""

RETURN = r"""
changed:
  description: Whether the registration was created or its url or method changed (or would be, in check mode).
  returned: always
  type: bool
link:
  description:
    - The Ductape-wrapped link to paste into the provider's dashboard; stable for the life of the registration.
    - Null in check mode when the registration does not exist yet, or when the API's listing carries no link.
  returned: success, single form
  type: str
  sample: https://webhooks.ductape.app/webhooks/v1/process/0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
uuid:
  description: The registration's uuid; null in check mode when it does not exist yet.
  returned: success, single form
  type: str
  sample: 0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
action:
  description: V(created), V(updated) or V(unchanged) (in check mode, what a real run would do).
  returned: success, single form
  type: str
  sample: unchanged
url:
  description: The receiver URL, credentials in it masked.
  returned: success, single form
  type: str
  sample: https://stg.example.com/hooks/paystack/charge-success
method:
  description: The HTTP method events are forwarded with.
  returned: success, single form
  type: str
  sample: POST
msg:
  description: Why the task failed; with O(webhooks), it names each failed webhook.
  returned: failure
  type: str
webhooks:
  description:
    - With O(webhooks), one entry per webhook in the order given, also when the task failed; each has C(access_tag),
      C(webhook_tag), C(changed), C(envs) (one per env, in the order given, with C(slug), C(action), C(uuid), C(link),
      C(url), C(method), C(provider_registration)), and C(failed) and C(msg) when it failed.
  returned: with O(webhooks), unless an option was refused before any request
  type: list
  elements: dict
diff:
  description:
    - The env's url and method before and after. Only with C(--diff) and when something changes.
    - With O(webhooks), one more level keyed C(ACCESS_TAG/WEBHOOK_TAG).
  returned: when diff mode is on
  type: dict
  sample: {before: {stg: {url: https://old.example.com/hook, method: POST}}, after: {stg: {url: https://stg.example.com/hook, method: POST}}}
"""

from ansible_collections.ductape.webhooks.plugins.module_utils._engine import (
    DEFAULT_PARALLELISM,
    batch_report,
    check_states,
    converge,
    form_problem,
    link_report,
    parallelism_problems,
    refusal,
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
    spec.update(
        product=dict(type="str", required=True),
        access_tag=dict(type="str"),
        webhook_tag=dict(type="str"),
        env=dict(type="str"),
        url=dict(type="str"),
        method=dict(type="str", choices=list(HTTP_METHODS)),
        webhooks=dict(type="list", elements="dict", options=dict(
            access_tag=dict(type="str", required=True),
            webhook_tag=dict(type="str", required=True),
            envs=dict(type="list", elements="dict", required=True, options=dict(
                slug=dict(type="str", required=True),
                url=dict(type="str", required=True),
                method=dict(type="str", choices=list(HTTP_METHODS), default="POST"),
            )),
        )),
        parallelism=dict(type="int", default=DEFAULT_PARALLELISM),
    )
    return spec


SINGLE_FORM = ("access_tag", "webhook_tag", "env", "url")
ARGUMENT_SPEC_OPTIONS = dict(mutually_exclusive=[("webhooks", option) for option in SINGLE_FORM + ("method",)])


def run(params, check_mode, want_diff, warn):
    """Parse, converge, report; shared with the action plugin that runs it in the controller process."""
    problem = form_problem(params, SINGLE_FORM)
    if problem:
        return refusal([problem])
    batch = params.get("webhooks") is not None
    webhooks = webhook_states(params, link_only=True)
    problems = parallelism_problems(params["parallelism"]) + check_states(webhooks, "present")
    if problems:
        return refusal(problems, "nothing was written: " if batch else "")
    try:
        client = client_for(params, warn, pool_size=params["parallelism"])
    except DuctapeApiError as error:
        return refusal([str(error)])
    outcomes = converge(client, params["product"], webhooks, "present", check_mode, params["parallelism"])
    return batch_report(outcomes, want_diff) if batch else link_report(outcomes[0], want_diff)


def main():
    run_as_module(argument_spec(), ARGUMENT_SPEC_OPTIONS, run)


if __name__ == "__main__":
    main()
