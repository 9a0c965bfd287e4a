"""Webhook bodies exactly as the senders build them.

Alertmanager 0.25 (`notify/webhook`): `{receiver, status, alerts[], groupLabels, commonLabels,
commonAnnotations, externalURL, version: "4", groupKey, truncatedAlerts}`; each alert has `status,
labels, annotations, startsAt, endsAt, generatorURL, fingerprint`; times are Go RFC 3339 with
nanoseconds, `endsAt` is Go's zero time while firing. The group key is `<route matchers>:<group
labels>`, e.g. `{}/{severity="critical"}:{alertname="HighErrorRate"}`.

Grafana unified alerting (the webhook contact point, docs "Configure the webhook notifier"): the same
shape plus `orgId`, `title`, `state`, `message`, `version: "1"`, and per alert `silenceURL`,
`dashboardURL`, `panelURL`, `values`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

ZERO = "0001-01-01T00:00:00Z"


def fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]


def am_alert(
    alertname: str = "HighErrorRate",
    *,
    status: str = "firing",
    instance: str = "api-1:9090",
    summary: str = "Checkout error rate above 5%",
    description: str = "5xx ratio is 7.5% over the last 5 minutes",
    starts_at: str = "2026-11-20T08:58:30.123456789Z",
    ends_at: str | None = None,
    **labels: str,
) -> dict[str, Any]:
    all_labels = {"alertname": alertname, "instance": instance, "job": "api", **labels}
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": "https://runbooks.example.com/5xx",
        },
        "startsAt": starts_at,
        "endsAt": ends_at or (ZERO if status == "firing" else "2026-11-20T09:10:00.5Z"),
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=rate%28http_errors%5B5m%5D%29&g0.tab=1",
        "fingerprint": fingerprint(all_labels),
    }


def alertmanager(
    alerts: list[dict[str, Any]],
    *,
    group_key: str = '{}/{severity="critical"}:{alertname="HighErrorRate"}',
    status: str | None = None,
    group_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    alerts = copy.deepcopy(alerts)
    status = status or ("firing" if any(a["status"] == "firing" for a in alerts) else "resolved")
    common_labels = dict(alerts[0]["labels"])
    for alert in alerts[1:]:
        common_labels = {k: v for k, v in common_labels.items() if alert["labels"].get(k) == v}
    common_annotations = dict(alerts[0]["annotations"])
    for alert in alerts[1:]:
        common_annotations = {k: v for k, v in common_annotations.items() if alert["annotations"].get(k) == v}
    return {
        "receiver": "incident-bot",
        "status": status,
        "alerts": alerts,
        "groupLabels": group_labels if group_labels is not None else {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": "http://alertmanager.example.com:9093",
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }


def grafana(*, status: str = "firing", org_id: int = 1) -> dict[str, Any]:
    """The example body from Grafana's webhook notifier documentation (two alerts, team blue)."""
    ends = ZERO if status == "firing" else "2021-10-12T10:01:03.157076+02:00"
    return {
        "receiver": "My Super Webhook",
        "status": status,
        "orgId": org_id,
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
                "annotations": {
                    "description": "The system has high memory usage",
                    "runbook_url": "https://myrunbook.com/runbook/1234",
                    "summary": "This alert was triggered for zone us-1",
                },
                "startsAt": "2021-10-12T09:51:03.157076+02:00",
                "endsAt": ends,
                "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
                "fingerprint": "c6eadffa33fcdf37",
                "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2",
                "dashboardURL": "",
                "panelURL": "",
                "values": {"B": 44.23943737541908, "C": 1},
            },
            {
                "status": status,
                "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
                "annotations": {
                    "description": "The system has high CPU usage",
                    "runbook_url": "https://myrunbook.com/runbook/1234",
                    "summary": "This alert was triggered for zone eu-1",
                },
                "startsAt": "2021-10-12T09:56:03.157076+02:00",
                "endsAt": ends,
                "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
                "fingerprint": "bc97ff14869b13e3",
                "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT1",
                "dashboardURL": "",
                "panelURL": "",
                "values": {"B": 44.23943737541908, "C": 1},
            },
        ],
        "groupLabels": {},
        "commonLabels": {"team": "blue"},
        "commonAnnotations": {},
        "externalURL": "https://play.grafana.org/",
        "version": "1",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "title": "[FIRING:2]  (blue)",
        "state": "alerting" if status == "firing" else "ok",
        "message": "**Firing**\n\nLabels:\n - alertname = T2\n - team = blue\n - zone = us-1\n",
    }
