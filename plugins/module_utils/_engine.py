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
- Lifecycle (issue 13). ``state: disabled`` and back to ``present``, and declarative rotation
  (``Rotation``: a desired link generation, a maximum link age), are steps planned in the same decision
  (``plan_env``) as the registration's own write and run after it, in the same worker, in order:
  enable or disable, then the rotations. Pruning (``Prune``) reads the whole listing of every access
  tag of the task and plans ``absent`` or ``disabled`` for each registration that the task neither
  lists nor keeps, through the same decision.
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

import datetime
import re
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
# The action of an env whose registration itself is not written but whose lifecycle step is.
ENABLED = "enabled"
DISABLED = "disabled"
ROTATED = "rotated"
WRITING_ACTIONS = frozenset((CREATED, UPDATED, DELETED, ENABLED, DISABLED, ROTATED))
STATES = ("present", "absent", "disabled")
# The lifecycle steps, in the order they run after the registration's own write.
STEP_ENABLE = "enable"
STEP_DISABLE = "disable"
STEP_ROTATE = "rotate"
# What check mode and the diff show for a link that only a real run gets from the server.
NEW_LINK = "(new link, assigned by the server)"
MAX_GRACE_SECONDS = 604800
# What a registration of a server with the lifecycle extension carries.
LIFECYCLE_KEYS = ("state", "generation", "link_created_at", "previous_link")
# What a rotation asked of a server without the lifecycle extension fails with (before any request).
ROTATION_NOT_OFFERED = ("rotate the link in env %s: this Ductape API does not offer it (rotation is ductape-local's "
                        "lifecycle extension, see the guide \"Ductape's API and this collection\")")
_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_AGE_SECONDS = dict(s=1, m=60, h=3600, d=86400, w=604800)

# Filtered reads for up to this many webhooks of one access tag in a task, the app's listing above.
LISTING_THRESHOLD = 4
DEFAULT_PARALLELISM = 8
MAX_PARALLELISM = 64


def parallelism_problems(value, field="parallelism"):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARALLELISM:
        return ["%s: must be a whole number from 1 to %d (got %s)" % (field, MAX_PARALLELISM, quoted(value))]
    return []


def age_seconds(value):
    """Seconds of an age such as ``90d``, ``12h``, ``30m``, ``45s``, ``2w`` (or a whole number of seconds); None
    when it is none of these."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    match = _AGE.match(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) <= 0:
        return None
    return int(match.group(1)) * _AGE_SECONDS[match.group(2)]


def parse_time(value):
    """An ISO-8601 time of the API (``2026-01-15T10:02:03Z``, with or without fractions) as an aware
    datetime in UTC; None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


class Rotation:
    """When a registration's link is due for a new one: below ``generation``, or older than ``older_than``
    (seconds, against ``link_created_at``). ``grace`` seconds: how long the old link keeps working."""

    def __init__(self, generation=None, older_than=None, grace=0, older_than_text=None):
        self.generation = generation
        self.older_than = older_than
        self.older_than_text = older_than_text
        self.grace = grace or 0

    @property
    def wanted(self):
        return self.generation is not None or self.older_than is not None


def rotation_problems(params):
    """The problems of the rotation options of a module (link_generation, rotate_older_than, rotation_grace)."""
    problems = []
    generation = params.get("link_generation")
    if generation is not None and (isinstance(generation, bool) or not isinstance(generation, int) or generation < 1):
        problems.append("link_generation: must be a whole number from 1 (got %s)" % quoted(generation))
    older = params.get("rotate_older_than")
    if older is not None and age_seconds(older) is None:
        problems.append("rotate_older_than: must be an age such as 90d, 12h, 30m, 45s or 2w (got %s)" % quoted(older))
    grace = params.get("rotation_grace")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int)
                              or not 0 <= grace <= MAX_GRACE_SECONDS):
        problems.append("rotation_grace: must be a whole number of seconds from 0 to %d (7 days; got %s)"
                        % (MAX_GRACE_SECONDS, quoted(grace)))
    if params.get("state") not in (None, "present") and (generation is not None or older is not None):
        problems.append("link_generation, rotate_older_than: only with state=present (got state=%s)"
                        % quoted(params.get("state")))
    return problems


