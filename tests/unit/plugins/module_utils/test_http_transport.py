"""The client's transport (module_utils/_http.py) over real sockets on 127.0.0.1: keep-alive, a
connection the server closed, refusals, timeouts, proxies, TLS, redirects, and no third-party library."""
from __future__ import annotations

import base64
import collections
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading

import pytest

from ansible_collections.ductape.webhooks.plugins.module_utils import _http
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import DuctapeApiError, DuctapeClient
from ansible_collections.ductape.webhooks.tests.reliability.stub_servers import ClosedPort, pump, self_signed_certificate

KEY = "dtl_transport_test_key"
# One request as the recording server got it.
Seen = collections.namedtuple("Seen", "method path headers body")
ENVELOPE = json.dumps({"status": True, "meta": {"next_cursor": None}, "data": []}).encode()


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with an empty listing in the envelope; records what it got."""

    protocol_version = "HTTP/1.1"
    server: "Server"

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.requests.append(Seen(self.command, self.path, dict(self.headers), body))
        behaviour = self.server.behaviour
        if behaviour == "hang":
            self.server.release.wait(5)
            return
        if behaviour == "redirect":
            self.send_response(301)
            self.send_header("Location", "https://user:s3cret@elsewhere.test/api")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ENVELOPE)))
        self.end_headers()
        self.wfile.write(ENVELOPE)
        if behaviour == "close-after-answer":
            # Closes the kept-alive connection without saying so, as a server's idle timeout does.
            self.wfile.flush()
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _answer


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour="answer", handler=Recorder):
        super().__init__(("127.0.0.1", 0), handler)
        self.behaviour = behaviour
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list = []
        self.release = threading.Event()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.shutdown()
        self.server_close()


def test_requests_reuse_one_kept_alive_connection():
    with Server() as server:
        session = _http.Session()
        for _round in range(3):
            response = session.request("GET", server.url + "/webhooks/v1/webhooks", params={"product": "shop", "x": None})
            assert response.status_code == 200 and response.json()["data"] == []
        assert server.connections == 1
        assert [seen.path for seen in server.requests] == ["/webhooks/v1/webhooks?product=shop"] * 3


def test_a_connection_the_server_closed_while_idle_is_replaced_not_reported():
    with Server("close-after-answer") as server:
        session = _http.Session()
        for _round in range(3):
            assert session.request("POST", server.url + "/x", json={"a": "é"}).status_code == 200
        assert server.connections == 3
        assert [json.loads(seen.body) for seen in server.requests] == [{"a": "é"}] * 3
        assert server.requests[0].headers["Content-Type"] == "application/json"


def test_concurrent_requests_beyond_the_pool_all_succeed_and_idle_ones_are_capped():
    with Server() as server:
        sender = _http.PooledSender(pool_size=2)
        session = _http.Session(sender=sender)
        results = []

        def call():
            results.append(session.request("GET", server.url + "/y").status_code)

        threads = [threading.Thread(target=call) for _thread in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert results == [200] * 8
        assert all(len(idle) <= 2 for idle in sender._idle.values())


def test_a_refused_connection_is_connect_failed_with_its_cause_and_the_client_says_refused():
    with ClosedPort() as closed:
        url = closed.url
        with pytest.raises(_http.ConnectFailed) as raised:
            _http.Session().request("GET", url + "/z")
        assert isinstance(raised.value.__cause__, ConnectionRefusedError)
        warnings, sleeps = [], []
        client = DuctapeClient(url, KEY, retries=0, warn=warnings.append, sleep=sleeps.append)
        with pytest.raises(DuctapeApiError) as failed:
            client.list_webhooks("shop", "stripe")
        assert "(connection refused); check the api_url option" in str(failed.value), str(failed.value)
        assert failed.value.status is None


def test_an_answer_that_does_not_come_is_a_read_timeout_naming_the_timeout():
    with Server("hang") as server:
        with pytest.raises(_http.ReadTimeout):
            _http.Session().request("GET", server.url + "/slow", timeout=0.3)
        client = DuctapeClient(server.url, KEY, retries=0, timeout=0.3)
        with pytest.raises(DuctapeApiError) as failed:
            client.list_webhooks("shop", "stripe")
        assert "did not answer within the timeout of 0.3 s" in str(failed.value), str(failed.value)


def test_a_name_that_does_not_resolve_says_so():
    client = DuctapeClient("http://no-such-host.invalid", KEY, retries=0)
    with pytest.raises(DuctapeApiError) as failed:
        client.list_webhooks("shop", "stripe")
    assert "the host name does not resolve" in str(failed.value), str(failed.value)


def test_a_redirect_is_not_followed_and_the_error_names_where_masked():
    with Server("redirect") as server:
        client = DuctapeClient(server.url, KEY, retries=0, api_url_option="ductape_api_url")
        with pytest.raises(DuctapeApiError) as failed:
            client.register("shop", "stripe", "paid", [{"slug": "prd", "url": "https://r.test/x", "method": "POST"}])
        message = str(failed.value)
        assert "answered HTTP 301, a redirect to" in message and "elsewhere.test/api" in message, message
        assert "s3cret" not in message and "set ductape_api_url to the address" in message
        assert len(server.requests) == 1, "not sent again anywhere"


def test_an_http_proxy_from_the_environment_gets_the_absolute_url_and_its_credentials():
    with Server() as proxy:
        environ = {"http_proxy": f"http://pxuser:px%40pass@127.0.0.1:{proxy.server_address[1]}"}
        session = _http.Session(sender=_http.PooledSender(environ=environ))
        assert session.request("GET", "http://api.ductape.test:4311/webhooks/v1/webhooks").status_code == 200
        [seen] = proxy.requests
        assert seen.path == "http://api.ductape.test:4311/webhooks/v1/webhooks"
        assert seen.headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"pxuser:px@pass").decode()


def test_no_proxy_sends_straight_to_the_host():
    with Server() as server, Server() as proxy:
        environ = {"http_proxy": proxy.url, "no_proxy": "127.0.0.1,localhost"}
        session = _http.Session(sender=_http.PooledSender(environ=environ))
        assert session.request("GET", server.url + "/direct").status_code == 200
        assert proxy.requests == [] and len(server.requests) == 1


def test_proxy_variables_are_read_as_urllib_reads_them():
    assert _http.proxies_from({"HTTPS_PROXY": "http://a:1", "https_proxy": "http://b:2"})["https"] == "http://b:2"
    assert "http" not in _http.proxies_from({"HTTP_PROXY": "http://a:1", "REQUEST_METHOD": "GET"})
    assert _http.proxies_from({"ALL_PROXY": "http://c:3", "EMPTY_PROXY": ""}) == {"all": "http://c:3"}
    with pytest.raises(_http.ConnectFailed, match="must be an http:// proxy"):
        _http.Session(sender=_http.PooledSender(environ={"https_proxy": "socks5://s:1"})).request(
            "GET", "https://api.ductape.test/")


class TLSServer(Server):
    def __init__(self, cert_file, key_file):
        super().__init__()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.server_address[1]


def test_tls_verifies_against_the_trust_store_or_the_named_bundle_and_can_be_turned_off(tmp_path):
    cert_file, key_file = self_signed_certificate(tmp_path)
    with TLSServer(cert_file, key_file) as server:
        client = DuctapeClient(server.url, KEY, retries=0)
        with pytest.raises(DuctapeApiError) as failed:
            client.list_webhooks("shop", "stripe")
        assert "the TLS connection to %s failed" % server.url in str(failed.value), str(failed.value)

        insecure = DuctapeClient(server.url, KEY, retries=0, validate_certs=False)
        assert insecure.list_webhooks("shop", "stripe") == ([], None)

        bundled = _http.Session(sender=_http.PooledSender(environ={"REQUESTS_CA_BUNDLE": str(cert_file)}))
        assert bundled.request("GET", server.url + "/trusted").status_code == 200


def test_https_through_a_proxy_tunnels_with_connect(tmp_path):
    cert_file, key_file = self_signed_certificate(tmp_path)
    tunnels = []

    class Tunnel(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_CONNECT(self):
            tunnels.append((self.path, self.headers.get("Proxy-Authorization")))
            host, port = self.path.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            self.send_response(200)
            self.end_headers()
            self.wfile.flush()
            other = threading.Thread(target=pump, args=(upstream, self.connection), daemon=True)
            other.start()
            pump(self.connection, upstream)
            other.join(5)
            self.close_connection = True

    with TLSServer(cert_file, key_file) as server, Server(handler=Tunnel) as proxy:
        environ = {"https_proxy": "http://u:p@127.0.0.1:%d" % proxy.server_address[1], "no_proxy": ""}
        sender = _http.PooledSender(environ=dict(environ, REQUESTS_CA_BUNDLE=str(cert_file)))
        assert _http.Session(sender=sender).request("GET", server.url + "/through").status_code == 200
        assert tunnels == [("127.0.0.1:%d" % server.server_address[1], "Basic " + base64.b64encode(b"u:p").decode())]


def test_the_client_needs_no_library_beyond_the_standard_library_and_ansible(tmp_path):
    """requests and urllib3 made unimportable: the client still lists over real HTTP."""
    with Server() as server:
        script = (
            "import sys\n"
            "for name in ('requests', 'urllib3', 'certifi', 'charset_normalizer', 'idna'):\n"
            "    sys.modules[name] = None\n"
            "from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import DuctapeClient\n"
            "print(DuctapeClient(sys.argv[1], 'dtl_transport_test_key', retries=0).list_webhooks('shop', 'stripe'))\n"
        )
        completed = subprocess.run([sys.executable, "-c", script, server.url], capture_output=True, text=True,
                                   env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), timeout=60, check=False)
        assert completed.returncode == 0, completed.stderr[-2000:]
        assert completed.stdout.strip() == "([], None)"
        assert len(server.requests) == 1


class ClosesAtOnce(http.server.BaseHTTPRequestHandler):
    """Reads the request, then closes the connection without a status line."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.close_connection = True


def test_a_server_that_closes_without_answering_is_named_as_such_not_by_an_exception_type():
    with Server(handler=ClosesAtOnce) as server:
        client = DuctapeClient(server.url, KEY, retries=0)
        with pytest.raises(DuctapeApiError) as failed:
            client.list_webhooks("shop", "stripe")
        assert "(the server closed the connection before it answered)" in str(failed.value), str(failed.value)
