"""views.open/push/update/publish: modals and App Home, with Slack's trigger and hash rules."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from tests.fakes.slack_api.base import SlackBase
from tests.fakes.slack_api.blocks import text_errors, validate_blocks
from tests.fakes.slack_api.state import SlackError


class Views(SlackBase):
    """Modals and App Home views; a trigger_id opens one view, a stale hash is refused."""

    def _check_view(self, view: Any, *, kinds: tuple[str, ...]) -> dict[str, Any]:
        """Slack answers invalid_arguments (with messages) for a malformed view, not invalid_blocks."""
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments", "[ERROR] view must be a JSON object [json-pointer:/view]")
        if len(json.dumps(view)) > 250_000:
            raise SlackError("view_too_large")
        problems: list[str] = []
        if view.get("type") not in kinds:
            problems.append(f"[ERROR] must be one of {list(kinds)} [json-pointer:/view/type]")
        if view.get("type") == "modal":
            problems += text_errors(view.get("title"), "/view/title", max_len=24, plain_only=True)
            for key in ("submit", "close"):
                if key in view and view[key] is not None:
                    problems += text_errors(view[key], f"/view/{key}", max_len=24, plain_only=True)
            has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
            if has_input and not view.get("submit"):
                problems.append("[ERROR] submit is required when an input block is present [json-pointer:/view]")
        problems += validate_blocks(view.get("blocks"), max_blocks=100, ptr="/view/blocks")
        for key, limit in (("callback_id", 255), ("private_metadata", 3000), ("external_id", 255)):
            if len(str(view.get(key) or "")) > limit:
                problems.append(f"[ERROR] must be less than {limit + 1} characters [json-pointer:/view/{key}]")
        if problems:
            raise SlackError("invalid_arguments", *problems)
        return view

    def _exchange_trigger(self, args: dict[str, Any]) -> str:
        trigger = str(args.get("trigger_id") or args.get("interactivity_pointer") or "")
        if not trigger:
            raise SlackError("invalid_arguments", "[ERROR] missing required field: trigger_id")
        if trigger in self._used_triggers:
            raise SlackError("exchanged_trigger_id")  # Slack: a trigger_id opens one view only
        self._used_triggers.add(trigger)
        return trigger

    def _store_view(
        self, method: str, view: dict[str, Any], *, trigger_id: str | None, view_id: str | None = None
    ) -> dict[str, Any]:
        external_id = view.get("external_id")
        if external_id:
            clash = next(
                (v for v in self._open_views.values() if v.get("external_id") == external_id and v["id"] != view_id),
                None,
            )
            if clash is not None:
                raise SlackError("duplicate_external_id")
        view_id = view_id or self._new_id("V")
        previous = self._open_views.get(view_id, {})
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "app_installed_team_id": self.team_id,
            "type": view.get("type"),
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "callback_id": view.get("callback_id", ""),
            "private_metadata": view.get("private_metadata", ""),
            "external_id": external_id or "",
            "state": {"values": {}},
            "hash": hashlib.sha1(f"{view_id}:{time.time_ns()}".encode()).hexdigest()[:20],
            "clear_on_close": bool(view.get("clear_on_close")),
            "notify_on_close": bool(view.get("notify_on_close")),
            "root_view_id": previous.get("root_view_id", view_id),
            "previous_view_id": previous.get("previous_view_id"),
        }
        self._open_views[view_id] = stored
        self.views.append({"method": method, "trigger_id": trigger_id, "view": view, "view_id": view_id})
        return stored

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange_trigger(args)
        view = self._check_view(args["view"], kinds=("modal",))
        return {"view": self._store_view("views.open", view, trigger_id=trigger)}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange_trigger(args)
        view = self._check_view(args["view"], kinds=("modal",))
        return {"view": self._store_view("views.push", view, trigger_id=trigger)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._check_view(args["view"], kinds=("modal", "home"))
        view_id = args.get("view_id")
        if not view_id and args.get("external_id"):
            view_id = next(
                (v["id"] for v in self._open_views.values() if v.get("external_id") == args["external_id"]),
                None,
            )
        if not view_id and not args.get("external_id"):
            raise SlackError("invalid_arguments", "[ERROR] either view_id or external_id is required")
        current = self._open_views.get(str(view_id)) if view_id else None
        if current is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        return {"view": self._store_view("views.update", view, trigger_id=None, view_id=current["id"])}

    def close_view(self, view_id: str) -> None:
        """The person closes the modal: Slack forgets it, and a views.update on it answers not_found."""
        self._open_views.pop(view_id, None)

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        self._user(str(args["user_id"]))
        view = self._check_view(args["view"], kinds=("home",))
        home_id = f"VHOME{args['user_id']}"
        current = self._open_views.get(home_id)
        if current is not None and args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        return {"view": self._store_view("views.publish", view, trigger_id=None, view_id=home_id)}