def rotation_of(params):
    """The Rotation of a module's options, or None when none is asked for (check rotation_problems first)."""
    older = params.get("rotate_older_than")
    rotation = Rotation(params.get("link_generation"), age_seconds(older) if older is not None else None,
                        params.get("rotation_grace") or 0, older)
    return rotation if rotation.wanted else None


class Prune:
    """Pruning: registrations of the task's access tags that it neither lists nor ``keep``s get ``action``
    (``absent`` or ``disabled``). ``keep``: [(access_tag, webhook_tag, env slug)] declared elsewhere (the
    role's link-mode envs)."""

    def __init__(self, action, keep=()):
        self.action = action
        self.keep = list(keep)


class EnvState:
    """One env of a desired webhook state. ``link_only``: only its link is needed (generate-link, no auth).

    ``field`` is where the env was given (``envs[0]``, ``webhooks[2].envs[1]``), or "" for the link
    module's single form, whose options are top level (``env``, ``url``, ``method``).
    """

    def __init__(self, slug, url=None, method=None, auth=None, link_only=False, field="", rotation=None):
        self.slug = slug
        self.rotation = rotation
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
    def __init__(self, access_tag, webhook_tag, envs, field="", state=None, pruned=False):
        self.access_tag = access_tag
        self.webhook_tag = webhook_tag
        self.envs = envs
        self.field = field  # "webhooks[2]" in a batch form, "" in a single form
        self.state = state  # None: the task's state
        self.pruned = pruned  # planned by pruning: not in the task's list

    @property
    def name(self):
        return "%s/%s" % (self.access_tag, self.webhook_tag)


class EnvOutcome:
    """What happened (or, in check mode, would happen) to one env."""

    def __init__(self, state, action=None, current=None, answer=None, auth_changed=False, steps=None,
                 auth_unknown=False, resend=False):
        self.state = state
        self.action = action
        self.current = current
        self.answer = answer
        self.auth_changed = auth_changed
        # The lifecycle steps planned after the registration's own write (STEP_*), and how many ran.
        self.steps = list(steps or [])
        self.done = 0
        self.written = False  # the registration's own write (or nothing to write) went through
        # The stored auth could not be compared (the server gives no digest).
        self.auth_unknown = auth_unknown
        # Sent although unchanged: auth that cannot be compared (auth_unknown: send), or a link to read.
        self.resend = resend

    @property
    def slug(self):
        return self.state.slug

    @property
    def writes(self):
        return self.action in WRITING_ACTIONS or bool(self.steps)


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
        return any(env.writes for env in self.envs)


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


def webhook_states(params, link_only, rotation=None):
    """[WebhookState] of a module's single form (a batch of one) or batch form (option ``webhooks``).

    The link module's single form has the top-level options env, url and method. ``rotation`` (a
    Rotation) applies to every env.
    """
    if params.get("webhooks") is not None:
        return [WebhookState(item["access_tag"], item["webhook_tag"],
                             [_env_state(env, link_only, "webhooks[%d].envs[%d]" % (index, position), rotation)
                              for position, env in enumerate(item["envs"] or [])],
                             field="webhooks[%d]" % index)
                for index, item in enumerate(params["webhooks"])]
    if params.get("envs") is None and params.get("env") is not None:
        envs = [EnvState(params["env"], params.get("url"), params.get("method"), link_only=True)]
    else:
        envs = [_env_state(env, link_only, "envs[%d]" % position, rotation)
                for position, env in enumerate(params["envs"] or [])]
    return [WebhookState(params["access_tag"], params["webhook_tag"], envs)]


