# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP client of the collection: every route of the Ductape webhook contract is named here.

It owns the base URL, the access key header, the response envelope, pagination, retries with backoff
and the shape of every error message. When the hosted wire format differs from the contract in
docs (ductape-api.md), this file is the one place to adapt.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import email.utils
import hashlib
import hmac
import json
import random
import time
import traceback

try:
    import requests
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible.module_utils.six.moves.urllib.parse import quote

DEFAULT_API_URL = "https://api.ductape.app"
AUTH_PARTS = ("body", "headers", "params", "query")
MASK = "********"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# The server's largest page: fewer round trips when an app defines many webhooks.
PAGE_SIZE = 250
RETRYABLE_STATUSES = frozenset((429, 502, 503, 504))
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0
# A server asking for a longer pause than this is waited for this long, not longer: a playbook
# that silently sleeps for an hour looks hung.
RETRY_AFTER_CAP_SECONDS = 60.0

# The contract's routes, and nothing else, live here.
ROUTE_REGISTER = "/webhooks/v1/register"
ROUTE_GENERATE_LINK = "/webhooks/v1/generate-link"
ROUTE_WEBHOOKS = "/webhooks/v1/webhooks"
ROUTE_REGISTRATION = "/webhooks/v1/registrations/{uuid}"
ROUTE_DELIVERIES = "/webhooks/v1/deliveries"
ROUTE_DELIVERY = "/webhooks/v1/deliveries/{event_id}"


def connection_argument_spec():
    """The connection options every ductape module takes (documented in doc_fragments/connection.py)."""
    return dict(
        api_url=dict(type="str", default=DEFAULT_API_URL, fallback=(env_fallback, ["DUCTAPE_API_URL"])),
        access_key=dict(type="str", no_log=True, fallback=(env_fallback, ["DUCTAPE_ACCESS_KEY"])),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="float", default=30.0),
        retries=dict(type="int", default=3),
    )


def require_requests(module):
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)


def normalize_auth(auth):
    """The four auth parts, absent or null ones as {}: what the server stores and digests."""
    auth = auth or {}
    return dict((part, dict(auth.get(part) or {})) for part in AUTH_PARTS)


