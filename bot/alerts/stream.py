"""A delivery read as it arrives: the body is parsed from the request stream (ijson), the alerts
beyond `KEPT_ALERTS_PER_DELIVERY` are counted and thrown away at once, so a 25 MiB storm costs
a few MiB of memory rather than four times its size (`benchmarks/alert_storm_memory.py`), and the
event loop serves pages and Slack acks between chunks instead of waiting for one long parse.

Returns the same `dict` `payloads.decode` would, with `alerts` cut to what is kept, and the
`Overflow` that says what was cut; `payloads.parse` takes both.
"""

from __future__ import annotations

from typing import Any

import ijson

from bot.alerts.limits import KEPT_ALERTS_PER_DELIVERY, ChunkSource, LimitedReader, Overflow
from bot.alerts.limits import MAX_ALERT_BODY_BYTES as LIMIT
from bot.alerts.payloads import MAX_DEPTH, PayloadError

_OPEN = frozenset({"start_map", "start_array"})
_CLOSE = frozenset({"end_map", "end_array"})
_KINDS = {"start_array": "list", "string": "str", "number": "number", "boolean": "bool", "null": "null"}


class _Body:
    """Events of the body (ijson's basic events, no prefixes: the cheapest), sorted into the
    top-level members; the `alerts` array is taken one item at a time."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.data: dict[str, Any] = {}
        self.alerts: list[Any] = []
        self.overflow = Overflow()
        self.depth = 0  # 1 inside the body object
        self.key: str | None = None  # the top-level member being read
        self.builder: ijson.ObjectBuilder | None = None
        self.in_alerts = False
        self.item_key: str | None = None  # a dropped alert's member being read (depth 3)
        self.status: object = None

    def feed(self, event: str, value: Any) -> None:
        depth = self.depth
        if depth == 0:
            if event != "start_map":
                raise PayloadError(f"the body must be a JSON object, got {_KINDS.get(event, event)}")
        elif depth == 1 and event == "map_key":
            self.key = value
        elif depth == 1 and event == "end_map":
            pass
        elif self.in_alerts or (depth == 1 and self.key == "alerts" and event == "start_array"):
            self._alert_event(event, value)
        else:
            self._member_event(event, value)
        self.depth += 1 if event in _OPEN else -1 if event in _CLOSE else 0
        if self.depth > MAX_DEPTH:  # as decode() refuses: no real sender nests this deep
            raise PayloadError(f"the JSON is nested deeper than {MAX_DEPTH} levels")

    def _member_event(self, event: str, value: Any) -> None:
        if self.builder is None:
            self.builder = ijson.ObjectBuilder()
        self.builder.event(event, value)
        if self.depth == 1 and event not in _OPEN or self.depth == 2 and event in _CLOSE:
            assert self.key is not None
            self.data[self.key] = self.builder.value
            self.builder = None

    def _alert_event(self, event: str, value: Any) -> None:
        depth = self.depth
        if depth == 1:  # the array opens
            self.in_alerts = True
            return
        if depth == 2 and event == "end_array":  # the array closes
            self.in_alerts = False
            self.data["alerts"] = self.alerts
            return
        if depth == 2:  # an item starts
            self.status = self.item_key = None
            if len(self.alerts) < self.keep:
                self.builder = ijson.ObjectBuilder()
            elif event != "start_map":
                index = len(self.alerts) + self.overflow.dropped
                raise PayloadError(f"alerts[{index}]: expected an object, got {_KINDS.get(event, event)}")
        if self.builder is not None:
            self.builder.event(event, value)
        elif depth == 3:
            if event == "map_key":
                self.item_key = value
            elif self.item_key == "status":
                self.status = value
        closes = depth == 2 and event not in _OPEN or depth == 3 and event in _CLOSE
        if closes:  # the item is complete
            if self.builder is not None:
                self.alerts.append(self.builder.value)
                self.builder = None
            else:
                self.overflow.count(self.status)


async def read_notification(
    source: ChunkSource, *, limit: int = LIMIT, keep: int = KEPT_ALERTS_PER_DELIVERY
) -> tuple[dict[str, Any], Overflow]:
    """The webhook body as a dict (alerts cut to `keep`) and what was cut; PayloadError when malformed,
    `limits.BodyTooLarge` past `limit`."""
    reader = LimitedReader(source, limit=limit)
    body = _Body(keep)
    try:
        async for event, value in ijson.basic_parse_async(reader, use_float=True):
            body.feed(event, value)
    except ijson.JSONError as exc:
        if reader.blank:
            raise PayloadError("the body is empty: send the webhook JSON") from None
        raise PayloadError(f"the body is not JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise PayloadError(f"the body is not JSON ({exc})") from None
    if reader.blank:
        raise PayloadError("the body is empty: send the webhook JSON")
    return body.data, body.overflow
