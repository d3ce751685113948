# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a ductape module is run and how its result leaves it, in both paths.

Every module file exposes ``argument_spec()``, ``ARGUMENT_SPEC_OPTIONS`` and
``run(params, check_mode, want_diff, warn)``; its ``main()`` is ``run_as_module(...)`` below (the
AnsiballZ path). The controller path (plugins/plugin_utils/controller_module.py) runs the same ``run``
with the functions of this file, so that an argument error, an unexpected failure, the ``invocation``
and the no_log policy read the same whichever path ran the module.

The no_log policy, for every option an argument spec marks ``no_log``:

- ``invocation`` shows its value replaced as a whole by ``VALUE_SPECIFIED_IN_NO_LOG_PARAMETER``.
- A top-level one (``access_key``, the opaque credential of the API) is also removed wherever its
  value appears in the result, as ansible-core removes every no_log value (``scrub_values``).
- One inside the items of a list or dict option (``envs[].auth``: a provider's auth values, which can be
  as ordinary as ``POST``, ``acme`` or ``a``) is not removed as a substring from other values: that
  turns the product ``acme-shop`` into ``********-shop`` and a ``method: POST`` into
  ``VALUE_SPECIFIED_IN_NO_LOG_PARAMETER``. The modules never put an auth value into a result, a diff,
  a message or a warning (only key names with masked values), so there is nothing to remove.
- A url (an option named ``url`` or ending in ``_url``) is shown in ``invocation`` as ``mask_url``
  (contract C2, in _rules.py) shows it: a password or token inside a URL is as secret as the access key.

This file is module_utils: it runs on the target's Python too, hence no syntax newer than the oldest
Python the supported ansible-core releases run modules with.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.parameters import env_fallback
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.errors import NoLogError, UnsupportedError
from ansible.module_utils.six import binary_type, integer_types, string_types, text_type
from collections.abc import Mapping

from ansible_collections.ductape.webhooks.plugins.module_utils._rules import mask_url

# What ansible-core writes in place of a no_log value.
NO_LOG_MARKER = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"

_MODULE_FILE = re.compile(r"ansible_collections[/\\]([^/\\]+)[/\\]([^/\\]+)[/\\]plugins[/\\]modules[/\\]([^/\\]+)\.py$")


def module_name(run):
    """The FQCN of the module whose ``run`` this is, from its file: the same in both paths.

    (In AnsiballZ the module runs as ``__main__``, so its Python name does not tell.)
    """
    path = run.__code__.co_filename
    match = _MODULE_FILE.search(path)
    if match:
        return ".".join(match.groups())
    return re.split(r"[/\\]", path)[-1].rpartition(".")[0] or path


def _is_url_option(name):
    return name == "url" or name.endswith("_url")


def invocation(argument_spec, params):
    """``{"module_args": ...}``: the validated params with every no_log value masked as a whole."""
    return {"module_args": _masked(argument_spec, params)}


def _masked(argument_spec, params):
    if not isinstance(params, Mapping):
        return params
    shown = {}
    for name, value in params.items():
        spec = argument_spec.get(name)
        if spec is None or value is None:
            shown[name] = value
        elif spec.get("no_log"):
            shown[name] = NO_LOG_MARKER
        elif spec.get("options"):
            shown[name] = _masked_items(spec, value)
        elif _is_url_option(name) and isinstance(value, string_types):
            shown[name] = mask_url(value)
        else:
            shown[name] = value
    return shown


def _masked_items(spec, value):
    """A dict option, or a list of them: each item masked by the sub-spec."""
    if isinstance(value, Mapping):
        return _masked(spec["options"], value)
    if isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
        return [_masked(spec["options"], item) for item in value]
    # Not the shape the spec wants (the validator says so): whatever it holds may be a no_log value.
    if _has_no_log(spec["options"]):
        return NO_LOG_MARKER
    return value


def _has_no_log(argument_spec):
    return any(spec.get("no_log") or _has_no_log(spec.get("options") or {}) for spec in argument_spec.values())


def scrub_values(argument_spec, params):
    """The values to remove from every output wherever they appear: those of top-level no_log options."""
    values = set()
    for name, spec in argument_spec.items():
        if spec.get("no_log") and params.get(name):
            values.update(_leaves(params[name]))
    return values


def _leaves(value):
    """The text of every leaf of a value, as ansible-core lists a no_log value's parts."""
    if isinstance(value, (text_type, binary_type)):
        return [to_native(value, errors="surrogate_or_strict")] if value else []
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple, set)):
        return [leaf for item in value for leaf in _leaves(item)]
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, integer_types + (float,)):
        return [to_native(value, nonstring="simplerepr")]
    return [to_native(value, nonstring="simplerepr")]


def environment_sources(argument_spec, given):
    """Where the options that the task did not give took their value from the environment:
    ``{option: (DUCTAPE_API_URL, "the environment variable DUCTAPE_API_URL")}``.

    Read while the module's environment is in place (``env_fallback`` reads it when the arguments are
    validated). An environment variable set to nothing leaves the option's default in force, so it is
    not named.
    """
    sources = {}
    for option, spec in argument_spec.items():
        fallback = spec.get("fallback") or (None,)
        if option in given or fallback[0] is not env_fallback:
            continue
        for variable in (fallback[1] if len(fallback) > 1 else ()):
            if variable in os.environ:
                if os.environ[variable]:
                    sources[option] = (variable, "the environment variable %s" % variable)
                break
    return sources


def _renamed(text, sources):
    """``text`` naming, for each option of ``sources``, the name the user set instead of the option."""
    for option, (bare, phrase) in sources.items():
        text = re.sub(r"\bthe %s option\b" % re.escape(option), lambda match, phrase=phrase: phrase, text)
        text = re.sub(r"(^|: |; |\()%s: " % re.escape(option),
                      lambda match, bare=bare: match.group(1) + bare + ": ", text)
    return text


