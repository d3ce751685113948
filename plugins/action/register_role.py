# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role ductape.webhooks.register in one task: check its variables, plan, register, report.

It reads the role's ``ductape_*`` variables and the environment hosts' variables from the task's
variables, plans with the functions of plugins/filter/register.py, runs ductape_webhook (every full-mode
environment, and pruning) and ductape_webhook_link (every link-mode environment) through the controller
path of plugins/plugin_utils/controller_module.py (as modules where that path does not apply), and
returns the registrations and the summary. No plan, auth or module argument crosses a task boundary:
each crossing costs ansible-core templating and finalizing every leaf.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import yaml

from ansible.module_utils.parsing.convert_bool import BOOLEANS, boolean

from ansible_collections.ductape.webhooks.plugins.filter.register import (
    register_failures,
    register_plan,
    register_registrations,
    register_summary,
)
from ansible_collections.ductape.webhooks.plugins.module_utils._rules import kind_of, mask_url, quoted
from ansible_collections.ductape.webhooks.plugins.plugin_utils.controller_module import (
    ControllerModuleAction,
    _plain,
    inherited_objects_frozen,
)

ROLE = "ductape.webhooks.register"
PRUNE_ACTIONS = ("absent", "disabled")

# The role's variables that are checked here rather than by ansible-core's argument validation, whose
# message on a bad value is a dump of the whole argument spec: name -> kind. The access key is checked
# without ever being shown.
STRINGS = ("ductape_api_url", "ductape_access_key", "ductape_product", "ductape_environments_group")
BOOLEAN_VARS = ("ductape_validate_certs", "ductape_webhooks_secure_logging", "ductape_webhooks_prune",
                "ductape_webhooks_show_summary")
INTEGERS = ("ductape_timeout", "ductape_retries")
SECRET_VARS = ("ductape_access_key",)


_ROLE_DEFAULTS: dict = {}


def role_defaults() -> dict:
    """The role's defaults/main.yml, read once: what the task uses for a variable that is not set, so that
    the task runs the same outside the role as inside it."""
    if not _ROLE_DEFAULTS:
        path = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "register", "defaults", "main.yml")
        with open(path, encoding="utf-8") as defaults:
            _ROLE_DEFAULTS.update(yaml.safe_load(defaults) or {})
    return _ROLE_DEFAULTS


def _shown(name, value):
    """The value as a message shows it: never the access key, a URL masked, a structure by its kind only."""
    if name in SECRET_VARS or not (isinstance(value, (str, int, float, bool)) or value is None):
        return kind_of(value)
    return quoted(mask_url(value) if isinstance(value, str) else value)


def variable_problems(values: dict) -> tuple[list, dict]:
    """The problems of the role's scalar variables, each naming the variable and the value; the values converted."""
    problems: list = []
    converted = dict(values)
    for name in STRINGS:
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(f"{name}: must be a string (got {_shown(name, value)})")
    if values.get("ductape_product") in (None, ""):
        problems.append("ductape_product: is required: the tag of the Ductape product whose webhooks are registered")
    for name in BOOLEAN_VARS:
        value = values.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, (str, int, float)) and (value.lower() if isinstance(value, str) else value) in BOOLEANS:
            converted[name] = boolean(value, strict=False)
        else:
            problems.append(f"{name}: must be true or false (got {_shown(name, value)})")
    for name in INTEGERS:
        value = values.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            continue
        if isinstance(value, str) and value.strip().isdigit():
            converted[name] = int(value)
        else:
            problems.append(f"{name}: must be a whole number (got {_shown(name, value)})")
    action = values.get("ductape_webhooks_prune_action")
    if action not in PRUNE_ACTIONS:
        problems.append(f"ductape_webhooks_prune_action: must be 'absent' or 'disabled' (got {_shown('', action)})")
    return problems, converted


