"""The README's curl calls, run as printed against `ductape-local serve` with the example seed.

A reader pastes them; each must answer as the contract says. Only the port (the README's 4311 may be
taken here) and the `<uuid>` placeholder of the delete call are replaced.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ductape_local.testing import LocalServer

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:4311"
CONSOLE_BLOCK = re.compile(r"```console\n(.*?)```", re.S)


def readme_commands() -> list[str]:
    """Every `$ ` command of the README's console blocks, continuation lines joined as a shell would."""
    commands = []
    for block in CONSOLE_BLOCK.findall(README.read_text(encoding="utf-8")):
        current = None
        for line in block.splitlines():
            if line.startswith("$ "):
                current = line[2:]
                commands.append(current)
            elif current is not None and line.strip():
                commands[-1] += "\n" + line
    return commands


def curl_commands() -> list[str]:
    return [command for command in readme_commands() if command.startswith("curl ")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if shutil.which("curl") is None:
        pytest.fail("curl is needed to run the README's calls as a reader would; install it (apt install curl)")
    seed = tmp_path_factory.mktemp("readme") / "seed.yml"
    # The README's first command, as printed (only the output path differs).
    [seed_command] = [c for c in readme_commands() if "seed-example" in c]
    assert seed_command.endswith("ductape-local seed-example > /tmp/seed.yml"), seed_command
    with seed.open("w", encoding="utf-8") as out:
        subprocess.run([str(Path(sys.executable).with_name("ductape-local")), "seed-example"], stdout=out, check=True)
    with LocalServer(str(seed), test_mode=False) as running:
        yield running


def run_curl(command: str, server: LocalServer) -> dict:
    command = command.replace(README_URL, server.url.rstrip("/"))
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, (command, done.stderr)
    return json.loads(done.stdout)


def test_the_readme_shows_the_four_calls():
    verbs = [re.search(r"/webhooks/v1/([a-z-]+)", command).group(1) for command in curl_commands()]
    assert verbs == ["register", "generate-link", "webhooks", "registrations"], verbs


def test_each_readme_call_answers_as_the_contract_says(server):
    register, generate_link, listing, delete = curl_commands()

    first = run_curl(register, server)
    assert first["status"] is True, first
    envs = {env["productEnv"]: env for env in first["data"]["envs"]}
    assert sorted(envs) == ["prd", "stg"] and all(env["changed"] for env in envs.values()), first
    assert envs["prd"]["auth"] == {"headers": {"Stripe-Signature-Secret": "********"}}
    assert envs["prd"]["auth_digest"].startswith("hmac-sha256:")
    assert envs["prd"]["link"].endswith("/webhooks/v1/process/" + envs["prd"]["uuid"])
    again = run_curl(register, server)
    assert [env["changed"] for env in again["data"]["envs"]] == [False, False], again
    assert "whsec_example" not in json.dumps(again)

    link = run_curl(generate_link, server)
    assert link["status"] is True and link["data"]["productEnv"] == "dev", link
    assert link["data"]["link"].endswith("/webhooks/v1/process/" + link["data"]["uuid"])

    listed = run_curl(listing, server)
    assert listed["status"] is True and "next_cursor" in listed["meta"], listed
    [webhook] = [w for w in listed["data"] if w["tag"] == "payment_succeeded"]
    assert {r["productEnv"]: r["uuid"] for r in webhook["config"]} == {s: e["uuid"] for s, e in envs.items()}
    assert "whsec_example" not in json.dumps(listed)

    assert "<uuid>" in delete
    removed = run_curl(delete.replace("<uuid>", envs["stg"]["uuid"]), server)
    assert removed["status"] is True and removed["data"]["uuid"] == envs["stg"]["uuid"], removed
    after = run_curl(listing, server)
    [webhook] = [w for w in after["data"] if w["tag"] == "payment_succeeded"]
    assert [r["productEnv"] for r in webhook["config"]] == ["prd"], webhook
