"""Two replicas, 100 incidents with pending pages, every sender racing: 0 duplicate, 0 missing pages."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.escalation.models import Page
from tests.fakes.slack_api import FakeSlack
from tests.fault.support import unpace_channel_creation
from tests.replicas.conftest import REPLICAS_ONLY, Replicas, two_bots

pytestmark = REPLICAS_ONLY

INCIDENTS = 100
CONFIG = {
    "escalation": {
        "levels": [
            {"name": "Team lead", "after": "1m", "notify": ["U0LEAD"]},
            {"name": "CTO", "after": "2m", "notify": ["U0CTO", "U0BOB"]},
        ]
    }
}


@pytest.fixture
async def paging_replicas(fake_slack: FakeSlack, database_url: str, tmp_path: Path) -> AsyncIterator[Replicas]:
    """Like `replicas`, on one FakeClock so that nothing falls due until the test moves time."""
    async with two_bots(
        fake_slack, database_url, tmp_path, CONFIG, prepare=unpace_channel_creation, clock=FakeClock()
    ) as both:
        yield both


async def test_two_replicas_send_every_page_once(paging_replicas: Replicas) -> None:
    replicas = paging_replicas
    a, b = replicas.a, replicas.b
    for start in range(0, INCIDENTS, 20):
        await asyncio.gather(
            *((a if n % 2 else b).command(f"declare P1 Race {n}", settle=False) for n in range(start, start + 20))
        )
        await replicas.settle()
    async with a.deps.db.session() as session:
        planned = list((await session.exec(select(Page))).all())
    assert len(planned) == 2 * INCIDENTS and not any(p.sent_at for p in planned)

    clock = a.deps.clock
    assert isinstance(clock, FakeClock)
    clock.advance(timedelta(minutes=3))
    senders: list[Any] = []
    for deps in (a.deps, b.deps):
        assert deps.scheduler is not None and deps.escalator is not None
        senders += [deps.scheduler.run(), deps.escalator.run_due()]
        senders += [deps.escalator.run_due()]
    await asyncio.gather(*senders)
    await replicas.settle()

    async with a.deps.db.session() as session:
        unsent = (await session.exec(select(Page).where(col(Page.sent_at).is_(None)))).all()
    assert not unsent, f"{len(unsent)} pages never sent"
    dms: Counter[tuple[str, str]] = Counter()
    for user in ("U0LEAD", "U0CTO", "U0BOB"):
        for message in replicas.fake.dms(user):
            if "Paged for " in message.text:
                dms[(user, message.text.split("Paged for ", 1)[1].split(" ", 1)[0])] += 1
    duplicates = {k: n for k, n in dms.items() if n > 1}
    assert not duplicates, f"paged twice: {sorted(duplicates)[:10]}"
    expected = {(u, f"INC-{n}") for n in range(1, INCIDENTS + 1) for u in ("U0LEAD", "U0CTO", "U0BOB")}
    assert set(dms) == expected, f"missing: {sorted(expected - set(dms))[:10]}"
