"""Simultaneous registers of the same key leave one registration holding one request's body whole."""
from __future__ import annotations

import threading

from conftest import Api, live_registrations
from ductape_local.testing import LocalServer

WRITERS = 16


def body_for(i: int) -> dict:
    return {"slug": "prd", "url": f"https://writer-{i}.example.com/hook",
            "method": ["POST", "PUT", "PATCH"][i % 3], "auth": {"headers": {"X-Writer": f"secret-{i}"}}}


def test_racing_registers_leave_exactly_one_whole_registration():
    with LocalServer() as server:
        api = Api(server)
        start = threading.Barrier(WRITERS)
        answers: dict[int, dict] = {}

        def write(i: int) -> None:
            start.wait()
            response = api.register(envs=[body_for(i)])
            answers[i] = response.json()

        for _round in range(3):
            threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert all(answer["status"] is True for answer in answers.values()), answers

            [stored] = live_registrations(api)
            digests = {answer["data"]["envs"][0]["auth_digest"]: i for i, answer in answers.items()}
            assert stored["auth_digest"] in digests
            writer = digests[stored["auth_digest"]]
            assert (stored["url"], stored["method"]) == (body_for(writer)["url"], body_for(writer)["method"])
            uuids = {answer["data"]["envs"][0]["uuid"] for answer in answers.values()}
            assert uuids == {stored["uuid"]}
            created = [i for i, answer in answers.items() if answer["data"]["envs"][0]["created"]]
            assert len(created) == (1 if _round == 0 else 0)
