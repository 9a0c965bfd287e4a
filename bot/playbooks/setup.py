"""Plugs the playbooks into the bot: load and validate PLAYBOOKS_DIR, react to new incidents.

An invalid playbook stops start-up here (ConfigError names the file, step and field): the bot
never runs with a half-loaded set of runbooks.
"""

from __future__ import annotations

from bot.deps import Deps
from bot.playbooks import flows
from bot.playbooks.loader import load_playbooks


def setup(deps: Deps) -> None:
    deps.playbooks = load_playbooks(deps.settings.playbooks_dir)
    flows.subscribe(deps)
