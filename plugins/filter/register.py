# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The planning and reporting of the role ductape.webhooks.register, as filters.

The role used to build these lists in Jinja templates; at 50 webhooks x 5 environments that took about
a second of a two-second no-op run (each ``ns.rows = ns.rows + [...]`` copies the list). The same
decisions in Python take milliseconds. Documentation: register_plan.yml, register_registrations.yml,
register_summary.yml and register_failures.yml next to this file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.utils.vars import merge_hash

# The role plans what the modules accept: their auth parts and methods are the one source.
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import HTTP_METHODS as METHODS
from ansible_collections.ductape.webhooks.plugins.module_utils._rules import AUTH_PARTS

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{2,}$"
URL_PATTERN = r"^https?://[^\s/?#]+"
OVERRIDE_KEYS = ("url", "path", "method", "auth", "mode")
MODES = ("full", "link")

_MISSING = object()


def _matches(pattern: str, value) -> bool:
    return isinstance(value, str) and re.match(pattern, value) is not None


def _join(values) -> str:
    return ", ".join(str(value) for value in values)


def _host_vars(hostvars, host) -> Mapping:
    variables = hostvars[host] if host in hostvars else None
    return variables if isinstance(variables, Mapping) else {}


def _get(mapping, key, default=None):
    """``mapping.key | default(default)``: a key set to null stays null."""
    if not isinstance(mapping, Mapping):
        return default
    return mapping.get(key, default) if key in mapping else default


def _environments(group_hosts, hostvars, group, problems):
    """env slug -> (host, that host's variables), in the group's order; problems of the hosts' variables."""
    envs: dict = {}
    if not group_hosts:
        problems.append(f"inventory group '{group}' (ductape_environments_group) has no hosts: "
                        "add one host per Ductape environment")
    for host in group_hosts or []:
        variables = _host_vars(hostvars, host)
        env = _get(variables, "ductape_env", host)
        prefix = f"host '{host}': "
        if not _matches(SLUG_PATTERN, env):
            problems.append(f"{prefix}ductape_env '{env}' is not a Ductape environment slug "
                            "(lowercase letters, digits, '-' or '_', 3 or more characters)")
        elif env in envs:
            problems.append(f"{prefix}ductape_env '{env}' is already the environment of host '{envs[env][0]}': "
                            "each environment needs exactly one host")
        else:
            envs[env] = (host, variables)
        mode = _get(variables, "ductape_registration_mode", "full")
        if mode not in MODES:
            problems.append(f"{prefix}ductape_registration_mode '{mode}' must be 'full' or 'link'")
        base = _get(variables, "ductape_receiver_base_url", "")
        if base and not _matches(URL_PATTERN, base):
            problems.append(f"{prefix}ductape_receiver_base_url '{base}' is not an http:// or https:// URL")
        host_auth = _get(variables, "ductape_webhook_auth", {})
        if not isinstance(host_auth, Mapping):
            problems.append(f"{prefix}ductape_webhook_auth must be a mapping with the keys {_join(AUTH_PARTS)}")
            continue
        for part, value in host_auth.items():
            if part not in AUTH_PARTS:
                problems.append(f"{prefix}ductape_webhook_auth has the unknown key '{part}' "
                                f"(allowed: {_join(AUTH_PARTS)})")
            elif value is not None and not isinstance(value, Mapping):
                problems.append(f"{prefix}ductape_webhook_auth.{part} must be a mapping")
    return envs


def _override_problems(overrides, prefix, group, known_envs, problems):
    for env, override in overrides.items():
        where = f"{prefix}overrides.{env}"
        if env not in known_envs:
            problems.append(f"{where}: no host of group '{group}' defines environment '{env}' "
                            f"(known: {_join(known_envs)})")
        if not isinstance(override, Mapping):
            problems.append(f"{where} must be a mapping with some of the keys {_join(OVERRIDE_KEYS)}")
            continue
        for key in override:
            if key not in OVERRIDE_KEYS:
                problems.append(f"{where} has the unknown key '{key}' (allowed: {_join(OVERRIDE_KEYS)})")
        if "method" in override and override["method"] not in METHODS:
            problems.append(f"{where}.method '{override['method']}' must be one of {_join(METHODS)}")
        if "mode" in override and override["mode"] not in MODES:
            problems.append(f"{where}.mode '{override['mode']}' must be 'full' or 'link'")
        if _get(override, "url", "") and _get(override, "path", ""):
            problems.append(f"{where}: set path or url, not both")
        if "auth" in override and not isinstance(override["auth"], Mapping):
            problems.append(f"{where}.auth must be a mapping with the keys {_join(AUTH_PARTS)}")


