# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of a webhook registration, each written once, for the modules, the engine and the role.

No I/O here. Every ``*_problems`` function returns a list of messages (empty when all is well), each
starting with the field path it was given (``envs[1].url``, ``ductape_webhooks[3].method``, ...) and
naming the value, except where the value may be a secret: an auth value is never quoted, only its kind;
a URL is quoted masked (``mask_url``). The caller chooses the field path, so the role's plan filter and
the modules say the same thing about the same mistake.

Stable names (the role's filter plugin imports them):

``AUTH_PARTS``, ``HTTP_METHODS``, ``MASK``
    the four parts of an auth (``IActionRequest``), the HTTP methods, the mask of a hidden value.
``quoted(value)``
    a value as messages show it (JSON, non-ASCII kept).
``mask_url(url)``
    contract C2: credentials inside a URL (userinfo, secret-looking query parameters) as ``********``.
``mask_urls_in_text(text)``
    every ``http(s)://`` URL inside a text (a server's error message) masked.
``url_problems(field, url, context="", required=True)``
    an absolute ``http://`` or ``https://`` URL with a host and no whitespace.
``method_problems(field, method, context="")``
    one of ``HTTP_METHODS`` (upper case, as the API stores it).
``auth_problems(field, auth, context="")``
    a mapping of ``AUTH_PARTS``, each a mapping (or null); the value is never shown.
``slug_problems(field, slug)``
    a non-empty string that can be an env slug.
``duplicate_problems(names, field_of, what)``
    each name listed once; ``field_of(index)`` gives the field path of entry ``index``.
``env_exists_problems(field, slug, product, product_envs)``
    the env is one of the product's (listing them); ``product_envs`` None means unknown: no problem.
``webhook_tag_problems(field, webhook_tag, access_tag, app_tags)``
    the app behind the access tag defines the webhook (listing the app's tags).
``access_key_problems(access_key, field="access_key")``
    a key that can be sent in a header: no control character, no leading or trailing whitespace;
    the key itself is never shown.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
import re

from urllib.parse import urlsplit

AUTH_PARTS = ("headers", "query", "body", "params")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MASK = "********"

# C2: a query parameter whose lowercased name contains one of these has its value masked.
SECRET_PARAMETER_WORDS = ("token", "key", "secret", "password", "passwd", "pwd", "auth", "sig", "credential",
                          "session")

_URL = re.compile(r"^https?://[^/?#\s]+[^\s]*$", re.IGNORECASE)
_CONTROL = re.compile(u"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# How many names a message lists before it says "and N more".
_LISTED = 20


def quoted(value):
    return json.dumps(value, ensure_ascii=False)


def listing(names):
    """Names as a message lists them: the first _LISTED, then how many more."""
    names = [str(name) for name in names]
    if not names:
        return "none"
    shown = ", ".join(names[:_LISTED])
    return shown if len(names) <= _LISTED else "%s and %d more" % (shown, len(names) - _LISTED)


def kind_of(value):
    """What a value is, for a message that must not show the value itself (it may be a secret)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None:
        return "null"
    return "a %s" % type(value).__name__


def _authority_end(rest):
    """Where the authority (``userinfo@host:port``) of what follows a URL's ``://`` ends."""
    ends = [where for where in (rest.find(stop) for stop in "/?#") if where >= 0]
    return min(ends) if ends else len(rest)


def mask_url(url):
    """C2: the URL with its userinfo and every secret-looking query value replaced by ``********``.

    Everything else is kept byte for byte; a URL with nothing to mask (or not a string) is returned as is.
    """
    if not isinstance(url, str) or not url:
        return url
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url
    start = scheme_end + 3
    rest = url[start:]
    authority_end = _authority_end(rest)
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        authority = MASK + "@" + authority.rsplit("@", 1)[1]
    fragment = ""
    if "#" in tail:
        tail, fragment = tail.split("#", 1)
        fragment = "#" + fragment
    if "?" in tail:
        path, query = tail.split("?", 1)
        pairs = []
        for pair in query.split("&"):
            name, equals, value = pair.partition("=")
            if equals and any(word in name.lower() for word in SECRET_PARAMETER_WORDS):
                value = MASK
            pairs.append(name + equals + value)
        tail = path + "?" + "&".join(pairs)
    return url[:start] + authority + tail + fragment


_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)


def mask_urls_in_text(text):
    """The text with every http(s) URL in it passed through mask_url."""
    if not isinstance(text, str) or "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group(0)), text)


def url_problems(field, url, context="", required=True):
    """An absolute http(s) URL; the message quotes it masked. ``context`` is appended (`` in env "prd"``)."""
    if url is None or url == "":
        return ["%s: is required%s" % (field, context)] if required else []
    if not isinstance(url, str) or not _URL.match(url):
        shown = quoted(mask_url(url)) if isinstance(url, str) else kind_of(url)
        return ["%s: must be an absolute http:// or https:// URL (got %s%s)" % (field, shown, context)]
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        return ["%s: must be an absolute http:// or https:// URL with a host (got %s%s)"
                % (field, quoted(mask_url(url)), context)]
    return []


def api_url_problems(field, url):
    """The API's base URL: http(s), and no credentials in it. The access key is the only credential sent
    to the API; a ``user:password@`` part would make the HTTP library send basic auth in its place."""
    if not url.startswith(("http://", "https://")):
        return ["%s: must start with http:// or https:// (got %s)" % (field, json.dumps(mask_url(url)))]
    rest = url.split("://", 1)[1]
    if "@" in rest[:_authority_end(rest)]:
        return ["%s: must not carry credentials (got %s): the access key is the API's credential, "
                "give it as the access key option, not inside the URL" % (field, json.dumps(mask_url(url)))]
    return []


def method_problems(field, method, context=""):
    if method in HTTP_METHODS:
        return []
    return ["%s: must be one of %s (got %s%s)" % (field, ", ".join(HTTP_METHODS), quoted(method), context)]


def auth_problems(field, auth, context=""):
    """The shape of one auth: a mapping of AUTH_PARTS, each a mapping. Never quotes a value."""
    if auth is None:
        return []
    if not isinstance(auth, dict):
        return ["%s: must be a mapping with any of the keys %s (got %s%s; its value is not shown)"
                % (field, ", ".join(AUTH_PARTS), kind_of(auth), context)]
    problems = []
    for part in sorted(auth, key=str):
        if part not in AUTH_PARTS:
            problems.append("%s: unknown part %s%s; the parts are %s"
                            % (field, quoted(str(part)), context, ", ".join(AUTH_PARTS)))
        elif auth[part] is not None and not isinstance(auth[part], dict):
            problems.append("%s.%s: must be a mapping of names to values (got %s%s; its value is not shown)"
                            % (field, part, kind_of(auth[part]), context))
    return problems


def slug_problems(field, slug):
    if not isinstance(slug, str) or not slug.strip():
        return ["%s: must be a product env slug such as prd (got %s)"
                % (field, quoted(slug) if slug is None or isinstance(slug, (str, int, float)) else kind_of(slug))]
    return []


def duplicate_problems(names, field_of, what):
    """Each name once: ``field_of(index)`` is the field path of the entry, ``what`` names the kind (env)."""
    first = {}
    problems = []
    for index, name in enumerate(names):
        if name is None:
            continue
        if name in first:
            problems.append("%s: %s %s is listed twice (%s and %s); list each %s once"
                            % (field_of(index), what, quoted(name), field_of(first[name]), field_of(index), what))
        else:
            first[name] = index
    return problems


def env_exists_problems(field, slug, product, product_envs):
    if product_envs is None or slug in product_envs:
        return []
    return ["%s: %s is not an env of product %s (its envs: %s)"
            % (field, quoted(slug), quoted(product), listing(product_envs))]


def webhook_tag_problems(field, webhook_tag, access_tag, app_tags):
    if app_tags is None or webhook_tag in app_tags:
        return []
    return ["%s: %s is not a webhook of the app behind access tag %s (its webhooks: %s)"
            % (field, quoted(webhook_tag), quoted(access_tag), listing(sorted(app_tags)))]


def access_key_problems(access_key, field="access_key"):
    """A key that can go into an HTTP header as it is. The key is never shown, in any form."""
    if not access_key:
        return ["%s: no access key given; set the %s option or the DUCTAPE_ACCESS_KEY environment variable "
                "(for all ductape tasks at once: module_defaults group/ductape.webhooks.ductape)" % (field, field)]
    if not isinstance(access_key, str):
        return ["%s: must be a string (got %s; its value is not shown)" % (field, kind_of(access_key))]
    if _CONTROL.search(access_key):
        return ["%s: contains a line break or another control character (the key is not shown); set it without "
                "one, for example with the trim filter on a value read from a file or a vault" % field]
    if access_key != access_key.strip():
        return ["%s: starts or ends with whitespace (the key is not shown); set it without, for example with "
                "the trim filter" % field]
    return []
