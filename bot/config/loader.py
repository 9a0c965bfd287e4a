"""The whole of `bot.yml` (`BotConfig`), read from disk with one readable line per mistake."""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, field_validator, model_validator

from bot.config.alerts import Alerts
from bot.config.base import Strict
from bot.config.paging import Escalation, OnCall, Reminders
from bot.config.reporting import Channels, IssueTracker, Postmortem, StatusPageConfig
from bot.config.services import Permissions, Service
from bot.exceptions import ConfigError


class BotConfig(Strict):
    channels: Channels = Channels()
    services: dict[str, Service] = {}
    oncall: OnCall = OnCall()
    escalation: Escalation = Escalation()
    reminders: Reminders = Reminders()
    permissions: Permissions = Permissions()
    alerts: Alerts = Alerts()
    postmortem: Postmortem = Postmortem()
    issue_tracker: IssueTracker | None = None
    status_page: StatusPageConfig | None = None

    @model_validator(mode="after")
    def _status_page_services(self) -> BotConfig:
        """A status page component (or Statuspage mapping) naming no real service would never turn red."""
        page = self.status_page
        if page is None:
            return self
        for name, services in page.components.items():
            for service in services:
                if service not in self.services:
                    known = ", ".join(sorted(self.services)) or "none"
                    raise ValueError(f"status_page.components.{name}: unknown service {service!r} (services: {known})")
        for service in page.statuspage.components if page.statuspage else {}:
            if service not in self.services:
                raise ValueError(f"status_page.statuspage.components: unknown service {service!r}")
        return self

    @field_validator("services")
    @classmethod
    def _service_names(cls, services: dict[str, Service]) -> dict[str, Service]:
        for name in services:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                raise ValueError(f"service name {name!r}: use lowercase letters, digits, '-' and '_'")
        return services

    def warnings(self) -> list[str]:
        """Things that are legal but probably not meant; `python -m bot check` prints them."""
        out = []
        uses_oncall = any("oncall" in level.notify for level in self.escalation.levels)
        if uses_oncall and self.oncall.rotation is None:
            out.append("escalation notifies 'oncall' but oncall.rotation is not set: nobody is paged for it")
        if self.channels.announcements is None:
            out.append("channels.announcements is not set: incidents are not announced")
        return out


def format_validation_error(exc: ValidationError, *, source: str) -> str:
    """One line per problem: `bot.yml: escalation.levels.1.after: invalid duration '15 minutes'`."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1]), _known_fields(err["loc"]), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            message = f"unknown field ({hint}check the spelling against bot.example.yml)"
        lines.append(f"{source}: {where}: {message}")
    return "\n".join(lines)


def _known_fields(loc: tuple[int | str, ...]) -> list[str]:
    """The field names bot.yml allows where an unknown one was found (for "did you mean")."""
    model: type[BaseModel] = BotConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # a list index or a mapping key (a service's name): the element's model still applies
        inner = _model_in(field.annotation)
        if inner is None:
            return []
        model = inner
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside `Service | None`, `list[Level]`, `dict[str, Service]`, ..."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def load_bot_config(path: Path, *, required: bool) -> BotConfig:
    """Read and validate bot.yml; a missing optional file gives the defaults."""
    if not path.exists():
        if required:
            raise ConfigError(f"BOT_CONFIG: file {path} does not exist")
        return BotConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping (channels:, services:, ...)")
    try:
        return BotConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source=str(path))) from exc
