# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP client of the collection: every route of the Ductape webhook contract is named here.

It owns the base URL, the credentials (``_Credentials``: the header, and the hook that exchanges the
access key for a session token), the response envelope, pagination, retries with backoff and the
shape of every error message. When the hosted wire format differs from the contract in docs
(ductape-api.md), this file is the one place to adapt.

What the hosted Ductape is known to answer is less than ductape-local's own shapes, and this client
takes both: generate-link's ``data`` as the link string or as a registration; listing rows without
``auth_digest``, timestamps or provider status (``auth_matches`` is then None: unknown, and the
``auth_unknown`` option says what the engine does); one page without a cursor. Every route beyond
the contract's three is this project's extension: its methods call ``_call(..., extension=True)``,
and a server that does not offer the route gets an error saying so (``not_offered``), told apart
from a 404 about the uuid or event asked for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import email.utils
import errno
import hashlib
import hmac
import json
import random
import socket
import threading
import time

from ansible.module_utils.basic import env_fallback
from urllib.parse import quote

from ansible_collections.ductape.webhooks.plugins.module_utils import _http
from ansible_collections.ductape.webhooks.plugins.module_utils._rules import (
    AUTH_PARTS,
    HTTP_METHODS,
    MASK,
    access_key_problems,
    api_url_problems,
    mask_url,
    mask_urls_in_text,
)

__all__ = ["AUTH_HEADERS", "AUTH_PARTS", "AUTH_UNKNOWN_CHOICES", "HTTP_METHODS", "MASK", "TOKEN_EXCHANGES",
           "DuctapeApiError", "DuctapeClient", "auth_digest", "auth_matches", "client_for",
           "connection_argument_spec", "link_uuid", "url_matches"]

DEFAULT_API_URL = "https://api.ductape.app"

# The server's largest page: fewer round trips when an app defines many webhooks.
PAGE_SIZE = 250
RETRYABLE_STATUSES = frozenset((429, 502, 503, 504))
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0
# A server asking for a longer pause than this is waited for this long, not longer: a playbook
# that silently sleeps for an hour looks hung.
RETRY_AFTER_CAP_SECONDS = 60.0
# A refused connection means nothing listens there: one retry after BACKOFF_BASE_SECONDS covers a
# server that is restarting, more only make a down server take longer to report.
REFUSED_RETRIES = 1

# The contract's routes, and nothing else, live here.
ROUTE_REGISTER = "/webhooks/v1/register"
ROUTE_GENERATE_LINK = "/webhooks/v1/generate-link"
ROUTE_WEBHOOKS = "/webhooks/v1/webhooks"
ROUTE_REGISTRATION = "/webhooks/v1/registrations/{uuid}"
ROUTE_DELIVERIES = "/webhooks/v1/deliveries"
ROUTE_DELIVERY = "/webhooks/v1/deliveries/{event_id}"
ROUTE_DELIVERY_SUMMARY = "/webhooks/v1/deliveries/summary"
# The lifecycle routes (issue 13), our extension.
ROUTE_DISABLE = "/webhooks/v1/registrations/{uuid}/disable"
ROUTE_ENABLE = "/webhooks/v1/registrations/{uuid}/enable"
ROUTE_ROTATE = "/webhooks/v1/registrations/{uuid}/rotate"
ROUTE_TEST = "/webhooks/v1/registrations/{uuid}/test"
ROUTE_REPLAY = "/webhooks/v1/deliveries/replay"
# Our guess at the hosted exchange of an access key for a session token, as ductape-local's compat
# mode implements it (see _exchange_ductape_local).
ROUTE_SESSION = "/webhooks/v1/session"
LINK_PATH = "/webhooks/v1/process/"

# auth_header: how the credential travels.
AUTH_HEADERS = ("authorization", "x-access-token")
# auth_unknown: what the engine does with an env whose stored auth it cannot compare (no digest).
AUTH_UNKNOWN_CHANGED = "changed"
AUTH_UNKNOWN_SEND = "send"
AUTH_UNKNOWN_CHOICES = (AUTH_UNKNOWN_CHANGED, AUTH_UNKNOWN_SEND)


