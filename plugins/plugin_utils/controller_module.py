# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a ductape module's own logic in the controller process when its task runs on the controller.

Every ductape module only talks HTTP to the Ductape API. When the task's connection is local anyway
(a play on localhost, ``delegate_to: localhost``, an inventory host with ``ansible_connection: local``),
shipping the module as AnsiballZ to a fresh Python costs ~0.3 s per task or loop item while the API
call costs ~1 ms; running the same module_utils code here costs ~0.01 s. Anywhere else (another host,
become, async, or ``ductape_run_on_controller: false``) the module runs the usual way.

What a module would do on its own is done here too: its argument spec validates the task's arguments
(module_defaults are already merged into them by then), with ``env_fallback`` reading the task's
``environment``; check mode and diff are passed on; every no_log value is removed from the result,
its messages and ``invocation``; warnings are returned as the module returns them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import typing as t

from ansible.module_utils.common.arg_spec import ModuleArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ansible_collections.ductape.webhooks.plugins.module_utils import _module_host

display = Display()

# Inventory or play variable; false makes every ductape task run as a module, wherever it runs.
RUN_ON_CONTROLLER_VAR = "ductape_run_on_controller"


COLLECTION_MODULES = "ansible_collections.ductape.webhooks.plugins.modules"


class ModuleLogic(t.NamedTuple):
    """What a module's ``main()`` is made of, for running it without AnsibleModule."""

    argument_spec: dict
    # mutually_exclusive, required_together, required_one_of, required_if, required_by
    validator_options: dict
    # run(params, check_mode, want_diff, warn) -> result dict (``failed: True`` and ``msg`` on failure)
    run: t.Callable[[dict, bool, bool, t.Callable[[str], None]], dict]


@functools.lru_cache(maxsize=None)
def module_logic(module_name: str) -> ModuleLogic:
    """The logic of plugins/modules/<module_name>.py, which every ductape module exposes.

    A module defines ``argument_spec()`` and ``run(params, check_mode, want_diff, warn)``, and, where
    its AnsibleModule takes them, ``ARGUMENT_SPEC_OPTIONS`` (mutually_exclusive, required_if, ...).
    """
    module = importlib.import_module(f"{COLLECTION_MODULES}.{module_name}")
    return ModuleLogic(module.argument_spec(), dict(getattr(module, "ARGUMENT_SPEC_OPTIONS", {})), module.run)


# One worker process runs every item of a loop: the module's code and its validator are built once.
@functools.lru_cache(maxsize=None)
def _validator(module_name: str) -> ModuleArgumentSpecValidator:
    logic = module_logic(module_name)
    return ModuleArgumentSpecValidator(logic.argument_spec, **logic.validator_options)


@contextlib.contextmanager
def _process_environment(overrides: dict[str, str]) -> t.Iterator[None]:
    """The task's ``environment`` as os.environ, which ``env_fallback`` reads, for the block's duration.

    The task runs in a worker process of its own, so nothing else sees the change.
    """
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update({name: str(value) for name, value in overrides.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _plain(data: t.Any) -> t.Any:
    """The result as a module's JSON answer would carry it: plain lists, dicts, strings and numbers."""
    return json.loads(json.dumps(data, default=str))


class ControllerModuleAction(ActionBase):
    """Base of the ductape action plugins: plugins/action/<name>.py runs the module <name>."""

    _supports_check_mode = True
    _supports_async = True

    @property
    def module_name(self) -> str:
        return type(self).__module__.rpartition(".")[2]

    def load_module_logic(self) -> ModuleLogic:
        """Import the module's code; ImportError (requests missing here) means: run the module instead."""
        return module_logic(self.module_name)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp

        reason = self._why_not_on_controller(task_vars)
        logic = None
        if reason is None:
            try:
                logic = self.load_module_logic()
            except ImportError as error:
                reason = f"its code cannot be imported on the controller ({error})"
        if logic is None:
            display.vvv(f"{self._task.action}: running the module on the target, as {reason}",
                        host=self._play_context.remote_addr)
            return merge_hash(result, self._run_as_module(task_vars))

        display.vvv(f"{self._task.action}: running in the controller process", host=self._play_context.remote_addr)
        return merge_hash(result, self._run_in_process(logic))

    def _why_not_on_controller(self, task_vars: dict) -> str | None:
        wanted = task_vars.get(RUN_ON_CONTROLLER_VAR, True)
        # With delegate_to, the delegated host's own setting decides, as its connection does.
        delegated = (task_vars.get("ansible_delegated_vars") or {}).get(self._task.delegate_to) \
            if self._task.delegate_to else None
        if isinstance(delegated, dict) and RUN_ON_CONTROLLER_VAR in delegated:
            wanted = delegated[RUN_ON_CONTROLLER_VAR]
        if not boolean(self._templar.template(wanted), strict=False):
            return f"{RUN_ON_CONTROLLER_VAR} is false"
        if self._connection.transport != "local":
            return f"the connection is {self._connection.transport}, not local"
        if self._play_context.become:
            return "the task uses become"
        if self._task.async_val:
            return "the task is async"
        return None

    def _run_as_module(self, task_vars: dict) -> dict:
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result = self._execute_module(task_vars=task_vars, wrap_async=wrap_async)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _task_environment(self) -> dict[str, str]:
        environment: dict[str, str] = {}
        self._compute_environment_string(raw_environment_out=environment)
        return environment

    def _run_in_process(self, logic: ModuleLogic) -> dict:
        name = _module_host.module_name(logic.run)
        with _process_environment(self._task_environment()):
            # Plain data first: the validator deep-copies its input, and templated values copy slowly.
            validation = _validator(self.module_name).validate(_plain(dict(self._task.args)))
        params = validation.validated_parameters

        if validation.error_messages:
            message = _module_host.argument_errors_message(validation.errors, name)
            return self._finish(logic, {"failed": True, "msg": message}, params)

        warnings: list[str] = []
        outcome = _module_host.run_result(logic.run, params, bool(self._task.check_mode), bool(self._task.diff),
                                          warnings.append, name)
        if warnings:
            outcome = dict(outcome, warnings=list(outcome.get("warnings", [])) + warnings)
        return self._finish(logic, outcome, params)

    @staticmethod
    def _finish(logic: ModuleLogic, outcome: dict, params: dict) -> dict:
        result = dict(outcome, invocation=_module_host.invocation(logic.argument_spec, params))
        return remove_values(_plain(result), _module_host.scrub_values(logic.argument_spec, params))