def _receiver(webhook, override, host, variables, env, name, problems):
    """The receiver URL of one webhook in one environment ('' when it has none, with a problem)."""
    prefix = f"webhook '{name}': "
    url = path = None
    if _get(override, "url", ""):
        url = override["url"]
    elif _get(override, "path", ""):
        path = override["path"]
    elif _get(webhook, "url", ""):
        url = webhook["url"]
    elif _get(webhook, "path", ""):
        path = webhook["path"]
    else:
        problems.append(f"{prefix}no receiver for environment '{env}' (host '{host}'): "
                        f"set its path or url, or overrides.{env}.url")
        return ""
    if path is not None:
        base = _get(variables, "ductape_receiver_base_url", "")
        if not base:
            problems.append(f"host '{host}': ductape_receiver_base_url is not set, and webhook '{name}' "
                            f"needs it for its path '{path}' in environment '{env}'")
            return ""
        return str(base).rstrip("/") + "/" + str(path).lstrip("/")
    if url and not _matches(URL_PATTERN, url):
        problems.append(f"{prefix}url '{url}' for environment '{env}' is not an http:// or https:// URL")
    return url


def register_plan(webhooks, group_hosts, hostvars, group="ductape_environments"):
    """The role's inputs as module calls: ``{problems, full_calls, link_calls}``.

    ``problems`` names every input error (host or webhook, variable, value; never an auth value);
    ``full_calls`` has one entry of ductape_webhook's ``webhooks`` option per webhook with all of its
    full-mode environments; ``link_calls`` one ductape_webhook_link call per webhook and link-mode
    environment; ``env_hosts`` maps each environment slug to its host.
    """
    if not isinstance(webhooks, list):
        raise AnsibleFilterError(f"register_plan: ductape_webhooks must be a list, not {type(webhooks).__name__}")
    problems: list = []
    envs = _environments(list(group_hosts or []), hostvars, group, problems)
    known_envs = list(envs)
    full_calls: list = []
    link_calls: list = []
    seen: set = set()

    for webhook in webhooks:
        if not isinstance(webhook, Mapping):
            problems.append(f"ductape_webhooks: every entry must be a mapping, not '{webhook}'")
            continue
        access_tag, webhook_tag = webhook.get("access_tag"), webhook.get("webhook_tag")
        name = f"{access_tag}/{webhook_tag}"
        prefix = f"webhook '{name}': "
        if name in seen:
            problems.append(f"{prefix}listed twice in ductape_webhooks: list each webhook once and use its "
                            "overrides for per-environment differences")
        seen.add(name)
        if _get(webhook, "path", "") and _get(webhook, "url", ""):
            problems.append(f"{prefix}set path or url, not both")
        only_envs = _get(webhook, "envs", None)
        for env in only_envs or []:
            if env not in known_envs:
                problems.append(f"{prefix}envs lists '{env}', which no host of group '{group}' defines "
                                f"(known: {_join(known_envs)})")
        overrides = _get(webhook, "overrides", None) or {}
        if not isinstance(overrides, Mapping):
            problems.append(f"{prefix}overrides must be a mapping of environment slug to url, path, method, auth, mode")
            overrides = {}
        _override_problems(overrides, prefix, group, known_envs, problems)

        call_envs: list = []
        for env, (host, variables) in envs.items():
            if only_envs is not None and env not in only_envs:
                continue
            override = overrides.get(env)
            if not isinstance(override, Mapping):
                override = {}
            mode = override.get("mode", _get(variables, "ductape_registration_mode", "full"))
            method = override.get("method", _get(webhook, "method", None) or "POST")
            url = _receiver(webhook, override, host, variables, env, name, problems)
            if mode == "link":
                link_calls.append({"access_tag": access_tag, "webhook_tag": webhook_tag,
                                   "env": env, "host": host, "url": url, "method": method})
                continue
            host_auth = _get(variables, "ductape_webhook_auth", None) or {}
            auth = merge_hash(host_auth if isinstance(host_auth, Mapping) else {},
                              _get(webhook, "auth", None) or {})
            override_auth = override.get("auth")
            auth = merge_hash(auth, override_auth if isinstance(override_auth, Mapping) else {})
            call_envs.append({"slug": env, "url": url, "method": method, "auth": auth})
        if call_envs:
            full_calls.append({"access_tag": access_tag, "webhook_tag": webhook_tag, "envs": call_envs})
    return {"problems": problems, "full_calls": full_calls, "link_calls": link_calls,
            "env_hosts": {env: host for env, (host, _variables) in envs.items()}}


def _results(registered) -> list:
    if not isinstance(registered, Mapping):
        return []
    return list(registered.get("results") or [])


def _webhooks(full_result) -> list:
    """The per-webhook outcomes of the role's one ductape_webhook task (its option ``webhooks``)."""
    if not isinstance(full_result, Mapping):
        return []
    return [outcome for outcome in full_result.get("webhooks") or [] if isinstance(outcome, Mapping)]


