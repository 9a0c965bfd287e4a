"""`alerts:`: the senders that may post alerts and the rules that declare from them."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from bot.config.base import Severity, Strict


class AutoDeclareRule(Strict):
    match: dict[str, str] = Field(min_length=1)
    severity: Severity = Severity.P1
    playbook: str | None = None


PRESETS = ("uptimerobot", "datadog", "sentry", "pingdom", "betterstack")
BUILTIN_SOURCES = ("alertmanager", "grafana")


def _jmespath(value: Any) -> str:
    """A JMESPath expression, compiled now so a typo stops start-up instead of every delivery."""
    import jmespath
    from jmespath.exceptions import JMESPathError

    if not isinstance(value, str) or not value.strip():
        raise ValueError("write a JMESPath expression, e.g. check.name")
    try:
        jmespath.compile(value)
    except JMESPathError as exc:
        raise ValueError(f"invalid JMESPath expression {value!r}: {exc}") from None
    return value


JMESPath = Annotated[str, BeforeValidator(_jmespath)]


class SourceMap(Strict):
    """Where a sender's JSON keeps each part of an alert (JMESPath expressions over the body)."""

    group_key: JMESPath
    status: JMESPath  # true/false (firing?) or a word: resolved/ok/up/recovered… is resolved, anything else firing
    title: JMESPath
    severity: JMESPath | None = None
    service: JMESPath | None = None
    labels: JMESPath | None = None  # an object of strings (or a list of `key:value` tags)
    started_at: JMESPath | None = None  # RFC 3339 or epoch seconds/milliseconds
    link: JMESPath | None = None
    description: JMESPath | None = None
    resolved_values: list[str] = ["resolved", "ok", "up", "recovered", "closed", "inactive", "normal", "false"]


class AlertSource(Strict):
    """`POST /alerts/<name>`: a preset sender, or a `map:` for anything else."""

    preset: Literal["uptimerobot", "datadog", "sentry", "pingdom", "betterstack"] | None = None
    map: SourceMap | None = None
    token_env: str | None = None  # env var with this source's token; ALERTS_TOKEN when unset
    client_secret_env: str | None = None  # Sentry: the integration's client secret (Sentry-Hook-Signature)
    severity: Severity | None = None  # when the sender says nothing about severity
    service: str | None = None  # when the sender names no service

    @model_validator(mode="after")
    def _one_kind(self) -> AlertSource:
        if (self.preset is None) == (self.map is None):
            raise ValueError("give exactly one of preset: (" + " | ".join(PRESETS) + ") or map:")
        if self.client_secret_env and self.preset != "sentry":
            raise ValueError("client_secret_env is for preset: sentry only")
        return self


class Alerts(Strict):
    auto_declare: list[AutoDeclareRule] = []
    sources: dict[str, AlertSource] = {}

    @field_validator("sources")
    @classmethod
    def _source_names(cls, sources: dict[str, AlertSource]) -> dict[str, AlertSource]:
        for name in sources:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,19}", name):
                raise ValueError(f"source name {name!r}: lowercase letters, digits, '-' and '_', at most 20")
            if name in BUILTIN_SOURCES:
                raise ValueError(f"source name {name!r} is built in (POST /alerts/{name}); pick another name")
        return sources
