"""When the ductape action plugins run the module code in the controller process, and when they run the
module the usual way (plugins/plugin_utils/controller_module.py), decided from the task alone.

This is where a non-local connection is proved to select the module path: the integration test
(tests/integration/test_action_plugin.py) has no SSH host, so it only shows that the module path works.
"""
from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest

from ansible_collections.ductape.webhooks.plugins.action.ductape_webhook import ActionModule


def plugin(transport="local", become=False, async_val=0, delegate_to=None):
    task = SimpleNamespace(async_val=async_val, delegate_to=delegate_to, action="ductape.webhooks.ductape_webhook",
                           args={}, check_mode=False, diff=False)
    connection = SimpleNamespace(transport=transport, has_native_async=False)
    play_context = SimpleNamespace(become=become, remote_addr="somewhere")
    templar = SimpleNamespace(template=lambda value: value)
    return ActionModule(task, connection, play_context, loader=None, templar=templar)


@pytest.mark.parametrize("transport", ["ssh", "paramiko", "winrm", "ansible.netcommon.httpapi"])
def test_a_connection_that_is_not_local_runs_the_module(transport):
    assert plugin(transport)._why_not_on_controller({}) == f"the connection is {transport}, not local"


def test_a_local_connection_runs_in_the_controller_process():
    assert plugin("local")._why_not_on_controller({}) is None
    assert plugin("local")._why_not_on_controller({"ductape_run_on_controller": "yes"}) is None


@pytest.mark.parametrize("options, task_vars, reason", [
    ({"become": True}, {}, "the task uses become"),
    ({"async_val": 30}, {}, "the task is async"),
    ({}, {"ductape_run_on_controller": False}, "ductape_run_on_controller is false"),
    ({}, {"ductape_run_on_controller": "false"}, "ductape_run_on_controller is false"),
    # delegate_to: the delegated host's own setting wins over the play host's
    ({"delegate_to": "target"}, {"ductape_run_on_controller": True,
                                 "ansible_delegated_vars": {"target": {"ductape_run_on_controller": False}}},
     "ductape_run_on_controller is false"),
])
def test_what_else_sends_a_local_task_to_the_module(options, task_vars, reason):
    assert plugin(**options)._why_not_on_controller(task_vars) == reason


def test_a_delegated_host_without_the_setting_keeps_the_play_hosts():
    task_vars = {"ductape_run_on_controller": False, "ansible_delegated_vars": {"target": {}}}
    assert plugin(delegate_to="target")._why_not_on_controller(task_vars) == "ductape_run_on_controller is false"


def test_run_over_ssh_executes_the_module_and_never_imports_its_code_here():
    action = plugin("ssh")
    with mock.patch("ansible.plugins.action.ActionBase.run", return_value={}), \
            mock.patch.object(ActionModule, "load_module_logic") as load, \
            mock.patch.object(ActionModule, "_execute_module", return_value={"changed": False, "ran": "module"}), \
            mock.patch.object(ActionModule, "_remove_tmp_path"):
        action._connection._shell = SimpleNamespace(tmpdir=None)
        result = action.run(task_vars={})
    assert result["ran"] == "module"
    load.assert_not_called()


def _in_process_failure(args):
    action = plugin()
    action._task.args = dict({"product": "p", "access_tag": "a", "webhook_tag": "w", "access_key": "unit-test-key-1",
                              "api_url": "http://127.0.0.1:9"}, **args)
    with mock.patch.object(ActionModule, "_task_environment", return_value={}):
        result = action._run_in_process(action.module_name, action.load_module_logic(), {}, dict(action._task.args))
    assert result["failed"] is True, result
    return result["msg"]


@pytest.mark.parametrize("envs", ["prd", ["prd"]])
def test_an_argument_error_names_the_option_not_only_the_generic_first_error(envs):
    message = _in_process_failure({"envs": envs})
    assert "option 'envs'" in message, message
    assert message.count("dictionary requested") == 1, message


