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
  - Read only. Never returns a secret; auth comes back with every value masked, plus its digest.
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
    description: The access tag of the product's connection to the app.
    type: str
    required: true
  webhook_tag:
    description:
      - Only this webhook. The task fails when the app defines no webhook with this tag.
    type: str
  env:
    description:
      - Only the registrations in this product environment (by slug). Webhooks without one there are still
        returned, with an empty RV(webhooks[].config).
    type: str
attributes:
  check_mode:
    support: full
    description: The module only reads, so check mode runs it unchanged.
  diff_mode:
    support: none
    description: Nothing is ever changed.
  action_group:
    description: Use C(group/ductape.webhooks.ductape) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - ductape.webhooks.ductape
  idempotent:
    support: full
    description: Reading changes nothing; RV(ignore:changed) is always false.
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
          description: The receiver URL.
          type: str
        method:
          description: The HTTP method events are forwarded with.
          type: str
        link:
          description: The Ductape-wrapped link.
          type: str
        active:
          description: Whether an event has been delivered to the receiver yet.
          type: bool
        auth:
          description: The stored auth's parts and keys, every value replaced by C(********).
          type: dict
          sample: {headers: {Authorization: "********"}}
        auth_digest:
          description: C(sha256:) and the hex digest of the stored auth, to compare without reading it.
          type: str
        provider_registration:
          description: The provider registration's C(status), C(http_status), C(at) and C(error); null where there is none.
          type: dict
        created_at:
          description: When the registration was created.
          type: str
        updated_at:
          description: When it last changed.
          type: str
"""

from ansible_collections.ductape.webhooks.plugins.module_utils._module_host import run_as_module

from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import (
    DuctapeApiError,
    client_for,
    connection_argument_spec,
)
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_webhooks import quoted


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        product=dict(type="str", required=True),
        access_tag=dict(type="str", required=True),
        webhook_tag=dict(type="str"),
        env=dict(type="str"),
    )
    return spec


def run(params, check_mode, want_diff, warn):
    """The module's whole work, shared with the action plugin that runs it in the controller process."""
    webhook_tag, env = params["webhook_tag"], params["env"]
    try:
        client = client_for(params, warn)
        webhooks = client.webhooks(params["product"], params["access_tag"], webhook_tag)
    except DuctapeApiError as error:
        return dict(failed=True, changed=False, msg=str(error))
    if webhook_tag and not webhooks:
        return dict(failed=True, changed=False, msg="webhook_tag: %s is not a webhook of the app behind access tag %s"
                    % (quoted(webhook_tag), quoted(params["access_tag"])))
    if env:
        webhooks = [dict(webhook, config=[registration for registration in webhook.get("config") or []
                                          if registration.get("productEnv") == env])
                    for webhook in webhooks]
    return dict(changed=False, webhooks=webhooks)


def main():
    run_as_module(argument_spec(), {}, run)


if __name__ == "__main__":
    main()
