"""The controller path removes the no_log values from a result exactly as ansible-core's remove_values
does (plugins/plugin_utils/controller_module.py, ``_plain_without``), also when it skips the walk."""
from __future__ import annotations

import pytest
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.ductape.webhooks.plugins.plugin_utils.controller_module import _plain, _plain_without

RESULT = {
    "changed": False,
    "msg": "listed 2 webhooks of acme-shop",
    "webhooks": [{"tag": "payment_succeeded", "envs": [{"slug": "prd", "url": "https://h.example.com/a?x=1",
                                                        "count": 12345, "ratio": 0.5, "ok": True, "gone": None}]}],
    "warnings": ["line one\nline two \"quoted\" back\\slash", "caf\u00e9 \u2028 na\u00efve"],
    "invocation": {"module_args": {"access_key": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}},
}

# Values that occur nowhere (the usual case), values that occur as a whole or inside a string, inside
# a number, only where JSON escapes a character, and ones that only remove_values' own words contain.
VALUE_SETS = [
    set(),
    {"dtl_key_that_is_nowhere"},
    {"acme"},
    {"payment_succeeded"},
    {"2345"},
    {"0.5"},
    {"two \"quoted"},
    {"back\\slash"},
    {"line one\nline"},
    {"caf\u00e9"},
    {"\u2028"},
    {"True"},
    {"rue"},
    {"nan"},
    {"na"},
    {"VALUE_SPECIFIED"},
    {"prd", "dtl_key_that_is_nowhere"},
    {""},
]


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda values: repr(sorted(values, key=str)))
def test_the_result_is_what_remove_values_makes_of_it(values):
    assert _plain_without(RESULT, values) == remove_values(_plain(RESULT), values)


def test_a_value_that_occurs_is_removed():
    scrubbed = _plain_without(RESULT, {"acme"})
    assert scrubbed["msg"] == "listed 2 webhooks of ********-shop"
    assert "acme" not in repr(scrubbed)
