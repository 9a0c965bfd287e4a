"""A passing failure of a read-only platform call while a restart or rollback is prepared (the command) or
checked again (the click) is asked once more, on every platform, through the real app.

Reading what is live changes nothing, so a 5xx or a 429 with a short Retry-After must not make the
on-call engineer type the command again; a long Retry-After is still said, not waited out.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.kubernetes.objects import status_body
from tests.fakes.webhook import FakeServer, Fault
from tests.ops.conftest import Stack, incident_channel

# service: the fake behind it, (path, body) a read of its deployments contains, a 5xx answer in its words
READS: dict[str, tuple[str, tuple[str, str], Any]] = {
    "gateway": ("railway", ("", "query Deployments("), {"errors": [{"message": "upstream timed out"}]}),
    "web": (
        "vercel",
        ("/v6/deployments", ""),
        {"error": {"code": "internal_server_error", "message": "An unexpected error occurred"}},
    ),
    "api": (
        "k8s",
        ("/replicasets", ""),
        status_body(503, "ServiceUnavailable", "etcdserver: request timed out"),
    ),
}


def _fake(stack: Stack, service: str) -> FakeServer:
    fake: FakeServer = getattr(stack, READS[service][0])
    return fake


@pytest.mark.parametrize("service", list(READS))
async def test_a_server_error_while_preparing_a_rollback_is_asked_once_more(stack: Stack, service: str) -> None:
    _, (path, text), body = READS[service]
    channel = await incident_channel(stack)
    _fake(stack, service).inject(Fault(503, {}, body, path_contains=path, body_contains=text))

    await stack.bot.command(service, command="/rollback", user="U0LEAD", channel=channel)

    assert "Roll back *" in stack.raw() and stack.button_value("ops_confirm"), stack.bot.replies()
    assert stack.timer.sleeps == [1.0], stack.timer.sleeps
    assert [e.outcome for e in await stack.audit()] == []  # nothing failed: no "could not be prepared"


@pytest.mark.parametrize("service", list(READS))
async def test_a_short_throttle_while_preparing_a_restart_is_waited_out(stack: Stack, service: str) -> None:
    _, (path, text), _ = READS[service]
    channel = await incident_channel(stack)
    _fake(stack, service).throttle_next(3, path_contains=path, body_contains=text)

    await stack.bot.command(service, command="/restart", user="U0LEAD", channel=channel)

    assert "Restart *" in stack.raw() and stack.button_value("ops_confirm"), stack.bot.replies()
    assert stack.timer.sleeps == [3.0], stack.timer.sleeps


async def test_a_long_throttle_while_preparing_is_said_not_waited_out(stack: Stack) -> None:
    channel = await incident_channel(stack)
    stack.vercel.throttle_next(120, path_contains="/v6/deployments")

    await stack.bot.command("web", command="/rollback", user="U0LEAD", channel=channel)

    assert "rate-limiting" in stack.bot.last_reply() and "120 s" in stack.bot.last_reply(), stack.bot.replies()
    assert "ops_confirm" not in stack.raw()
    assert stack.timer.sleeps == []
    assert [e.outcome for e in await stack.audit()] == ["failed"]


async def test_a_second_server_error_in_a_row_is_reported(stack: Stack) -> None:
    channel = await incident_channel(stack)
    for _ in range(2):
        stack.vercel.inject(Fault(503, {}, {"error": {"message": "upstream"}}, path_contains="/v6/deployments"))

    await stack.bot.command("web", command="/restart", user="U0LEAD", channel=channel)

    assert "HTTP 503" in stack.bot.last_reply() and "ops_confirm" not in stack.raw(), stack.bot.replies()
    assert stack.timer.sleeps == [1.0]


async def test_a_server_error_while_checking_again_at_the_click_is_asked_once_more(stack: Stack) -> None:
    """The click reads what is live again before it acts: a 502 there refused a confirmed rollback."""
    channel = await incident_channel(stack)
    await stack.bot.command("web", command="/rollback", user="U0LEAD", channel=channel)
    stack.vercel.inject(Fault(502, {}, {"error": {"code": "bad_gateway", "message": "Bad Gateway"}}, method="GET"))

    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    assert stack.vercel.live_version() == "v2", stack.bot.replies()
    assert 1.0 in stack.timer.sleeps
    assert [e.outcome for e in await stack.audit()] == ["succeeded"]


# The read each platform's own rollback makes after the click's check of what is live, before it sends
# anything: (fake, the fault's filter, how many such requests the click's check makes first).
OWN_READS: dict[str, tuple[str, tuple[str, str], int]] = {
    "gateway": ("railway", ("", "query Deployments("), 1),
    "web": ("vercel", ("/v6/deployments", ""), 1),
    "api": ("k8s", ("/replicasets", ""), 1),
    "billing": ("webhook", ("", '"action":"list"'), 0),
}


@pytest.mark.parametrize("service", list(OWN_READS))
async def test_a_server_error_in_the_rollbacks_own_read_is_asked_once_more(stack: Stack, service: str) -> None:
    """The platform's rollback reads the deployments again before it sends anything: one 503 there failed a
    confirmed rollback ("not sent: run it again"), though the same read at the command and the click is
    asked once more."""
    kind, (path, text), skip = OWN_READS[service]
    channel = await incident_channel(stack)
    await stack.bot.command(service, command="/rollback", user="U0LEAD", channel=channel)
    fake: FakeServer = getattr(stack, kind)
    body = {"error": {"message": "upstream unavailable"}}
    fake.inject(Fault(503, {}, body, path_contains=path, body_contains=text, skip=skip))

    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    assert [e.outcome for e in await stack.audit() if e.outcome != "started"] == ["succeeded"], stack.bot.replies()
    assert getattr(stack, kind).live_version() == "v2"
    assert 1.0 in stack.timer.sleeps, stack.timer.sleeps
