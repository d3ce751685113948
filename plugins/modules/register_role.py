#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The documentation of an action plugin that runs only on the controller (plugins/action/register_role.py),
# as ansible.builtin.debug's: there is no module code to ship.

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
module: register_role
short_description: The one task of the role ductape.webhooks.register
version_added: 0.1.0
description:
  - Does what the role R(ductape.webhooks.register,ansible_collections.ductape.webhooks.register_role) does, in one
    task; the role runs it, and a play rarely needs it directly.
  - It takes no options. It reads the role's variables (C(ductape_product), C(ductape_webhooks),
    C(ductape_environments_group), C(ductape_api_url), C(ductape_access_key), C(ductape_validate_certs),
    C(ductape_timeout), C(ductape_retries), C(ductape_webhooks_prune), C(ductape_webhooks_prune_action),
    C(ductape_webhooks_secure_logging), C(ductape_webhooks_show_summary)) and the variables of the environment
    hosts, as the role documents them.
  - It checks every input first and fails, writing nothing, with every problem named by variable, webhook index
    and field. Then it runs M(ductape.webhooks.ductape_webhook) once for every full-mode environment of every
    webhook (and pruning) and M(ductape.webhooks.ductape_webhook_link) once for every link-mode one, in the
    controller process where the task's connection is local, as modules elsewhere.
  - It fails naming each webhook that could not be registered, and why.
author:
  - Ductape maintainers (@ductape)
extends_documentation_fragment:
  - ductape.webhooks.attributes
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: None when the role variable C(ductape_webhooks_secure_logging) is true.
  idempotent:
    support: full
"""

EXAMPLES = r"""
- name: Register the product's webhooks, as the role does
  hosts: localhost
  gather_facts: false
  vars:
    ductape_product: my-product
    ductape_webhooks:
      - access_tag: stripe-payments
        webhook_tag: payment_succeeded
        path: /hooks/stripe
  tasks:
    - name: Plan, register and report
      ductape.webhooks.register_role:
      register: run

    - name: Show the summary
      ansible.builtin.debug:
        msg: "{{ run.summary }}"
"""

RETURN = r"""
registrations:
  description:
    - One entry per webhook and environment, in the inventory group's host order; the role sets it as the fact
      C(ductape_webhook_registrations). No auth value or credential.
  returned: success
  type: list
  elements: dict
  contains:
    access_tag:
      description: "The webhook's access tag."
      type: str
      returned: always
    webhook_tag:
      description: "The webhook's tag."
      type: str
      returned: always
    env:
      description: "The environment slug."
      type: str
      returned: always
    host:
      description: "The environment's inventory host (null for an env no host defines any more)."
      type: str
      returned: always
    mode:
      description: "V(full) or V(link)."
      type: str
      returned: always
    action:
      description: "What was done (V(created), V(updated), V(unchanged), V(removed), V(disabled), ...)."
      type: str
      returned: always
    uuid:
      description: "The registration's uuid (null in check mode for one not created yet)."
      type: str
      returned: always
    link:
      description: "The Ductape link (null in check mode for one not created yet, and where the API's answers give
        none, as the hosted Ductape's register and listing do)."
      type: str
      returned: always
    url:
      description: "The receiver URL (credentials masked)."
      type: str
      returned: always
    method:
      description: "The receiver's HTTP method."
      type: str
      returned: always
    provider_registration:
      description: "The provider registration's outcome in full mode, or null."
      type: dict
      returned: always
    provider_reported:
      description: "False where the API does not say whether the provider holds the link (the hosted Ductape);
        C(provider_registration) is then null because it is unknown."
      type: bool
      returned: always
    paste_link:
      description: "Whether a person must paste the link into the provider's dashboard."
      type: bool
      returned: always
    pruned:
      description: "Whether pruning removed or disabled this registration."
      type: bool
      returned: always
summary:
  description: The lines of the role's summary, per environment, then the links to paste.
  returned: success
  type: list
  elements: str
show_summary:
  description: The value of C(ductape_webhooks_show_summary), as a boolean.
  returned: success
  type: bool
diff:
  description: The diffs of the two module runs, unless C(ductape_webhooks_secure_logging) is true.
  returned: with C(--diff)
  type: list
  elements: dict
"""