def connection_argument_spec():
    """The connection options every ductape module takes (documented in doc_fragments/connection.py)."""
    return dict(
        api_url=dict(type="str", default=DEFAULT_API_URL, fallback=(env_fallback, ["DUCTAPE_API_URL"])),
        access_key=dict(type="str", no_log=True, fallback=(env_fallback, ["DUCTAPE_ACCESS_KEY"])),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="float", default=30.0),
        retries=dict(type="int", default=3),
        auth_header=dict(type="str", default="authorization", choices=list(AUTH_HEADERS),
                         fallback=(env_fallback, ["DUCTAPE_AUTH_HEADER"])),
        token_exchange=dict(type="str", default="none", choices=sorted(TOKEN_EXCHANGES),
                            fallback=(env_fallback, ["DUCTAPE_TOKEN_EXCHANGE"])),
        auth_unknown=dict(type="str", default=AUTH_UNKNOWN_CHANGED, choices=list(AUTH_UNKNOWN_CHOICES),
                          fallback=(env_fallback, ["DUCTAPE_AUTH_UNKNOWN"])),
    )


def normalize_auth(auth):
    """The four auth parts, absent or null ones as {}: what the server stores and digests."""
    auth = auth or {}
    return dict((part, dict(auth.get(part) or {})) for part in AUTH_PARTS)