def name_the_sources(result, sources):
    """The result with its messages (``msg``, ``warnings``, each webhook's ``msg``) naming, for an option
    whose value the user set elsewhere than in the task (a variable, the environment), that name: the
    one to check. ``sources`` maps the option to (the bare name, the phrase), as environment_sources."""
    if not sources:
        return result

    def renamed(text):
        return _renamed(text, sources) if isinstance(text, string_types) else text

    result = dict(result)
    for key in ("msg", "warnings"):
        if isinstance(result.get(key), list):
            result[key] = [renamed(item) for item in result[key]]
        elif key in result:
            result[key] = renamed(result[key])
    if isinstance(result.get("webhooks"), list):
        result["webhooks"] = [dict(item, msg=renamed(item["msg"])) if isinstance(item, Mapping) and "msg" in item
                              else item for item in result["webhooks"]]
    return result


def argument_errors_message(validation, argument_spec, name):
    """Every argument error of a validation result, not only the first as AnsibleModule reports it: the
    first is often a generic one ("dictionary requested ...") and the one naming the option comes after it.

    Unknown options are named in a fixed order, each group with the options its place accepts
    (ansible-core's own text lists those of whichever unknown option its set yields last).
    """
    errors = list(validation.errors)
    # A NoLogError is the no_log scan tripping over the same wrong value that a later error names.
    named = [error for error in errors if not isinstance(error, NoLogError)] or errors
    messages = []
    for error in named:
        if isinstance(error, UnsupportedError):
            text = unsupported_message(validation.unsupported_parameters, argument_spec, name)
        else:
            text = error.msg
        if text not in messages:
            messages.append(text)
    return "; ".join(messages)


def unsupported_message(unsupported, argument_spec, name):
    """``Unsupported parameters for (name) module: ...`` naming each unknown option with its place's options."""
    by_place = {}
    for item in unsupported:
        path = tuple(item) if isinstance(item, tuple) else (item,)
        by_place.setdefault(path[:-1], []).append(".".join(path))
    groups = []
    for place in sorted(by_place):
        spec = argument_spec
        for option in place:
            spec = (spec.get(option) or {}).get("options") or {}
        supported = sorted(set(spec) | set(alias for option in spec.values() for alias in option.get("aliases") or ()))
        groups.append("%s. Supported parameters include: %s" % (", ".join(sorted(by_place[place])), ", ".join(supported)))
    # One group reads exactly as ansible-core's message.
    return "Unsupported parameters for (%s) module: %s" % (name, " ".join(group + "." for group in groups))


def unexpected_failure_message(name, error):
    """What a module reports when its code raised: the message goes through the no_log removal."""
    return "%s failed unexpectedly: %s: %s" % (name, type(error).__name__, to_native(error))


def run_result(run, params, check_mode, want_diff, warn, name):
    """``run``'s result, an exception in it reported as a failure naming the module."""
    try:
        return run(params, check_mode, want_diff, warn)
    except Exception as error:  # pylint: disable=broad-except
        return {"failed": True, "msg": unexpected_failure_message(name, error)}


class _ArgumentErrors(Exception):
    """AnsibleModule refused the arguments while it was being built."""

    def __init__(self, module):
        super(_ArgumentErrors, self).__init__()
        self.module = module


class _HostedModule(AnsibleModule):
    """AnsibleModule whose argument errors are all reported (see argument_errors_message)."""

    # Set once the module is built: from then on fail_json is AnsibleModule's own.
    hosted_ready = False
    # The options the task gave (before any default or fallback), set as the arguments are read.
    given_options = frozenset()

    def _load_params(self):
        super(_HostedModule, self)._load_params()
        self.given_options = frozenset(self.params)

    def fail_json(self, msg, **kwargs):  # pylint: disable=arguments-differ
        validation = getattr(self, "validation_result", None)
        if not self.hosted_ready and validation is not None and validation.error_messages:
            raise _ArgumentErrors(self)
        super(_HostedModule, self).fail_json(msg, **kwargs)


def run_as_module(argument_spec, argument_spec_options, run):
    """A ductape module's main(): build the AnsibleModule, then host() runs the module's logic."""
    try:
        module = _HostedModule(argument_spec=argument_spec, supports_check_mode=True, **argument_spec_options)
    except _ArgumentErrors as refused:
        module = refused.module
    module.hosted_ready = True
    module.option_sources = environment_sources(argument_spec, module.given_options)
    host(module, argument_spec, run)


def host(module, argument_spec, run):
    """Both paths, once ``module`` (AnsibleModule, or the controller's stand-in with the same interface)
    has validated the arguments: report every argument error, or run ``run`` and return its result.

    Ends in the module's exit_json or fail_json, with the policy of this file: ``invocation`` masked,
    only scrub_values removed. Whether ``invocation`` reaches the task result is the module's (2.21 adds
    it only with INJECT_INVOCATION); the one given here replaces the one it would build in clear.
    """
    name = module_name(run)
    validation = module.validation_result
    # An option whose value came from the environment is named as the user set it (DUCTAPE_API_URL).
    sources = getattr(module, "option_sources", None) or {}
    if validation.error_messages:
        params = validation.validated_parameters
        result = dict(failed=True, msg=argument_errors_message(validation, argument_spec, name))
    else:
        params = module.params

        def warn(text):
            module.warn(_renamed(text, sources))

        # module._diff is how module code learns that the task runs with --diff.
        result = run_result(run, params, module.check_mode, module._diff, warn, name)  # pylint: disable=protected-access
    module.no_log_values = scrub_values(argument_spec, params)
    result = dict(name_the_sources(result, sources), invocation=invocation(argument_spec, params))
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)