class ActionModule(ControllerModuleAction):
    """The one task of the role ductape.webhooks.register."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ControllerModuleAction, self).run(tmp, task_vars)  # pylint: disable=bad-super-call
        del tmp
        with inherited_objects_frozen():
            return self._register(result, task_vars)

    def _register(self, result: dict, task_vars: dict) -> dict:
        """Check, plan, run both modules and report, into ``result``."""
        variables = _plain({name: self._variable(task_vars, name)
                            for name in STRINGS + BOOLEAN_VARS + INTEGERS + ("ductape_webhooks_prune_action",)})
        problems, variables = variable_problems(variables)
        group = variables.get("ductape_environments_group")
        if not isinstance(group, str):
            group = "ductape_environments"
        if not (variables.get("ductape_access_key") or os.environ.get("DUCTAPE_ACCESS_KEY")) \
                and isinstance(variables.get("ductape_access_key"), (str, type(None))):
            result.update(failed=True, msg="No Ductape access key: set the role variable ductape_access_key or the "
                                           "environment variable DUCTAPE_ACCESS_KEY.")
            return result

        group_hosts = list((task_vars.get("groups") or {}).get(group) or [])
        # Plain data: the plan reads every value of ductape_webhooks, and plain values read fast.
        webhooks = _plain(self._variable(task_vars, "ductape_webhooks")) if "ductape_webhooks" in task_vars else None
        if webhooks is None:
            problems.append("ductape_webhooks: is required: the list of webhooks to register")
            webhooks = []
        plan = register_plan(webhooks, group_hosts, task_vars.get("hostvars") or {}, group)
        problems.extend(plan["problems"])
        if problems:
            result.update(failed=True, msg="\n- ".join([f"{ROLE}: nothing was written, because:"] + problems))
            return result

        prune = variables["ductape_webhooks_prune"]
        product = variables["ductape_product"]
        full_result = link_result = None
        if plan["full_calls"] or prune:
            args = {"product": product, "webhooks": plan["full_calls"], "state": "present"}
            if prune:
                args.update(prune=variables["ductape_webhooks_prune_action"], prune_keep=plan["prune_keep"])
            full_result = self.run_module("ductape_webhook", args, task_vars)
        # When nothing could be registered in full mode (the API cannot be reached, or refuses the key or
        # the product), the links are not attempted: they would fail the same way, once more and more slowly.
        full_refused = bool(full_result and full_result.get("failed")) and not any(
            not outcome.get("failed") for outcome in full_result.get("webhooks") or [])
        if plan["link_calls"] and not full_refused:
            link_result = self.run_module("ductape_webhook_link", {"product": product, "webhooks": plan["link_calls"]},
                                          task_vars)
        module_results = [module_result for module_result in (full_result, link_result) if module_result]
        result["changed"] = any(module_result.get("changed") for module_result in module_results)
        for key in ("warnings", "deprecations"):
            found = [item for module_result in module_results for item in module_result.get(key) or []]
            if found:
                result[key] = found
        diffs = [module_result["diff"] for module_result in module_results if module_result.get("diff")]
        if diffs and not variables["ductape_webhooks_secure_logging"]:
            result["diff"] = diffs

        failures = register_failures(full_result or {}, link_result or {})
        if failures:
            result.update(failed=True, msg="\n- ".join([f"{ROLE}: the registration failed for:"] + failures))
            return result
        rows = register_registrations(full_result or {}, link_result or {}, group_hosts, plan["env_hosts"])
        result["registrations"] = rows
        result["summary"] = register_summary(rows, product, bool(self._task.check_mode))
        result["show_summary"] = variables["ductape_webhooks_show_summary"]
        return result

    def _variable(self, task_vars: dict, name: str):
        """The variable as the task sees it; when it is not set (the task run outside the role), the role's default."""
        if name in task_vars:
            return self._templated(task_vars[name])
        return role_defaults().get(name)

    def _templated(self, value):
        """What ``self._templar.template(value)`` gives, templating only the strings that may be templates.

        ansible-core templates a container value by value, each through its lazy containers (2.19 and later),
        which costs a plain string about what a template costs; ``ductape_webhooks`` is thousands of plain
        strings at 500 webhooks. Each string that may hold a template is templated on its own, as the
        container's templating does it; dict keys are left as they are, as there.
        """
        if isinstance(value, str):
            return self._templar.template(value) if self._templar.is_possibly_template(value) else value
        if isinstance(value, Mapping):
            return {key: self._templated(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._templated(item) for item in value]
        return value
