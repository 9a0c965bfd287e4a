"""Slack's published method specs, and the scopes the app's manifest asks for."""

from __future__ import annotations

import json
import os
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

_SPEC_CANDIDATES = (
    Path(os.environ.get("SLACK_WEB_API_SPECS", "/nonexistent")),
    Path(__file__).resolve().parents[4] / "shared" / "specs" / "slack-web-api" / "methods",
    Path("/work/shared/specs/slack-web-api/methods"),
)
_METHOD_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


@lru_cache(maxsize=1)
def _specs_dir() -> Path:
    for candidate in _SPEC_CANDIDATES:
        if candidate.is_dir():
            return candidate
    raise RuntimeError(
        "Slack Web API specs not found; set SLACK_WEB_API_SPECS to the folder holding <method>.json files"
    )


@cache
def load_spec(method: str) -> dict[str, Any] | None:
    """The published spec of one Web API method, or None when Slack has no such method."""
    if not _METHOD_NAME.match(method):
        return None
    path = _specs_dir() / f"{method}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def manifest_scopes() -> list[str]:
    """The bot scopes manifest.yml asks for: what a token of a freshly installed app carries."""
    import yaml

    path = Path(__file__).resolve().parents[3] / "manifest.yml"
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return [str(s) for s in manifest["oauth_config"]["scopes"]["bot"]]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return []
