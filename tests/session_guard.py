"""No database connection is held across a Slack Web API call: checked on every call of the suite.

A session that has run a statement holds a pooled connection (and an open transaction) until it
commits, rolls back or closes. Holding one while awaiting Slack, which may sleep on Retry-After
for a minute, drains the pool on PostgreSQL and keeps a stale snapshot on SQLite; in a storm it
stalls paging. `SessionGuard` notes which task checked out each connection (SQLAlchemy's pool
events, every engine) and, on every `AsyncWebClient.api_call` (all Web API methods go through it),
records a violation when the calling task holds one. It also records a bot task that takes a second
connection while it holds one: the pools are small on purpose (bot/db.py), and a task waiting for a
connection while holding one could wait on itself. tests/conftest.py installs it for every test and
fails the test at teardown.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import event
from sqlalchemy.pool import Pool


@dataclass
class SessionGuard:
    # id(pool record) -> the task that checked the connection out
    holders: dict[int, asyncio.Task[Any]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def _checkout(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop (a sync engine in a test)
            task = None
        if task is not None:
            if any(holder is task for holder in self.holders.values()):
                where = _where(task)
                if "/tests/" not in where:  # the bot's own task (a test may hold a session while calling in)
                    self.violations.append(f"a second database connection taken while holding one:\n{where}")
            self.holders[id(record)] = task

    def _checkin(self, _dbapi: Any, record: Any) -> None:
        self.holders.pop(id(record), None)

    def held_by_current_task(self) -> int:
        task = asyncio.current_task()
        return sum(1 for holder in self.holders.values() if holder is task)

    def check(self, what: str) -> None:
        held = self.held_by_current_task()
        if held:
            where = "".join(traceback.format_stack(limit=14)[:-2])
            self.violations.append(f"{what} called while this task holds {held} database connection(s):\n{where}")

    @contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionGuard]:
        event.listen(Pool, "checkout", self._checkout)
        event.listen(Pool, "checkin", self._checkin)
        original = AsyncWebClient.api_call
        guard = self

        async def api_call(client: AsyncWebClient, api_method: str, *args: Any, **kwargs: Any) -> Any:
            guard.check(f"Slack {api_method}")
            return await original(client, api_method, *args, **kwargs)

        monkeypatch.setattr(AsyncWebClient, "api_call", api_call)
        try:
            yield self
        finally:
            event.remove(Pool, "checkout", self._checkout)
            event.remove(Pool, "checkin", self._checkin)


def _where(task: asyncio.Task[Any]) -> str:
    """The task's own await chain (a checkout runs in SQLAlchemy's greenlet, whose stack hides it)."""
    frames = task.get_stack(limit=40)
    return "".join(f'  File "{f.f_code.co_filename}", line {f.f_lineno}, in {f.f_code.co_name}\n' for f in frames)
