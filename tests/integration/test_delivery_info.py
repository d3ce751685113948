"""ductape.webhooks.ductape_webhook_delivery_info in a real playbook, against a real ductape-local
that has delivered real events to a receiver the test runs.

Events: three to payment_succeeded in prd (delivered), one to charge_refunded in stg whose receiver
answers 404 (failed). The playbook reads them back with filters, one by event id, in check mode, and
with a limit smaller than a page; a wrong status value and a wrong key fail with their messages; and
nothing that ansible-playbook prints at -vvv holds the access key.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from ductape_local.testing import LocalServer

ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
PRODUCT = "my-product"
ACCESS_TAG = "stripe-payments"
ACCESS_KEY = "dtl_delivery_info_secret_key_4b1e"
SEED = {
    "access_keys": [{"key": ACCESS_KEY, "products": [PRODUCT]}],
    "products": [{
        "tag": PRODUCT,
        "envs": ["prd", "stg"],
        "connections": [{"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test"}}],
    }],
    "apps": [{"tag": "stripe", "webhooks": [
        {"tag": "payment_succeeded", "name": "Payment succeeded"},
        {"tag": "charge_refunded", "name": "Charge refunded"},
    ]}],
}


class _Receiver(BaseHTTPRequestHandler):
    """Accepts everything under /ok, refuses everything else with 404."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204 if self.path.startswith("/ok") else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def receiver_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def server():
    with LocalServer(SEED, retry_schedule="0.05", delivery_timeout=5) as running:
        yield running


def _link(server: LocalServer, webhook_tag: str, env: str, url: str) -> str:
    response = requests.post(
        server.url + "/webhooks/v1/generate-link",
        headers={"Authorization": f"Bearer {ACCESS_KEY}"},
        json={"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": webhook_tag, "env": env,
              "url": url, "method": "POST"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["link"]


@pytest.fixture(scope="module")
def events(server, receiver_url):
    paid = _link(server, "payment_succeeded", "prd", receiver_url + "/ok/paid")
    refunded = _link(server, "charge_refunded", "stg", receiver_url + "/refused")
    sent = {"delivered": [], "failed": []}
    for n in range(3):
        answer = requests.post(paid, json={"n": n}, timeout=30)
        sent["delivered"].append(answer.json()["data"]["event_id"])
    answer = requests.post(refunded, data=b"refund", timeout=30)
    sent["failed"].append(answer.json()["data"]["event_id"])
    deadline = time.monotonic() + 30
    pending = set(sent["delivered"] + sent["failed"])
    while pending and time.monotonic() < deadline:
        for event_id in list(pending):
            record = requests.get(f"{server.url}/webhooks/v1/deliveries/{event_id}",
                                  headers={"Authorization": f"Bearer {ACCESS_KEY}"}, timeout=30).json()["data"]
            if record["status"] != "pending":
                pending.discard(event_id)
        time.sleep(0.05)
    assert not pending, f"deliveries never settled: {pending}"
    return sent


PLAYBOOK = """\
- name: Read the delivery log
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
    - name: Every delivery of the product
      ductape.webhooks.ductape_webhook_delivery_info:
        product: my-product
      register: everything

    - name: Failed deliveries of one access tag, in check mode
      ductape.webhooks.ductape_webhook_delivery_info:
        product: my-product
        access_tag: stripe-payments
        status: failed
      check_mode: true
      register: failed

    - name: One webhook in one env, two at most
      ductape.webhooks.ductape_webhook_delivery_info:
        product: my-product
        webhook_tag: payment_succeeded
        env: prd
        limit: 2
      register: limited

    - name: One delivery by its event id
      ductape.webhooks.ductape_webhook_delivery_info:
        event_id: "{{ one_event }}"
      register: one

    - name: An event id that does not exist
      ductape.webhooks.ductape_webhook_delivery_info:
        event_id: evt_does_not_exist
      register: missing

    - name: A status that does not exist
      ductape.webhooks.ductape_webhook_delivery_info:
        product: my-product
        status: lost
      register: bad_status
      ignore_errors: true

    - name: A wrong access key
      ductape.webhooks.ductape_webhook_delivery_info:
        product: my-product
        access_key: dtl_not_a_key
      register: bad_key
      ignore_errors: true

    - name: Hand the results to the test
      ansible.builtin.debug:
        msg: "RESULTS={{ {'everything': everything, 'failed': failed, 'limited': limited, 'one': one,
                         'missing': missing, 'bad_status': bad_status, 'bad_key': bad_key} | to_json }}"
"""


@pytest.fixture(scope="module")
def run(server, events, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("delivery-info")
    playbook = workdir / "playbook.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    extra = {"api_url": server.url, "access_key": ACCESS_KEY, "one_event": events["failed"][0]}
    completed = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-vvv", str(playbook), "-e", json.dumps(extra)],
        capture_output=True, text=True, timeout=300, cwd=workdir, check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    marker = next(line for line in completed.stdout.splitlines() if '"msg": "RESULTS=' in line)
    results = json.loads(json.loads("{" + marker.strip().rstrip(",") + "}")["msg"].removeprefix("RESULTS="))
    return results, output


def test_lists_every_delivery_newest_first_with_counts(run, events):
    results = run[0]
    everything = results["everything"]
    assert everything["changed"] is False
    ids = [d["event_id"] for d in everything["deliveries"]]
    assert ids == (events["delivered"] + events["failed"])[::-1]
    assert everything["counts"] == {"pending": 0, "delivered": 3, "failed": 1, "rejected": 0, "duplicates": 0}
    assert everything["last_rejection"] is None
    first = everything["deliveries"][-1]
    assert (first["webhook_tag"], first["env"], first["status"], first["attempt_count"]) == (
        "payment_succeeded", "prd", "delivered", 1)
    assert [a["status_code"] for a in first["attempts"]] == [204]


def test_filters_and_check_mode(run, events):
    results = run[0]
    failed = results["failed"]
    assert failed["changed"] is False
    assert [d["event_id"] for d in failed["deliveries"]] == events["failed"]
    assert failed["counts"] == {"pending": 0, "delivered": 0, "failed": 1, "rejected": 0, "duplicates": 0}
    [record] = failed["deliveries"]
    assert [a["status_code"] for a in record["attempts"]] == [404]
    assert record["last_error"] == "receiver answered HTTP 404"


def test_limit_is_honoured(run, events):
    results = run[0]
    assert [d["event_id"] for d in results["limited"]["deliveries"]] == events["delivered"][::-1][:2]


def test_one_event_by_id(run, events):
    results = run[0]
    assert [d["event_id"] for d in results["one"]["deliveries"]] == events["failed"]
    assert results["missing"]["deliveries"] == []
    assert results["missing"]["counts"] == {"pending": 0, "delivered": 0, "failed": 0, "rejected": None,
                                            "duplicates": None}


def test_errors_name_what_was_wrong(run):
    results = run[0]
    assert results["bad_status"]["failed"] is True
    assert results["bad_status"]["msg"] == "value of status must be one of: pending, delivered, failed, got: lost"
    assert results["bad_key"]["failed"] is True
    assert results["bad_key"]["msg"] == "list the deliveries: HTTP 401: unknown access key"


def test_the_access_key_is_never_printed(run):
    output = run[1]
    assert ACCESS_KEY not in output
    assert "dtl_not_a_key" not in output
