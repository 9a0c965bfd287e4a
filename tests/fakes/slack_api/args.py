"""Reading a call's arguments as Slack does: JSON fields, spec types, required args, cursors."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tests.fakes.slack_api.state import SlackError

_CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")
_JSON_ARGS = ("blocks", "attachments", "view", "files", "metadata")
_MISSING_ARG_ERRORS: dict[str, str | tuple[str, ...]] = {
    "channel": "channel_not_found",
    "name": "invalid_name_required",
    "users": "no_user",
    "user": "user_not_found",
    "ts": ("message_not_found", "thread_not_found"),
    "message_ts": "message_not_found",
    "timestamp": "no_item_specified",
    "usergroup": "no_such_subteam",
    "file": "file_not_found",
    "email": "users_not_found",
}


def _decode_json_arg(key: str, text: str) -> Any:
    try:
        return json.loads(text.strip())
    except ValueError as exc:
        error = "invalid_blocks_format" if key == "blocks" else "invalid_arguments"
        raise SlackError(error, f"[ERROR] {key} is not valid JSON") from exc


def _coerce_arg(key: str, value: Any, kind: str | None) -> Any:
    """Form fields arrive as strings: coerce them to the spec's boolean/number type."""
    if kind == "boolean" and not isinstance(value, bool):
        return str(value).strip().lower() in ("1", "true", "yes")
    if kind in ("integer", "number") and isinstance(value, str):
        try:
            return int(value) if kind == "integer" else float(value)
        except ValueError as exc:
            raise SlackError("invalid_arguments", f"[ERROR] {key} must be a number") from exc
    return value


def normalise(spec: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """Decode JSON-encoded form fields and coerce booleans/numbers by the spec's arg types."""
    props = spec.get("args", {}).get("properties", {})
    out: dict[str, Any] = {}
    for key, raw in args.items():
        json_encoded = key in _JSON_ARGS and isinstance(raw, str)
        if json_encoded and not raw.strip():
            continue  # an empty JSON field counts as absent
        value = _decode_json_arg(key, raw) if json_encoded else raw
        out[key] = _coerce_arg(key, value, props.get(key, {}).get("type"))
    return out


def check_required(spec: dict[str, Any], args: dict[str, Any]) -> None:
    """Reject a call missing a required arg, with the spec's specific error when it lists one."""
    errors = spec.get("errors", {})
    for name in spec.get("args", {}).get("required", []):
        if name == "token" or args.get(name) not in (None, "", [], {}):
            continue
        known = _MISSING_ARG_ERRORS.get(name, ())
        candidates = (known,) if isinstance(known, str) else known  # the method's own error for it
        specific = next((e for e in candidates if e in errors), "")
        if not specific:
            specific = "missing_argument" if "missing_argument" in errors else "invalid_arguments"
        raise SlackError(specific, f"[ERROR] missing required field: {name}")


def id_list(value: Any) -> list[str]:
    """``users``/``channels`` arrive as a list, a JSON array string, or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return [text]
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        kind, _, offset = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        if kind != "offset":
            raise ValueError(cursor)
        return int(offset)
    except ValueError as exc:
        raise SlackError("invalid_cursor") from exc


def paginate(items: list[Any], args: dict[str, Any], *, default: int = 100) -> tuple[list[Any], str]:
    """One page of ``items`` and the next cursor ('' at the end), as Slack's cursor pagination."""
    start = _decode_cursor(args["cursor"]) if args.get("cursor") else 0
    limit = int(args.get("limit") or default)
    if limit <= 0:
        limit = default
    page = items[start : start + limit]
    return page, _encode_cursor(start + limit) if start + limit < len(items) else ""


def name_error(name: str) -> str | None:
    """Slack's channel-name rules: lowercase letters, digits, - and _, at most 80 chars."""
    if not name:
        return "invalid_name_required"
    if len(name) > 80:
        return "invalid_name_maxlength"
    if not _CHANNEL_NAME.match(name):
        return "invalid_name_specials"
    if not name.strip("-_"):
        return "invalid_name_punctuation"
    return None
