"""Receiver urls: never this relay's own ingress (any spelling), and with --block-private-destinations
never a loopback, link-local, private or reserved address (contract C3), refused at registration."""
from __future__ import annotations

import pytest

from conftest import CLOSED_URL, PRODUCT, STRIPE, Api, data_of, error_of, shared_seed
from ductape_local.destinations import check_destination, check_self_loop
from ductape_local.testing import LocalServer

PORT = 4311
LISTEN = [("127.0.0.1", PORT), ("hooks.example.test", 443)]
PATH = "/webhooks/v1/process/0b6f1f3e-1111-4222-8333-444455556666"


def loop_spellings(port: int) -> list[str]:
    hosts = ["127.0.0.1", "LOCALHOST", "localhost.", "LocalHost.", "127.1", "127.0.1", "2130706433", "0x7f000001",
             "0x7F.0.0.1", "0177.0.0.1", "017700000001", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
             "[0:0:0:0:0:0:0:1]", "127.0.0.2", "0.0.0.0", "sub.localhost", "user:pw@127.0.0.1"]
    paths = [PATH, "/WEBHOOKS/v1/Process/x", "/webhooks/v1/%70rocess/x", "/webhooks/v1/%2570rocess/x",
             "//webhooks//v1/process/x", "/a/../webhooks/v1/./process/x", "/prefix/webhooks/v1/process/x"]
    urls = [f"http://{host}:{port}{PATH}" for host in hosts]
    urls += [f"http://127.0.0.1:{port}{path}" for path in paths]
    urls += [f"HTTP://127.0.0.1:{port}{PATH}?x=1#f", f"http://127.0.0.1:0{port}{PATH}"]
    return urls


PUBLIC_SPELLINGS = ["https://hooks.example.test" + PATH, "https://HOOKS.example.TEST." + PATH,
                    "https://hooks.example.test:443" + PATH, "https://u:secretpw@hooks.example.test" + PATH]


@pytest.mark.parametrize("url", loop_spellings(PORT) + PUBLIC_SPELLINGS)
def test_self_loop_is_refused_in_every_spelling(url):
    reason = check_self_loop(url, LISTEN)
    assert reason is not None and "deliver to itself" in reason
    assert "secretpw" not in reason and "pw@" not in reason


@pytest.mark.parametrize("url", [
    f"http://127.0.0.1:{PORT + 1}{PATH}",             # another port: another program
    f"http://127.0.0.1:{PORT}/hooks/a",               # this relay, but not its ingress
    f"https://hooks.example.test:8443{PATH}",
    f"https://other.example.test{PATH}",
    f"http://10.1.2.3:{PORT}{PATH}",
])
def test_other_receivers_are_not_loops(url):
    assert check_self_loop(url, LISTEN) is None


def test_a_wildcard_listener_is_every_local_address():
    assert check_self_loop(f"http://127.0.0.1:{PORT}{PATH}", [("0.0.0.0", PORT)]) is not None
    assert check_self_loop(f"http://[::1]:{PORT}{PATH}", [("::", PORT)]) is not None


PRIVATE = ["http://127.0.0.1/h", "http://localhost:8080/h", "http://LOCALHOST./h", "http://127.1/h",
           "http://2130706433/h", "http://0x7f000001/h", "http://[::1]/h", "http://[::ffff:127.0.0.1]/h",
           "http://169.254.169.254/latest/meta-data", "http://0xa9fea9fe/", "http://[fe80::1]/h",
           "http://10.0.0.1/h", "http://10.255.255.255/h", "http://172.16.0.1/h", "http://172.31.255.1/h",
           "http://192.168.1.1/h", "http://[fc00::1]/h", "http://[fd12:3456::1]/h", "http://0.0.0.0/h",
           "http://[::]/h", "http://224.0.0.1/h", "http://[ff02::1]/h", "http://100.64.0.1/h",
           "http://[::ffff:10.0.0.1]/h", "http://[64:ff9b::a00:1]/h", "http://[2002:a00:1::]/h",
           "https://user:hunter2@10.0.0.7/h?token=hunter3"]


@pytest.mark.parametrize("url", PRIVATE)
def test_the_policy_refuses_private_destinations(url):
    reason = check_destination(url, True)
    assert reason is not None and "--block-private-destinations" in reason
    assert "hunter2" not in reason and "hunter3" not in reason
    assert check_destination(url, False) is None  # off by default: loopback stays usable


@pytest.mark.parametrize("url", ["http://8.8.8.8/h", "https://[2001:4860:4860::8888]/h", "http://172.32.0.1/h",
                                 "http://1.1.1.1:8443/h"])
def test_the_policy_allows_public_addresses(url):
    assert check_destination(url, True) is None


# Over HTTP: refused at registration with 422 naming the url field, url masked, nothing written.

def test_register_refuses_a_link_of_the_relay_itself_naming_the_field(server, tag):
    api = Api(server)
    own_link = data_of(api.generate_link(webhook_tag=tag))["link"]
    port = server.port
    for url in [own_link, own_link.replace("127.0.0.1", "LOCALHOST."), own_link.replace("127.0.0.1", "[::1]"),
                own_link.replace("127.0.0.1", "2130706433"), f"http://u:pw123@127.1:{port}{PATH}"]:
        response = api.register(webhook_tag=tag, envs=[{"slug": "prd", "url": "https://ok.example.com/h"},
                                                       {"slug": "stg", "url": url}])
        message = error_of(response, 422)
        assert message.startswith("envs[1].url: ") and "deliver to itself" in message, message
        assert "pw123" not in message
        response = api.generate_link(webhook_tag=tag, url=url)
        assert error_of(response, 422).startswith("url: ")
    envs = {r["productEnv"] for r in data_of(api.webhooks(webhook_tag=tag))[0]["config"]}
    assert envs == {"dev"}  # the first env of the refused registers was not written


def test_a_public_url_spelling_is_a_loop_too():
    with LocalServer(shared_seed(), public_url="https://Hooks.Example.Test") as server:
        response = Api(server).register(envs=[{"slug": "prd", "url": "https://hooks.example.test." + PATH}])
        assert "deliver to itself" in error_of(response, 422)


def test_block_private_destinations_is_enforced_at_registration():
    with LocalServer(shared_seed(), block_private_destinations=True) as server:
        api = Api(server)
        for url in ["http://169.254.169.254/latest", "http://[::1]:8080/h", "http://user:s3cr3t@10.0.0.1/h",
                    "http://localhost:9/h"]:
            message = error_of(api.register(envs=[{"slug": "prd", "url": url}]), 422)
            assert message.startswith("envs[0].url: ") and "--block-private-destinations" in message
            assert "s3cr3t" not in message
            assert error_of(api.generate_link(url=url), 422).startswith("url: ")
        assert data_of(api.register(envs=[{"slug": "prd", "url": "http://8.8.8.8/h"}]))["envs"][0]["created"]
        assert data_of(api.webhooks(webhook_tag="payment_succeeded"))[0]["config"][0]["url"] == "http://8.8.8.8/h"


def test_loopback_receivers_stay_usable_by_default(api, tag):
    assert data_of(api.register(webhook_tag=tag, envs=[{"slug": "prd", "url": f"{CLOSED_URL}/h"}]))
