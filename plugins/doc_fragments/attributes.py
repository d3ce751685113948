# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name


class ModuleDocFragment:
    # The attributes every module documents; a module adds its own check_mode, diff_mode and idempotent
    # descriptions (writing modules) or extends INFO_MODULE (read-only ones).
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
"""

    # Membership of the action group that module_defaults uses to set the connection options once.
    ACTIONGROUP_DUCTAPE = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/ductape.webhooks.ductape) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - ductape.webhooks.ductape
"""

    # A module that only reads.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: The module only reads, so check mode runs it unchanged.
  diff_mode:
    support: N/A
    details: Nothing is ever changed, so there is no diff.
  idempotent:
    support: full
    details: Reading changes nothing; RV(ignore:changed) is always false.
"""
