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

from ansible.utils.vars import merge_hash

# The role checks its inputs with the rules the modules apply (module_utils/_rules.py), under the
# role's own variable names: ductape_webhooks[3].method, not the module's webhooks[0].envs[1].method.
from ansible_collections.ductape.webhooks.plugins.module_utils._rules import (
    AUTH_PARTS,
    auth_problems,
    duplicate_problems,
    kind_of,
    method_problems,
    quoted,
    url_problems,
)

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{2,}$"
WEBHOOK_KEYS = ("access_tag", "webhook_tag", "path", "url", "method", "auth", "envs", "overrides")
OVERRIDE_KEYS = ("url", "path", "method", "auth", "mode")
MODES = ("full", "link")
WEBHOOKS = "ductape_webhooks"
HOST_AUTH = "ductape_webhook_auth"


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
            problems.append(f"{prefix}ductape_env {quoted(env)} is not a Ductape environment slug "
                            "(lowercase letters, digits, '-' or '_', 3 or more characters)")
        elif env in envs:
            problems.append(f"{prefix}ductape_env '{env}' is already the environment of host '{envs[env][0]}': "
                            "each environment needs exactly one host")
        else:
            envs[env] = (host, variables)
        mode = _get(variables, "ductape_registration_mode", "full")
        if mode not in MODES:
            problems.append(f"{prefix}ductape_registration_mode {quoted(mode)} must be 'full' or 'link'")
        base = _get(variables, "ductape_receiver_base_url", "")
        if base:
            problems.extend(prefix + problem for problem in url_problems("ductape_receiver_base_url", base))
    return envs


def _host_auth_problems(hosts, access_tags, problems):
    """Each host's ductape_webhook_auth: access tag -> auth, for the webhooks of that app only.

    The former shape (the auth parts themselves, sent with every app's webhooks) is refused, saying
    what to change, unless a webhook's access tag really is one of the part names.
    """
    for host, variables in hosts:
        host_auth = _get(variables, HOST_AUTH, None)
        if host_auth is None:
            continue
        prefix = f"host '{host}': "
        if not isinstance(host_auth, Mapping):
            problems.append(f"{prefix}{HOST_AUTH} must be a mapping of access tag to auth, for example "
                            f"{{stripe-payments: {{headers: ...}}}} (got {kind_of(host_auth)}; its value is not shown)")
            continue
        for access_tag, auth in host_auth.items():
            field = f"{prefix}{HOST_AUTH}[{quoted(str(access_tag))}]"
            if access_tag in AUTH_PARTS and access_tag not in access_tags:
                problems.append(f"{prefix}{HOST_AUTH} is keyed by access tag: it applies to the webhooks of that "
                                f"app only. Move its {quoted(access_tag)} under the access tag it belongs to, "
                                f"for example {HOST_AUTH}: {{stripe-payments: {{{access_tag}: ...}}}}")
            else:
                # An access tag that no webhook of this run has is left alone: one inventory may serve
                # several plays, each registering the webhooks of some apps.
                problems.extend(auth_problems(field, auth))


def _override_problems(overrides, field, group, known_envs, problems):
    for env, override in overrides.items():
        where = f"{field}.overrides.{env}"
        if env not in known_envs:
            problems.append(f"{where}: no host of group '{group}' defines environment {quoted(env)} "
                            f"(known: {_join(known_envs)})")
        if not isinstance(override, Mapping):
            problems.append(f"{where}: must be a mapping with some of the keys {_join(OVERRIDE_KEYS)} "
                            f"(got {kind_of(override)})")
            continue
        for key in override:
            if key not in OVERRIDE_KEYS:
                problems.append(f"{where}: unknown key {quoted(str(key))} (allowed: {_join(OVERRIDE_KEYS)})")
        if "method" in override:
            problems.extend(method_problems(f"{where}.method", override["method"]))
        if "mode" in override and override["mode"] not in MODES:
            problems.append(f"{where}.mode: must be 'full' or 'link' (got {quoted(override['mode'])})")
        if _get(override, "url", "") and _get(override, "path", ""):
            problems.append(f"{where}: set path or url, not both")
        if "auth" in override:
            problems.extend(auth_problems(f"{where}.auth", override["auth"]))