def _env_state(env, link_only, field, rotation=None):
    return EnvState(env.get("slug"), env.get("url"), env.get("method"), None if link_only else env.get("auth"),
                    link_only=link_only, field=field, rotation=rotation)


def prune_of(params):
    """The Prune of ductape_webhook's options ``prune`` and ``prune_keep``, or None."""
    if not params.get("prune"):
        return None
    keep = [(item["access_tag"], item["webhook_tag"], slug)
            for item in params.get("prune_keep") or [] for slug in item.get("envs") or []]
    return Prune(params["prune"], keep)


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
            if state == "present" or (state == "disabled" and env.url is not None):
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


def read_webhooks(client, product, wanted, parallelism, stop=None, whole_apps=None):
    """{(access_tag, webhook_tag): Reading} for the ``wanted`` pairs, by the read rule of this module.

    ``whole_apps``: a dict to fill with ``{access_tag: Reading}`` of each access tag's whole listing (its
    ``webhook`` the list of every webhook), which then is how every access tag is read (pruning).
    """
    stop = stop or _Stop()
    by_access_tag = {}
    for access_tag, webhook_tag in wanted:
        tags = by_access_tag.setdefault(access_tag, [])
        if webhook_tag not in tags:
            tags.append(webhook_tag)
    jobs = []
    for access_tag, tags in by_access_tag.items():
        if whole_apps is not None or len(tags) > LISTING_THRESHOLD:
            jobs.append(lambda access_tag=access_tag, tags=tags: _read_listing(client, product, access_tag, tags, stop,
                                                                               whole_apps))
        else:
            jobs.extend(lambda access_tag=access_tag, tag=tag: _read_one(client, product, access_tag, tag, stop)
                        for tag in tags)
    found = {}
    for readings in _run_all(jobs, parallelism):
        found.update(readings)
    return found


def _read_listing(client, product, access_tag, tags, stop, whole_apps=None):
    if stop.reason:
        if whole_apps is not None:
            whole_apps[access_tag] = Reading(error=stop.reason)
        return dict(((access_tag, tag), Reading(error=stop.reason)) for tag in tags if tag is not None)
    try:
        webhooks, product_envs = client.list_webhooks(product, access_tag)
    except DuctapeApiError as error:
        stop.note("%s/%s" % (access_tag, tags[0]) if tags[0] is not None else access_tag, error)
        if whole_apps is not None:
            whole_apps[access_tag] = Reading(error=str(error))
        return dict(((access_tag, tag), Reading(error=str(error))) for tag in tags if tag is not None)
    by_tag = dict((webhook.get("tag"), webhook) for webhook in webhooks)
    app_tags = sorted(tag for tag in by_tag if isinstance(tag, str))
    if whole_apps is not None:
        whole_apps[access_tag] = Reading(webhooks, product_envs, app_tags)
    return dict(((access_tag, tag), Reading(by_tag.get(tag), product_envs, app_tags)) for tag in tags
                if tag is not None)


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


def filter_problems(client, product, access_tag, webhook_tag=None, env=None):
    """The problems of a filter (webhook tag, env) for a product's access tag, from one read of this module's
    rule: an unknown webhook names the app's tags, an unknown env the product's envs. ([problems], Reading)."""
    pair = (access_tag, webhook_tag)
    reading = read_webhooks(client, product, [pair], 1)[pair]
    if reading.error:
        return [reading.error], reading
    problems = []
    if webhook_tag and reading.webhook is None:
        problems.extend(webhook_tag_problems("webhook_tag", webhook_tag, access_tag, reading.app_tags or []))
    if env:
        problems.extend(env_exists_problems("env", env, product, reading.product_envs))
    return problems, reading


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
    if state == "absent" or current is None or env.link_only or env.url is None:
        return True
    return auth_matches(env.auth, current.get("auth_digest")) is not None


