"""ductape.webhooks.ductape_webhook_delivery_info reports the events that ductape-local refused (a
provider signature that did not verify) and the duplicates it acknowledged without delivering, beside
the delivery counts, in a real playbook against a real server; the signing secret never shows.

Events: to a GitHub-signed webhook in prd, two signed events (one of them sent three times, the same
X-GitHub-Delivery id) and two with a bad signature; one unsigned event to another webhook in stg."""
from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from ductape_local.testing import LocalServer
from playbook import unreachable_url

ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
PRODUCT = "my-product"
ACCESS_TAG = "github-repos"
ACCESS_KEY = "dtl_delivery_info_ingress_key_93c1"
SIGNING_SECRET = "gh-signing-secret-for-delivery-info-5521"


def seed(secret_file: Path) -> dict:
    return {
        "access_keys": [{"key": ACCESS_KEY, "products": [PRODUCT]}],
        "products": [{"tag": PRODUCT, "envs": ["prd", "stg"], "connections": [
            {"access_tag": ACCESS_TAG, "app": "github", "envs": {"prd": "live", "stg": "test"}}]}],
        "apps": [{"tag": "github", "webhooks": [
            {"tag": "push", "verify": {"strategy": "github", "secret_file": str(secret_file)},
             "dedup": {"header": "X-GitHub-Delivery"}},
            {"tag": "issues"},
        ]}],
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    secret_file = tmp_path_factory.mktemp("secret") / "github"
    secret_file.write_text(SIGNING_SECRET, encoding="utf-8")
    with LocalServer(seed(secret_file), retry_schedule="0.05", delivery_timeout=5) as running:
        yield running


def _link(server: LocalServer, webhook_tag: str, env: str) -> str:
    response = requests.post(
        server.url + "/webhooks/v1/generate-link", headers={"Authorization": f"Bearer {ACCESS_KEY}"},
        json={"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": webhook_tag, "env": env,
              "url": unreachable_url() + "/unused", "method": "POST"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]["link"]


@pytest.fixture(scope="module")
def events(server):
    push, issues = _link(server, "push", "prd"), _link(server, "issues", "stg")

    def signed(body: bytes, delivery: str) -> requests.Response:
        signature = "sha256=" + hmac.new(SIGNING_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return requests.post(push, data=body, timeout=30,
                             headers={"X-Hub-Signature-256": signature, "X-GitHub-Delivery": delivery})

    first = [signed(b'{"ref":"main"}', "d-1").json()["data"]["event_id"] for _attempt in range(3)]
    second = signed(b'{"ref":"dev"}', "d-2").json()["data"]["event_id"]
    assert len(set(first)) == 1 and second not in first
    for forged in (b'{"ref":"evil"}', b'{"ref":"evil2"}'):
        answer = requests.post(push, data=forged, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}, timeout=30)
        assert answer.status_code == 401, answer.text
    other = requests.post(issues, json={"action": "opened"}, timeout=30)
    assert other.status_code == 202, other.text
    return {"duplicated": first[0], "single": second}


PLAYBOOK = """\
- name: Read the ingress counts
  hosts: localhost
  gather_facts: false
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  module_defaults:
    group/ductape.webhooks.ductape:
      api_url: "{{ api_url }}"
      access_key: "{{ access_key }}"
  tasks:
    - name: The signed webhook in prd
      ductape.webhooks.ductape_webhook_delivery_info:
        product: my-product
        access_tag: github-repos
        webhook_tag: push
        env: prd
      register: push

    - name: The whole product, in check mode
      ductape.webhooks.ductape_webhook_delivery_info:
        product: my-product
      check_mode: true
      register: product

    - name: The unsigned webhook
      ductape.webhooks.ductape_webhook_delivery_info:
        product: my-product
        access_tag: github-repos
        webhook_tag: issues
      register: issues

    - name: Without a product
      ductape.webhooks.ductape_webhook_delivery_info:
      register: no_product

    - name: Hand the results to the test
      ansible.builtin.debug:
        msg: "RESULTS={{ {'push': push, 'product': product, 'issues': issues, 'no_product': no_product} | to_json }}"
"""


@pytest.fixture(scope="module")
def run(server, events, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("delivery-info-ingress")
    playbook = workdir / "playbook.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    extra = {"api_url": server.url, "access_key": ACCESS_KEY}
    completed = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-vvv", str(playbook), "-e", json.dumps(extra)],
        capture_output=True, text=True, timeout=300, cwd=workdir, check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    marker = next(line for line in completed.stdout.splitlines() if '"msg": "RESULTS=' in line)
    results = json.loads(json.loads("{" + marker.strip().rstrip(",") + "}")["msg"].removeprefix("RESULTS="))
    return results, output


def test_rejected_and_duplicate_counts_beside_the_delivery_counts(run, events):
    push = run[0]["push"]
    assert push["changed"] is False
    counts = dict(push["counts"])
    assert (counts.pop("rejected"), counts.pop("duplicates")) == (2, 2)
    assert sum(counts.values()) == 2 == len(push["deliveries"])  # pending or failed: no receiver listens
    by_id = {d["event_id"]: d for d in push["deliveries"]}
    assert by_id[events["duplicated"]]["duplicates"] == 2
    assert by_id[events["single"]]["duplicates"] == 0
    last = push["last_rejection"]
    assert last["reason"] == "signature verification failed: the X-Hub-Signature-256 signature does not match the body"
    assert last["at"].endswith("Z") and last["registration_uuid"]


def test_the_counts_follow_the_filters(run):
    results = run[0]
    assert (results["product"]["counts"]["rejected"], results["product"]["counts"]["duplicates"]) == (2, 2)
    assert results["product"]["changed"] is False
    assert (results["issues"]["counts"]["rejected"], results["issues"]["counts"]["duplicates"]) == (0, 0)
    assert results["issues"]["last_rejection"] is None
    assert len(results["issues"]["deliveries"]) == 1
    # the summary needs a product: without one, the counts it gives are null, not zero
    assert (results["no_product"]["counts"]["rejected"], results["no_product"]["counts"]["duplicates"]) == (None, None)
    assert len(results["no_product"]["deliveries"]) == 3


def test_neither_the_signing_secret_nor_the_access_key_is_printed(run):
    output = run[1]
    assert SIGNING_SECRET not in output
    assert ACCESS_KEY not in output
