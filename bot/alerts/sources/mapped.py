"""`map:` sources: JMESPath expressions written in bot.yml pick each part of the sender's body."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from bot.alerts.payloads import PayloadError
from bot.alerts.sources.fields import Fields, tag_labels, text, when
from bot.config import SourceMap


@lru_cache(maxsize=256)
def _compiled(expression: str) -> ParsedResult:
    return jmespath.compile(expression)


def _pick(expression: str | None, data: dict[str, Any], *, name: str) -> Any:
    if not expression:
        return None
    try:
        return _compiled(expression).search(data)
    except JMESPathError as exc:  # a runtime type error, e.g. a function given the wrong type
        raise PayloadError(f"map.{name} ({expression}): {exc}") from None


def _firing(value: Any, resolved_values: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        raise PayloadError("map.status found nothing in the body: cannot tell firing from resolved")
    word = str(value).strip().lower()
    return word not in {v.strip().lower() for v in resolved_values}


def read(spec: SourceMap, data: dict[str, Any], _: Mapping[str, str]) -> Fields:
    labels_value = _pick(spec.labels, data, name="labels")
    return Fields(
        key=text(
            _pick(spec.group_key, data, name="group_key"), where=f"map.group_key ({spec.group_key})", required=True
        ),
        firing=_firing(_pick(spec.status, data, name="status"), spec.resolved_values),
        title=text(_pick(spec.title, data, name="title"), where=f"map.title ({spec.title})") or "alert",
        summary=text(_pick(spec.description, data, name="description"), where="map.description"),
        severity=text(_pick(spec.severity, data, name="severity"), where="map.severity") or None,
        service=text(_pick(spec.service, data, name="service"), where="map.service") or None,
        labels=tag_labels(labels_value, where=f"map.labels ({spec.labels})"),
        started_at=when(_pick(spec.started_at, data, name="started_at"), where="map.started_at"),
        link=text(_pick(spec.link, data, name="link"), where="map.link") or None,
    )