def decide(env, current, state, auth_unknown=AUTH_UNKNOWN_CHANGED):
    """(action, auth_changed) of one env's registration itself (its lifecycle steps: plan_env).
    ``auth_unknown`` is what auth that cannot be compared counts as: ``changed`` (an update), or
    ``send`` (sent again by the caller, a change only if url or method differ)."""
    if state == "absent":
        return (DELETED if current else ABSENT), False
    if state == "disabled" and env.url is None:
        # Only the state is asked for: nothing to create, nothing of the registration to compare.
        return (UNCHANGED if current else ABSENT), False
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


def is_disabled(registration):
    return (registration or {}).get("state") == "disabled"


def lifecycle_not_shown(registration):
    """True when a registration the server listed carries no lifecycle ``state``: a server without the
    lifecycle extension (the hosted Ductape). Check mode, which cannot ask the server, reads this instead."""
    return isinstance(registration, dict) and "state" not in registration


def check_mode_not_offered(operation, registration):
    """The problem of an extension step that check mode would report as done although a real run could not
    do it (the server shows no lifecycle state), or None."""
    if not lifecycle_not_shown(registration):
        return None
    return ("%s: this Ductape API does not offer it: its registrations carry no lifecycle state (disable, enable "
            "and test events are ductape-local's lifecycle extension, see the guide \"Ductape's API and this "
            "collection\"); a real run would fail" % operation)


def rotations_due(rotation, current, now, slug=None):
    """(how many rotations the env's registration is due, or None, and the problem when the API does
    not say what the rule needs)."""
    if rotation is None or not rotation.wanted or current is None:
        return 0, None
    due = 0
    if rotation.generation is not None:
        generation = current.get("generation")
        if isinstance(generation, bool) or not isinstance(generation, int):
            return None, ("link_generation: %s: its registrations carry no generation (got %s)"
                          % (ROTATION_NOT_OFFERED % quoted(slug), quoted(generation)))
        due = max(due, rotation.generation - generation)
    if rotation.older_than is not None:
        created = parse_time(current.get("link_created_at"))
        if created is None:
            return None, ("rotate_older_than: %s: its registrations do not say when their link was made "
                          "(link_created_at %s)" % (ROTATION_NOT_OFFERED % quoted(slug),
                                                    quoted(current.get("link_created_at"))))
        if (now - created).total_seconds() >= rotation.older_than:
            due = max(due, 1)
    return due, None


def plan_env(env, current, state, now=None, auth_unknown=AUTH_UNKNOWN_CHANGED):
    """The one decision for one env: (EnvOutcome with its action and lifecycle steps, problem or None).

    ``present`` enables a disabled registration; ``disabled`` disables an enabled one (after creating or
    updating it when a url is given); the rotations due follow (present only).
    """
    action, auth_changed = decide(env, current, state, auth_unknown)
    unknown = not auth_comparable(env, current, state)
    resend = action == UNCHANGED and (unknown or (env.link_only and not (current or {}).get("link")))
    steps = []
    if state == "present" and is_disabled(current):
        steps.append(STEP_ENABLE)
    elif state == "disabled" and action != ABSENT and not is_disabled(current):
        steps.append(STEP_DISABLE)
    if state == "present":
        due, problem = rotations_due(env.rotation, current, now or utc_now(), env.slug)
        if problem:
            return None, problem
        steps.extend([STEP_ROTATE] * due)
    if action == UNCHANGED and steps:
        # What a reader looks for first: a new link, else the change of state.
        action = ROTATED if STEP_ROTATE in steps else dict(enable=ENABLED, disable=DISABLED)[steps[0]]
    return EnvOutcome(env, action, current, None, auth_changed, steps, unknown, resend), None