class _EnvSettings:
    """The variables of one environment's host that the plan reads for every webhook, read once."""

    __slots__ = ("mode", "receiver_base_url", "webhook_auth")

    def __init__(self, variables):
        self.mode = _get(variables, "ductape_registration_mode", "full")
        self.receiver_base_url = _get(variables, "ductape_receiver_base_url", "")
        self.webhook_auth = _get(variables, HOST_AUTH, None)


def _receiver(webhook, override, host, base, env, field, problems):
    """The receiver URL of one webhook in one environment ('' when it has none, with a problem)."""
    url = path = None
    where = field
    if _get(override, "url", ""):
        url, where = override["url"], f"{field}.overrides.{env}.url"
    elif _get(override, "path", ""):
        path = override["path"]
    elif _get(webhook, "url", ""):
        url, where = webhook["url"], f"{field}.url"
    elif _get(webhook, "path", ""):
        path = webhook["path"]
    else:
        problems.append(f"{field}: no receiver for environment '{env}' (host '{host}'): "
                        f"set its path or url, or overrides.{env}.url")
        return ""
    if path is not None:
        if not base:
            problems.append(f"host '{host}': ductape_receiver_base_url is not set, and {field} "
                            f"needs it for its path {quoted(path)} in environment '{env}'")
            return ""
        return str(base).rstrip("/") + "/" + str(path).lstrip("/")
    problems.extend(url_problems(where, url, context=f" for environment '{env}'"))
    return url


def _webhook_problems(webhook, field, group, known_envs, problems):
    """The problems of one entry of ductape_webhooks, each naming it by index and field."""
    for key in webhook:
        if key not in WEBHOOK_KEYS:
            problems.append(f"{field}: unknown key {quoted(str(key))} (allowed: {_join(WEBHOOK_KEYS)})")
    for key in ("access_tag", "webhook_tag"):
        value = webhook.get(key)
        if value is None or value == "":
            problems.append(f"{field}.{key}: is required")
        elif not isinstance(value, str):
            problems.append(f"{field}.{key}: must be a string (got {quoted(value) if isinstance(value, (int, float)) else kind_of(value)})")
    if _get(webhook, "path", "") and _get(webhook, "url", ""):
        problems.append(f"{field}: set path or url, not both")
    if "method" in webhook and webhook["method"] is not None:
        problems.extend(method_problems(f"{field}.method", webhook["method"]))
    problems.extend(auth_problems(f"{field}.auth", _get(webhook, "auth", None)))
    only_envs = _get(webhook, "envs", None)
    if only_envs is not None and not isinstance(only_envs, list):
        problems.append(f"{field}.envs: must be a list of environment slugs (got {kind_of(only_envs)})")
        only_envs = []
    for index, env in enumerate(only_envs or []):
        if env not in known_envs:
            problems.append(f"{field}.envs[{index}]: {quoted(env)} is not an environment that a host of group "
                            f"'{group}' defines (known: {_join(known_envs)})")
    overrides = _get(webhook, "overrides", None) or {}
    if not isinstance(overrides, Mapping):
        problems.append(f"{field}.overrides: must be a mapping of environment slug to url, path, method, auth, mode "
                        f"(got {kind_of(overrides)})")
        overrides = {}
    _override_problems(overrides, field, group, known_envs, problems)
    return only_envs, overrides


