from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.platforms.helpers import PLATFORMS, Env, FakeTimer, client_for, make_fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def timer() -> FakeTimer:
    return FakeTimer()


@pytest.fixture
def expect_violations() -> list[str]:
    """A test that provokes a refusal the fake records appends the expected words here."""
    return []


@pytest.fixture(params=PLATFORMS)
async def env(
    request: pytest.FixtureRequest, http: httpx.AsyncClient, expect_violations: list[str]
) -> AsyncIterator[Env]:
    kind: str = request.param
    fake: Any = make_fake(kind)
    await fake.start()
    fake.seed(["v1", "v2", "v3"])

    def make(**kwargs: Any) -> Any:
        return client_for(kind, fake, http, **kwargs)

    try:
        yield Env(kind, fake, make(), make)
    finally:
        await fake.stop()
    unexpected = [v for v in fake.violations if not any(word in v for word in expect_violations)]
    assert not unexpected, f"the {kind} fake saw requests the real API would refuse: {unexpected}"