def _plan(webhook, reading, product, state, auth_unknown=AUTH_UNKNOWN_CHANGED, check_mode=False):
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
    now = utc_now()
    for env in webhook.envs:
        current = current_by_env.get(env.slug)
        outcome, problem = plan_env(env, current, webhook.state or state, now, auth_unknown)
        if not problem and check_mode and STEP_DISABLE in outcome.steps:
            problem = check_mode_not_offered("disable the registration in env %s" % quoted(env.slug), current)
        if problem:
            return None, problem
        planned.append(outcome)
    return planned, None


def pruned_states(whole_apps, webhooks, prune):
    """[WebhookState] of the registrations to prune: every one of the apps read whole whose (access tag,
    webhook tag, env) neither a webhook of the task lists nor ``prune.keep`` holds, in listing order."""
    declared = set(prune.keep)
    for webhook in webhooks:
        declared.update((webhook.access_tag, webhook.webhook_tag, env.slug) for env in webhook.envs)
    states = []
    for access_tag, reading in whole_apps.items():
        for webhook in (reading.webhook if not reading.error else None) or []:
            tag = webhook.get("tag")
            envs = [EnvState(slug, field="pruned") for slug in registrations_by_env(webhook)
                    if (access_tag, tag, slug) not in declared]
            if envs:
                states.append(WebhookState(access_tag, tag, envs, field="pruned", state=prune.action, pruned=True))
    return states


# Writing.


class _Write:
    """One independent write: the envs it carries, and what became of them."""

    def __init__(self, index, envs, send):
        self.index = index
        self.envs = envs
        self.send = send
        self.error = None


def rotation_already_done(error, expected_generation):
    """Whether a conditional rotate that failed was in fact done: the API refused a retry (409) because
    the registration is past the generation sent, so the first try rotated and its answer was lost."""
    generation = error.meta.get("generation")
    return (error.status == 409 and error.attempts > 1 and _is_int(expected_generation) and _is_int(generation)
            and generation > expected_generation)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _reread(client, product, access_tag, webhook_tag, slug):
    """The env's registration as the listing shows it now (after a rotation whose answer was lost)."""
    webhooks = client.list_webhooks(product, access_tag, webhook_tag)[0]
    found = registrations_by_env(webhooks[0] if webhooks else None).get(slug)
    if found is None:
        raise DuctapeApiError("rotate the registration in env %s: it was rotated, but the listing no longer shows "
                              "it" % slug)
    return found


def _run_steps(client, env, product, webhook):
    """The env's lifecycle steps, in order, on its registration (the one just written, or the current one).
    A rotation carries the generation it saw (a conditional rotate), so a retry never rotates twice."""
    for step in env.steps[env.done:]:
        registration = env.answer or env.current or {}
        uuid = registration.get("uuid")
        if not uuid:
            raise DuctapeApiError("%s the registration in env %s: the API's answer gave no uuid" % (step, env.slug))
        if step == STEP_ENABLE:
            answer = client.enable_registration(uuid, env=env.slug)
        elif step == STEP_DISABLE:
            answer = client.disable_registration(uuid, env=env.slug)
        else:
            expected = registration.get("generation") if _is_int(registration.get("generation")) else None
            try:
                answer = client.rotate_registration(uuid, env.state.rotation.grace, env=env.slug,
                                                    expected_generation=expected)
            except DuctapeApiError as error:
                if rotation_already_done(error, expected):
                    answer = _reread(client, product, webhook.access_tag, webhook.webhook_tag, env.slug)
                    answer.setdefault("changed", True)
                    env.answer = answer
                    env.done += 1
                    continue
                if error.provider_refused:
                    # The API rotated, then the provider refused the new link: the rotation counts, and the
                    # next run sends the registration again (provider_left_undone).
                    env.done += 1
                raise
        env.answer = answer
        env.done += 1


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
                env.written = True
            for env in envs:
                _run_steps(client, env, product, webhook)
        writes.append(_Write(index, to_register, register))
    for env in planned:
        if (env.action in (CREATED, UPDATED) or env.resend) and env.state.link_only:
            def link(env=env):
                env.answer = client.generate_link(product, webhook.access_tag, webhook.webhook_tag, env.slug,
                                                  env.state.url, env.state.method)
                env.written = True
                _run_steps(client, env, product, webhook)
            writes.append(_Write(index, [env], link))
        elif env.action == DELETED:
            def delete(env=env):
                env.answer = client.delete_registration(env.current["uuid"], env=env.slug)
                env.written = True
            writes.append(_Write(index, [env], delete))
        elif env.action in (ENABLED, DISABLED, ROTATED) and not env.resend:
            # (a resent env runs its steps after its own write, above)
            def steps(env=env):
                env.written = True  # nothing of the registration itself to write
                _run_steps(client, env, product, webhook)
            writes.append(_Write(index, [env], steps))
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
        for env in write.envs:
            # Only the steps that ran count; the registration's own write counts when it went through
            # (an API 502 too: the registrations were stored, then the provider refused).
            del env.steps[env.done:]
            if env.written or error.provider_refused:
                if env.action in (ENABLED, DISABLED, ROTATED) and not env.steps:
                    env.action = None
            else:
                env.action = None
    return write


