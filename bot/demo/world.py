"""The demo's world: the workspace's people and channels, its credentials, the bot.yml it runs with and the
alert that starts the story. The Slack stand-in, the driver and the story all read these."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config import BotConfig
from bot.statuspage.snapshot import iso

SECRET = "demo-signing-secret-not-for-production"
BOT_TOKEN = "xoxb-demo-local-stand-in"
TEAM_ID = "T0DEMO"
BOT_USER = "UBOT"
BOT_NAME = "incident-bot"
PEOPLE = {
    "U0ALICE": "alice",  # SRE, declares and commands
    "U0BOB": "bob",  # on call this week
    "U0DANA": "dana",  # team lead (level 2)
    "U0CHRIS": "chris",  # CTO (level 3)
}
CHANNELS = {"C0GENERAL": "general", "C0INCIDENTS": "incidents", "C0ALERTS": "alerts"}


# How long the gateway had been failing when the alert fired (its description says so): the demo's time to detect.
ALERT_AGE = timedelta(minutes=2)


def alert_body(*, status: str, starts_at: datetime) -> dict[str, Any]:
    """A notification as Alertmanager 0.25 sends it (webhook version 4); `starts_at` is the same in each."""
    labels = {"alertname": "ServiceDown", "service": "gateway", "severity": "critical", "instance": "gateway-1:8080"}
    alert = {
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": "Checkout API returns 502 on gateway",
            "description": "gateway /health has failed for 2 minutes; 38% of checkout requests fail",
        },
        "startsAt": iso(starts_at),
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else iso(datetime.now(UTC)),
        "generatorURL": "http://prometheus.local:9090/graph?g0.expr=up%7Bjob%3D%22gateway%22%7D+%3D%3D+0",
        "fingerprint": "5d0c1a2b3c4d5e6f",
    }
    return {
        "receiver": "incident-bot",
        "status": status,
        "alerts": [alert],
        "groupLabels": {"alertname": "ServiceDown"},
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager.local:9093",
        "version": "4",
        "groupKey": '{}:{alertname="ServiceDown"}',
        "truncatedAlerts": 0,
    }


def demo_config(services_url: str, *, escalation_after: tuple[int, int, int]) -> BotConfig:
    first, second, third = escalation_after
    return BotConfig.model_validate(
        {
            "channels": {"announcements": "C0INCIDENTS", "alerts": "C0ALERTS"},
            "services": {
                "gateway": {
                    "health_url": f"{services_url}/gateway/health",
                    "timeout": "2s",
                    "platform": "webhook",
                    "webhook": {"url": f"{services_url}/deploy"},
                    "description": "public API gateway (checkout, accounts)",
                },
                "web": {"health_url": f"{services_url}/web/health", "timeout": "2s"},
            },
            "oncall": {
                "timezone": "UTC",
                "rotation": {"period": "weekly", "handoff": "monday 09:00", "users": ["U0BOB"]},
            },
            "escalation": {
                "stop_on": "resolve",
                "levels": [
                    {"name": "On-call engineer", "after": f"{first}s", "notify": ["oncall"]},
                    {"name": "Team lead", "after": f"{second}s", "notify": ["U0DANA"]},
                    {"name": "CTO", "after": f"{third}s", "notify": ["U0CHRIS"]},
                ],
            },
            "permissions": {"restart": ["U0ALICE"], "rollback": ["U0ALICE"]},
        }
    )