def test_every_argument_error_is_reported_the_unsupported_one_with_its_prefix():
    message = _in_process_failure({"envs": [{"slug": "prd", "method": "TRACE", "bogus": 1}]})
    assert "value of method must be one of" in message, message
    assert "Unsupported parameters for (ductape.webhooks.ductape_webhook) module: envs.bogus" in message, message


def test_invocation_follows_the_running_core():
    from ansible_collections.ductape.webhooks.plugins.plugin_utils import controller_module

    # 2.19 here: no INJECT_INVOCATION setting, and AnsibleModule always adds invocation.
    assert controller_module.core_injects_invocation({}) is True

    class Config:  # what ansible-core 2.21's config answers
        def __init__(self, value):
            self.value, self.asked = value, []

        def get_configuration_definitions(self):
            return {"INJECT_INVOCATION": {}}

        def get_config_value(self, name, variables=None):
            self.asked.append((name, variables))
            return variables.get("ansible_inject_invocation", self.value)

    for default, task_vars, expected in [(False, {}, False), (True, {}, True),
                                         (False, {"ansible_inject_invocation": "yes"}, True)]:
        config = Config(default)
        with mock.patch.object(controller_module.C, "config", config):
            assert controller_module.core_injects_invocation(task_vars) is expected
        assert config.asked == [("INJECT_INVOCATION", task_vars)]


@pytest.mark.parametrize("inject", [True, False])
def test_the_stand_in_gives_invocation_only_when_the_core_does(inject):
    from ansible_collections.ductape.webhooks.plugins.plugin_utils import controller_module
    from ansible_collections.ductape.webhooks.plugins.module_utils import _module_host

    logic = controller_module.module_logic("ductape_webhook")
    module = controller_module.ControllerModule(
        logic.argument_spec, controller_module._validator("ductape_webhook"),
        {"product": "p", "access_key": "unit-key-0123", "colour": "x"}, check_mode=False, diff=False,
        inject_invocation=inject)
    with pytest.raises(controller_module.ModuleExit) as done:
        _module_host.host(module, logic.argument_spec, logic.run)
    result = done.value.result
    assert result["failed"] is True and "colour" in result["msg"]
    assert ("invocation" in result) is inject
    if inject:
        assert result["invocation"]["module_args"]["access_key"] == _module_host.NO_LOG_MARKER


def test_the_no_log_policy_masks_whole_values_and_scrubs_only_the_key():
    from ansible_collections.ductape.webhooks.plugins.module_utils import _module_host
    from ansible_collections.ductape.webhooks.plugins.plugin_utils.controller_module import module_logic

    spec = module_logic("ductape_webhook").argument_spec
    params = {"product": "acme-shop", "access_key": "unit-key-4711", "api_url": "https://u:pw@h.example/?token=t",
              "envs": [{"slug": "prd", "url": "https://h.example/x?sig=s&v=1", "method": "POST",
                        "auth": {"params": {"shop": "acme"}, "headers": {"X": "POST"}}}],
              "webhooks": None}
    args = _module_host.invocation(spec, params)["module_args"]
    assert args["access_key"] == args["envs"][0]["auth"] == _module_host.NO_LOG_MARKER
    assert args["api_url"] == "https://********@h.example/?token=********"
    assert args["envs"][0]["url"] == "https://h.example/x?sig=********&v=1"
    assert (args["product"], args["envs"][0]["method"]) == ("acme-shop", "POST")
    assert params["envs"][0]["auth"] == {"params": {"shop": "acme"}, "headers": {"X": "POST"}}  # not changed
    # Only the key is removed wherever it appears; auth values are left to the modules (never shown).
    assert _module_host.scrub_values(spec, params) == {"unit-key-4711"}
    # A list option of the wrong shape that may hold auth is masked whole.
    assert _module_host.invocation(spec, dict(params, envs="prd auth=x"))["module_args"]["envs"] == \
        _module_host.NO_LOG_MARKER