def auth_digest(auth):
    """The contract's digest of an auth: sha256 of the sorted, compact JSON of the four parts."""
    canonical = json.dumps(normalize_auth(auth), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def digest_matches(digest, auth=None, url=None):
    """Whether a registration's digest was made of this auth (or this url): the salted
    "hmac-sha256:<salt>:<hex>" form is recomputed with its salt, the older "sha256:<hex>" form (auth only)
    compared as it is."""
    parts = (digest or "").split(":")
    if len(parts) == 3 and parts[0] == "hmac-sha256":
        if url is not None:
            message = url.encode("utf-8")
        else:
            message = json.dumps(normalize_auth(auth), sort_keys=True, separators=(",", ":"),
                                 ensure_ascii=False).encode("utf-8")
        expected = hmac.new(parts[1].encode("ascii"), message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts[2])
    return url is None and digest == auth_digest(auth)


def mask_auth(auth):
    """The same keys, every value hidden, the parts that are empty left out (as the server shows it)."""
    return dict(
        (part, dict((key, MASK) for key in values))
        for part, values in normalize_auth(auth).items() if values
    )


class DuctapeApiError(Exception):
    """A failed call, with a message that says what was attempted, where, and what the API answered."""

    def __init__(self, message, status=None, operation=None):
        super(DuctapeApiError, self).__init__(message)
        self.status = status
        self.operation = operation


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


class DuctapeClient:
    """A requests.Session on one Ductape API, with the access key, retries and the envelope."""

    def __init__(self, api_url, access_key, validate_certs=True, timeout=30.0, retries=3, warn=None,
                 sleep=time.sleep, session=None, rng=random.random):
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self._access_key = access_key or ""
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self._warn = warn or (lambda message: None)
        self._sleep = sleep
        self._rng = rng
        if session is None:
            session = requests.Session()
        self._session = session
        self._session.headers.update({
            "Authorization": "Bearer " + self._access_key,
            "Accept": "application/json",
            "User-Agent": "ductape.webhooks-ansible-collection",
        })

    # The operations of the contract.

    def register(self, product, access_tag, webhook_tag, envs):
        """Full registration of ``envs`` ([{slug, url, method, auth}]); returns the answer's data."""
        body = dict(product=product, access_tag=access_tag, webhook_tag=webhook_tag, envs=envs)
        operation = "register %s/%s in %s" % (access_tag, webhook_tag, ", ".join(env["slug"] for env in envs))
        data = self._call(operation, "POST", ROUTE_REGISTER, body=body, env_slugs=[env["slug"] for env in envs])
        return self._expect(data, dict, operation)

    def generate_link(self, product, access_tag, webhook_tag, env, url, method):
        body = dict(product=product, access_tag=access_tag, webhook_tag=webhook_tag, env=env, url=url, method=method)
        operation = "generate the link of %s/%s in %s" % (access_tag, webhook_tag, env)
        return self._expect(self._call(operation, "POST", ROUTE_GENERATE_LINK, body=body), dict, operation)

    def webhooks(self, product, access_tag, webhook_tag=None):
        """Every webhook the app behind ``access_tag`` defines, following every page.

        ``webhook_tag`` is sent as a hint (a server that filters answers one short page) and
        applied here as well, so a server that ignores it gives the same result.
        """
        operation = "list the webhooks of %s in product %s" % (access_tag, product)
        query = dict(product=product, access_tag=access_tag, limit=PAGE_SIZE)
        if webhook_tag:
            query["webhook_tag"] = webhook_tag
        found = []
        seen_cursors = set()
        while True:
            data, meta = self._call(operation, "GET", ROUTE_WEBHOOKS, query=query, with_meta=True)
            found.extend(self._expect(data, list, operation))
            cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
            if not cursor:
                break
            if cursor in seen_cursors:
                raise DuctapeApiError(
                    "%s: the API returned the cursor %s twice; stopping rather than looping"
                    % (operation, json.dumps(cursor)), operation=operation)
            seen_cursors.add(cursor)
            query["cursor"] = cursor
        if webhook_tag:
            found = [webhook for webhook in found if isinstance(webhook, dict) and webhook.get("tag") == webhook_tag]
        return found

    def delete_registration(self, uuid, env=None):
        operation = "delete the registration %s%s" % (uuid, " in %s" % env if env else "")
        path = ROUTE_REGISTRATION.format(uuid=quote(uuid, safe=""))
        return self._expect(self._call(operation, "DELETE", path), dict, operation)

    def deliveries(self, limit, product=None, access_tag=None, webhook_tag=None, env=None, status=None):
        """Up to ``limit`` deliveries, newest first, following pages until there are enough."""
        operation = "list the deliveries"
        query = dict((name, value) for name, value in (
            ("product", product), ("access_tag", access_tag), ("webhook_tag", webhook_tag),
            ("env", env), ("status", status)) if value)
        found = []
        while len(found) < limit:
            query["limit"] = min(PAGE_SIZE, limit - len(found))
            data, meta = self._call(operation, "GET", ROUTE_DELIVERIES, query=query, with_meta=True)
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
            return self._expect(self._call(operation, "GET", path), dict, operation)
        except DuctapeApiError as error:
            if error.status == 404:
                return None
            raise

    # The transport.

    def _call(self, operation, method, path, query=None, body=None, env_slugs=None, with_meta=False):
        url = self.api_url + path
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                response = self._session.request(
                    method, url, params=query, json=body, timeout=self.timeout, verify=self.validate_certs)
            except requests.exceptions.SSLError as error:
                raise DuctapeApiError(
                    "%s: the TLS connection to %s failed (%s); check the API URL and its certificate, or set "
                    "validate_certs: false for a server you trust" % (operation, url, self._scrub(error)),
                    operation=operation)
            except requests.exceptions.ReadTimeout as error:
                problem = "the Ductape API at %s did not answer within the timeout of %s s (%s)" % (
                    url, self.timeout, self._scrub(error))
                status = None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
                problem = "could not reach the Ductape API at %s; check the api_url option (%s)" % (
                    url, self._scrub(error))
                status = None
            else:
                if response.status_code not in RETRYABLE_STATUSES or self._is_the_apis_own_502(response):
                    return self._unwrap(operation, response, env_slugs, with_meta)
                problem = "the Ductape API answered HTTP %d (%s)" % (
                    response.status_code, self._errors_text(response) or response.reason or "no reason given")
                status = response.status_code
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if attempt > self.retries:
                raise DuctapeApiError(
                    "%s: %s; gave up after %d attempt%s (raise the retries option to try longer)"
                    % (operation, problem, attempt, "" if attempt == 1 else "s"),
                    status=status, operation=operation)
            delay = retry_delay(attempt, retry_after, self._rng)
            self._warn("%s: %s; retry %d of %d in %.1f s" % (operation, problem, attempt, self.retries, delay))
            self._sleep(delay)

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

    def _unwrap(self, operation, response, env_slugs, with_meta):
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or "status" not in envelope:
            raise DuctapeApiError(
                "%s: the API at %s answered HTTP %d with %s, not a Ductape answer (is api_url the Ductape API?)"
                % (operation, self.api_url, response.status_code, self._describe_body(response)),
                status=response.status_code, operation=operation)
        if response.status_code >= 400 or envelope.get("status") is not True:
            errors = self._errors_text(response, envelope) or "no error message"
            raise DuctapeApiError(
                "%s: HTTP %d: %s%s" % (operation, response.status_code, errors, self._env_hint(errors, env_slugs)),
                status=response.status_code, operation=operation)
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
        """The access key never leaves in a message, even when some layer quotes it back."""
        text = str(value)
        if self._access_key:
            text = text.replace(self._access_key, MASK)
        return text


def client_for(params, warn=None):
    """A client from a module's connection parameters; fails clearly when the key is missing."""
    if not params.get("access_key"):
        raise DuctapeApiError(
            "access_key: no access key given; set the access_key option or the DUCTAPE_ACCESS_KEY environment "
            "variable (for all ductape tasks at once: module_defaults group/ductape.webhooks.ductape)")
    if params.get("timeout") is not None and params["timeout"] <= 0:
        raise DuctapeApiError("timeout: must be more than 0 seconds (got %s)" % params["timeout"])
    if params.get("retries") is not None and params["retries"] < 0:
        raise DuctapeApiError("retries: must be 0 or more (got %s)" % params["retries"])
    api_url = params.get("api_url") or DEFAULT_API_URL
    if not api_url.startswith(("http://", "https://")):
        raise DuctapeApiError("api_url: must start with http:// or https:// (got %s)" % json.dumps(api_url))
    return DuctapeClient(
        api_url, params["access_key"], validate_certs=params.get("validate_certs", True),
        timeout=params.get("timeout") or 30.0, retries=params.get("retries", 3), warn=warn)