def converge(client, product, webhooks, state, check_mode, parallelism=DEFAULT_PARALLELISM, prune=None):
    """[Outcome] for ``webhooks`` ([WebhookState], checked with check_states first), in input order;
    with ``prune`` (a Prune), then one per webhook with registrations to prune (WebhookState.pruned)."""
    stop = _Stop()
    auth_unknown = getattr(client, "auth_unknown", AUTH_UNKNOWN_CHANGED)
    wanted = [(w.access_tag, w.webhook_tag) for w in webhooks]
    whole_apps = None
    if prune is not None:
        whole_apps = {}
        wanted.extend((access_tag, None) for access_tag, _tag, _slug in prune.keep)
    readings = read_webhooks(client, product, wanted, parallelism, stop, whole_apps)
    outcomes = []
    writes = []
    failed_apps = []
    if prune is not None:
        ordered = dict((access_tag, whole_apps[access_tag]) for access_tag, _tag in wanted if access_tag in whole_apps)
        listed = set(webhook.access_tag for webhook in webhooks)
        failed_apps = [(access_tag, reading.error) for access_tag, reading in ordered.items()
                       if reading.error and access_tag not in listed]
        pruned = pruned_states(ordered, webhooks, prune)
        for webhook in pruned:
            app = ordered[webhook.access_tag]
            entry = next(item for item in app.webhook if item.get("tag") == webhook.webhook_tag)
            readings[(webhook.access_tag, webhook.webhook_tag)] = Reading(entry, app.product_envs, app.app_tags)
        webhooks = list(webhooks) + pruned
    for index, webhook in enumerate(webhooks):
        planned, problem = _plan(webhook, readings[(webhook.access_tag, webhook.webhook_tag)], product, state,
                                 auth_unknown, check_mode)
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
    for access_tag, error in failed_apps:
        # Nothing of this app can be pruned when its listing could not be read: say so as a failure.
        outcomes.append(Outcome(WebhookState(access_tag, "*", [], field="pruned", pruned=True), [],
                                "prune: the registrations of access tag %s could not be read: %s"
                                % (quoted(access_tag), error)))
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


def _state_after(env):
    """The registration's state once the env's steps ran (or would run): enabled, disabled, or None."""
    source = env.answer or env.current
    if env.action in (DELETED, ABSENT) or (source is None and env.action != CREATED):
        return None
    state = (source or {}).get("state") or "enabled"
    if env.answer is None or env.done < len(env.steps):
        for step in env.steps[env.done:]:
            state = dict(enable="enabled", disable="disabled").get(step, state)
    return state


