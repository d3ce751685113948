"""ductape-local under schemathesis: every operation of its OpenAPI schema, fuzzed within a bound,
answers no 5xx and nothing that breaks its own schema.

The server runs without --test-mode, as a user runs it. The hooks (schemathesis_hooks.py) send the
seed's real tags half the time, so the fuzzer reaches storage and listing, not only the 404 of an
unknown product.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import reliability_harness as harness

HERE = Path(__file__).resolve().parent
SCHEMATHESIS = Path(sys.executable).with_name("st")
MAX_EXAMPLES = 50
RUN_TIMEOUT = 150  # a bound on the whole run; the examples count bounds it long before


def test_fuzzing_the_schema_finds_no_server_error_and_no_schema_break(tmp_path):
    with harness.local_server(test_mode=False) as server:
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
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
        # Every operation was exercised, and the fuzzer did get past the unknown-product 404.
        operations = re.search(r"Tested: (\d+)", output)
        assert operations and int(operations[1]) >= 10, output[-3000:]
        stored = harness.stored_rows(server)
        assert stored, "no fuzzed registration was ever stored: the hooks did not reach the store"
        assert all(urlhost == "127.0.0.1:9" for urlhost in
                   (re.match(r"https?://([^/?#]*)", row["url"])[1] for row in stored)), \
            "a fuzzed registration points outside this machine"
        harness.figure("fuzz cases", generated)
        harness.FIGURES["fuzz registrations stored"] = len(stored)
        assert "internal error" not in server.log_text()
