"""The schema of a playbook file in PLAYBOOKS_DIR.

Strict like bot.yml: an unknown key is an error, because a misspelt `requried: false` that is
silently ignored changes what responders are asked to do in the middle of an outage.

```yaml
id: database
title: Database issues
description: Connections exhausted, slow queries, disk full.
match:                       # when the bot picks this playbook by itself (see registry.choose)
  services: [postgres]
  keywords: [database, db, "too many connections"]
  labels: {alertname: [PostgresDown, PostgresTooManyConnections]}
severity: P1                 # suggested severity when the incident is declared without one
private: false               # true: the incident channel is created private
restricted:                  # who may work the steps (default: anyone in the channel)
  roles: [commander]
  note: Incident lead only.
steps:
  - id: connections
    title: Count connections
    instructions: |
      Run `psql "$DATABASE_URL" -c "select count(*) from pg_stat_activity"` for {{ service }}.
    action: status           # status | restart | rollback | page | notify
    required: true
```
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.config import Severity
from bot.incidents.models import Role

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9_-]*|[CG][A-Z0-9]{2,}|announcements|alerts)$")


class Action(StrEnum):
    """What the bot can do from a step, on a button click."""

    STATUS = "status"  # health check of the incident's services
    RESTART = "restart"  # the /restart flow: same permissions and confirmation
    ROLLBACK = "rollback"  # the /rollback flow: same permissions and confirmation
    PAGE = "page"  # escalate to the next level now
    NOTIFY = "notify"  # post the step's message to the step's channel

    @property
    def label(self) -> str:
        """Button text."""
        return {
            "status": "Check health",
            "restart": "Restart",
            "rollback": "Roll back",
            "page": "Page next level",
            "notify": "Send notification",
        }[self.value]


ACTION_NAMES = ", ".join(a.value for a in Action)

# The most steps a playbook may have. The progress message lists every step and must fit one Slack
# message (50 blocks, 3000 characters a section); the chat layer bounds each step's line so that this
# many always fit, and the "Reopen a step" menu holds at most 100 options.
MAX_STEPS = 100


# Words that occur in most incident titles ("The API is down", "issue with checkout"): as a keyword
# each would match nearly every incident. Lowercase; compared case-insensitively.
GENERIC_WORDS = frozenset(
    {
        *("a", "an", "and", "are", "at", "be", "but", "by", "for", "from", "has", "have", "in", "is", "it", "its"),
        *("of", "on", "or", "our", "the", "to", "was", "we", "were", "with"),
        *("incident", "incidents", "issue", "issues", "problem", "problems", "something", "prod", "production"),
    }
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"{what} {value!r}: use lowercase letters, digits, '-' and '_' (e.g. 'kill-idle')")
    return value


def _listed(keywords: list[str], one: str, many: str) -> str:
    """`keyword 'the' is` / `keywords 'the', 'a' are`."""
    names = ", ".join(repr(k) for k in keywords)
    return f"keyword {names} {one}" if len(keywords) == 1 else f"keywords {names} {many}"


class Match(_Strict):
    """When a playbook applies. Every list is "any of"; `labels` is "all of" (like Alertmanager routes)."""

    services: list[str] = []
    keywords: list[str] = []
    labels: dict[str, list[str]] = {}

    @field_validator("services", "keywords")
    @classmethod
    def _non_empty(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip() for v in values]
        if any(not v for v in cleaned):
            raise ValueError("empty entry")
        return cleaned

    @field_validator("keywords")
    @classmethod
    def _specific(cls, values: list[str]) -> list[str]:
        """A keyword with no letter or digit matches punctuation in any title: never what was meant."""
        symbols = [v for v in values if not any(c.isalnum() for c in v)]
        if symbols:
            raise ValueError(
                f"{_listed(symbols, 'has', 'have')} no letter or digit: it would match punctuation in any title"
            )
        return values

    def too_common(self) -> str | None:
        """What is wrong with keywords found in nearly every title ('the', 'incident', 'prod'), or None.

        A warning (`python -m bot check`, and the log at start), not a refusal: a playbook that loaded
        before must not stop the bot from starting after an upgrade, in the middle of an incident.
        """
        common = [v for v in self.keywords if len(v) < 2 or v.lower() in GENERIC_WORDS]
        if not common:
            return None
        return (
            f"{_listed(common, 'is', 'are')} in almost every incident title, so this playbook would start "
            "for nearly every incident: use words specific to it (e.g. 'database', 'too many connections')"
        )

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, labels: Any) -> Any:
        """`{alertname: X}` or `{alertname: [X, Y]}`; values compared as strings, case-insensitively."""
        if not isinstance(labels, dict):
            return labels
        out: dict[str, list[str]] = {}
        for name, value in labels.items():
            values = value if isinstance(value, list) else [value]
            if not values:
                raise ValueError(f"label {name!r}: empty list of values")
            if any(isinstance(v, dict | list) or v is None for v in values):
                raise ValueError(f"label {name!r}: give a value or a list of values")
            out[str(name)] = [str(v).strip() for v in values]
        return out


class Notify(_Strict):
    """Where a `notify` step posts, and what. `text` may use the same variables as instructions."""

    channel: str
    text: str = Field(min_length=1)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not _CHANNEL.match(value):
            raise ValueError(
                f"{value!r} is not a channel: write a channel ID (C…), '#name', "
                "or 'announcements' / 'alerts' for the channels in bot.yml"
            )
        return value


class Restricted(_Strict):
    """Only people holding one of `roles` may work the steps (the declarer when nobody holds one)."""

    roles: list[Role] = Field(default_factory=lambda: [Role.COMMANDER], min_length=1)
    note: str = ""


class Step(_Strict):
    id: str = Field(max_length=100)  # the columns that keep it (playbook_step_states.step_id)
    title: str = Field(min_length=1, max_length=150)
    instructions: str = Field(min_length=1, max_length=2800)  # one Slack section (3000) with room
    action: Action | None = None
    required: bool = True
    # Service the action targets; default: the incident's service.
    service: str | None = None
    notify: Notify | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value, "step id")

    @field_validator("action", mode="before")
    @classmethod
    def _action(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip().lower()
        if text not in {a.value for a in Action}:
            raise ValueError(f"unknown action {value!r} (expected one of {ACTION_NAMES})")
        return text

    @model_validator(mode="after")
    def _notify_matches_action(self) -> Step:
        if self.action == Action.NOTIFY and self.notify is None:
            raise ValueError("action 'notify' needs a 'notify:' section with 'channel' and 'text'")
        if self.notify is not None and self.action != Action.NOTIFY:
            raise ValueError("'notify:' section given but the action is not 'notify'")
        if self.service is not None and self.action not in (Action.STATUS, Action.RESTART, Action.ROLLBACK):
            raise ValueError("'service' only applies to the status, restart and rollback actions")
        return self


class Playbook(_Strict):
    id: str = Field(max_length=100)  # the columns that keep it (incidents.playbook_id, playbook_runs.playbook_id)
    title: str = Field(min_length=1, max_length=150)
    description: str = ""
    match: Match = Match()
    severity: Severity | None = None
    private: bool = False
    restricted: Restricted | None = None
    steps: list[Step] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value, "playbook id")

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().upper().removeprefix("SEV")
            return text if text.startswith("P") else f"P{text}"
        return value

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: list[Step]) -> list[Step]:
        if len(steps) > MAX_STEPS:
            raise ValueError(
                f"has {len(steps)} steps, at most {MAX_STEPS} are allowed (the progress message lists every "
                "step and must fit one Slack message of 50 blocks): split it into two playbooks"
            )
        seen: dict[str, int] = {}
        for index, step in enumerate(steps):
            if step.id in seen:
                first = seen[step.id]
                raise ValueError(f"step id {step.id!r} is used twice (steps[{first}] and steps[{index}])")
            seen[step.id] = index
        return steps

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    @property
    def required_steps(self) -> int:
        return sum(1 for s in self.steps if s.required)
