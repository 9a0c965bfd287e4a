"""Block Kit validation: the limits Slack enforces server-side (slack_sdk only checks some)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_BLOCK_TYPES = {
    "section",
    "divider",
    "header",
    "actions",
    "context",
    "context_actions",
    "input",
    "image",
    "rich_text",
    "file",
    "video",
    "markdown",
    "call",
    "table",
}
_SELECTS_WITH_OPTIONS = {"static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes"}


def text_errors(obj: Any, ptr: str, *, max_len: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"[ERROR] must provide a text object with a string `text` [json-pointer:{ptr}]"]
    errors = []
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        errors.append(f"[ERROR] must be one of {list(allowed)} [json-pointer:{ptr}/type]")
    if len(obj["text"]) == 0:
        errors.append(f"[ERROR] must be more than 0 characters [json-pointer:{ptr}/text]")
    if len(obj["text"]) > max_len:
        errors.append(f"[ERROR] must be less than {max_len + 1} characters [json-pointer:{ptr}/text]")
    return errors


def _button_errors(el: dict[str, Any], ptr: str) -> list[str]:
    errors = text_errors(el.get("text"), f"{ptr}/text", max_len=75, plain_only=True)
    if len(str(el.get("value", ""))) > 2000:
        errors.append(f"[ERROR] must be less than 2001 characters [json-pointer:{ptr}/value]")
    if len(str(el.get("url", ""))) > 3000:
        errors.append(f"[ERROR] must be less than 3001 characters [json-pointer:{ptr}/url]")
    if el.get("style") not in (None, "primary", "danger"):
        errors.append(f"[ERROR] must be one of [primary, danger] [json-pointer:{ptr}/style]")
    return errors


def _options_errors(options: Any, kind: str, ptr: str) -> list[str]:
    limit = 5 if kind == "overflow" else 10 if kind in ("radio_buttons", "checkboxes") else 100
    if not isinstance(options, list) or len(options) > limit:
        return [f"[ERROR] must provide at most {limit} items [json-pointer:{ptr}/options]"]
    errors: list[str] = []
    for i, opt in enumerate(options):
        if not isinstance(opt, dict):
            errors.append(f"[ERROR] must be an object [json-pointer:{ptr}/options/{i}]")
            continue
        errors += text_errors(opt.get("text"), f"{ptr}/options/{i}/text", max_len=75)
        if len(str(opt.get("value", ""))) > 150:
            errors.append(f"[ERROR] must be less than 151 characters [json-pointer:{ptr}/options/{i}]")
    return errors


def _element_errors(el: Any, ptr: str) -> list[str]:
    if not isinstance(el, dict) or not isinstance(el.get("type"), str):
        return [f"[ERROR] missing required field: type [json-pointer:{ptr}]"]
    errors: list[str] = []
    action_id = el.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        errors.append(f"[ERROR] must be less than 256 characters [json-pointer:{ptr}/action_id]")
    kind = el["type"]
    if kind == "button":
        errors += _button_errors(el, ptr)
    if "placeholder" in el:
        errors += text_errors(el["placeholder"], f"{ptr}/placeholder", max_len=150, plain_only=True)
    if kind in _SELECTS_WITH_OPTIONS and "options" in el:
        errors += _options_errors(el["options"], kind, ptr)
    return errors


def _section_errors(block: dict[str, Any], ptr: str) -> list[str]:
    errors: list[str] = []
    if "text" not in block and "fields" not in block:
        errors.append(f"[ERROR] must provide either text or fields [json-pointer:{ptr}]")
    if "text" in block:
        errors += text_errors(block["text"], f"{ptr}/text", max_len=3000)
    fields = block.get("fields")
    if fields is not None:
        if not isinstance(fields, list) or len(fields) > 10:
            errors.append(f"[ERROR] must provide at most 10 items [json-pointer:{ptr}/fields]")
        else:
            for i, fld in enumerate(fields):
                errors += text_errors(fld, f"{ptr}/fields/{i}", max_len=2000)
    if "accessory" in block:
        errors += _element_errors(block["accessory"], f"{ptr}/accessory")
    return errors


def _header_errors(block: dict[str, Any], ptr: str) -> list[str]:
    return text_errors(block.get("text"), f"{ptr}/text", max_len=150, plain_only=True)


_ELEMENT_LIMITS = {"actions": 25, "context": 10, "context_actions": 5}


def _elements_block_errors(block: dict[str, Any], ptr: str) -> list[str]:
    """actions, context and context_actions: a bounded elements list (context items are not elements)."""
    kind = block["type"]
    limit = _ELEMENT_LIMITS[kind]
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements or len(elements) > limit:
        return [f"[ERROR] must provide between 1 and {limit} items [json-pointer:{ptr}/elements]"]
    if kind == "context":
        return []
    errors: list[str] = []
    for i, el in enumerate(elements):
        errors += _element_errors(el, f"{ptr}/elements/{i}")
    return errors


def _input_errors(block: dict[str, Any], ptr: str) -> list[str]:
    errors = text_errors(block.get("label"), f"{ptr}/label", max_len=2000, plain_only=True)
    if "element" not in block:
        errors.append(f"[ERROR] missing required field: element [json-pointer:{ptr}]")
    else:
        errors += _element_errors(block["element"], f"{ptr}/element")
    if "hint" in block:
        errors += text_errors(block["hint"], f"{ptr}/hint", max_len=2000, plain_only=True)
    return errors


def _image_errors(block: dict[str, Any], ptr: str) -> list[str]:
    errors: list[str] = []
    if "image_url" not in block and "slack_file" not in block:
        errors.append(f"[ERROR] missing required field: image_url [json-pointer:{ptr}]")
    if not isinstance(block.get("alt_text"), str) or len(block["alt_text"]) > 2000:
        errors.append(f"[ERROR] missing or too long field: alt_text [json-pointer:{ptr}]")
    return errors


def _markdown_errors(block: dict[str, Any], ptr: str) -> list[str]:
    if not isinstance(block.get("text"), str) or len(block["text"]) > 12000:
        return [f"[ERROR] must be a string of at most 12000 characters [json-pointer:{ptr}/text]"]
    return []


# Block types without an entry are accepted as they are (the fake checks only these).
_BLOCK_CHECKS: dict[str, Callable[[dict[str, Any], str], list[str]]] = {
    "section": _section_errors,
    "header": _header_errors,
    "actions": _elements_block_errors,
    "context": _elements_block_errors,
    "context_actions": _elements_block_errors,
    "input": _input_errors,
    "image": _image_errors,
    "markdown": _markdown_errors,
}


def _block_errors(block: dict[str, Any], ptr: str) -> list[str]:
    check = _BLOCK_CHECKS.get(block["type"])
    return check(block, ptr) if check is not None else []


def _action_ids(block: dict[str, Any]) -> list[str]:
    elements = list(block.get("elements") or []) if block.get("type") != "context" else []
    for key in ("accessory", "element"):
        if isinstance(block.get(key), dict):
            elements.append(block[key])
    return [el["action_id"] for el in elements if isinstance(el, dict) and isinstance(el.get("action_id"), str)]


def blocks_text_length(node: Any) -> int:
    """Every `text` string in the blocks, summed (text objects, markdown blocks, options, buttons)."""
    if isinstance(node, list):
        return sum(blocks_text_length(item) for item in node)
    if not isinstance(node, dict):
        return 0
    total = len(node["text"]) if isinstance(node.get("text"), str) else 0
    return total + sum(blocks_text_length(v) for v in node.values() if isinstance(v, (dict, list)))


def validate_blocks(blocks: Any, *, max_blocks: int = 50, ptr: str = "/blocks") -> list[str]:
    """Slack-style error messages for a blocks array; empty when Slack would accept it.

    Slack: ``block_id`` must be unique within the message/view; ``action_id`` must be unique
    "among all other action_ids in the containing block" (Block Kit reference), so the same
    action_id in two different blocks is accepted, as Slack accepts it.
    """
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{ptr}]"]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"[ERROR] no more than {max_blocks} items allowed [json-pointer:{ptr}]")
    seen_block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        here = f"{ptr}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"[ERROR] missing required field: type [json-pointer:{here}]")
            continue
        if block["type"] not in _BLOCK_TYPES:
            errors.append(f"[ERROR] unsupported type: {block['type']} [json-pointer:{here}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > 255:
                errors.append(f"[ERROR] must be 1 to 255 characters [json-pointer:{here}/block_id]")
            elif block_id in seen_block_ids:
                errors.append(f"[ERROR] duplicate block_id: {block_id} [json-pointer:{here}/block_id]")
            else:
                seen_block_ids.add(block_id)
        action_ids = _action_ids(block)
        duplicates = sorted({a for a in action_ids if action_ids.count(a) > 1})
        errors.extend(f"[ERROR] duplicate action_id: {dup} [json-pointer:{here}]" for dup in duplicates)
        errors += _block_errors(block, here)
    return errors
