# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a ductape module's own logic in the controller process when its task runs on the controller.

Every ductape module only talks HTTP to the Ductape API. When the task's connection is local anyway
(a play on localhost, ``delegate_to: localhost``, an inventory host with ``ansible_connection: local``),
shipping the module as AnsiballZ to a fresh Python costs ~0.3 s per task while the API call costs
~1 ms; running the same module_utils code here costs ~0.01 s. Anywhere else (another host, become,
async, or ``ductape_run_on_controller: false``) the module runs the usual way.

In the controller, ``ControllerModule`` stands in for AnsibleModule: the same interface (``params``,
``check_mode``, ``_diff``, ``warn``, ``exit_json``, ``fail_json``, ``no_log_values``,
``validation_result``), built from the module's own argument spec with ansible-core's public
validator, and handed to the same hosting code as the module's ``main()``
(plugins/module_utils/_module_host.py). What leaves it (messages, no_log policy, ``invocation``) is
therefore what the module would print. The one thing the stand-in decides itself is whether the
running ansible-core wants ``invocation`` in results (see ``core_injects_invocation``), as
AnsibleModule asks the core that ships it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import json
import os
import re
import typing as t

from ansible import constants as C
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
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

# A connection option that a task leaves out is taken from its variable (inventory, play, role vars),
# when that is set and not empty; else the module's own fallback applies (DUCTAPE_API_URL,
# DUCTAPE_ACCESS_KEY, the defaults). No task then needs the access key in its arguments, which
# ansible-core prints with ANSIBLE_DISPLAY_ARGS_TO_STDOUT (AWX/AAP job events) and module_defaults
# would put there. Messages about an option taken from a variable name the variable.
CONNECTION_VARIABLES = (
    ("api_url", "ductape_api_url"),
    ("access_key", "ductape_access_key"),
    ("validate_certs", "ductape_validate_certs"),
    ("timeout", "ductape_timeout"),
    ("retries", "ductape_retries"),
    ("auth_header", "ductape_auth_header"),
    ("token_exchange", "ductape_token_exchange"),
    ("auth_unknown", "ductape_auth_unknown"),
)


class ModuleLogic(t.NamedTuple):
    """What a module's ``main()`` is made of (C7): its argument spec, the validator options, its run."""

    argument_spec: dict
    # mutually_exclusive, required_together, required_one_of, required_if, required_by
    validator_options: dict
    # run(params, check_mode, want_diff, warn) -> result dict (``failed: True`` and ``msg`` on failure)
    run: t.Callable[[dict, bool, bool, t.Callable[[str], None]], dict]


@functools.lru_cache(maxsize=None)
def module_logic(module_name: str) -> ModuleLogic:
    """The logic of plugins/modules/<module_name>.py, which every ductape module exposes."""
    module = importlib.import_module(f"{COLLECTION_MODULES}.{module_name}")
    return ModuleLogic(module.argument_spec(), dict(getattr(module, "ARGUMENT_SPEC_OPTIONS", {})), module.run)


@functools.lru_cache(maxsize=None)
def _validator(module_name: str) -> ArgumentSpecValidator:
    logic = module_logic(module_name)
    return ArgumentSpecValidator(logic.argument_spec, **logic.validator_options)


def core_injects_invocation(task_vars: dict) -> bool:
    """Whether the running ansible-core puts ``invocation`` into a module's result.

    ansible-core 2.21 and later ask their INJECT_INVOCATION setting (off by default; it may be set per
    task through the variable ``ansible_inject_invocation``) and send the answer to every module, whose
    AnsibleModule follows it; earlier releases have no such setting and their AnsibleModule always adds
    it. The controller path asks the same setting with the same variables.
    """
    if "INJECT_INVOCATION" not in C.config.get_configuration_definitions():
        return True
    return boolean(C.config.get_config_value("INJECT_INVOCATION", variables=task_vars), strict=False)


class ModuleExit(Exception):
    """exit_json or fail_json was called: ``result`` is what the task returns."""

    def __init__(self, result: dict):
        super().__init__()
        self.result = result


def _plain(data: t.Any) -> t.Any:
    """Data as a module's JSON answer carries it: plain lists, dicts, strings and numbers."""
    return json.loads(json.dumps(data, default=str))


# Text in which remove_values may find a value that the JSON text of the data does not show as such:
# the words it makes of booleans and special floats.
_WORDS_OF_SCALARS = "True False inf -inf nan Infinity NaN"
# Characters that JSON escapes: a value holding one is not written verbatim in the JSON text.
_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def _plain_without(data: t.Any, no_log_values: t.Collection[str]) -> t.Any:
    """``remove_values(_plain(data), no_log_values)``, without walking the data when nothing is to remove.

    The JSON text of the plain data holds every string and number of it verbatim. When no value to
    remove can be written differently there, and none occurs in that text, remove_values would return
    the data unchanged; otherwise it runs as it always does.
    """
    text = json.dumps(data, default=str, ensure_ascii=False)
    plain = json.loads(text)
    values = [str(value) for value in no_log_values]
    if any(not value or _JSON_ESCAPED.search(value) or value in _WORDS_OF_SCALARS or value in text
           for value in values):
        return remove_values(plain, no_log_values)
    return plain


