#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
module: ductape_webhook_info
short_description: List the webhooks an app defines and their Ductape registrations per environment
version_added: 0.1.0
description:
  - Returns every webhook that the app behind O(access_tag) defines, each with the registrations that exist for it
    in the product's environments (Ductape's C(webhooks.fetchAll)). Every page of the API is followed.
  - Read only. Never returns a secret, nor anything to test a guess of one against. Auth comes back as the key
    names of its parts with every value masked, plus RV(webhooks[].config[].has_auth); the API's C(auth_digest)
    and C(url_digest) are left out, and credentials inside urls are masked.
  - The API's digests exist so that M(ductape.webhooks.ductape_webhook) can tell whether a secret changed without
    reading it; each is salted per registration and per change (C(hmac-sha256:<salt>:<hex>)). Whoever holds the
    access key and one digest can still test a guess of that one registration's secret at HMAC speed; nothing
    learned serves another registration, or another version of the same one, and equal secrets do not look equal.
author:
  - Ductape maintainers (@ductape)
extends_documentation_fragment:
  - ductape.webhooks.connection
  - ductape.webhooks.attributes
  - ductape.webhooks.attributes.actiongroup_ductape
  - ductape.webhooks.attributes.info_module
options:
  product:
    description: The product's tag.
    type: str
    required: true
  access_tag:
    description: The access tag of the product's connection to the app.
    type: str
    required: true
  webhook_tag:
    description:
      - Only this webhook. The task fails when the app defines no webhook with this tag, listing the ones it does.
    type: str
  env:
    description:
      - Only the registrations in this product environment (by slug). Webhooks without one there are still
        returned, with an empty RV(webhooks[].config).
      - The task fails when the product has no such env, naming the envs it has (where the API says which, as the
        C(ductape-local) server does).
    type: str
seealso:
  - module: ductape.webhooks.ductape_webhook
  - module: ductape.webhooks.ductape_webhook_link
  - module: ductape.webhooks.ductape_webhook_delivery_info
"""

EXAMPLES = r"""
- name: Read the Stripe webhooks of my-product
  ductape.webhooks.ductape_webhook_info:
    api_url: https://api.ductape.app
    access_key: "{{ vault_ductape_access_key }}"
    product: my-product
    access_tag: stripe-payments
  register: stripe_webhooks

- name: The production link of payment_succeeded
  ansible.builtin.debug:
    msg: >-
      {{ stripe_webhooks.webhooks | selectattr('tag', 'equalto', 'payment_succeeded')
         | map(attribute='config') | flatten | selectattr('productEnv', 'equalto', 'prd')
         | map(attribute='link') | first }}

- name: Ad hoc, from a shell
  ansible.builtin.debug:
    msg: >-
      ansible localhost -m ductape.webhooks.ductape_webhook_info
      -a 'product=my-product access_tag=stripe-payments env=prd'
"""

RETURN = r"""
changed:
  description: Always false.
  returned: always
  type: bool