def register_failures(full_result) -> list:
    """One line per webhook that the ductape_webhook task failed to register: the webhook, its envs and why."""
    if not isinstance(full_result, Mapping) or not full_result.get("failed"):
        return []
    lines = []
    for outcome in _webhooks(full_result):
        if not outcome.get("failed"):
            continue
        slugs = ", ".join(str(env.get("slug")) for env in outcome.get("envs") or [])
        lines.append(f"{outcome.get('access_tag')}/{outcome.get('webhook_tag')} in {slugs}: "
                     f"{outcome.get('msg') or 'failed without a message'}")
    # Refused before any request (an option, the access key): the task's own message says why.
    return lines or [full_result.get("msg") or "ductape.webhooks.ductape_webhook failed without a message"]


def register_registrations(full_result, link_results, group_hosts, env_hosts) -> list:
    """One row per webhook and environment, in the group's host order; names, URLs, links, statuses only.

    ``paste_link`` is true where nobody registered the link at the provider: link mode, an app
    environment without a registration endpoint, or a provider registration that failed.
    """
    rows = []
    hosts = env_hosts if isinstance(env_hosts, Mapping) else {}
    for outcome in _webhooks(full_result):
        if outcome.get("failed"):
            continue
        for env in outcome.get("envs") or []:
            provider = env.get("provider_registration")
            rows.append({
                "access_tag": outcome.get("access_tag"),
                "webhook_tag": outcome.get("webhook_tag"),
                "env": env.get("slug"),
                "host": hosts.get(env.get("slug")),
                "mode": "full",
                "action": env.get("action", "changed" if outcome.get("changed") else "unchanged"),
                "uuid": env.get("uuid"),
                "link": env.get("link"),
                "url": env.get("url"),
                "method": env.get("method"),
                "provider_registration": provider,
                "paste_link": provider is None or provider.get("status", "") != "registered",
            })
    for result in _results(link_results):
        if "link" not in result:
            continue
        item = result.get("item") or {}
        rows.append({
            "access_tag": item.get("access_tag"),
            "webhook_tag": item.get("webhook_tag"),
            "env": item.get("env"),
            "host": item.get("host"),
            "mode": "link",
            "action": result.get("action", "changed" if result.get("changed") else "unchanged"),
            "uuid": result.get("uuid"),
            "link": result["link"],
            "url": item.get("url"),
            "method": item.get("method"),
            "provider_registration": None,
            "paste_link": True,
        })
    by_host: dict = {}
    for row in rows:
        by_host.setdefault(row["host"], []).append(row)
    return [row for host in dict.fromkeys(group_hosts or []) for row in by_host.get(host, [])]


def _provider_text(row) -> str:
    if row["mode"] == "link":
        return "link mode"
    provider = row["provider_registration"]
    if provider is None:
        return "no provider registration endpoint"
    if provider.get("status") == "registered":
        return "registered at the provider"
    return f"provider registration {provider.get('status')}"


def register_summary(rows, product, check_mode=False) -> list:
    """The lines a person reads at the end of the run: what happened per environment, then what to paste."""
    would = "would be " if check_mode else ""
    counts: dict = {}
    by_env: dict = {}
    for row in rows:
        counts[row["action"]] = counts.get(row["action"], 0) + 1
        by_env.setdefault(row["env"], []).append(row)
    tally = ", ".join(f"{count} {would}{action}" for action, count in counts.items())
    lines = [f"Product '{product}': {len(rows)} registration(s) in {len(by_env)} environment(s)"
             + (f": {tally}" if tally else "")
             + (" (check mode: nothing was written)" if check_mode else "")]
    for env, env_rows in by_env.items():
        lines.append(f"{env} (host {env_rows[0]['host']}):")
        lines.extend(f"  {row['access_tag']}/{row['webhook_tag']}: {would}{row['action']}, "
                     f"{row['method']} {row['url']} ({_provider_text(row)})" for row in env_rows)
    to_paste = [row for row in rows if row["paste_link"]]
    if not to_paste:
        lines.append("No link to paste: every registration is registered at its provider.")
        return lines
    lines.append("Links to paste into the providers' dashboards (nobody registered them at the provider):")
    env_width = max(len(str(row["env"])) for row in to_paste)
    names = [f"{row['access_tag']}/{row['webhook_tag']}" for row in to_paste]
    name_width = max(len(name) for name in names)
    for row, name in zip(to_paste, names):
        lines.append(f"  {str(row['env']).ljust(env_width)}  {name.ljust(name_width)}  "
                     f"{row['link'] or '(created on a real run)'}")
    return lines


class FilterModule:
    """The filters of the role ductape.webhooks.register."""

    def filters(self):
        return {
            "register_plan": register_plan,
            "register_failures": register_failures,
            "register_registrations": register_registrations,
            "register_summary": register_summary,
        }
