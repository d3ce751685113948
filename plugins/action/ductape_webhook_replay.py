# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs ductape.webhooks.ductape_webhook_replay in the controller process when its task's connection is local.

Elsewhere (another connection, become, async, ductape_run_on_controller false) it runs the module.
See plugins/plugin_utils/controller_module.py.
"""

from __future__ import annotations

from ansible_collections.ductape.webhooks.plugins.plugin_utils.controller_module import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    """The action plugin of ductape.webhooks.ductape_webhook_replay."""
