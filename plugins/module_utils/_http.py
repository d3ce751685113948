# -*- coding: utf-8 -*-
# Copyright (c) ductape.webhooks contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The HTTP transport of the Ductape client, on the standard library alone (private to the collection).

``Session.request`` prepares a request (query string, JSON body, headers) and hands it to a sender; the
default sender, ``PooledSender``, keeps connections alive in a pool shared by the client's threads,
goes through the proxy that ``https_proxy`` / ``http_proxy`` / ``all_proxy`` name (``no_proxy``
honoured, HTTP CONNECT for https), and verifies certificates against the system's trust store (or
the file that ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` names, as before this transport). Redirects
are not followed: an API client that silently re-sends a POST elsewhere hides a wrong api_url.

Every failure before an answer is one of four ``TransportError`` kinds, so the client decides its retries
and messages on kinds, not on a library's exception tree: ``ConnectTimeout``, ``ConnectFailed`` (refused,
name not resolved, reset, closed early), ``ReadTimeout`` and ``TLSError``. The original error is the
cause (``__cause__``) for the client's reason finder.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import base64
import json
import os
import select
import socket
import ssl
import threading

import http.client as http_client
from urllib.parse import unquote, urlencode, urlsplit
from urllib.request import proxy_bypass_environment

DEFAULT_PORTS = {"http": 80, "https": 443}
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
# Errors that mean "the connection is gone", on sending or before the status line.
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, http_client.RemoteDisconnected)


class TransportError(Exception):
    """No answer: the request did not reach the server, or its answer did not come back whole."""


class ConnectTimeout(TransportError):
    """No connection within the timeout."""


class ConnectFailed(TransportError):
    """The connection was refused, the name did not resolve, or the connection broke."""


class ReadTimeout(TransportError):
    """Connected, but the answer did not come within the timeout."""


class TLSError(TransportError):
    """The TLS handshake failed (for example a certificate that does not verify)."""


class Headers:
    """An answer's headers, read case-insensitively (the last of repeated ones wins, as in a dict)."""

    def __init__(self, pairs=()):
        self._items = {}
        for name, value in pairs:
            self._items[name.lower()] = (name, value)

    def get(self, name, default=None):
        item = self._items.get(name.lower())
        return item[1] if item else default

    def __getitem__(self, name):
        return self._items[name.lower()][1]

    def __contains__(self, name):
        return name.lower() in self._items

    def items(self):
        return list(self._items.values())


class Response:
    """A whole answer: status, reason, headers, body bytes."""

    def __init__(self, status_code, reason, headers, content):
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.content = content

    def json(self):
        """The body as JSON; ValueError when it is not."""
        if not self.content:
            raise ValueError("an empty body is not JSON")
        return json.loads(self.content.decode("utf-8") if isinstance(self.content, bytes) else self.content)

    @property
    def text(self):
        charset = "utf-8"
        for parameter in (self.headers.get("Content-Type") or "").split(";")[1:]:
            name, value = parameter.strip().partition("=")[::2]
            if name.lower() == "charset" and value:
                charset = value.strip("\"'")
        try:
            return self.content.decode(charset, "replace")
        except LookupError:
            return self.content.decode("utf-8", "replace")


class PreparedRequest:
    """What goes on the wire: method, the full URL with its query, headers, body bytes, and how to send it."""

    def __init__(self, method, url, headers, body, timeout, verify):
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.verify = verify


def prepare(method, url, params=None, json_body=None, headers=None, timeout=None, verify=True):
    """The request ``Session.request`` sends: ``params`` as the query (None values left out), ``json_body``
    as compact UTF-8 JSON with its Content-Type."""
    headers = dict(headers or {})
    if params:
        query = urlencode([(name, value) for name, value in params.items() if value is not None], doseq=True)
        if query:
            url = url + ("&" if "?" in url else "?") + query
    body = None
    if json_body is not None:
        body = json.dumps(json_body, allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers["Content-Type"] = "application/json"
    return PreparedRequest(method.upper(), url, headers, body, timeout, verify)


class Session:
    """Headers sent with every request (``headers``) and a sender (``PooledSender`` unless given)."""

    def __init__(self, pool_size=1, sender=None):
        self.headers = {}
        self.sender = sender if sender is not None else PooledSender(pool_size)

    def request(self, method, url, params=None, json=None, timeout=None, verify=True, headers=None):  # pylint: disable=redefined-outer-name
        merged = dict(self.headers)
        merged.update(headers or {})
        return self.sender.send(prepare(method, url, params, json, merged, timeout, verify))

    def close(self):
        close = getattr(self.sender, "close", None)
        if close is not None:
            close()


def proxies_from(environ):
    """The proxies that ``<scheme>_proxy`` variables name, as urllib reads them: the lower-case spelling
    wins, and HTTP_PROXY is ignored when REQUEST_METHOD says the process serves CGI (httpoxy)."""
    proxies = {}
    for upper_first in (True, False):
        for name, value in environ.items():
            if value and name.lower().endswith("_proxy") and (name != name.lower()) == upper_first:
                proxies[name.lower()[:-len("_proxy")]] = value
    if "REQUEST_METHOD" in environ and environ.get("http_proxy") is None:
        proxies.pop("http", None)
    return proxies


def _proxy_for(scheme, host, proxies):
    """(host, port, Proxy-Authorization value or None) of the proxy for ``scheme://host``, or None."""
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or proxy_bypass_environment(host, proxies):
        return None
    parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
    if parts.scheme != "http" or not parts.hostname:
        raise ConnectFailed("the proxy for %s:// URLs must be an http:// proxy with a host (the %s_proxy variable)"
                            % (scheme, scheme))
    authorization = None
    if parts.username is not None:
        pair = "%s:%s" % (unquote(parts.username), unquote(parts.password or ""))
        authorization = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    return parts.hostname, parts.port or 80, authorization


class PooledSender:
    """Sends prepared requests over kept-alive connections, at most ``pool_size`` idle per destination.

    Thread-safe: a connection serves one request at a time; a thread that finds none idle opens one.
    A kept-alive connection that the server closed meanwhile is noticed before it is used (readable
    while idle) or, if the server closed it while the request was on its way, the request is sent once
    more on a new connection; a new connection that fails is never re-sent here (the client decides).
    """

    def __init__(self, pool_size=1, environ=None):
        self._pool_size = max(1, int(pool_size))
        self._environ = os.environ if environ is None else environ
        self._proxies = proxies_from(self._environ)
        self._lock = threading.Lock()
        self._idle = {}
        self._contexts = {}

    def close(self):
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _context(self, verify):
        with self._lock:
            context = self._contexts.get(verify)
            if context is None:
                if verify:
                    cafile = next((self._environ[name] for name in CA_BUNDLE_VARIABLES if self._environ.get(name)), None)
                    context = ssl.create_default_context(cafile=cafile)
                else:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                self._contexts[verify] = context
            return context

    def _checkout(self, key):
        with self._lock:
            connections = self._idle.get(key)
            while connections:
                connection = connections.pop()
                if connection.sock is not None and not _closed_by_peer(connection.sock):
                    return connection
                connection.close()
        return None

    def _checkin(self, key, connection):
        with self._lock:
            connections = self._idle.setdefault(key, [])
            if len(connections) < self._pool_size:
                connections.append(connection)
                return
        connection.close()

    def _new_connection(self, scheme, host, port, proxy, request):
        timeout = request.timeout
        if proxy is None:
            if scheme == "https":
                return http_client.HTTPSConnection(host, port, timeout=timeout, context=self._context(request.verify))
            return http_client.HTTPConnection(host, port, timeout=timeout)
        proxy_host, proxy_port, authorization = proxy
        if scheme == "https":
            connection = http_client.HTTPSConnection(proxy_host, proxy_port, timeout=timeout,
                                                     context=self._context(request.verify))
            connection.set_tunnel(host, port, headers={"Proxy-Authorization": authorization} if authorization else None)
            return connection
        return http_client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)

    def send(self, request):
        parts = urlsplit(request.url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ConnectFailed("not an http:// or https:// URL with a host")
        host, port = parts.hostname, parts.port or DEFAULT_PORTS[scheme]
        proxy = _proxy_for(scheme, host, self._proxies)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        headers = dict(request.headers)
        if proxy is not None and scheme == "http":
            target = request.url.split("#", 1)[0]  # an http proxy takes the absolute URL
            if proxy[2]:
                headers["Proxy-Authorization"] = proxy[2]
        key = (scheme, host, port, proxy, bool(request.verify))
        connection = self._checkout(key)
        if connection is not None:
            connection.timeout = request.timeout
            if connection.sock is not None:
                connection.sock.settimeout(request.timeout)
            try:
                return self._exchange(key, connection, request, target, headers)
            except _Gone:
                pass  # the server closed the kept-alive connection: once more on a new one
        connection = self._new_connection(scheme, host, port, proxy, request)
        try:
            connection.connect()
        except socket.timeout as error:
            connection.close()
            raise _chained(ConnectTimeout("no connection within the timeout"), error)
        except (ssl.SSLError, ssl.CertificateError) as error:
            connection.close()
            raise _chained(TLSError("the TLS handshake failed: %s" % (getattr(error, "reason", None) or error)), error)
        except (OSError, http_client.HTTPException) as error:
            connection.close()
            raise _chained(ConnectFailed("the connection failed: %s" % error), error)
        try:
            return self._exchange(key, connection, request, target, headers)
        except _Gone as gone:
            raise _chained(ConnectFailed("the server closed the connection before it answered"), gone.error)

    def _exchange(self, key, connection, request, target, headers):
        """One request and its whole answer on ``connection``; _Gone when the connection was found closed
        before any of the answer arrived."""
        try:
            connection.request(request.method, target, body=request.body, headers=headers)
            answer = connection.getresponse()
        except socket.timeout as error:
            connection.close()
            raise _chained(ReadTimeout("no answer within the timeout"), error)
        except _GONE as error:
            connection.close()
            raise _Gone(error)
        except (OSError, http_client.HTTPException) as error:
            connection.close()
            raise _chained(ConnectFailed("the connection failed: %s" % error), error)
        try:
            content = answer.read()
        except socket.timeout as error:
            connection.close()
            raise _chained(ReadTimeout("the answer did not arrive whole within the timeout"), error)
        except (OSError, http_client.HTTPException) as error:
            connection.close()
            raise _chained(ConnectFailed("the connection broke during the answer: %s" % error), error)
        response = Response(answer.status, answer.reason, Headers(answer.getheaders()), content)
        if answer.will_close:
            connection.close()
        else:
            self._checkin(key, connection)
        return response


class _Gone(Exception):
    def __init__(self, error):
        super(_Gone, self).__init__(str(error))
        self.error = error


def _chained(error, cause):
    error.__cause__ = cause
    return error


def _closed_by_peer(sock):
    """An idle kept-alive socket that is readable has been closed by the server (or sent garbage)."""
    try:
        readable = select.select([sock], [], [], 0)[0]
    except (OSError, ValueError):
        return True
    return bool(readable)