def env_result(env):
    """One env as a result shows it: names, links and statuses only, never an auth value; the url masked."""
    source = env.answer or env.current or {}
    shown = env.answer or (env.state.desired() if env.action in (CREATED, UPDATED) else None) or source
    rotations = env.steps.count(STEP_ROTATE)
    generation = source.get("generation")
    if isinstance(generation, int) and not isinstance(generation, bool) and env.done < len(env.steps):
        generation += env.steps[env.done:].count(STEP_ROTATE)  # check mode: what it would become
    result = dict(
        slug=env.slug,
        action=env.action,
        uuid=source.get("uuid"),
        link=source.get("link"),
        url=mask_url(shown.get("url") if shown.get("url") is not None else env.state.url),
        method=shown.get("method") or (env.state.method if env.state.url else None),
        provider_registration=source.get("provider_registration"),
    )
    if env.steps or any(key in source for key in LIFECYCLE_KEYS):
        # A server with the lifecycle extension (or a step asked of it): its keys, as they are or will be.
        result.update(state=_state_after(env), generation=generation, link_created_at=source.get("link_created_at"),
                      previous_link=source.get("previous_link"))
    if env.state.rotation is not None:
        result["rotated"] = rotations
    if env.auth_unknown:
        result["auth_compared"] = False
    if source and "provider_registration" not in source and not env.state.link_only:
        # The server says nothing of the provider (the hosted Ductape): unknown, not "no endpoint".
        result["provider_reported"] = False
    return result


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


def _lifecycle_views(env):
    """(before, after) of what the env's lifecycle steps change: its state, its link and generation."""
    before, after = {}, {}
    current = env.current or {}
    if STEP_ENABLE in env.steps or STEP_DISABLE in env.steps:
        if env.current is not None:
            before["state"] = current.get("state") or "enabled"
        after["state"] = _state_after(env)
    if STEP_ROTATE in env.steps:
        before["link"] = current.get("link")
        rotated = env.done >= len(env.steps) and env.answer is not None
        after["link"] = env.answer.get("link") if rotated else NEW_LINK
        if current.get("generation") is not None:
            before["generation"] = current.get("generation")
            after["generation"] = env_result(env).get("generation")
    return before, after


def diff_of(outcome):
    """{before: {env: ...}, after: {env: ...}}: the keys that change of the envs that write (or would), masked."""
    before, after = {}, {}
    for env in outcome.envs:
        if not env.writes:
            continue
        link_only = env.state.link_only
        keys = _changed_keys(env)
        lifecycle_before, lifecycle_after = _lifecycle_views(env)
        registration_written = env.action in (CREATED, UPDATED, DELETED)
        if env.current is not None:
            stored_auth = env.current.get("auth") or ({} if "auth" in env.current or not env.auth_unknown else None)
            view = _only(_view(env.current, stored_auth, False, link_only), keys)
            before[env.slug] = dict(view if registration_written else {}, **lifecycle_before)
        if env.action != DELETED:
            view = _only(_view(env.state.desired(), mask_auth(env.state.auth), env.auth_changed, link_only,
                               env.auth_unknown), keys)
            after[env.slug] = dict(view if registration_written else {}, **lifecycle_after)
    return dict(before=before, after=after)


def batch_report(outcomes, want_diff, link_form=False):
    """The result of a batch form: every webhook in input order, the task failing naming each failed one."""
    entries = []
    before, after = {}, {}
    for outcome in outcomes:
        entry = dict(access_tag=outcome.state.access_tag, webhook_tag=outcome.state.webhook_tag,
                     changed=outcome.changed, envs=[env_result(env) for env in outcome.envs])
        if outcome.state.pruned:
            entry["pruned"] = True
        if outcome.failed:
            entry.update(failed=True, msg=outcome.msg)
        entries.append(entry)
        if want_diff:
            diff = diff_of(outcome)
            # A pruned webhook's envs join the listed one's of the same name.
            if diff["before"]:
                before.setdefault(outcome.state.name, {}).update(diff["before"])
            if diff["after"]:
                after.setdefault(outcome.state.name, {}).update(diff["after"])
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
