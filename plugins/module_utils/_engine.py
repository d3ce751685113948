# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one converge engine: desired webhook states in, one outcome per webhook and env out, in input order.

Every module is a thin caller: ``ductape_webhook`` (single form = a batch of one, and the batch form),
``ductape_webhook_link`` (envs that only need their link, single and batch form), and the two info
modules, which use the same reads (``read_webhooks``) and rules (``_rules``).

How it reads and writes, at a distance from the API:

- Reads. Per access tag of the task: when it has more than ``LISTING_THRESHOLD`` webhooks, one paged
  listing of the app (``limit`` = PAGE_SIZE, 250: one request per 250 webhooks the app defines);
  otherwise one filtered read (``webhook_tag=``) per webhook, sent concurrently. A filtered read is one
  short page, and up to LISTING_THRESHOLD of them cost one round trip at the default parallelism,
  without transferring an app's whole listing; above it, the listing is fewer requests for any app
  of up to ``PAGE_SIZE * LISTING_THRESHOLD`` webhooks, and rarely slower.
- Writes. Independent writes (one register request per webhook, one generate-link per link env, one
  DELETE per removed env) go out concurrently, at most ``parallelism`` at a time, on one client whose
  connection pool is sized to it. A 429 pauses every worker (the client's shared "not before" time).
  ``parallelism: 1`` sends everything in turn, in input order.
- Failures. A webhook whose read or write fails does not stop the others, except an error that
  concerns every call (the API cannot be reached or does not answer, or refuses the key or the
  product): the webhooks not yet started are then reported "not attempted". Anything written counts
  as a change, also when the webhook fails afterwards (an API 502 after the registration was stored,
  a later DELETE failing).

Nothing in an outcome holds an auth value: desired auth is only digested and masked here.

A server that answers less than ductape-local (the hosted Ductape: no ``auth_digest``, no ``link`` in
the listing) is still compared honestly. Url and method are compared as always. Auth that cannot be
compared is never "unchanged" in silence: with ``auth_unknown: changed`` (the default) the env is
updated and reported changed; with ``auth_unknown: send`` the registration is sent again on every run
and reported changed only when url or method differ. Either way the env's result says
``auth_compared: false`` and the task warns. A link env whose listing row carries no link asks the
server for it again (generate-link, an upsert that changes nothing), since a link is never made here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.ductape.webhooks.plugins.module_utils._rules import (
    MASK,
    auth_problems,
    duplicate_problems,
    env_exists_problems,
    mask_url,
    mask_urls_in_text,
    method_problems,
    quoted,
    slug_problems,
    url_problems,
    webhook_tag_problems,
)
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import (
    AUTH_UNKNOWN_CHANGED,
    AUTH_UNKNOWN_SEND,
    DuctapeApiError,
    auth_matches,
    mask_auth,
    url_matches,
)

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
DELETED = "deleted"
ABSENT = "absent"
WRITING_ACTIONS = frozenset((CREATED, UPDATED, DELETED))

# Filtered reads for up to this many webhooks of one access tag in a task, the app's listing above.
LISTING_THRESHOLD = 4
DEFAULT_PARALLELISM = 8
MAX_PARALLELISM = 64


def parallelism_problems(value, field="parallelism"):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARALLELISM:
        return ["%s: must be a whole number from 1 to %d (got %s)" % (field, MAX_PARALLELISM, quoted(value))]
    return []


class EnvState:
    """One env of a desired webhook state. ``link_only``: only its link is needed (generate-link, no auth).

    ``field`` is where the env was given (``envs[0]``, ``webhooks[2].envs[1]``), or "" for the link
    module's single form, whose options are top level (``env``, ``url``, ``method``).
    """

    def __init__(self, slug, url=None, method=None, auth=None, link_only=False, field=""):
        self.slug = slug
        self.url = url
        self.method = (method or "POST").upper() if isinstance(method, str) or method is None else method
        self.auth = auth  # as given, so that check_states sees a value of the wrong shape
        self.link_only = link_only
        self.field = field

    def field_of(self, name):
        if self.field:
            return "%s.%s" % (self.field, name)
        return {"slug": "env"}.get(name, name)

    def desired(self):
        """What the register request sends for this env."""
        return dict(slug=self.slug, url=self.url, method=self.method, auth=self.auth or {})


class WebhookState:
    def __init__(self, access_tag, webhook_tag, envs, field=""):
        self.access_tag = access_tag
        self.webhook_tag = webhook_tag
        self.envs = envs
        self.field = field  # "webhooks[2]" in a batch form, "" in a single form

    @property
    def name(self):
        return "%s/%s" % (self.access_tag, self.webhook_tag)


class EnvOutcome:
    """What happened (or, in check mode, would happen) to one env."""

    def __init__(self, state, action=None, current=None, answer=None, auth_changed=False, auth_unknown=False,
                 resend=False):
        self.state = state
        self.action = action
        self.current = current
        self.answer = answer
        self.auth_changed = auth_changed
        # The stored auth could not be compared (the server gives no digest).
        self.auth_unknown = auth_unknown
        # Sent although unchanged: auth that cannot be compared (auth_unknown: send), or a link to read.
        self.resend = resend

    @property
    def slug(self):
        return self.state.slug


class Outcome:
    """One webhook's outcome: its envs in input order, and why it failed, if it did."""

    def __init__(self, state, envs, msg=None):
        self.state = state
        self.envs = envs
        self.msg = msg

    @property
    def failed(self):
        return self.msg is not None

    @property
    def changed(self):
        return any(env.action in WRITING_ACTIONS for env in self.envs)


# From a module's parameters.


def form_problem(params, single_form):
    """The message when neither form, or only part of the single one, is given."""
    if params.get("webhooks") is not None:
        return None
    missing = [option for option in single_form if params.get(option) is None]
    if len(missing) == len(single_form):
        return ("one of the two forms is required: %s and %s (one webhook), or webhooks (several)"
                % (", ".join(single_form[:-1]), single_form[-1]))
    if missing:
        return "missing required arguments: %s" % ", ".join(sorted(missing))
    return None


def webhook_states(params, link_only):
    """[WebhookState] of a module's single form (a batch of one) or batch form (option ``webhooks``).

    The link module's single form has the top-level options env, url and method.
    """
    if params.get("webhooks") is not None:
        return [WebhookState(item["access_tag"], item["webhook_tag"],
                             [_env_state(env, link_only, "webhooks[%d].envs[%d]" % (index, position))
                              for position, env in enumerate(item["envs"] or [])],
                             field="webhooks[%d]" % index)
                for index, item in enumerate(params["webhooks"])]
    if params.get("envs") is None and params.get("env") is not None:
        envs = [EnvState(params["env"], params.get("url"), params.get("method"), link_only=True)]
    else:
        envs = [_env_state(env, link_only, "envs[%d]" % position) for position, env in enumerate(params["envs"] or [])]
    return [WebhookState(params["access_tag"], params["webhook_tag"], envs)]


def _env_state(env, link_only, field):
    return EnvState(env.get("slug"), env.get("url"), env.get("method"), None if link_only else env.get("auth"),
                    link_only=link_only, field=field)


# Checking before any request.


def check_states(webhooks, state):
    """Every problem of every env of every webhook, each naming its field, before anything is sent."""
    problems = []
    if any(webhook.field for webhook in webhooks):
        problems.extend(duplicate_problems([webhook.name for webhook in webhooks],
                                           lambda index: webhooks[index].field, "webhook"))
    for webhook in webhooks:
        if not webhook.envs:
            problems.append("%s: at least one env is needed (got an empty list)"
                            % ("%s.envs" % webhook.field if webhook.field else "envs"))
            continue
        for env in webhook.envs:
            problems.extend(slug_problems(env.field_of("slug"), env.slug))
        problems.extend(duplicate_problems(
            [env.slug if isinstance(env.slug, str) else None for env in webhook.envs],
            lambda index, envs=webhook.envs: envs[index].field_of("slug"), "env"))
        for env in webhook.envs:
            context = " in env %s" % quoted(env.slug)
            problems.extend(auth_problems(env.field_of("auth"), env.auth, context))
            if state == "present":
                problems.extend(method_problems(env.field_of("method"), env.method, context))
                problems.extend(url_problems(env.field_of("url"), env.url, context))
    return problems


# Reads.


class _Stop:
    """The first error that concerns every call; later work is not attempted."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reason = None

    def note(self, name, error):
        if error.concerns_every_call:
            with self._lock:
                if self.reason is None:
                    self.reason = ("not attempted: the call for %s failed in a way that concerns every webhook "
                                   "(the API cannot be reached or does not answer, or refuses the key or the "
                                   "product)" % name)


def _run_all(jobs, parallelism):
    """Run the callables ``jobs``; their results in the jobs' order. One thread when parallelism is 1."""
    if parallelism <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=min(parallelism, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [future.result() for future in futures]


class Reading:
    """What the reads found for one webhook: its listing entry (or None), the product's envs, the app's tags."""

    def __init__(self, webhook=None, product_envs=None, app_tags=None, error=None):
        self.webhook = webhook
        self.product_envs = product_envs
        self.app_tags = app_tags
        self.error = error


def read_webhooks(client, product, wanted, parallelism, stop=None):
    """{(access_tag, webhook_tag): Reading} for the ``wanted`` pairs, by the read rule of this module."""
    stop = stop or _Stop()
    by_access_tag = {}
    for access_tag, webhook_tag in wanted:
        tags = by_access_tag.setdefault(access_tag, [])
        if webhook_tag not in tags:
            tags.append(webhook_tag)
    jobs = []
    for access_tag, tags in by_access_tag.items():
        if len(tags) > LISTING_THRESHOLD:
            jobs.append(lambda access_tag=access_tag, tags=tags: _read_listing(client, product, access_tag, tags, stop))
        else:
            jobs.extend(lambda access_tag=access_tag, tag=tag: _read_one(client, product, access_tag, tag, stop)
                        for tag in tags)
    found = {}
    for readings in _run_all(jobs, parallelism):
        found.update(readings)
    return found


def _read_listing(client, product, access_tag, tags, stop):
    if stop.reason:
        return dict(((access_tag, tag), Reading(error=stop.reason)) for tag in tags)
    try:
        webhooks, product_envs = client.list_webhooks(product, access_tag)
    except DuctapeApiError as error:
        stop.note("%s/%s" % (access_tag, tags[0]), error)
        return dict(((access_tag, tag), Reading(error=str(error))) for tag in tags)
    by_tag = dict((webhook.get("tag"), webhook) for webhook in webhooks)
    app_tags = sorted(tag for tag in by_tag if isinstance(tag, str))
    return dict(((access_tag, tag), Reading(by_tag.get(tag), product_envs, app_tags)) for tag in tags)


def _read_one(client, product, access_tag, tag, stop):
    if stop.reason:
        return {(access_tag, tag): Reading(error=stop.reason)}
    try:
        webhooks, product_envs = client.list_webhooks(product, access_tag, tag)
        if webhooks:
            return {(access_tag, tag): Reading(webhooks[0], product_envs)}
        # Not one of the app's webhooks: the whole listing says which are (the error path only).
        everything, product_envs = client.list_webhooks(product, access_tag)
    except DuctapeApiError as error:
        stop.note("%s/%s" % (access_tag, tag), error)
        return {(access_tag, tag): Reading(error=str(error))}
    app_tags = sorted(webhook.get("tag") for webhook in everything if isinstance(webhook.get("tag"), str))
    return {(access_tag, tag): Reading(None, product_envs, app_tags)}


def registrations_by_env(webhook):
    """{product env slug: registration} of one WEBHOOK of the listing."""
    found = {}
    for registration in (webhook or {}).get("config") or []:
        if isinstance(registration, dict) and registration.get("productEnv"):
            found[registration["productEnv"]] = registration
    return found


# Deciding.


def provider_left_undone(registration):
    """True when the env has a provider registration endpoint and the provider has not taken the link."""
    provider = (registration or {}).get("provider_registration")
    return isinstance(provider, dict) and provider.get("status") != "registered"


def auth_comparable(env, current, state):
    """False when the env's stored auth matters and cannot be compared: no digest, or one unreadable."""
    if state == "absent" or current is None or env.link_only:
        return True
    return auth_matches(env.auth, current.get("auth_digest")) is not None


def decide(env, current, state, auth_unknown=AUTH_UNKNOWN_CHANGED):
    """(action, auth_changed) for one env. ``auth_unknown`` is what auth that cannot be compared counts as:
    ``changed`` (an update), or ``send`` (sent again by the caller, a change only if url or method differ)."""
    if state == "absent":
        return (DELETED if current else ABSENT), False
    if current is None:
        return CREATED, False
    if env.link_only:
        same = url_matches(env.url, current) and current.get("method") == env.method
        return (UNCHANGED if same else UPDATED), False
    verdict = auth_matches(env.auth, current.get("auth_digest"))
    auth_changed = verdict is False or (verdict is None and auth_unknown != AUTH_UNKNOWN_SEND)
    if not url_matches(env.url, current) or current.get("method") != env.method or auth_changed:
        return UPDATED, auth_changed
    if provider_left_undone(current):
        # The provider does not hold the link yet (refused, or the server stopped mid-call): sending
        # the same registration again makes the server retry the provider.
        return UPDATED, False
    return UNCHANGED, False


def _plan(webhook, reading, product, state, auth_unknown=AUTH_UNKNOWN_CHANGED):
    """[EnvOutcome] with the planned actions, or a failure message (unknown webhook, unknown env)."""
    if reading.error:
        return None, reading.error
    tag_field = "%s.webhook_tag" % webhook.field if webhook.field else "webhook_tag"
    if reading.webhook is None:
        problems = webhook_tag_problems(tag_field, webhook.webhook_tag, webhook.access_tag, reading.app_tags or [])
        return None, "; ".join(problems)
    problems = []
    for env in webhook.envs:
        problems.extend(env_exists_problems(env.field_of("slug"), env.slug, product, reading.product_envs))
    if problems:
        return None, "; ".join(problems)
    current_by_env = registrations_by_env(reading.webhook)
    planned = []
    for env in webhook.envs:
        current = current_by_env.get(env.slug)
        action, auth_changed = decide(env, current, state, auth_unknown)
        unknown = not auth_comparable(env, current, state)
        resend = action == UNCHANGED and (unknown or (env.link_only and not (current or {}).get("link")))
        planned.append(EnvOutcome(env, action, current, None, auth_changed, unknown, resend))
    return planned, None


# Writing.


class _Write:
    """One independent write: the envs it carries, and what became of them."""

    def __init__(self, index, envs, send):
        self.index = index
        self.envs = envs
        self.send = send
        self.error = None


def _writes_of(index, webhook, planned, client, product):
    writes = []
    to_register = [env for env in planned
                   if (env.action in (CREATED, UPDATED) or env.resend) and not env.state.link_only]
    if to_register:
        def register(envs=to_register):
            answer = client.register(product, webhook.access_tag, webhook.webhook_tag,
                                     [env.state.desired() for env in envs])
            by_env = dict((entry.get("productEnv"), entry) for entry in answer.get("envs") or []
                          if isinstance(entry, dict))
            for env in envs:
                env.answer = by_env.get(env.slug)
        writes.append(_Write(index, to_register, register))
    for env in planned:
        if (env.action in (CREATED, UPDATED) or env.resend) and env.state.link_only:
            def link(env=env):
                env.answer = client.generate_link(product, webhook.access_tag, webhook.webhook_tag, env.slug,
                                                  env.state.url, env.state.method)
            writes.append(_Write(index, [env], link))
        elif env.action == DELETED:
            def delete(env=env):
                env.answer = client.delete_registration(env.current["uuid"], env=env.slug)
            writes.append(_Write(index, [env], delete))
    return writes


def _run_write(write, name, stop):
    if stop.reason:
        write.error = stop.reason
        for env in write.envs:
            env.action = None
        return write
    try:
        write.send()
    except DuctapeApiError as error:
        write.error = str(error)
        stop.note(name, error)
        if not error.provider_refused:
            # Not written. An API 502 is: the registrations were stored, then the provider refused.
            for env in write.envs:
                env.action = None
    return write


def converge(client, product, webhooks, state, check_mode, parallelism=DEFAULT_PARALLELISM):
    """[Outcome] for ``webhooks`` ([WebhookState], checked with check_states first), in input order."""
    stop = _Stop()
    auth_unknown = getattr(client, "auth_unknown", AUTH_UNKNOWN_CHANGED)
    readings = read_webhooks(client, product, [(w.access_tag, w.webhook_tag) for w in webhooks], parallelism, stop)
    outcomes = []
    writes = []
    for index, webhook in enumerate(webhooks):
        planned, problem = _plan(webhook, readings[(webhook.access_tag, webhook.webhook_tag)], product, state,
                                 auth_unknown)
        if problem is not None:
            outcomes.append(Outcome(webhook, [EnvOutcome(env) for env in webhook.envs], problem))
            continue
        outcomes.append(Outcome(webhook, planned))
        if not check_mode:
            writes.extend(_writes_of(index, webhook, planned, client, product))
    _warn_auth_unknown(client, outcomes, auth_unknown, check_mode)
    for write in _run_all([lambda write=write: _run_write(write, webhooks[write.index].name, stop)
                           for write in writes], parallelism):
        if write.error is not None:
            outcome = outcomes[write.index]
            outcome.msg = write.error if outcome.msg is None else "%s; %s" % (outcome.msg, write.error)
    return outcomes


def _warn_auth_unknown(client, outcomes, auth_unknown, check_mode):
    """One warning naming every env whose stored auth could not be compared, and what was done about it."""
    named = ["%s in %s" % (outcome.state.name, ", ".join(env.slug for env in outcome.envs if env.auth_unknown))
             for outcome in outcomes if any(env.auth_unknown for env in outcome.envs)]
    warn = getattr(client, "warn", None)
    if not named or warn is None:
        return
    if auth_unknown == AUTH_UNKNOWN_SEND:
        done = ("%s sent again, and counted as changed only where url or method differ (auth_unknown: send)"
                % ("it would be" if check_mode else "it is"))
    else:
        done = ("%s reported as changed (auth_unknown: changed; with auth_unknown: send it is sent on every run "
                "and only url or method changes count)" % ("it would be sent again and is" if check_mode
                                                           else "it is sent again and"))
    warn("the Ductape API gives no auth digest for %s, so the auth stored there cannot be compared with "
         "the auth given: %s" % ("; ".join(named), done))


# Reporting: one result per env, one diff builder, one failure report.


def public_registration(registration):
    """A registration as a module returns it (C1, C2): no digest, ``has_auth`` and the masked keys, url masked."""
    shown = dict((key, value) for key, value in registration.items() if key not in ("auth_digest", "url_digest"))
    if "auth" not in registration:
        # The server does not show the stored auth (the hosted Ductape): unknown, not "none".
        shown.update(auth=None, has_auth=None)
    else:
        auth = registration.get("auth") if isinstance(registration.get("auth"), dict) else {}
        shown["auth"] = dict((part, dict((key, MASK) for key in values)) for part, values in auth.items()
                             if isinstance(values, dict) and values)
        shown["has_auth"] = bool(shown["auth"])
    if "url" in shown:
        shown["url"] = mask_url(shown["url"])
    return shown


def public_webhook(webhook, env=None):
    """A webhook of the listing as the info module returns it; only the registrations in ``env`` if given."""
    config = [public_registration(registration) for registration in webhook.get("config") or []
              if isinstance(registration, dict) and (env is None or registration.get("productEnv") == env)]
    return dict(webhook, config=config)


def mask_urls_deep(value):
    """Every URL inside a value (delivery records, texts) masked per C2."""
    if isinstance(value, dict):
        return dict((key, mask_urls_deep(item)) for key, item in value.items())
    if isinstance(value, list):
        return [mask_urls_deep(item) for item in value]
    if isinstance(value, str):
        return mask_urls_in_text(value)
    return value


def env_result(env):
    """One env as a result shows it: names, links and statuses only, never an auth value; the url masked."""
    source = env.answer or env.current or {}
    shown = env.answer or (env.state.desired() if env.action in (CREATED, UPDATED) else None) or source
    shown = dict(
        slug=env.slug,
        action=env.action,
        uuid=source.get("uuid"),
        link=source.get("link"),
        url=mask_url(shown.get("url") if shown.get("url") is not None else env.state.url),
        method=shown.get("method") or (env.state.method if env.state.url else None),
        provider_registration=source.get("provider_registration"),
    )
    if env.auth_unknown:
        shown["auth_compared"] = False
    return shown


def _view(registration, masked_auth, auth_changed, link_only, auth_unknown=False):
    if registration is None:
        return None
    view = dict(url=mask_url(registration.get("url")), method=registration.get("method"))
    if link_only or masked_auth is None:
        return view  # masked_auth None: the server does not show the stored auth's keys
    auth = masked_auth
    if auth_changed:
        # The masks would look the same before and after; say that a secret changed without showing it.
        note = " (not comparable: sent again)" if auth_unknown else " (changed)"
        auth = dict((part, dict((key, MASK + note) for key in values)) for part, values in auth.items())
        auth = auth or {"changed": "(all auth removed)"}
    view["auth"] = auth
    return view


def _changed_keys(env):
    """The keys an update changes; None (all of them) for a create, a delete, or an update that only sends
    the same registration again (a provider that does not hold the link yet)."""
    if env.action != UPDATED or env.current is None:
        return None
    keys = [key for key, changed in (
        ("url", not url_matches(env.state.url, env.current)),
        ("method", env.current.get("method") != env.state.method),
        ("auth", env.auth_changed and not env.state.link_only)) if changed]
    return keys or None


def _only(view, keys):
    return view if view is None or keys is None else dict((key, view[key]) for key in keys if key in view)


def diff_of(outcome):
    """{before: {env: ...}, after: {env: ...}}: the keys that change of the envs that write (or would), masked."""
    before, after = {}, {}
    for env in outcome.envs:
        if env.action not in WRITING_ACTIONS:
            continue
        link_only = env.state.link_only
        keys = _changed_keys(env)
        if env.current is not None:
            stored_auth = env.current.get("auth") or ({} if "auth" in env.current or not env.auth_unknown else None)
            before[env.slug] = _only(_view(env.current, stored_auth, False, link_only), keys)
        if env.action != DELETED:
            after[env.slug] = _only(_view(env.state.desired(), mask_auth(env.state.auth), env.auth_changed,
                                          link_only, env.auth_unknown), keys)
    return dict(before=before, after=after)


def batch_report(outcomes, want_diff, link_form=False):
    """The result of a batch form: every webhook in input order, the task failing naming each failed one."""
    entries = []
    before, after = {}, {}
    for outcome in outcomes:
        entry = dict(access_tag=outcome.state.access_tag, webhook_tag=outcome.state.webhook_tag,
                     changed=outcome.changed, envs=[env_result(env) for env in outcome.envs])
        if outcome.failed:
            entry.update(failed=True, msg=outcome.msg)
        entries.append(entry)
        if want_diff:
            diff = diff_of(outcome)
            if diff["before"]:
                before[outcome.state.name] = diff["before"]
            if diff["after"]:
                after[outcome.state.name] = diff["after"]
    result = dict(changed=any(outcome.changed for outcome in outcomes), webhooks=entries)
    if want_diff:
        result["diff"] = dict(before=before, after=after)
    failed = [outcome for outcome in outcomes if outcome.failed]
    if failed:
        result.update(failed=True, msg="%d of %d webhooks failed: %s" % (
            len(failed), len(outcomes), "; ".join("%s: %s" % (outcome.state.name, outcome.msg) for outcome in failed)))
    return result


def single_report(outcome, want_diff):
    """The result of a single form: its envs; a failure still says what was written."""
    result = dict(changed=outcome.changed, envs=[env_result(env) for env in outcome.envs])
    if want_diff:
        result["diff"] = diff_of(outcome)
    if outcome.failed:
        result.update(failed=True, msg=outcome.msg)
    return result


def link_report(outcome, want_diff):
    """The result of the link module's single form: the one env's link, flat."""
    [env] = outcome.envs
    shown = env_result(env)
    result = dict(changed=outcome.changed, action=env.action, link=shown["link"], uuid=shown["uuid"],
                  url=shown["url"], method=shown["method"])
    if want_diff:
        result["diff"] = diff_of(outcome)
    if outcome.failed:
        result.update(failed=True, msg=outcome.msg)
    return result


def refusal(problems, prefix=""):
    """The failure of a task refused before any request: nothing was written."""
    return dict(failed=True, changed=False, msg=prefix + "; ".join(problems))
