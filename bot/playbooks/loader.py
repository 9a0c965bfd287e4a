"""Loading and validating every playbook in PLAYBOOKS_DIR.

`check` (for `python -m bot check`) and `check_playbooks` collect every problem; `load_playbooks` raises
ConfigError with all of them, so the bot refuses to start with an invalid playbook and says why.
Each problem is one line, with the line in the file where it can tell:
`playbooks/database.yml: line 24: steps[3] (kill-idle): action: unknown action ...`.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.exceptions import ConfigError
from bot.playbooks.registry import PlaybookRegistry
from bot.playbooks.render import RenderError, check_names, render, sample_context
from bot.playbooks.schema import Match as MatchRules
from bot.playbooks.schema import Notify, Playbook, Restricted, Step

log = logging.getLogger(__name__)

PATTERNS = ("*.yml", "*.yaml")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (plain YAML keeps the last one silently)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def playbook_files(directory: Path) -> list[Path]:
    files = {p for pattern in PATTERNS for p in directory.glob(pattern) if p.is_file()}
    return sorted(files)


_NESTED: dict[type[Any], dict[str, type[Any]]] = {
    Playbook: {"match": MatchRules, "restricted": Restricted, "steps": Step},
    Step: {"notify": Notify},
}


def _model_at(path: tuple[Any, ...]) -> type[Any]:
    model: type[Any] = Playbook
    for part in path:
        if isinstance(part, str):
            model = _NESTED.get(model, {}).get(part, model)
    return model


def _where(loc: tuple[Any, ...], raw: Any) -> tuple[str, str]:
    """(`steps[3] (kill-idle)`, `action`) from a pydantic location and the raw YAML."""
    prefix = ""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "steps" and isinstance(parts[1], int):
        index = parts[1]
        step_id = None
        steps = raw.get("steps") if isinstance(raw, dict) else None
        if isinstance(steps, list) and index < len(steps) and isinstance(steps[index], dict):
            step_id = steps[index].get("id")
        prefix = f"steps[{index}]" + (f" ({step_id})" if step_id else "")
        parts = parts[2:]
    field = ""
    for part in parts:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return prefix, field


def _unknown_field(loc: tuple[Any, ...]) -> str:
    name = str(loc[-1])
    known = list(_model_at(loc[:-1]).model_fields)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field ({hint}known fields: {', '.join(known)})"


def _node_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The line (1-based) in the file of the deepest part of `loc` that is there: the key of a field, the
    item of a list. A missing field gives the line of the mapping that lacks it."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            pair = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


_SECOND = re.compile(r"and steps\[(\d+)\]\)$")


def _line(source: str, prefix: str, field: str, message: str, line: int | None = None) -> str:
    parts = [source] + ([f"line {line}"] if line is not None else [])
    if prefix:
        parts.append(prefix)
    if field:
        parts.append(field)
    return ": ".join(parts + [message])


def _validation_lines(exc: ValidationError, *, source: str, raw: Any, root: yaml.Node | None) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        prefix, field = _where(loc, raw)
        if err["type"] == "extra_forbidden":
            lines.append(_line(source, prefix, field, _unknown_field(loc), _node_line(root, loc)))
            continue
        if err["type"] == "missing":
            lines.append(_line(source, prefix, field, "required field is missing", _node_line(root, loc)))
            continue
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "list_type" and isinstance(err.get("input"), str | int | float):
            message += f", got {err['input']!r}: write a list, e.g. [{err['input']}]"  # `keywords: down`
        if second := _SECOND.search(message):  # a step id used twice: point at the second one
            loc = (*loc, int(second.group(1)), "id")
        lines.append(_line(source, prefix, field, message, _node_line(root, loc)))
    return lines


def _render_lines(playbook: Playbook, *, source: str, root: yaml.Node | None = None) -> list[str]:
    """Render every template with a sample incident so a typo in a variable is caught now."""
    context = sample_context(playbook_id=playbook.id, playbook_title=playbook.title)
    lines = []
    templates: list[tuple[tuple[Any, ...], str, str, str]] = [
        (("description",), "", "description", playbook.description)
    ]
    if playbook.restricted is not None:
        templates.append((("restricted", "note"), "", "restricted.note", playbook.restricted.note))
    for index, step in enumerate(playbook.steps):
        prefix = f"steps[{index}] ({step.id})"
        templates.append((("steps", index, "title"), prefix, "title", step.title))
        templates.append((("steps", index, "instructions"), prefix, "instructions", step.instructions))
        if step.notify is not None:
            templates.append((("steps", index, "notify", "text"), prefix, "notify.text", step.notify.text))
    for loc, prefix, field, text in templates:
        if not text:
            continue
        try:
            render(text, context)  # a syntax error is a RenderError too
            check_names(text, context)
        except RenderError as exc:
            lines.append(_line(source, prefix, field, str(exc), _node_line(root, loc)))
    return lines


@dataclass(frozen=True)
class _Parsed:
    playbook: Playbook | None
    problems: list[str]
    declared: tuple[str, int] | None = None  # the file's `id:` and its line, whatever else is wrong with it


def parse_file(path: Path, *, source: str | None = None) -> tuple[Playbook | None, list[str]]:
    """One file: the playbook, or the problems with it."""
    parsed = _parse(path, source=source or str(path))
    return parsed.playbook, parsed.problems


def _parse(path: Path, *, source: str) -> _Parsed:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _Parsed(None, [f"{source}: cannot read: {exc}"])
    # One parse: the nodes (where each field is, for the messages) and the data built from them.
    loader = _UniqueKeyLoader(text)  # a SafeLoader subclass
    root: yaml.Node | None = None
    try:
        root = loader.get_single_node()
        raw = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return _Parsed(None, [f"{source}: {where}not valid YAML: {problem}"], _declared_id(root))
    finally:
        loader.dispose()
    declared = _declared_id(root)
    if raw is None:
        return _Parsed(None, [f"{source}: the file is empty (a playbook needs id, title and steps)"])
    if not isinstance(raw, dict):
        return _Parsed(None, [f"{source}: the top level must be a mapping (id:, title:, steps:, ...)"])
    try:
        playbook = Playbook.model_validate(raw)
    except ValidationError as exc:
        return _Parsed(None, _validation_lines(exc, source=source, raw=raw, root=root), declared)
    problems = _render_lines(playbook, source=source, root=root)
    return _Parsed(None if problems else playbook, problems, declared)


def _display(path: Path, directory: Path) -> str:
    """`playbooks/database.yml` as the operator wrote the directory, not an absolute path."""
    return str(directory / path.name)


def _common_keywords(loaded: list[tuple[Playbook, str]]) -> list[str]:
    """Keywords found in nearly every title, one line per playbook (a warning: see `Match.too_common`)."""
    found = ((source, playbook.match.too_common()) for playbook, source in loaded)
    return [f"{source}: match.keywords: {problem}" for source, problem in found if problem]


def _collect(directory: Path) -> tuple[list[tuple[Playbook, str]], list[str]]:
    if not directory.exists():
        log.warning("PLAYBOOKS_DIR %s does not exist: no playbooks will be offered", directory)
        return [], []
    if not directory.is_dir():
        return [], [f"PLAYBOOKS_DIR: {directory} is not a directory"]
    loaded: list[tuple[Playbook, str]] = []
    problems: list[str] = []
    first_source: dict[str, str] = {}
    for path in playbook_files(directory):
        source = _display(path, directory)
        parsed = _parse(path, source=source)
        playbook, declared = parsed.playbook, parsed.declared
        problems.extend(parsed.problems)
        # Ids are compared as written, valid file or not: fixing one file must not reveal a clash only then.
        if declared is not None and declared[0] in first_source:
            playbook_id, line = declared
            problems.append(
                f"{source}: line {line}: id: {playbook_id!r} is already used by {first_source[playbook_id]}"
            )
            continue
        if declared is not None:
            first_source[declared[0]] = source
        if playbook is not None:
            loaded.append((playbook, source))
    return loaded, problems


def _declared_id(root: yaml.Node | None) -> tuple[str, int] | None:
    """The `id:` a file declares and its line, whatever else is wrong with the file; None without one."""
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "id" and isinstance(value, yaml.ScalarNode):
            return value.value.strip().lower(), key.start_mark.line + 1
    return None


def check_playbooks(directory: Path) -> list[str]:
    """Every problem in every playbook file, one line each; empty when all is well."""
    return _collect(Path(directory))[1]


def load_playbooks(directory: Path) -> PlaybookRegistry:
    """The registry, or ConfigError listing every problem (the bot does not start half-configured)."""
    loaded, problems = _collect(Path(directory))
    if problems:
        raise ConfigError("invalid playbook:\n" + "\n".join(problems) if len(problems) > 1 else problems[0])
    for warning in _common_keywords(loaded):
        log.warning("%s", warning)
    registry = PlaybookRegistry([p for p, _ in loaded])
    log.info("loaded %d playbooks from %s: %s", len(registry), directory, ", ".join(registry.ids()))
    return registry


def check(settings: Any) -> tuple[list[str], list[str], list[str]]:
    """For `python -m bot check`: errors in the files, warnings about services bot.yml lacks, and what loads."""
    directory = Path(settings.playbooks_dir)
    loaded, errors = _collect(directory)
    warnings: list[str] = []
    if not directory.exists():
        warnings.append(f"PLAYBOOKS_DIR: {directory} does not exist: no playbooks will be offered")
    services = set(settings.config.services)
    for playbook, source in loaded:
        # match.services naming an unknown service only never matches; a step's action would fail.
        for index, step in enumerate(playbook.steps):
            if step.service is not None and step.service not in services:
                warnings.append(f"{source}: steps[{index}] ({step.id}): service: {step.service!r} is not in bot.yml")
    warnings += _common_keywords(loaded)
    ids = sorted(playbook.id for playbook, _ in loaded)
    notes = [] if errors else [f"playbooks: {len(ids)} in {settings.playbooks_dir} ({', '.join(ids)})"]
    return errors, warnings, notes