class ControllerModule:
    """AnsibleModule's interface, hosted by an action plugin, for a module's logic run in the controller."""

    def __init__(self, argument_spec: dict, validator: ArgumentSpecValidator, args: dict, *,
                 check_mode: bool, diff: bool, inject_invocation: bool):
        self.argument_spec = argument_spec
        self.check_mode = check_mode
        # AnsibleModule's name for "the task runs with --diff", which module code reads.
        self._diff = diff
        self.no_log_values: set[str] = set()
        self.validation_result = validator.validate(args)
        # Read here, where the task's environment is in place, as the validator's env_fallback read it.
        self.option_sources = _module_host.environment_sources(argument_spec, frozenset(args))
        # As AnsibleModule: the validated parameters themselves (the validator already copied its input).
        self.params = self.validation_result.validated_parameters
        self._inject_invocation = inject_invocation
        self._warnings: list[str] = []

    def warn(self, warning: str) -> None:
        if not isinstance(warning, str):
            raise TypeError(f"warn requires a string not a {type(warning)}")
        self._warnings.append(warning)

    def exit_json(self, **kwargs: t.Any) -> t.NoReturn:
        self._leave(kwargs)

    def fail_json(self, msg: str, **kwargs: t.Any) -> t.NoReturn:
        self._leave(dict(kwargs, failed=True, msg=str(msg)))

    def _leave(self, result: dict) -> t.NoReturn:
        # What AnsibleModule does on its way out, in its order.
        if not self._inject_invocation:
            result.pop("invocation", None)
        elif "invocation" not in result:
            result["invocation"] = {"module_args": self.params}
        if self._warnings:
            result["warnings"] = list(self._warnings)
        raise ModuleExit(_plain_without(result, self.no_log_values))


def _name_the_variables(result: dict, from_variables: dict[str, str]) -> dict:
    """The result with its messages naming ``ductape_api_url`` where they say ``api_url`` option, for the
    options that came from a variable: the name the user set is the one to check."""
    return _module_host.name_the_sources(
        result, {option: (variable, f"the variable {variable}") for option, variable in from_variables.items()})


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


@contextlib.contextmanager
def inherited_objects_frozen() -> t.Iterator[None]:
    """The objects that exist when the block starts are left out of the garbage collector's passes until it ends.

    A task runs in a worker process forked from ansible-playbook, so every object of the playbook, the
    inventory and the variables is the worker's too; each full pass of the cyclic garbage collector walks all
    of them (about 0.1 s per pass at 500 webhooks x 5 envs), while what the task makes is all it can free.
    Reference counting still frees every object as usual; after the block the collector sees them all again.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class ControllerModuleAction(ActionBase):
    """Base of the ductape action plugins: plugins/action/<name>.py runs the module <name>."""

    _supports_check_mode = True
    _supports_async = True

    @property
    def module_name(self) -> str:
        return type(self).__module__.rpartition(".")[2]

    def load_module_logic(self) -> ModuleLogic:
        """Import the module's code; an ImportError means: run the module instead."""
        return module_logic(self.module_name)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        with inherited_objects_frozen():
            return merge_hash(result, self.run_module(self.module_name, dict(self._task.args), task_vars))

    def run_module(self, module_name: str, task_args: dict, task_vars: dict) -> dict:
        """The result of the collection's module <module_name> with these arguments (plus the connection
        options taken from variables), run in the controller process where it can, as a module elsewhere."""
        args, from_variables = self._module_args(task_args, task_vars)
        reason = self._why_not_on_controller(task_vars)
        logic = None
        if reason is None:
            try:
                logic = self.load_module_logic() if module_name == self.module_name else module_logic(module_name)
            except ImportError as error:
                reason = f"its code cannot be imported on the controller ({error})"
        if logic is None:
            display.vvv(f"{self._task.action}: running the module on the target, as {reason}",
                        host=self._play_context.remote_addr)
            return _name_the_variables(self._run_as_module(module_name, args, task_vars), from_variables)

        display.vvv(f"{self._task.action}: running in the controller process", host=self._play_context.remote_addr)
        return _name_the_variables(self._run_in_process(module_name, logic, task_vars, args), from_variables)

    def _module_args(self, task_args: dict, task_vars: dict) -> tuple[dict, dict[str, str]]:
        """The task's arguments plus the connection options taken from variables, and which those are."""
        args = dict(task_args)
        from_variables = {}
        for option, variable in CONNECTION_VARIABLES:
            if args.get(option) is not None or variable not in task_vars:
                continue
            value = self._templar.template(task_vars[variable])
            if value is not None and value != "":
                args[option] = value
                from_variables[option] = variable
        return args, from_variables

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

    def _run_as_module(self, module_name: str, args: dict, task_vars: dict) -> dict:
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        name = None if module_name == self.module_name else f"ductape.webhooks.{module_name}"
        result = self._execute_module(module_name=name, module_args=args, task_vars=task_vars, wrap_async=wrap_async)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _task_environment(self) -> dict[str, str]:
        environment: dict[str, str] = {}
        self._compute_environment_string(raw_environment_out=environment)
        return environment

    def _run_in_process(self, module_name: str, logic: ModuleLogic, task_vars: dict, args: dict) -> dict:
        with _process_environment(self._task_environment()):
            # Plain data first: the validator deep-copies its input, and templated values copy slowly.
            module = ControllerModule(logic.argument_spec, _validator(module_name), _plain(args),
                                      check_mode=bool(self._task.check_mode), diff=bool(self._task.diff),
                                      inject_invocation=core_injects_invocation(task_vars))
        try:
            _module_host.host(module, logic.argument_spec, logic.run)
        except ModuleExit as done:
            return done.result
        raise RuntimeError(f"{self._task.action}: the module's code returned without exit_json or fail_json")
