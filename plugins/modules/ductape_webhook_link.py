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
    description: The access tag of the product's connection to the app, for example V(paystack-payments).
    type: str
    required: true
  webhook_tag:
    description: The tag of the webhook, one that the app defines.
    type: str
    required: true
  env:
    description: The product environment's slug, for example V(stg).
    type: str
    required: true
  url:
    description: The receiver that Ductape forwards the events to, an absolute C(http://) or C(https://) URL.
    type: str
    required: true
  method:
    description: The HTTP method Ductape forwards events with.
    type: str
    choices: [GET, POST, PUT, PATCH, DELETE]
    default: POST
attributes:
  check_mode:
    support: full
    description: Returns the existing link, or RV(link=null) where a registration would be created; sends no write.
  diff_mode:
    support: full
    description: Shows the env's url and method before and after.
  action_group:
    description: Use C(group/ductape.webhooks.ductape) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - ductape.webhooks.ductape
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
"""

RETURN = r"""
changed:
  description: Whether the registration was created or its url or method changed (or would be, in check mode).
  returned: always
  type: bool
link:
  description:
    - The Ductape-wrapped link to paste into the provider's dashboard; stable for the life of the registration.
    - Null in check mode when the registration does not exist yet.
  returned: success
  type: str
  sample: https://webhooks.ductape.app/webhooks/v1/process/0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
uuid:
  description: The registration's uuid; null in check mode when it does not exist yet.
  returned: success
  type: str
  sample: 0f8c2a4e-7d61-4b7a-9e55-3c2d1b0a9f87
action:
  description: V(created), V(updated) or V(unchanged) (in check mode, what a real run would do).
  returned: success
  type: str
  sample: unchanged
url:
  description: The receiver URL.
  returned: success
  type: str
  sample: https://stg.example.com/hooks/paystack/charge-success
method:
  description: The HTTP method events are forwarded with.
  returned: success
  type: str
  sample: POST
diff:
  description: The env's url and method before and after. Only with C(--diff) and when something changes.
  returned: when diff mode is on
  type: dict
  sample: {before: {stg: {url: https://old.example.com/hook, method: POST}}, after: {stg: {url: https://stg.example.com/hook, method: POST}}}
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
    UNCHANGED,
    UPDATED,
    check_envs,
    find_webhook,
    quoted,
    registrations_by_env,
)


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        product=dict(type="str", required=True),
        access_tag=dict(type="str", required=True),
        webhook_tag=dict(type="str", required=True),
        env=dict(type="str", required=True),
        url=dict(type="str", required=True),
        method=dict(type="str", choices=list(HTTP_METHODS), default="POST"),
    )
    return spec


def _failure(message):
    return dict(failed=True, changed=False, msg=message)


def _url_and_method(registration):
    return dict(url=registration.get("url"), method=registration.get("method"))


def run(params, check_mode, want_diff, warn):
    """The module's whole work, shared with the action plugin that runs it in the controller process."""
    env, url, method = params["env"], params["url"], params["method"]
    problems = [problem.replace("envs[0].slug", "env").replace("envs[0].", "")
                for problem in check_envs([dict(slug=env, url=url)], "present")]
    if problems:
        return _failure("; ".join(problems))
    product, access_tag, webhook_tag = params["product"], params["access_tag"], params["webhook_tag"]
    try:
        client = client_for(params, warn)
        webhook = find_webhook(client.webhooks(product, access_tag, webhook_tag), webhook_tag)
        if webhook is None:
            return _failure("webhook_tag: %s is not a webhook of the app behind access tag %s"
                            % (quoted(webhook_tag), quoted(access_tag)))
        current = registrations_by_env(webhook).get(env)
        if current is None:
            action = CREATED
        elif current.get("url") != url or current.get("method") != method:
            action = UPDATED
        else:
            action = UNCHANGED
        registration = current
        if action != UNCHANGED and not check_mode:
            registration = client.generate_link(product, access_tag, webhook_tag, env, url, method)
    except DuctapeApiError as error:
        return _failure(str(error))

    registration = registration or {}
    result = dict(changed=action != UNCHANGED, action=action, link=registration.get("link"),
                  uuid=registration.get("uuid"), url=url, method=method)
    if want_diff:
        before = {env: _url_and_method(current)} if current and action != UNCHANGED else {}
        after = {env: dict(url=url, method=method)} if action != UNCHANGED else {}
        result["diff"] = dict(before=before, after=after)
    return result


def main():
    run_as_module(argument_spec(), {}, run)


if __name__ == "__main__":
    main()