def canonical_auth(auth):
    """The contract's canonical JSON of an auth: the four parts, keys sorted, compact, non-ASCII kept."""
    return json.dumps(normalize_auth(auth), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hmac_hex(salt, message):
    return hmac.new(salt.encode("ascii"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def auth_digest(auth, salt=None):
    """C1: ``hmac-sha256:<salt>:<hex>`` with a salt, else the older servers' ``sha256:<hex>``."""
    canonical = canonical_auth(auth)
    if salt is None:
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return "hmac-sha256:%s:%s" % (salt, _hmac_hex(salt, canonical))


def _digest_parts(digest):
    """(salt or None, hex) of a C1 digest; None when it is absent or not one of the two forms."""
    if not isinstance(digest, str):
        return None
    if digest.startswith("hmac-sha256:"):
        parts = digest.split(":")
        if len(parts) == 3 and parts[1] and parts[2]:
            return parts[1], parts[2]
        return None
    if digest.startswith("sha256:"):
        return None, digest[len("sha256:"):]
    return None


def _digest_equals(message, digest):
    parts = _digest_parts(digest)
    if parts is None:
        return None
    salt, expected = parts
    try:
        actual = _hmac_hex(salt, message) if salt is not None else hashlib.sha256(message.encode("utf-8")).hexdigest()
    except UnicodeEncodeError:  # a salt that is not ASCII is no salt this client made sense of
        return None
    return hmac.compare_digest(actual, expected)


def auth_matches(auth, digest):
    """Whether ``auth`` is what a registration's ``auth_digest`` stands for: True, False, or None (unknown).

    The salt is read from the stored digest (C1), so the comparison never needs the stored secret.
    """
    return _digest_equals(canonical_auth(auth), digest)


def url_matches(url, registration):
    """C2: the desired url against a registration's ``url`` (masked or not) and, when given, ``url_digest``."""
    current = (registration or {}).get("url")
    if current != url and current != mask_url(url):
        return False
    verdict = _digest_equals(url, (registration or {}).get("url_digest"))
    return verdict is not False


def mask_auth(auth):
    """The same keys, every value hidden, the parts that are empty left out (as the server shows it)."""
    return dict(
        (part, dict((key, MASK) for key in values))
        for part, values in normalize_auth(auth).items() if values
    )


class DuctapeApiError(Exception):
    """A failed call, with a message that says what was attempted, where, and what the API answered."""

    def __init__(self, message, status=None, operation=None, option=None, provider_refused=False,
                 not_offered=False, meta=None, attempts=1):
        super(DuctapeApiError, self).__init__(message)
        self.status = status
        # The error envelope's meta (a conditional rotate's 409 gives both generations there).
        self.meta = meta if isinstance(meta, dict) else {}
        # How many times the request was sent: more than 1 when a retry was refused (the first try may
        # have been done by the server though its answer was lost).
        self.attempts = attempts
        self.operation = operation
        # An extension route that this Ductape API does not have (not: the uuid or event is unknown).
        self.not_offered = not_offered
        # The option the user set that the error is about (api_url, access_key), when it is one.
        self.option = option
        # The API's own 502 (in its envelope): the registrations were stored, then the provider refused.
        self.provider_refused = provider_refused

    @property
    def concerns_every_call(self):
        """The API cannot be reached or does not answer, or refuses the key or the product."""
        return self.status in (None, 401, 403)


def _retry_after_seconds(value, now=None):
    """Retry-After as seconds: either a number of seconds or an HTTP date; None when unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_delay(attempt, retry_after=None, rng=random.random):
    """Seconds to wait before retry number ``attempt`` (1-based).

    The server's Retry-After wins when given (capped); otherwise exponential backoff with jitter
    (half to full of the step), so that many forks retrying together spread out.
    """
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_CAP_SECONDS)
    step = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2 ** (attempt - 1)))
    return step * (0.5 + rng() / 2)


class _PauseGate:
    """The "not before" time that every worker of one client waits for: a 429 pauses the whole task.

    One worker's Retry-After (or backoff) moves it later, never earlier; every request first waits
    until it has passed.
    """

    def __init__(self, clock, sleep):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._not_before = 0.0

    def pause(self, seconds):
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def wait(self):
        while True:
            with self._lock:
                remaining = self._not_before - self._clock()
            if remaining <= 0:
                return
            self._sleep(remaining)


class _VirtualClock:
    """The clock of a client given its own ``sleep`` (tests) but no clock: time moves by what it slept."""

    def __init__(self, sleep):
        self._user_sleep = sleep
        self._lock = threading.Lock()
        self._now = 0.0

    def __call__(self):
        with self._lock:
            return self._now

    def sleep(self, seconds):
        self._user_sleep(seconds)
        with self._lock:
            self._now += seconds


def _transport_problem(error):
    """A short reason for a transport error, and whether the connection was refused."""
    seen = set()
    pending = [error]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ConnectionRefusedError) or getattr(item, "errno", None) == errno.ECONNREFUSED:
            return "connection refused", True
        if isinstance(item, socket.gaierror):
            return "the host name does not resolve", False
        pending.extend(arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException))
        pending.extend((getattr(item, "reason", None), item.__cause__, item.__context__))
    text = str(error)
    if "refused" in text.lower():
        return "connection refused", True
    if isinstance(error, _http.ConnectTimeout):
        return "no connection within the timeout", False
    if "reset" in text.lower():
        return "connection reset", False
    if isinstance(error, _http.TransportError) and text:
        return text, False  # the transport's own words: what failed, never a value sent
    return "connection failed (%s)" % type(error).__name__, False


def link_uuid(link):
    """The uuid of a wrapped link (``<base>/webhooks/v1/process/<uuid>``), read from the link the server
    gave; None when the link has another form."""
    if not isinstance(link, str) or LINK_PATH not in link:
        return None
    tail = link.split(LINK_PATH, 1)[1].split("?", 1)[0].split("#", 1)[0]
    return tail if tail and "/" not in tail else None


def _exchange_ductape_local(client, access_key):
    """ductape-local's compat mode (our guess at the hosted exchange): POST ROUTE_SESSION with the access
    key in the chosen header answers ``{"token", "token_type", "expires_in"}``."""
    data = client._call("exchange the access key for a session token", "POST", ROUTE_SESSION,
                        credential=access_key)
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token or access_key_problems(token, field="token"):
        raise DuctapeApiError("exchange the access key for a session token: the API answered no usable token",
                              operation="exchange the access key for a session token")
    return token


# The hook point for exchanging the access key before any other call: token_exchange name -> function
# (client, access_key) -> session token. A new exchange (the hosted platform's, once its route is
# confirmed) is one more entry here; "none" sends the access key itself.
TOKEN_EXCHANGES = {
    "none": None,
    "ductape-local": _exchange_ductape_local,
}


class _Credentials:
    """The one place that decides what a request carries to say who it is: the header (``auth_header``)
    and its value, the access key or the session token that ``exchange`` got for it.

    The token is fetched once for all threads, dropped when the API answers 401 to it (the caller then
    asks again, once), and kept among the secrets that ``DuctapeClient._scrub`` removes from messages.
    """

    def __init__(self, access_key, header="authorization", exchange=None):
        if header not in AUTH_HEADERS:
            raise DuctapeApiError("auth_header: must be one of %s (got %s)"
                                  % (", ".join(AUTH_HEADERS), json.dumps(header)), option="auth_header")
        self.access_key = access_key or ""
        self.header = header
        self.exchange = exchange
        self._lock = threading.Lock()
        self._token = None
        self.seen_tokens = []

    def headers(self, value):
        if self.header == "x-access-token":
            return {"x-access-token": value}
        return {"Authorization": "Bearer " + value}

    def current(self, client):
        """The credential to send now: the access key, or the session token (fetched when there is none)."""
        if self.exchange is None:
            return self.access_key
        with self._lock:
            if self._token is None:
                token = self.exchange(client, self.access_key)
                self.seen_tokens.append(token)
                self._token = token
            return self._token

    def rejected(self, credential):
        """The API answered 401 to ``credential``: True when a new token may be asked for (a token was used)."""
        if self.exchange is None or credential == self.access_key:
            return False
        with self._lock:
            if self._token == credential:
                self._token = None
        return True

    def secrets(self):
        return [value for value in [self.access_key] + self.seen_tokens if value]


class DuctapeClient:
    """Requests on one Ductape API, with the access key, retries, the shared pause and the envelope.

    Safe to use from several threads at once: the session's connection pool holds ``pool_size``
    connections (the engine's parallelism), and a 429 pauses every thread (``_PauseGate``).
    """

    def __init__(self, api_url, access_key, validate_certs=True, timeout=30.0, retries=3, warn=None,
                 sleep=time.sleep, session=None, rng=random.random, clock=None, pool_size=1,
                 api_url_option="api_url", auth_header="authorization", token_exchange="none",
                 auth_unknown=AUTH_UNKNOWN_CHANGED):
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.shown_api_url = mask_url(self.api_url)
        self.api_url_option = api_url_option
        if token_exchange not in TOKEN_EXCHANGES:
            raise DuctapeApiError("token_exchange: must be one of %s (got %s)"
                                  % (", ".join(sorted(TOKEN_EXCHANGES)), json.dumps(token_exchange)),
                                  option="token_exchange")
        if auth_unknown not in AUTH_UNKNOWN_CHOICES:
            raise DuctapeApiError("auth_unknown: must be one of %s (got %s)"
                                  % (", ".join(AUTH_UNKNOWN_CHOICES), json.dumps(auth_unknown)),
                                  option="auth_unknown")
        # What the engine does with an env whose stored auth it cannot compare (see _engine.decide).
        self.auth_unknown = auth_unknown
        self._credentials = _Credentials(access_key, auth_header, TOKEN_EXCHANGES[token_exchange])
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self._warn = warn or (lambda message: None)
        self._warn_lock = threading.Lock()
        # Once a refused connection gave up, nothing listens at api_url: later calls fail at once, and
        # concurrent workers warn about it once in all.
        self._refused = None
        self._refused_warned = False
        if clock is None and sleep is not time.sleep:
            virtual = _VirtualClock(sleep)
            clock, sleep = virtual, virtual.sleep
        self._sleep = sleep
        self._rng = rng
        self._gate = _PauseGate(clock or time.monotonic, sleep)
        self._session = session if session is not None else _http.Session(pool_size=pool_size)
        self._session.headers.update({
            "Accept": "application/json",
            "User-Agent": "ductape.webhooks-ansible-collection",
        })

    # The operations of the contract.

    def register(self, product, access_tag, webhook_tag, envs):
        """Full registration of ``envs`` ([{slug, url, method, auth}]); returns the answer's data.

        An API 502 (a provider refused the link after the registrations were stored) raises
        DuctapeApiError with ``stored`` set to the envs the answer still carries, if any.
        """
        body = dict(product=product, access_tag=access_tag, webhook_tag=webhook_tag, envs=envs)
        operation = "register %s/%s in %s" % (access_tag, webhook_tag, ", ".join(env["slug"] for env in envs))
        data = self._call(operation, "POST", ROUTE_REGISTER, body=body, env_slugs=[env["slug"] for env in envs])
        return self._expect(data, dict, operation)

    def generate_link(self, product, access_tag, webhook_tag, env, url, method):
        """The registration of the env as far as the answer tells it: a REGISTRATION (ductape-local), or
        ``{"link", "uuid"}`` when the API answers the link as a string (``data``, ``data.link`` or
        ``data.data.link``), the uuid read from the link. The link is always the server's."""
        body = dict(product=product, access_tag=access_tag, webhook_tag=webhook_tag, env=env, url=url, method=method)
        operation = "generate the link of %s/%s in %s" % (access_tag, webhook_tag, env)
        data = self._call(operation, "POST", ROUTE_GENERATE_LINK, body=body)
        if isinstance(data, dict) and not isinstance(data.get("link"), str) and isinstance(data.get("data"), dict):
            data = data["data"]
        if isinstance(data, str):
            data = dict(link=data, uuid=link_uuid(data))
        link = data.get("link") if isinstance(data, dict) else None
        if not isinstance(link, str) or not link.startswith(("http://", "https://")):
            raise DuctapeApiError("%s: the API's answer holds no link (%s)"
                                  % (operation, "a %s" % type(data).__name__ if link is None
                                     else "not an http(s) URL: %s" % json.dumps(mask_url(str(link)))),
                                  operation=operation)
        if not data.get("uuid"):
            data = dict(data, uuid=link_uuid(link))
        return data

    def list_webhooks(self, product, access_tag, webhook_tag=None):
        """(webhooks, product_envs): every webhook the app behind ``access_tag`` defines, every page followed.

        ``webhook_tag`` is sent as a filter (a server that filters answers one short page) and applied
        here as well, so a server that ignores it gives the same result. ``product_envs`` is the list
        of the product's env slugs when the server says it (``meta.product_envs``, a ductape-local
        extension), else None.
        """
        operation = "list the webhooks of %s in product %s" % (access_tag, product)
        query = dict(product=product, access_tag=access_tag, limit=PAGE_SIZE)
        if webhook_tag:
            query["webhook_tag"] = webhook_tag
        found = []
        product_envs = None
        seen_cursors = set()
        while True:
            data, meta = self._call(operation, "GET", ROUTE_WEBHOOKS, query=dict(query), with_meta=True)
            found.extend(self._expect(data, list, operation))
            meta = meta if isinstance(meta, dict) else {}
            if isinstance(meta.get("product_envs"), list):
                product_envs = [slug for slug in meta["product_envs"] if isinstance(slug, str)]
            cursor = meta.get("next_cursor")
            if not cursor:
                break
            if cursor in seen_cursors:
                raise DuctapeApiError(
                    "%s: the API returned the cursor %s twice; stopping rather than looping"
                    % (operation, json.dumps(cursor)), operation=operation)
            seen_cursors.add(cursor)
            query["cursor"] = cursor
        found = [webhook for webhook in found if isinstance(webhook, dict)]
        if webhook_tag:
            found = [webhook for webhook in found if webhook.get("tag") == webhook_tag]
        return found, product_envs

    def webhooks(self, product, access_tag, webhook_tag=None):
        """The webhooks of list_webhooks, without the product's envs."""
        return self.list_webhooks(product, access_tag, webhook_tag)[0]

    def delete_registration(self, uuid, env=None):
        operation = "delete the registration %s%s" % (uuid, " in %s" % env if env else "")
        path = ROUTE_REGISTRATION.format(uuid=quote(uuid, safe=""))
        return self._expect(self._call(operation, "DELETE", path, extension=True), dict, operation)

    def deliveries(self, limit, product=None, access_tag=None, webhook_tag=None, env=None, status=None):
        """Up to ``limit`` deliveries, newest first, following pages until there are enough."""
        operation = "list the deliveries"
        query = dict((name, value) for name, value in (
            ("product", product), ("access_tag", access_tag), ("webhook_tag", webhook_tag),
            ("env", env), ("status", status)) if value)
        found = []
        while len(found) < limit:
            query["limit"] = min(PAGE_SIZE, limit - len(found))
            data, meta = self._call(operation, "GET", ROUTE_DELIVERIES, query=dict(query), with_meta=True,
                                    extension=True)
            found.extend(self._expect(data, list, operation))
            cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
            if not cursor or cursor == query.get("cursor"):
                break
            query["cursor"] = cursor
        return found[:limit]

    def delivery(self, event_id):
        """One delivery with its attempts, or None when the API knows no such event."""
        operation = "read the delivery %s" % event_id
        path = ROUTE_DELIVERY.format(event_id=quote(event_id, safe=""))
        try:
            return self._expect(self._call(operation, "GET", path, extension=True), dict, operation)
        except DuctapeApiError as error:
            if error.status == 404 and not error.not_offered:
                return None
            raise

    # The lifecycle operations (issue 13): our extension of the contract (routes L1 of the team brief).

    def _registration_route(self, route, uuid):
        return route.format(uuid=quote(uuid, safe=""))

    def disable_registration(self, uuid, env=None):
        """The REGISTRATION, disabled (its link answers 410 and stores nothing), with ``changed``."""
        operation = "disable the registration %s%s" % (uuid, " in %s" % env if env else "")
        return self._expect(self._call(operation, "POST", self._registration_route(ROUTE_DISABLE, uuid),
                                       extension=True), dict, operation)

    def enable_registration(self, uuid, env=None):
        """The REGISTRATION, enabled again on the same link, with ``changed``."""
        operation = "enable the registration %s%s" % (uuid, " in %s" % env if env else "")
        return self._expect(self._call(operation, "POST", self._registration_route(ROUTE_ENABLE, uuid),
                                       extension=True), dict, operation)

    def rotate_registration(self, uuid, grace_seconds=0, env=None, expected_generation=None):
        """The REGISTRATION with its new uuid and link; the old link works ``grace_seconds`` longer.

        ``expected_generation`` (the generation the caller saw) makes the rotation conditional: a
        registration at another generation is not rotated and the API answers 409 with both
        generations in the error's ``meta`` (rotation_already_done reads it)."""
        operation = "rotate the link of the registration %s%s" % (uuid, " in %s" % env if env else "")
        body = dict(grace_seconds=int(grace_seconds))
        if expected_generation is not None:
            body["expected_generation"] = int(expected_generation)
        return self._expect(self._call(operation, "POST", self._registration_route(ROUTE_ROTATE, uuid),
                                       body=body, extension=True), dict, operation)

    def send_test(self, uuid, payload=None, max_attempts=None, env=None):
        """``{event_id, registration_uuid}`` of a test event sent through the registration's own link."""
        operation = "send a test event through the registration %s%s" % (uuid, " in %s" % env if env else "")
        body = {}
        if payload is not None:
            body["payload"] = payload
        if max_attempts is not None:
            body["max_attempts"] = int(max_attempts)
        return self._expect(self._call(operation, "POST", self._registration_route(ROUTE_TEST, uuid), body=body,
                                       extension=True), dict, operation)

    def replay(self, product, event_ids=None, dry_run=False, limit=None, **filters):
        """``{matched, queued, skipped_in_flight, event_ids, truncated}`` of a bulk replay.

        ``event_ids`` replays those events; otherwise ``filters`` (access_tag, webhook_tag, env,
        registration_uuid, status, received_after, received_before) choose them, at most ``limit``.
        ``dry_run`` only counts what would be queued.
        """
        operation = "replay the deliveries of product %s%s" % (
            product, " (dry run)" if dry_run else "")
        body = dict(product=product, dry_run=bool(dry_run))
        body.update((name, value) for name, value in filters.items() if value is not None)
        if event_ids:
            body["event_ids"] = list(event_ids)
        if limit is not None:
            body["limit"] = int(limit)
        return self._expect(self._call(operation, "POST", ROUTE_REPLAY, body=body, extension=True), dict, operation)

    # Ingress counts (issue 14): a ductape-local extension.

    def delivery_summary(self, product, access_tag=None, webhook_tag=None, env=None):
        """The product's delivery counts by status, with its rejected and duplicate events and the last
        rejection (GET /webhooks/v1/deliveries/summary)."""
        operation = "read the delivery summary of %s" % product
        query = dict((name, value) for name, value in (
            ("product", product), ("access_tag", access_tag), ("webhook_tag", webhook_tag), ("env", env)) if value)
        return self._expect(self._call(operation, "GET", ROUTE_DELIVERY_SUMMARY, query=query, extension=True),
                            dict, operation)

    # The transport.

    def warn(self, message):
        with self._warn_lock:
            self._warn(self._scrub(message))

    def _call(self, operation, method, path, query=None, body=None, env_slugs=None, with_meta=False,
              extension=False, credential=None):
        """One operation: its retries, its credentials (``credential`` overrides them, for the token
        exchange), its envelope. ``extension``: the route is this project's extension, not one of
        Ductape's three; a server that does not offer it fails saying so (DuctapeApiError.not_offered)."""
        url = self.api_url + path
        attempt = 0
        renewed = credential is not None  # a given credential is not renewed
        while True:
            attempt += 1
            retry_after = None
            allowed = self.retries
            refused = False
            if self._refused is not None:
                raise DuctapeApiError("%s: not sent: %s" % (operation, self._refused), operation=operation,
                                      option=self.api_url_option)
            self._gate.wait()
            sent = credential if credential is not None else self._credentials.current(self)
            try:
                response = self._session.request(
                    method, url, params=query, json=body, timeout=self.timeout, verify=self.validate_certs,
                    headers=self._credentials.headers(sent))
            except _http.TLSError:
                raise DuctapeApiError(
                    "%s: the TLS connection to %s failed; check the %s option and the API's certificate, or set "
                    "validate_certs: false for a server you trust" % (operation, self.shown_api_url,
                                                                      self.api_url_option),
                    operation=operation, option=self.api_url_option)
            except _http.ReadTimeout:
                problem = "the Ductape API at %s did not answer within the timeout of %s s" % (
                    self.shown_api_url, self.timeout)
                status = None
            except _http.TransportError as error:
                reason, refused = _transport_problem(error)
                problem = "could not reach the Ductape API at %s (%s); check the %s option" % (
                    self.shown_api_url, reason, self.api_url_option)
                status = None
                if refused:
                    allowed = min(allowed, REFUSED_RETRIES)
            else:
                if response.status_code == 401 and not renewed and self._credentials.rejected(sent):
                    renewed = True  # the session token expired or the server forgot it: one new token
                    attempt -= 1
                    continue
                if extension and self._route_not_offered(response):
                    raise DuctapeApiError(
                        "%s: this Ductape API (%s) does not offer it: %s %s answered HTTP %d. It is an extension of "
                        "ductape-local beyond Ductape's three webhook routes (see the guide \"Ductape's API and this "
                        "collection\")" % (operation, self.shown_api_url, method, path, response.status_code),
                        status=response.status_code, operation=operation, not_offered=True)
                if response.status_code not in RETRYABLE_STATUSES or self._is_the_apis_own_502(response):
                    return self._unwrap(operation, response, env_slugs, with_meta, attempt)
                problem = "the Ductape API answered HTTP %d (%s)" % (
                    response.status_code, self._short(self._errors_text(response) or response.reason
                                                      or "no reason given"))
                status = response.status_code
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if attempt > allowed:
                if refused:
                    self._refused = problem
                raise DuctapeApiError(
                    "%s: %s; gave up after %d attempt%s%s"
                    % (operation, problem, attempt, "" if attempt == 1 else "s",
                       "" if allowed < self.retries else " (raise the retries option to try longer)"),
                    status=status, operation=operation, option=self.api_url_option if status is None else None)
            delay = retry_delay(attempt, retry_after, self._rng)
            if status == 429:
                self._gate.pause(delay)  # every worker waits, not only this one
            with self._warn_lock:
                repeated, self._refused_warned = refused and self._refused_warned, self._refused_warned or refused
            if not repeated:
                self.warn("%s: %s; retry %d of %d in %.1f s" % (operation, problem, attempt, allowed, delay))
            if status == 429:
                self._gate.wait()
            else:
                self._sleep(delay)

    @staticmethod
    def _short(text, limit=160):
        text = " ".join(str(text).split())
        return text if len(text) <= limit else text[:limit - 3] + "..."

    @staticmethod
    def _route_not_offered(response):
        """Whether an answer says the route itself is missing, not what it was asked about: 405 or 501; a
        404 that is not in Ductape's envelope (a web framework's own page); or ductape-local's "no such
        route". A 404 in the envelope with another message (an unknown uuid) is about the uuid."""
        if response.status_code in (405, 501):
            return True
        if response.status_code != 404:
            return False
        try:
            envelope = response.json()
        except ValueError:
            return True
        if not isinstance(envelope, dict) or envelope.get("status") is not False:
            return True
        errors = envelope.get("errors")
        return isinstance(errors, str) and errors.startswith("no such route")

    @staticmethod
    def _is_the_apis_own_502(response):
        """A 502 in Ductape's envelope: the API answered for itself that the provider refused the link.

        The registration is stored and marked failed; retrying at once would only call the provider
        again within seconds, and the next run sends it again anyway. A gateway's 502 (no envelope)
        is still retried.
        """
        if response.status_code != 502:
            return False
        try:
            envelope = response.json()
        except ValueError:
            return False
        return isinstance(envelope, dict) and envelope.get("status") is False

    def _unwrap(self, operation, response, env_slugs, with_meta, attempts=1):
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        location = response.headers.get("Location")
        if 300 <= response.status_code < 400 and location:
            raise DuctapeApiError(
                "%s: the API at %s answered HTTP %d, a redirect to %s, which is not followed; set %s to the "
                "address the API is at" % (operation, self.shown_api_url, response.status_code,
                                           json.dumps(self._scrub(location)), self.api_url_option),
                status=response.status_code, operation=operation, option=self.api_url_option)
        if not isinstance(envelope, dict) or "status" not in envelope:
            raise DuctapeApiError(
                "%s: the API at %s answered HTTP %d with %s, not a Ductape answer (is %s the Ductape API?)"
                % (operation, self.shown_api_url, response.status_code, self._describe_body(response),
                   self.api_url_option),
                status=response.status_code, operation=operation)
        if response.status_code >= 400 or envelope.get("status") is not True:
            errors = self._errors_text(response, envelope) or "no error message"
            raise DuctapeApiError(
                "%s: HTTP %d: %s%s" % (operation, response.status_code, errors, self._env_hint(errors, env_slugs)),
                status=response.status_code, operation=operation,
                provider_refused=response.status_code == 502, meta=envelope.get("meta"), attempts=attempts)
        if "data" not in envelope:
            raise DuctapeApiError("%s: the API's answer has no data (HTTP %d)" % (operation, response.status_code),
                                  status=response.status_code, operation=operation)
        if with_meta:
            return envelope["data"], envelope.get("meta") or {}
        return envelope["data"]

    @staticmethod
    def _expect(data, kind, operation):
        if not isinstance(data, kind):
            raise DuctapeApiError("%s: the API answered with %s data where %s was expected"
                                  % (operation, type(data).__name__, "a list" if kind is list else "an object"),
                                  operation=operation)
        return data

    @staticmethod
    def _env_hint(errors, env_slugs):
        """Name the env behind an ``envs[N]`` in the server's message: that is how a user reads it."""
        if not env_slugs or len(env_slugs) == 1:
            return ""  # the operation itself names the one env
        named = [slug for index, slug in enumerate(env_slugs) if "envs[%d]" % index in errors]
        if len(named) != 1 or json.dumps(named[0]) in errors:
            return ""
        return " (envs[%d] is env %s)" % (env_slugs.index(named[0]), named[0])

    def _errors_text(self, response, envelope=None):
        if envelope is None:
            try:
                envelope = response.json()
            except ValueError:
                return ""
        if not isinstance(envelope, dict):
            return ""
        errors = envelope.get("errors")
        if isinstance(errors, (list, tuple)):
            errors = "; ".join(str(item) for item in errors)
        elif isinstance(errors, dict):
            errors = json.dumps(errors, sort_keys=True)
        return self._scrub(errors or "")

    def _describe_body(self, response):
        text = self._scrub(response.text or "")
        if not text.strip():
            return "an empty body"
        snippet = " ".join(text.split())[:120]
        return "%s %s" % (response.headers.get("Content-Type") or "a body", json.dumps(snippet))

    def _scrub(self, value):
        """No access key leaves in a message, in any spelling a layer may quote it; URLs masked (C2)."""
        text = str(value)
        forms = set()
        for secret in self._credentials.secrets():
            forms.update((secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], quote(secret, safe=""), secret.strip()))
        for form in sorted((form for form in forms if form), key=len, reverse=True):
            text = text.replace(form, MASK)
        return mask_urls_in_text(text)


def client_for(params, warn=None, pool_size=1, api_url_option="api_url", access_key_option="access_key"):
    """A client from a module's connection parameters; refuses clearly what cannot work.

    ``api_url_option`` and ``access_key_option`` are the names the user set the values under (the
    role says ``ductape_api_url``), used in every message about them.
    """
    problems = access_key_problems(params.get("access_key"), field=access_key_option)
    if problems:
        raise DuctapeApiError(problems[0], option=access_key_option)
    if params.get("timeout") is not None and params["timeout"] <= 0:
        raise DuctapeApiError("timeout: must be more than 0 seconds (got %s)" % params["timeout"])
    if params.get("retries") is not None and params["retries"] < 0:
        raise DuctapeApiError("retries: must be 0 or more (got %s)" % params["retries"])
    api_url = params.get("api_url") or DEFAULT_API_URL
    problems = api_url_problems(api_url_option, api_url)
    if problems:
        raise DuctapeApiError(problems[0], option=api_url_option)
    return DuctapeClient(
        api_url, params["access_key"], validate_certs=params.get("validate_certs", True),
        timeout=params.get("timeout") or 30.0, retries=params.get("retries", 3), warn=warn, pool_size=pool_size,
        api_url_option=api_url_option, auth_header=params.get("auth_header") or "authorization",
        token_exchange=params.get("token_exchange") or "none",
        auth_unknown=params.get("auth_unknown") or AUTH_UNKNOWN_CHANGED)