def register_plan(webhooks, group_hosts, hostvars, group="ductape_environments"):
    """The role's inputs as module calls: ``{problems, full_calls, link_calls, env_hosts}``.

    ``problems`` names every input error (``ductape_webhooks[3].method: ...``, or the host and its
    variable; never an auth value); ``full_calls`` has one entry of ductape_webhook's ``webhooks``
    option per webhook with all of its full-mode environments, ``link_calls`` one entry of
    ductape_webhook_link's ``webhooks`` option per webhook with its link-mode environments;
    ``env_hosts`` maps each environment slug to its host; ``prune_keep`` holds every link-mode
    environment as ductape_webhook's ``prune_keep`` option wants it (declared, so never pruned: the
    engine decides what pruning touches, module_utils/_engine.pruned_states).
    """
    problems: list = []
    if not isinstance(webhooks, list):
        problems.append(f"{WEBHOOKS}: must be a list of webhooks (got {kind_of(webhooks)})")
        webhooks = []
    envs = _environments(list(group_hosts or []), hostvars, group, problems)
    known_envs = list(envs)
    entries = [(index, webhook) for index, webhook in enumerate(webhooks) if isinstance(webhook, Mapping)]
    for index, webhook in enumerate(webhooks):
        if not isinstance(webhook, Mapping):
            problems.append(f"{WEBHOOKS}[{index}]: must be a mapping with access_tag, webhook_tag and a receiver "
                            f"(got {kind_of(webhook)})")
    _host_auth_problems([(host, _host_vars(hostvars, host)) for host in group_hosts or []],
                        {webhook.get("access_tag") for _index, webhook in entries}, problems)
    problems.extend(duplicate_problems(
        [f"{webhook.get('access_tag')}/{webhook.get('webhook_tag')}" if isinstance(webhook, Mapping) else None
         for webhook in webhooks], lambda index: f"{WEBHOOKS}[{index}]", "webhook"))

    full_calls: list = []
    link_calls: list = []
    # Each host's variables are read once, not once per webhook: a host variable is templated on every read.
    env_settings = {env: _EnvSettings(variables) for env, (_host, variables) in envs.items()}
    for index, webhook in entries:
        field = f"{WEBHOOKS}[{index}]"
        access_tag, webhook_tag = webhook.get("access_tag"), webhook.get("webhook_tag")
        only_envs, overrides = _webhook_problems(webhook, field, group, known_envs, problems)
        webhook_method = _get(webhook, "method", None) or "POST"
        webhook_auth = _get(webhook, "auth", None)
        webhook_auth = webhook_auth if isinstance(webhook_auth, Mapping) else {}
        full_envs: list = []
        link_envs: list = []
        for env, (host, _variables) in envs.items():
            if only_envs is not None and env not in only_envs:
                continue
            settings = env_settings[env]
            override = overrides.get(env)
            if not isinstance(override, Mapping):
                override = {}
            mode = override.get("mode", settings.mode)
            method = override.get("method", webhook_method)
            url = _receiver(webhook, override, host, settings.receiver_base_url, env, field, problems)
            if mode == "link":
                link_envs.append({"slug": env, "url": url, "method": method})
                continue
            # The host's auth of this webhook's app only, under the webhook's, under the override's.
            host_auth = _get(settings.webhook_auth, access_tag, None)
            auth = merge_hash(host_auth if isinstance(host_auth, Mapping) else {}, webhook_auth)
            override_auth = override.get("auth")
            auth = merge_hash(auth, override_auth if isinstance(override_auth, Mapping) else {})
            full_envs.append({"slug": env, "url": url, "method": method, "auth": auth})
        if full_envs:
            full_calls.append({"access_tag": access_tag, "webhook_tag": webhook_tag, "envs": full_envs})
        if link_envs:
            link_calls.append({"access_tag": access_tag, "webhook_tag": webhook_tag, "envs": link_envs})
    return {"problems": problems, "full_calls": full_calls, "link_calls": link_calls,
            "env_hosts": {env: host for env, (host, _variables) in envs.items()},
            "prune_keep": [{"access_tag": call["access_tag"], "webhook_tag": call["webhook_tag"],
                            "envs": [env["slug"] for env in call["envs"]]} for call in link_calls]}


def _webhooks(full_result) -> list:
    """The per-webhook outcomes of one of the role's module tasks (their option ``webhooks``)."""
    if not isinstance(full_result, Mapping):
        return []
    return [outcome for outcome in full_result.get("webhooks") or [] if isinstance(outcome, Mapping)]


def register_failures(full_result, link_result=None) -> list:
    """One line per webhook that the role's two module tasks failed to register: the webhook, its envs, why."""
    lines = []
    for result, task in ((full_result, "ductape.webhooks.ductape_webhook"),
                         (link_result, "ductape.webhooks.ductape_webhook_link")):
        if not isinstance(result, Mapping) or not result.get("failed"):
            continue
        found = []
        for outcome in _webhooks(result):
            if not outcome.get("failed"):
                continue
            slugs = ", ".join(str(env.get("slug")) for env in outcome.get("envs") or [])
            found.append(f"{outcome.get('access_tag')}/{outcome.get('webhook_tag')} in {slugs}: "
                         f"{outcome.get('msg') or 'failed without a message'}")
        # Refused before any request (an option, the access key): the task's own message says why.
        lines.extend(found or [result.get("msg") or f"{task} failed without a message"])
    return lines


