"""The schema of `bot.yml`: services, channels, on-call, escalation, reminders, permissions, alerts.

One model per section so each domain package reads only its own part. Validation is strict
(unknown keys are errors) because a typo in an escalation policy must stop start-up, not
silently drop a page.
"""

from __future__ import annotations

import difflib
import re
import typing
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.exceptions import ConfigError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """`30s`, `15m`, `1h`, `1d`, `1h30m`; a bare number is refused so `15` is never 15 seconds by accident."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"write a duration such as 30s, 15m, 1h or 1d (got {value!r})")
    text = value.strip().lower().replace(" ", "")
    if not text:
        raise ValueError("empty duration: write 30s, 15m, 1h or 1d")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {value!r}: write 30s, 15m, 1h or 1d")
    return timedelta(seconds=total)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

_SLACK_ID = {
    "user": re.compile(r"^[UW][A-Z0-9]{2,}$"),
    "group": re.compile(r"^S[A-Z0-9]{2,}$"),
    "channel": re.compile(r"^[CG][A-Z0-9]{2,}$"),
}


def is_user_id(value: str | None) -> bool:
    """A Slack user (U…/W…), as opposed to a system actor such as an alert source."""
    return value is not None and _SLACK_ID["user"].match(value) is not None


def _slack_ref(*kinds: str, prefix: str, extra: str | None = None, expected: str) -> Any:
    """A validator for a Slack ID of the given kinds, a `@handle`/`#name`, or one literal word."""

    def check(value: Any) -> str:
        value = str(value).strip()
        if value == extra or value.startswith(prefix) or any(_SLACK_ID[k].match(value) for k in kinds):
            return value
        raise ValueError(f"{value!r} is not {expected}")

    return BeforeValidator(check)


Target = Annotated[
    str,
    _slack_ref(
        "user", "group", prefix="@", extra="oncall", expected="a Slack user (U…), user group (S…), @handle or 'oncall'"
    ),
]
UserId = Annotated[str, _slack_ref("user", prefix="@", expected="a Slack user ID (U…) or @handle")]
ChannelRef = Annotated[str, _slack_ref("channel", prefix="#", expected="a Slack channel ID (C…) or #name")]
Principal = Annotated[str, _slack_ref("user", "group", prefix="@", expected="a Slack user (U…) or user group (S…)")]


class Severity(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def label(self) -> str:
        return {"P1": "critical", "P2": "high", "P3": "medium", "P4": "low"}[self.value]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- channels -----------------------------------------------------------------------------


class Channels(Strict):
    announcements: ChannelRef | None = None
    alerts: ChannelRef | None = None
    private_incidents: bool = False
    # Archive a resolved incident's channel this long after resolution (never while it is open).
    archive_after: Duration | None = None

    @field_validator("archive_after")
    @classmethod
    def _archive_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("archive_after must be longer than 0 (e.g. 7d); leave it out to keep channels")
        return value


# --- services -----------------------------------------------------------------------------


class RailwayTarget(Strict):
    project_id: str
    service_id: str
    environment_id: str


class VercelTarget(Strict):
    project_id: str
    team_id: str | None = None  # falls back to VERCEL_TEAM_ID


class KubernetesTarget(Strict):
    namespace: str
    deployment: str
    api_url: str | None = None  # falls back to the in-cluster API server
    token_env: str | None = None  # env var holding a bearer token
    ca_file: Path | None = None
    verify_tls: bool = True


class WebhookTarget(Strict):
    url: str
    secret_env: str | None = None  # env var holding the HMAC secret


Platform = Literal["railway", "vercel", "kubernetes", "webhook"]


class Service(Strict):
    health_url: str | None = None
    timeout: Duration = timedelta(seconds=5)
    expected_status: int | None = None
    description: str = ""
    platform: Platform | None = None
    railway: RailwayTarget | None = None
    vercel: VercelTarget | None = None
    kubernetes: KubernetesTarget | None = None
    webhook: WebhookTarget | None = None
    deploy_timeout: Duration = timedelta(minutes=10)

    @model_validator(mode="after")
    def _platform_section_present(self) -> Service:
        if self.platform and getattr(self, self.platform) is None:
            raise ValueError(f"platform is {self.platform!r} but the {self.platform!r} section is missing")
        for other in ("railway", "vercel", "kubernetes", "webhook"):
            if other != self.platform and getattr(self, other) is not None:
                raise ValueError(f"section {other!r} given but platform is {self.platform!r}")
        return self


# --- on-call ------------------------------------------------------------------------------

_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class Rotation(Strict):
    period: Literal["daily", "weekly"] = "weekly"
    handoff: str = "monday 09:00"
    users: list[UserId] = Field(min_length=1)
    start: datetime | None = None  # the hand-off at which users[0] started; defaults to 2026-01-05

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str) -> str:
        parts = value.strip().lower().split()
        clock = parts[-1] if parts else ""
        if not re.fullmatch(r"\d{1,2}:\d{2}", clock):
            raise ValueError(f"handoff {value!r}: write 'monday 09:00' (weekly) or '09:00' (daily)")
        hour, minute = (int(p) for p in clock.split(":"))
        if hour > 23 or minute > 59:
            raise ValueError(f"handoff {value!r}: time out of range")
        if len(parts) == 2 and parts[0] not in _WEEKDAYS:
            raise ValueError(f"handoff {value!r}: unknown weekday {parts[0]!r}")
        if len(parts) > 2:
            raise ValueError(f"handoff {value!r}: write 'monday 09:00' or '09:00'")
        return value

    @property
    def handoff_weekday(self) -> int:
        parts = self.handoff.strip().lower().split()
        return _WEEKDAYS.index(parts[0]) if len(parts) == 2 else 0

    @property
    def handoff_time(self) -> time:
        hour, minute = (int(p) for p in self.handoff.strip().split()[-1].split(":"))
        return time(hour, minute)


class Override(Strict):
    user: UserId
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("override start and end need a time zone, e.g. 2026-11-24T09:00:00Z")
        if self.end <= self.start:
            raise ValueError("override end must be after start")
        return self


class OnCall(Strict):
    timezone: str = "UTC"
    rotation: Rotation | None = None
    overrides: list[Override] = []

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/London)") from exc
        return value


# --- escalation ---------------------------------------------------------------------------


class EscalationLevel(Strict):
    name: str
    after: Duration
    notify: list[Target] = Field(min_length=1)


class SeverityPolicy(Strict):
    levels: int | None = Field(default=None, ge=1)  # page only the first N levels
    stop_on: Literal["resolve", "ack"] | None = None


class PagerDutyTarget(Strict):
    routing_key_env: str = "PAGERDUTY_ROUTING_KEY"
    api_url: str = "https://events.pagerduty.com/v2/enqueue"


def _default_levels() -> list[EscalationLevel]:
    return [EscalationLevel(name="On-call engineer", after=timedelta(0), notify=["oncall"])]


class Escalation(Strict):
    stop_on: Literal["resolve", "ack"] = "resolve"
    levels: list[EscalationLevel] = Field(default_factory=_default_levels, min_length=1)
    severity: dict[Severity, SeverityPolicy] = {}
    repeat_last_every: Duration | None = None
    pagerduty: PagerDutyTarget | None = None

    @field_validator("levels")
    @classmethod
    def _ordered(cls, levels: list[EscalationLevel]) -> list[EscalationLevel]:
        for earlier, later in zip(levels, levels[1:], strict=False):
            if later.after < earlier.after:
                raise ValueError(f"level {later.name!r} fires before {earlier.name!r}: order levels by 'after'")
        return levels


# --- the rest -----------------------------------------------------------------------------


class Reminders(Strict):
    status_update_every: Duration = timedelta(minutes=15)
    status_update_severities: list[Severity] = [Severity.P1, Severity.P2]
    postmortem_due_after: Duration = timedelta(hours=24)


class Permissions(Strict):
    restart: list[Principal] = []
    rollback: list[Principal] = []
    # Who sees every private incident besides its channel's members (e.g. the security team).
    private_incidents: list[Principal] = []


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


class IssueTracker(Strict):
    """Where follow-ups become issues."""

    kind: Literal["github", "jira", "linear"]
    token_env: str  # env var holding the token (GitHub, Linear) or the Jira API token
    repo: str | None = None  # github: owner/name
    project: str | None = None  # jira: project key
    email_env: str | None = None  # jira: env var with the account's email (basic auth)
    issue_type: str = "Task"  # jira
    team_id: str | None = None  # linear
    labels: list[str] = ["incident-follow-up"]  # github
    api_url: str | None = None  # github/linear default to the public API; jira: https://<site>.atlassian.net
    check_every: Duration = timedelta(minutes=15)  # how often open issues are checked for closure

    @model_validator(mode="after")
    def _settings_for_kind(self) -> IssueTracker:
        needed = {"github": ["repo"], "jira": ["project", "email_env", "api_url"], "linear": ["team_id"]}[self.kind]
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"kind {self.kind} needs {', '.join(missing)}")
        if self.kind == "github" and not re.fullmatch(r"[\w.-]+/[\w.-]+", self.repo or ""):
            raise ValueError(f"repo {self.repo!r}: write owner/name")
        return self


class Postmortem(Strict):
    templates_dir: Path | None = None


class StatuspageTarget(Strict):
    """Atlassian Statuspage: the page, the env var holding its API key, and service → component id."""

    page_id: str = Field(min_length=1)
    api_key_env: str = "STATUSPAGE_API_KEY"
    components: dict[str, str] = {}


class StatusPageConfig(Strict):
    """The public status page: its title, public components (name → the services behind them)."""

    title: str = Field(default="Service status", min_length=1, max_length=120)
    components: dict[str, list[str]] = {}
    # How often the page probes the services' health endpoints (stored for the 90-day bars).
    probe_every: Duration = timedelta(minutes=1)
    # P1/P2 incidents with no public update for this long are reminded; default reminders.status_update_every.
    remind_every: Duration | None = None
    statuspage: StatuspageTarget | None = None

    @field_validator("components")
    @classmethod
    def _components(cls, components: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, services in components.items():
            if not name.strip() or len(name) > 100:
                raise ValueError(f"component name {name!r}: 1 to 100 characters")
            if not services:
                raise ValueError(f"component {name!r} names no service")
        return components


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
