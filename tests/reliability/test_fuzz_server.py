"""ductape-local under schemathesis: every operation of its OpenAPI schema, fuzzed within a bound,
answers no 5xx and nothing that breaks its own schema.

The server runs without --test-mode, as a user runs it. Before the fuzzer starts, the test registers
links and sends events through one of them; the hooks (schemathesis_hooks.py) send those uuids and
event ids, and the seed's real tags, half the time, so that the fuzzer reaches storage, listing,
ingress, delete, deliveries and replay, not only the 404 of an unknown product, uuid or event. Every
case is recorded (schemathesis' HAR report), and each operation must have answered something other
than 404 at least once; the count per operation goes to figures.json.

The fuzzer is seeded and bounded by a fixed number of examples, with no example database, so a run
generates the same cases as the last one: the figures it adds to docs/reliability.md repeat exactly.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import requests

import reliability_harness as harness
from stub_servers import ClosedPort

HERE = Path(__file__).resolve().parent
SCHEMATHESIS = Path(sys.executable).with_name("st")
MAX_EXAMPLES = 50
RUN_TIMEOUT = 600  # a bound on the whole run on a busy shared machine; the examples count bounds it first
PRODUCT = "my-product"
# (access tag, webhook tag, env): links the ingress routes are sent to, and registrations to delete
LINKS = [("stripe-payments", "payment_succeeded", "dev"), ("paystack-payments", "charge_success", "dev")]
TO_DELETE = [("stripe-payments", "charge_refunded", env) for env in ("prd", "stg", "dev")] + \
            [("paystack-payments", "transfer_success", env) for env in ("prd", "stg", "dev")]
EVENTS = 3
# The operations the hooks give real tags, uuids or event ids: each must succeed (2xx) at least once, so
# that the fuzzer reached the work behind the lookup, not only a 404 or a 422.
SUCCEED = ["POST /webhooks/v1/register", "POST /webhooks/v1/generate-link", "GET /webhooks/v1/webhooks",
           "GET /webhooks/v1/deliveries", "GET /webhooks/v1/deliveries/summary", "POST /webhooks/v1/process/{uuid}",
           "DELETE /webhooks/v1/registrations/{uuid}", "GET /webhooks/v1/deliveries/{event_id}",
           "POST /webhooks/v1/deliveries/{event_id}/replay", "POST /webhooks/v1/deliveries/replay",
           "POST /webhooks/v1/registrations/{uuid}/test"]


def generate_link(server, receiver: str, access_tag: str, webhook_tag: str, env: str) -> dict:
    response = requests.post(server.url + "/webhooks/v1/generate-link", timeout=30,
                             headers={"Authorization": f"Bearer {server.access_key}"},
                             json={"product": PRODUCT, "access_tag": access_tag, "webhook_tag": webhook_tag,
                                   "env": env, "url": f"{receiver}/fuzz/{webhook_tag}", "method": "POST"})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def operation_of(method: str, path: str, templates: list[tuple[str, str]]) -> str | None:
    for template_method, template in templates:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if method == template_method and re.match(pattern, path):
            return f"{template_method} {template}"
    return None


def answers_by_operation(har_path: Path, schema: dict) -> dict[str, Counter]:
    """Per operation of the schema: how many recorded cases answered each status."""
    templates = [(method.upper(), path) for path, operations in schema["paths"].items() for method in operations]
    counted = {f"{method} {path}": Counter() for method, path in templates}
    for entry in json.loads(har_path.read_text(encoding="utf-8"))["log"]["entries"]:
        url = entry["request"]["url"].split("?", 1)[0]
        path = "/" + url.split("://", 1)[1].split("/", 1)[1] if "://" in url else url
        operation = operation_of(entry["request"]["method"].upper(), path, templates)
        if operation is not None:
            counted[operation][entry["response"]["status"]] += 1
    return counted


def test_fuzzing_the_schema_finds_no_server_error_and_no_schema_break(tmp_path):
    with ClosedPort() as closed, harness.local_server(test_mode=False) as server:
        links = [generate_link(server, closed.url, *where) for where in LINKS]
        to_delete = [generate_link(server, closed.url, *where) for where in TO_DELETE]
        event_ids = []
        for number in range(EVENTS):
            accepted = requests.post(links[0]["link"], json={"fuzz": number}, timeout=30)
            assert accepted.status_code == 202, accepted.text
            event_ids.append(accepted.json()["data"]["event_id"])
        schema = requests.get(server.url + "/openapi.json", timeout=30).json()
        har_path = tmp_path / "cases.har"
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
               "FUZZ_RECEIVER": f"127.0.0.1:{closed.port}",
               "FUZZ_LINK_UUIDS": ",".join(link["uuid"] for link in links),
               "FUZZ_DELETE_UUIDS": ",".join(link["uuid"] for link in to_delete),
               "FUZZ_EVENT_IDS": ",".join(event_ids)}
        command = [
            str(SCHEMATHESIS), "run", server.url + "/openapi.json",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", str(MAX_EXAMPLES),
            "--seed", "20261129",
            "--workers", "1",
            "--generation-database", "none",
            "--request-timeout", "10",
            "--header", f"Authorization: Bearer {server.access_key}",
            "--no-color",
            "--output-sanitize", "true",
            "--report", "har", "--report-har-path", str(har_path),
        ]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
        output = result.stdout + result.stderr
        harness.record_output("schemathesis", output)
        (harness.OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
        (harness.OUTPUT_DIR / "schemathesis.log").write_text(output, encoding="utf-8")
        assert result.returncode == 0, output[-6000:]

        counts = re.search(r"(\d+) generated, (\d+) passed", output)
        assert counts, output[-3000:]
        generated, passed = int(counts[1]), int(counts[2])
        assert generated == passed
        operations = re.search(r"Tested: (\d+)", output)
        assert operations and int(operations[1]) == len(answers_by_operation(har_path, schema)), output[-3000:]
        answers = answers_by_operation(har_path, schema)
        # Every operation was exercised past the 404 of an unknown product, uuid or event.
        only_404 = sorted(operation for operation, counted in answers.items() if set(counted) <= {404})
        assert not only_404, f"these operations answered 404 to every case: {only_404}"
        never_2xx = [operation for operation in SUCCEED if not any(200 <= status < 300 for status in answers[operation])]
        assert not never_2xx, f"these operations never succeeded: {[(op, dict(answers[op])) for op in never_2xx]}"
        stored = harness.stored_rows(server)
        fuzzed = [row for row in stored if "/fuzz/" not in row["url"]]
        assert fuzzed, "no fuzzed registration was ever stored: the hooks did not reach the store"
        assert all(urlhost == f"127.0.0.1:{closed.port}" for urlhost in
                   (re.match(r"https?://([^/?#]*)", row["url"])[1] for row in stored)), \
            "a fuzzed registration points outside this machine"
        assert "internal error" not in server.log_text()
    harness.figure("fuzz cases", generated)
    harness.figure("fuzz operations", len(answers))
    harness.figure("fuzz operations answering other than 404", len(answers) - len(only_404))
    harness.DETAILS["fuzz answers per operation"] = [
        f"{operation}: {sum(counted.values()) - counted[404]} of {sum(counted.values())} answered other than 404 "
        f"({', '.join(f'{status}: {n}' for status, n in sorted(counted.items()))})"
        for operation, counted in sorted(answers.items())]
    harness.FIGURES["fuzz registrations stored"] = len(stored)
