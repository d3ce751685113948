"""The AWX/AAP credential type is enough: its injected environment alone connects the modules.

The credential type shipped in extensions/awx is rendered the way AWX renders it (its injector
templates with the credential's inputs), and a real playbook whose tasks name neither api_url nor
access_key runs against a real ductape-local with exactly that environment.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import requests
import yaml

from ductape_local.testing import LocalServer

REPO = Path(__file__).resolve().parents[2]
CREDENTIAL_TYPE = REPO / "extensions" / "awx" / "ductape_credential_type.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")

PRODUCT = "my-product"
ACCESS_TAG = "stripe-payments"
WEBHOOK_TAG = "payment_succeeded"
RECEIVER = "https://stg.example.com/hooks/stripe/payment-succeeded"

PLAYBOOK = f"""\
- name: Register a webhook with the connection taken from the environment only
  hosts: localhost
  gather_facts: false
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    - name: Register {WEBHOOK_TAG} in stg
      ductape.webhooks.ductape_webhook:
        product: {PRODUCT}
        access_tag: {ACCESS_TAG}
        webhook_tag: {WEBHOOK_TAG}
        envs:
          - slug: stg
            url: {RECEIVER}
            method: POST

    - name: Read the app's webhooks back
      ductape.webhooks.ductape_webhook_info:
        product: {PRODUCT}
        access_tag: {ACCESS_TAG}
      register: webhooks_info

    - name: Show what was read, for the test to parse
      ansible.builtin.debug:
        msg: "INFO_JSON={{{{ webhooks_info | to_json }}}}"
"""


def credential_type() -> dict:
    return yaml.safe_load(CREDENTIAL_TYPE.read_text(encoding="utf-8"))


def injected_env(inputs: dict[str, str]) -> dict[str, str]:
    """What AWX puts in a job's environment for a credential of this type with these inputs."""
    renderer = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env_templates = credential_type()["injectors"]["env"]
    return {name: renderer.from_string(template).render(**inputs) for name, template in env_templates.items()}


def collections_path() -> str:
    configured = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    if configured:
        return configured
    default = REPO / ".build" / "collections"
    if not (default / "ansible_collections" / "ductape" / "webhooks").exists():
        pytest.fail("the collection is not linked into .build/collections: run `make collection` first")
    return str(default)


def run_playbook(tmp_path: Path, job_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    # Nothing of the connection may come from this process's own environment or from the play.
    env = {name: value for name, value in os.environ.items() if not name.startswith("DUCTAPE_")}
    env.update(job_env)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_path(),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
    })
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-vvv", str(playbook)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


def stored_registrations(server: LocalServer) -> list[dict]:
    response = requests.get(
        server.url + "/webhooks/v1/webhooks", headers=server.auth_headers,
        params={"product": PRODUCT, "access_tag": ACCESS_TAG}, timeout=10,
    )
    response.raise_for_status()
    webhooks = {webhook["tag"]: webhook for webhook in response.json()["data"]}
    return webhooks[WEBHOOK_TAG]["config"]


@pytest.fixture()
def server():
    with LocalServer() as local_server:
        yield local_server


def test_credential_type_marks_the_access_key_secret_and_injects_both_variables():
    fields = {field["id"]: field for field in credential_type()["inputs"]["fields"]}
    assert fields["access_key"].get("secret") is True
    assert not fields["api_url"].get("secret", False)
    assert set(credential_type()["injectors"]["env"]) == {"DUCTAPE_API_URL", "DUCTAPE_ACCESS_KEY"}
    assert injected_env({"api_url": "http://ductape.test", "access_key": "k-1"}) == {
        "DUCTAPE_API_URL": "http://ductape.test",
        "DUCTAPE_ACCESS_KEY": "k-1",
    }


def test_the_play_names_no_connection_option():
    assert "api_url" not in PLAYBOOK
    assert "access_key" not in PLAYBOOK
    assert "module_defaults" not in PLAYBOOK


def test_modules_connect_with_the_injected_environment_alone(server, tmp_path):
    job_env = injected_env({"api_url": server.url, "access_key": server.access_key})
    assert stored_registrations(server) == []
    server.reset_stats()

    result = run_playbook(tmp_path, job_env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output

    stats = server.stats()
    assert stats["requests"].get("POST /webhooks/v1/register", 0) >= 1
    assert stats["requests"].get("GET /webhooks/v1/webhooks", 0) >= 1
    [registration] = stored_registrations(server)
    assert (registration["productEnv"], registration["url"], registration["method"]) == ("stg", RECEIVER, "POST")

    info_line = next(line for line in output.splitlines() if "INFO_JSON=" in line)
    assert registration["uuid"] in info_line
    # -vvv shows module arguments and environment-derived options; the key must stay hidden.
    assert server.access_key not in output


def test_a_wrong_injected_key_is_refused_and_not_printed(server, tmp_path):
    wrong_key = "dtl_not_a_key_of_this_server_5f1c"
    job_env = injected_env({"api_url": server.url, "access_key": wrong_key})
    server.reset_stats()

    result = run_playbook(tmp_path, job_env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f'"msg": "list the webhooks of {ACCESS_TAG} in product {PRODUCT}: HTTP 401: unknown access key"' in output, output
    # The request reached this server, so the URL came from the environment too.
    # The module reads the registrations first, and that read is what the key was refused on.
    assert server.stats()["requests"].get("GET /webhooks/v1/webhooks", 0) >= 1
    assert server.stats()["writes"] == 0
    assert stored_registrations(server) == []
    assert wrong_key not in output
