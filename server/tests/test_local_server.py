"""LocalServer itself: start, stop, restart, kill, log capture, extra CLI flags."""
from __future__ import annotations

import requests

from conftest import Api, data_of
from ductape_local.testing import LocalServer


def test_local_server_starts_serves_and_cleans_up():
    with LocalServer(public_url="http://hooks.example.test") as server:
        workdir, process = server.workdir, server.process
        registration = data_of(Api(server).register())["envs"][0]
        assert registration["link"] == f"http://hooks.example.test/webhooks/v1/process/{registration['uuid']}"
        assert "--public-url" in server.command()
        assert "POST /webhooks/v1/register" in server.log_text()
    assert process.poll() is not None
    assert not workdir.exists()


def test_kill_then_start_keeps_port_and_database():
    with LocalServer() as server:
        api = Api(server)
        uuid = data_of(api.register())["envs"][0]["uuid"]
        server.kill()
        try:
            requests.get(server.url + "/openapi.json", timeout=2)
            raise AssertionError("a killed server still answered")
        except requests.ConnectionError:
            pass
        server.start()
        config = data_of(api.webhooks())
        assert [r["uuid"] for w in config for r in w["config"]] == [uuid]


def test_a_taken_port_on_first_start_moves_to_another_one():
    import socket

    server = LocalServer()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", server.port))
        squatter.listen()
        taken = server.port
        with server:
            assert server.port != taken
            assert requests.get(server.url + "/openapi.json", timeout=10).status_code == 200
