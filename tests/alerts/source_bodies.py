"""Bodies as the monitoring senders send them (shapes: README "Alert sources", specs/README.md).

Each preset has a firing body, a repeat (the sender notifying again), and the body that clears it.
Times are relative to now so time to detect reads naturally.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

SENTRY_SECRET = "sentry-client-secret-0123456789abcdef"


def started(minutes_ago: int = 12) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(microsecond=0)


def uptimerobot(alert_type: str) -> dict[str, Any]:
    return {
        "monitorID": "793412345",
        "monitorURL": "https://api.example.com/health",
        "monitorFriendlyName": "API health",
        "alertType": alert_type,
        "alertTypeFriendlyName": "Down" if alert_type == "1" else "Up",
        "alertDetails": "Connection Timeout" if alert_type == "1" else "HTTP 200 - OK",
        "alertDuration": "" if alert_type == "1" else "720",
        "alertDateTime": str(int(started().timestamp())),
        "sslExpiryDate": "",
        "sslExpiryDaysLeft": "",
    }


def datadog(transition: str) -> dict[str, Any]:
    return {
        "id": "7461232423578345723",
        "title": f"[{transition}] High error rate on checkout",
        "body": "%%%\nError rate is 7.2% (threshold 5%) on service:api\n%%%",
        "last_updated": str(int(datetime.now(UTC).timestamp() * 1000)),
        "event_type": "query_alert_monitor",
        "date": str(int(started().timestamp() * 1000)),
        "org": {"id": "11287", "name": "Acme"},
        "alert_id": "123456",
        "alert_transition": transition,
        "aggreg_key": "9bd4ac313a4d1e8fae2482df7b77628",
        "alert_priority": "P1",
        "alert_type": "error" if transition == "Triggered" else "success",
        "tags": "env:prod,service:api,team:payments,monitor",
        "link": "https://app.datadoghq.com/monitors/123456",
    }


def sentry_event_alert() -> dict[str, Any]:
    return {
        "action": "triggered",
        "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
        "data": {
            "event": {
                "event_id": "e4874d664c3540c1a32eab185f12c5ab",
                "issue_id": "4512345678",
                "title": "ZeroDivisionError: division by zero",
                "culprit": "checkout.views.total",
                "level": "error",
                "platform": "python",
                "datetime": started().isoformat().replace("+00:00", ".123000Z"),
                "url": "https://sentry.io/api/0/projects/acme/checkout/events/e4874d664c3540c1a32eab185f12c5ab/",
                "web_url": "https://acme.sentry.io/issues/4512345678/events/e4874d664c3540c1a32eab185f12c5ab/",
                "issue_url": "https://sentry.io/api/0/issues/4512345678/",
                "tags": [["environment", "production"], ["level", "error"], ["service", "api"]],
            },
            "triggered_rule": "Error spike on checkout",
        },
        "actor": {"type": "application", "id": "sentry", "name": "Sentry"},
    }


def sentry_issue(
    action: str, *, first_seen: datetime | None = None, last_seen: datetime | None = None
) -> dict[str, Any]:
    first = first_seen or started()
    return {
        "action": action,
        "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
        "data": {
            "issue": {
                "id": "4512345678",
                "shortId": "CHECKOUT-1A",
                "title": "ZeroDivisionError: division by zero",
                "culprit": "checkout.views.total",
                "level": "error",
                "status": "resolved" if action == "resolved" else "unresolved",
                "substatus": {"created": "new", "unresolved": "regressed"}.get(action, "ongoing"),
                "firstSeen": first.isoformat().replace("+00:00", "Z"),
                "lastSeen": (last_seen or first).isoformat().replace("+00:00", "Z"),
                "web_url": "https://acme.sentry.io/issues/4512345678/",
            }
        },
        "actor": {"type": "user", "id": "1", "name": "Bob"},
    }


def sentry_metric_alert(action: str, *, minutes_ago: int = 20, incident_id: str = "4") -> dict[str, Any]:
    """Sentry's metric alert webhook (`metric_alert` resource): `data.metric_alert` is Sentry's own incident
    (a new one, with a new id, each time the rule fires), `data.metric_alert.alert_rule` the rule."""
    since = started(minutes_ago).isoformat().replace("+00:00", ".000000Z")
    return {
        "action": action,
        "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
        "data": {
            "description_text": "1000 events in the last 10 minutes\\nFilter: level:error",
            "description_title": f"{action.capitalize()}: Too many errors",
            "metric_alert": {
                "alert_rule": {"aggregate": "count()", "id": "7", "name": "Too many errors", "triggers": []},
                "date_closed": since if action == "resolved" else None,
                "date_created": since,
                "date_detected": since,
                "date_started": since,
                "id": incident_id,
                "identifier": incident_id,
                "status": 2 if action == "resolved" else 20,
                "title": "Sacred Marmot",
            },
            "web_url": "https://sentry.io/organizations/acme/alerts/1/",
        },
        "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
    }


def sentry_headers(body: bytes, resource: str, secret: str = SENTRY_SECRET) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": str(int(datetime.now(UTC).timestamp())),
        "Sentry-Hook-Signature": signature,
        "Request-ID": "c2f9d1a0-3b1e-4d2f-9a7e-2f3b4c5d6e7f",
    }


def pingdom(state: str) -> dict[str, Any]:
    return {
        "check_id": 12345,
        "check_name": "Checkout",
        "check_type": "HTTP",
        "check_params": {
            "basic_auth": False,
            "encryption": True,
            "full_url": "https://shop.example.com/checkout",
            "header": "User-Agent:Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
            "hostname": "shop.example.com",
            "ipv6": False,
            "port": 443,
            "url": "/checkout",
        },
        "tags": [],
        "previous_state": "UP" if state == "DOWN" else "DOWN",
        "current_state": state,
        "importance_level": "HIGH",
        "state_changed_timestamp": int(started().timestamp()),
        "state_changed_utc_time": started().strftime("%Y-%m-%dT%H:%M:%S"),
        "long_description": "Timeout (> 30s)" if state == "DOWN" else "",
        "description": "Timeout" if state == "DOWN" else "OK",
        "first_probe": {"ip": "185.180.12.65", "ipv6": "", "location": "Frankfurt, Germany"},
    }


def betterstack(resolved: bool, *, incident_id: str = "123456789") -> dict[str, Any]:
    """An Uptime incident webhook: one Better Stack incident per outage, naming its monitor in relationships."""
    return {
        "data": {
            "id": incident_id,
            "type": "incident",
            "attributes": {
                "name": "API health",
                "url": "https://api.example.com/health",
                "http_method": "get",
                "cause": "Status 503",
                "incident_group_id": None,
                "started_at": started().isoformat().replace("+00:00", ".000Z"),
                "acknowledged_at": None,
                "acknowledged_by": None,
                "resolved_at": datetime.now(UTC).isoformat() if resolved else None,
                "resolved_by": "Better Stack" if resolved else None,
                "status": "Resolved" if resolved else "Started",
                "team_name": "Acme",
                "regions": ["us", "eu"],
                "response_content": None,
            },
            "relationships": {"monitor": {"data": {"id": "2468013", "type": "monitor"}}},
        }
    }


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