webhooks:
  description: The app's webhooks, in the API's order.
  returned: success
  type: list
  elements: dict
  contains:
    tag:
      description: The webhook's tag.
      type: str
      sample: payment_succeeded
    name:
      description: The webhook's name.
      type: str
      sample: Payment succeeded
    config:
      description: Its registrations, one per product environment where one exists.
      type: list
      elements: dict
      contains:
        uuid:
          description: The registration's uuid.
          type: str
        productEnv:
          description: The product environment's slug.
          type: str
          sample: prd
        appEnv:
          description: The app environment it maps to.
          type: str
          sample: live
        url:
          description: The receiver URL, credentials in it masked.
          type: str
        method:
          description: The HTTP method events are forwarded with.
          type: str
        link:
          description:
            - The Ductape-wrapped link.
            - Not returned where the API's listing does not carry it (the hosted Ductape); M(ductape.webhooks.ductape_webhook_link)
              asks the API for it.
          type: str
        active:
          description: Whether an event has been delivered to the receiver yet.
          type: bool
        auth:
          description:
            - The stored auth's non-empty parts and their keys, every value replaced by C(********).
            - Null where the API does not show the stored auth (the hosted Ductape).
          type: dict
          sample: {headers: {Authorization: "********"}}
        has_auth:
          description:
            - Whether an auth is stored (any part with a key).
            - Null, like RV(webhooks[].config[].auth), where the API does not show the stored auth (the hosted
              Ductape; see the guide "Ductape's API and this collection").
          type: bool
        provider_registration:
          description:
            - The provider registration's C(status), C(http_status), C(at) and C(error); null where there is none.
            - Not returned where the API does not say (the hosted Ductape); the same holds for RV(webhooks[].config[].created_at)
              and RV(webhooks[].config[].updated_at), which are ductape-local's extension.
          type: dict
          contains:
            status:
              description: C(pending), C(registered) or C(failed).
              type: str
            http_status:
              description: The provider endpoint's HTTP status, null when it did not answer or was not called yet.
              type: int
            at:
              description: When the provider endpoint was last called.
              type: str
            error:
              description: Why the provider registration failed (no secret in it); null otherwise.
              type: str
        created_at:
          description: When the registration was created.
          type: str
        updated_at:
          description: When it last changed.
          type: str
        state:
          description:
            - C(enabled), or C(disabled) (its link answers 410 and stores nothing; see M(ductape.webhooks.ductape_webhook)
              O(ductape.webhooks.ductape_webhook#module:state=disabled)).
            - This and the other lifecycle keys below are ductape-local's extension; not returned where the API does not
              give them (the hosted Ductape).
          type: str
          sample: enabled
        generation:
          description: The registration's link generation, 1 at creation and one more per rotation.
          type: int
          sample: 2
        link_created_at:
          description: When the current uuid and link were made (the creation time until the first rotation).
          type: str
          sample: "2026-12-01T03:00:00Z"
        previous_link:
          description: Null, or during a rotation's grace period the old link, which still forwards until C(expires_at).
          type: dict
          contains:
            uuid:
              description: The old uuid.
              type: str
            link:
              description: The old link.
              type: str
            expires_at:
              description: When the old link stops forwarding and answers 410.
              type: str
        ingress:
          description:
            - What the registration's link refused or acknowledged without delivering again, over all of the registration's
              links (the counts run on across rotations).
            - ductape-local's extension; not returned where the API does not give it.
          type: dict
          contains:
            rejected:
              description: Events refused at the link (a provider signature that failed verification).
              type: int
            duplicates:
              description: Repeats of an event already accepted, acknowledged and not delivered again.
              type: int
            last_rejection:
              description: Null, or the last refusal's C(reason) (never a secret or an expected signature) and C(at).
              type: dict
              contains:
                reason:
                  description: Why the event was refused.
                  type: str
                at:
                  description: When.
                  type: str
"""

from ansible_collections.ductape.webhooks.plugins.module_utils._engine import public_webhook, read_webhooks, refusal
from ansible_collections.ductape.webhooks.plugins.module_utils._module_host import run_as_module
from ansible_collections.ductape.webhooks.plugins.module_utils._rules import env_exists_problems, webhook_tag_problems
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import (
    DuctapeApiError,
    client_for,
    connection_argument_spec,
)


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        product=dict(type="str", required=True),
        access_tag=dict(type="str", required=True),
        webhook_tag=dict(type="str"),
        env=dict(type="str"),
    )
    return spec


ARGUMENT_SPEC_OPTIONS = {}


def run(params, check_mode, want_diff, warn):
    """Read, check, report; shared with the action plugin that runs it in the controller process."""
    product, access_tag, webhook_tag, env = params["product"], params["access_tag"], params["webhook_tag"], params["env"]
    try:
        client = client_for(params, warn)
        if webhook_tag:
            reading = read_webhooks(client, product, [(access_tag, webhook_tag)], 1)[(access_tag, webhook_tag)]
            if reading.error:
                return refusal([reading.error])
            webhooks, product_envs = [reading.webhook] if reading.webhook else [], reading.product_envs
            problems = webhook_tag_problems("webhook_tag", webhook_tag, access_tag,
                                            None if reading.webhook else reading.app_tags or [])
        else:
            webhooks, product_envs = client.list_webhooks(product, access_tag)
            problems = []
    except DuctapeApiError as error:
        return refusal([str(error)])
    if env is not None:
        problems.extend(env_exists_problems("env", env, product, product_envs))
    if problems:
        return refusal(problems)
    return dict(changed=False, webhooks=[public_webhook(webhook, env) for webhook in webhooks])


def main():
    run_as_module(argument_spec(), ARGUMENT_SPEC_OPTIONS, run)


if __name__ == "__main__":
    main()
