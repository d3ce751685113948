# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the modules decide, without any I/O: desired vs current registrations, per env.

Only what the user set is compared: url, method, and the auth by its digest (a secret is never
read back). Envs the user did not list are never looked at.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
import re

from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import (
    MASK,
    digest_matches,
    mask_auth,
)

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
DELETED = "deleted"
ABSENT = "absent"
WRITING_ACTIONS = frozenset((CREATED, UPDATED, DELETED))
AUTH_PARTS = ("headers", "query", "body", "params")

_URL = re.compile(r"^https?://[^/?#\s]+[^\s]*$", re.IGNORECASE)


def quoted(value):
    return json.dumps(value, ensure_ascii=False)


def find_webhook(webhooks, webhook_tag):
    for webhook in webhooks:
        if isinstance(webhook, dict) and webhook.get("tag") == webhook_tag:
            return webhook
    return None


def registrations_by_env(webhook):
    """{product env slug: registration} of one WEBHOOK of the listing."""
    found = {}
    for registration in (webhook or {}).get("config") or []:
        if isinstance(registration, dict) and registration.get("productEnv"):
            found[registration["productEnv"]] = registration
    return found


def check_envs(envs, state):
    """Every problem of the listed envs, each naming the field and its value, before anything is written."""
    problems = []
    if not envs:
        return ["envs: at least one env is needed (got an empty list)"]
    first_index = {}
    for index, env in enumerate(envs):
        slug = env.get("slug")
        field = "envs[%d]" % index
        if not slug or not isinstance(slug, str) or not slug.strip():
            problems.append("%s.slug: must be a product env slug such as prd (got %s)" % (field, quoted(slug)))
            continue
        if slug in first_index:
            problems.append("%s.slug: env %s is listed twice (envs[%d] and envs[%d]); list each env once"
                            % (field, quoted(slug), first_index[slug], index))
        else:
            first_index[slug] = index
        problems.extend(_auth_problems(env.get("auth"), field, slug))
        if state == "present":
            url = env.get("url")
            if not url:
                problems.append("%s.url: is required with state=present (env %s)" % (field, quoted(slug)))
            elif not _URL.match(url):
                problems.append("%s.url: must be an absolute http:// or https:// URL (got %s in env %s)"
                                % (field, quoted(url), quoted(slug)))
    return problems


def _kind(value):
    """What a value is, for an error message that must not show the value itself (it may be a secret)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a %s" % type(value).__name__


def _auth_problems(auth, field, slug):
    """The shape of one env's auth: a mapping of AUTH_PARTS, each a mapping. Never quotes a value."""
    if auth is None:
        return []
    if not isinstance(auth, dict):
        return ["%s.auth: must be a mapping with any of the keys %s (got %s in env %s; its value is not shown)"
                % (field, ", ".join(AUTH_PARTS), _kind(auth), quoted(slug))]
    problems = []
    for part in sorted(auth, key=str):
        if part not in AUTH_PARTS:
            problems.append("%s.auth: unknown part %s in env %s; the parts are %s"
                            % (field, quoted(str(part)), quoted(slug), ", ".join(AUTH_PARTS)))
        elif auth[part] is not None and not isinstance(auth[part], dict):
            problems.append("%s.auth.%s: must be a mapping of names to values (got %s in env %s; "
                            "its value is not shown)" % (field, part, _kind(auth[part]), quoted(slug)))
    return problems


def desired_registration(env):
    """What the user asked for in one env, normalised the way the server stores it."""
    return dict(
        slug=env["slug"],
        url=env["url"],
        method=(env.get("method") or "POST").upper(),
        auth=env.get("auth") or {},
    )


def decide(current, desired, state):
    """The action for one env: created, updated, unchanged, deleted or absent."""
    if state == "absent":
        return DELETED if current else ABSENT
    if current is None:
        return CREATED
    if (not url_unchanged(current, desired["url"]) or current.get("method") != desired["method"]
            or not digest_matches(current.get("auth_digest"), desired["auth"])):
        return UPDATED
    if provider_left_undone(current):
        # The provider does not hold the link yet (refused, or the server stopped mid-call): sending
        # the same registration again makes the server retry the provider.
        return UPDATED
    return UNCHANGED


def url_unchanged(current, url):
    """The server answers url with its credentials masked; its url_digest tells a changed password."""
    if current.get("url_digest"):
        return digest_matches(current["url_digest"], url=url)
    return current.get("url") == url


def provider_left_undone(registration):
    """True when the env has a provider registration endpoint and the provider has not taken the link."""
    provider = (registration or {}).get("provider_registration")
    return isinstance(provider, dict) and provider.get("status") != "registered"


def plan_registration(current_by_env, envs, state):
    """[(slug, action, current registration or None, desired or None)] in the order the envs were listed."""
    plan = []
    for env in envs:
        current = current_by_env.get(env["slug"])
        desired = desired_registration(env) if state == "present" else None
        plan.append((env["slug"], decide(current, desired, state), current, desired))
    return plan


def diff_view(registration, auth_changed=False):
    """One env as a diff shows it: url, method and auth with every value masked."""
    if registration is None:
        return None
    if "auth_digest" in registration:  # a registration the server returned: its auth is masked already
        auth = registration.get("auth") or {}
    else:
        auth = mask_auth(registration.get("auth"))
    if auth_changed:
        # The masks would look the same before and after; say that a secret changed without showing it.
        auth = dict((part, dict((key, MASK + " (changed)") for key in values)) for part, values in auth.items())
        auth = auth or {"changed": "(all auth removed)"}
    return dict(url=registration.get("url"), method=registration.get("method"), auth=auth)


def registration_diff(plan):
    """{before: {env: ...}, after: {env: ...}} for the envs whose action writes."""
    before, after = {}, {}
    for slug, action, current, desired in plan:
        if action not in WRITING_ACTIONS:
            continue
        if current is not None:
            before[slug] = diff_view(current)
        if desired is not None:
            auth_changed = current is not None and not digest_matches(current.get("auth_digest"), desired["auth"])
            after[slug] = diff_view(desired, auth_changed)
    return dict(before=before, after=after)


def env_result(slug, action, registration, desired=None):
    """One env of a module's result: names, links and statuses only, never an auth value."""
    source = registration or {}
    return dict(
        slug=slug,
        action=action,
        uuid=source.get("uuid"),
        link=source.get("link"),
        url=(desired or source).get("url"),
        method=(desired or source).get("method"),
        provider_registration=source.get("provider_registration"),
    )