def register_registrations(full_result, link_results, group_hosts, env_hosts) -> list:
    """One row per webhook and environment, in the group's host order; names, URLs, links, statuses only.

    ``paste_link`` is true where nobody registered the link at the provider: link mode, an app
    environment without a registration endpoint, or a provider registration that failed. Rows of
    registrations that pruning removed or disabled (``pruned``) never ask for a paste; those of an env no
    host defines any more come last.
    """
    hosts = env_hosts if isinstance(env_hosts, Mapping) else {}
    rows = [_registration_row(webhook, env, hosts, mode)
            for mode, results in (("full", _webhooks(full_result)), ("link", _webhooks(link_results)))
            for outcome in results if not outcome.get("failed")
            # the outcome's own keys read once for all of its envs (each read of a variable is templated)
            for webhook in (_OutcomeKeys(outcome),)
            for env in outcome.get("envs") or []]
    by_host: dict = {}
    for row in rows:
        by_host.setdefault(row["host"], []).append(row)
    ordered = list(dict.fromkeys(group_hosts or []))
    return ([row for host in ordered for row in by_host.get(host, [])]
            + [row for row in rows if row["host"] not in ordered])


class _OutcomeKeys:
    """What every row of one webhook's outcome repeats."""

    __slots__ = ("access_tag", "webhook_tag", "changed", "pruned")

    def __init__(self, outcome):
        self.access_tag = outcome.get("access_tag")
        self.webhook_tag = outcome.get("webhook_tag")
        self.changed = outcome.get("changed")
        self.pruned = bool(outcome.get("pruned"))


def _registration_row(outcome, env, hosts, mode) -> dict:
    """One row of register_registrations: one env of one webhook's outcome in full or link mode."""
    # a link-mode env never reaches the provider: its link is always for a person to paste
    provider = env.get("provider_registration") if mode == "full" else None
    pruned = outcome.pruned
    return {
        "access_tag": outcome.access_tag,
        "webhook_tag": outcome.webhook_tag,
        "env": env.get("slug"),
        "host": hosts.get(env.get("slug")),
        "mode": mode,
        "action": env.get("action", "changed" if outcome.changed else "unchanged"),
        "uuid": env.get("uuid"),
        "link": env.get("link"),
        "url": env.get("url"),
        "method": env.get("method"),
        "provider_registration": provider,
        # false where the API does not say whether the provider holds the link (the hosted Ductape)
        "provider_reported": mode == "link" or env.get("provider_reported", True) is not False,
        "paste_link": not pruned and (mode == "link" or provider is None or provider.get("status", "") != "registered"),
        "pruned": pruned,
    }


def _provider_text(row) -> str:
    if row.get("pruned"):
        return "no longer declared in the inventory"
    if row["mode"] == "link":
        return "link mode"
    provider = row["provider_registration"]
    if provider is None and row.get("provider_reported") is False:
        return "the API does not say whether the provider holds the link"
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
        host = env_rows[0]["host"]
        lines.append(f"{env} (host {host}):" if host is not None else f"{env} (no host of the inventory):")
        lines.extend(f"  {row['access_tag']}/{row['webhook_tag']}: {would}{row['action']}, "
                     f"{row['method']} {row['url']} ({_provider_text(row)})" for row in env_rows)
    to_paste = [row for row in rows if row["paste_link"]]
    if not to_paste:
        lines.append("No link to paste: every registration is registered at its provider.")
        return lines
    unreported = any(row.get("provider_reported") is False for row in to_paste)
    lines.append("Links to paste into the providers' dashboards (nobody registered them at the provider"
                 + (", or the API does not say" if unreported else "") + "):")
    env_width = max(len(str(row["env"])) for row in to_paste)
    names = [f"{row['access_tag']}/{row['webhook_tag']}" for row in to_paste]
    name_width = max(len(name) for name in names)
    for row, name in zip(to_paste, names):
        lines.append(f"  {str(row['env']).ljust(env_width)}  {name.ljust(name_width)}  {_link_text(row, check_mode)}")
    return lines


def _link_text(row, check_mode) -> str:
    if row["link"]:
        return row["link"]
    if check_mode and row["action"] == "created":
        return "(created on a real run)"
    # The server's answers carry no link for this registration (the hosted Ductape's register and listing).
    return "(the API's answers give no link for it)"


class FilterModule:
    """The filters of the role ductape.webhooks.register."""

    def filters(self):
        return {
            "register_plan": register_plan,
            "register_failures": register_failures,
            "register_registrations": register_registrations,
            "register_summary": register_summary,
        }
