"""`python -m bot check`: configuration and playbooks, each problem with its fix; exit 1 on any error."""

from __future__ import annotations

import importlib

from bot.settings import Settings

# Checks other domains contribute: module path -> function(settings) -> (errors, warnings), sync or async.
CHECKS: list[str] = []


async def run_check(settings: Settings) -> int:
    errors: list[str] = []
    warnings = list(settings.config.warnings())
    for path in CHECKS:
        module_name, _, func_name = path.rpartition(".")
        func = getattr(importlib.import_module(module_name), func_name)
        result = func(settings)
        if hasattr(result, "__await__"):
            result = await result
        more_errors, more_warnings = result
        errors += more_errors
        warnings += more_warnings
    print(f"config: {settings.bot_config} ({len(settings.config.services)} services, "
          f"{len(settings.config.escalation.levels)} escalation levels)")
    for warning in warnings:
        print(f"warning: {warning}")
    for error in errors:
        print(f"error: {error}")
    if errors:
        print(f"{len(errors)} error(s): fix them before starting the bot.")
        return 1
    print("ok")
    return 0
