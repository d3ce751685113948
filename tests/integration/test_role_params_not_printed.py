"""Secrets given to the register role as role parameters (beside ``role:``) are printed at no verbosity.

ansible-core's argument-validation task of the role carries the role parameters in its arguments. They
are shown only in its task banner with ANSIBLE_DISPLAY_ARGS_TO_STDOUT (ansible-core's doing, before any
task of the role runs; the role's docs say to set the access key as a variable for that reason); at
every verbosity without it, none of them is printed: not by that task's result, nor when that task
refuses a variable, nor by any later task, whether the run succeeds or the API is down.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ductape_local.testing import LocalServer
from playbook import ANSIBLE_PLAYBOOK, ansible_env, unreachable_url

PRODUCT = "param-product"
ACCESS_TAG = "param-payments"
KEY = "dtl_role_param_key_3c9e51"
AUTH_SECRET = "sk_role_param_auth_77d0aa"
SEED = {
    "access_keys": [{"key": KEY, "products": [PRODUCT]}],
    "products": [{"tag": PRODUCT, "envs": ["prd", "stg"],
                  "connections": [{"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test"}}]}],
    "apps": [{"tag": "stripe", "webhooks": [{"tag": "payment_succeeded", "name": "Payment succeeded"}]}],
}
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}


def run_role(workdir: Path, api_url: str, verbosity: str, **extra_params: Any) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    role = {"role": "ductape.webhooks.register", "ductape_api_url": api_url, "ductape_access_key": KEY,
            "ductape_product": PRODUCT,
            "ductape_webhooks": [{"access_tag": ACCESS_TAG, "webhook_tag": "payment_succeeded", "path": "/paid",
                                  "auth": {"headers": {"X-Signature": AUTH_SECRET}}}], **extra_params}
    play = {"hosts": "localhost", "gather_facts": False, "roles": [role]}
    (workdir / "playbook.yml").write_text(yaml.safe_dump([play], sort_keys=False), encoding="utf-8")
    inventory = {"all": {"hosts": {"localhost": LOCAL}, "children": {"ductape_environments": {"hosts": {
        slug: dict(LOCAL, ductape_receiver_base_url=f"https://{slug}.example.com") for slug in ("prd", "stg")}}}}}
    (workdir / "inventory.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    command = [str(ANSIBLE_PLAYBOOK), "-i", "inventory.yml", "playbook.yml", "--diff"] + ([verbosity] if verbosity else [])
    completed = subprocess.run(command, cwd=workdir, env=ansible_env(workdir), capture_output=True, text=True,
                               timeout=300, check=False)
    return completed.stdout + completed.stderr


@pytest.mark.parametrize("verbosity", ["-vvvvvv"])
def test_role_parameters_are_not_printed(tmp_path, verbosity):
    with LocalServer(SEED) as server:
        converged = run_role(tmp_path / "ok", server.url, verbosity)
    assert "ok=" in converged and "failed=0" in converged, converged[-4000:]
    down = run_role(tmp_path / "down", unreachable_url(), verbosity)
    assert "could not reach the Ductape API" in down, down[-4000:]
    refused = run_role(tmp_path / "refused", unreachable_url(), verbosity, ductape_timeout="soon")
    assert "ductape_timeout" in refused and "Validating arguments" in refused, refused[-4000:]
    for output in (converged, down, refused):
        for secret in (KEY, AUTH_SECRET):
            assert secret not in output
