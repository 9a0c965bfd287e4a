"""The schema of `bot.yml`: services, channels, on-call, escalation, reminders, permissions, alerts.

One model per section so each domain package reads only its own part. Validation is strict
(unknown keys are errors) because a typo in an escalation policy must stop start-up, not
silently drop a page.

`base` holds the building blocks, one module per theme holds the section models, and `loader`
holds `BotConfig` and reading the file. The public names are re-exported here so callers write
`from bot.config import Severity` without knowing which module a model lives in.
"""

from bot.config.alerts import BUILTIN_SOURCES, PRESETS, Alerts, AlertSource, AutoDeclareRule, JMESPath, SourceMap
from bot.config.base import (
    ChannelRef,
    Duration,
    Principal,
    Severity,
    Strict,
    Target,
    UserId,
    is_user_id,
    parse_duration,
)
from bot.config.loader import BotConfig, format_validation_error, load_bot_config
from bot.config.paging import (
    Escalation,
    EscalationLevel,
    OnCall,
    Override,
    PagerDutyTarget,
    Reminders,
    Rotation,
    SeverityPolicy,
)
from bot.config.reporting import Channels, IssueTracker, Postmortem, StatusPageConfig, StatuspageTarget
from bot.config.services import (
    KubernetesTarget,
    Permissions,
    Platform,
    RailwayTarget,
    Service,
    VercelTarget,
    WebhookTarget,
)

__all__ = [
    "BUILTIN_SOURCES",
    "PRESETS",
    "AlertSource",
    "Alerts",
    "AutoDeclareRule",
    "BotConfig",
    "ChannelRef",
    "Channels",
    "Duration",
    "Escalation",
    "EscalationLevel",
    "IssueTracker",
    "JMESPath",
    "KubernetesTarget",
    "OnCall",
    "Override",
    "PagerDutyTarget",
    "Permissions",
    "Platform",
    "Postmortem",
    "Principal",
    "RailwayTarget",
    "Reminders",
    "Rotation",
    "Service",
    "Severity",
    "SeverityPolicy",
    "SourceMap",
    "StatusPageConfig",
    "StatuspageTarget",
    "Strict",
    "Target",
    "UserId",
    "VercelTarget",
    "WebhookTarget",
    "format_validation_error",
    "is_user_id",
    "load_bot_config",
    "parse_duration",
]
