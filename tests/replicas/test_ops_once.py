"""Two replicas, one database: two people confirm a restart of the same service at the same moment,
each on another replica. One deploy call reaches the platform; the other is refused, naming who."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.deps import Deps
from bot.ops.models import AuditLog
from tests import slack_requests as req
from tests.fakes.slack_api import FakeSlack
from tests.fakes.webhook import SECRET as HOOK_SECRET
from tests.fakes.webhook import FakeWebhook
from tests.harness import SECRET, BotHarness, until
from tests.platforms.helpers import FakeTimer, service_section
from tests.replicas.conftest import REPLICAS_ONLY, Replicas, two_bots

pytestmark = REPLICAS_ONLY

ROUNDS = 5
PEOPLE = ("U0ALICE", "U0BOB", "U0CAROL")
Click = tuple[BotHarness, str, dict[str, str]]  # a replica, and the signed request it is sent
_REFUSED = re.compile(r"billing (is being restarted right now|was restarted) by <@(U0\w+)>")


@pytest.fixture
async def webhook(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeWebhook]:
    monkeypatch.setenv("DEPLOY_WEBHOOK_SECRET", HOOK_SECRET)
    async with FakeWebhook() as fake:
        fake.seed(["v1", "v2"])
        yield fake
    assert not fake.violations, fake.violations


@pytest.fixture
async def ops_replicas(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, webhook: FakeWebhook
) -> AsyncIterator[Replicas]:
    config = {
        "services": {"billing": service_section("webhook", webhook)},
        "permissions": {"restart": list(PEOPLE), "rollback": list(PEOPLE)},
    }

    def fast(deps: Deps) -> None:
        assert deps.ops is not None
        deps.ops.timer = FakeTimer()  # following the deployment polls without waiting seconds

    async with two_bots(fake_slack, database_url, tmp_path, config, customize=fast) as both:
        yield both


async def _confirmation(bot: BotHarness, user: str, channel: str) -> str:
    """`/restart billing` run by `user`: the value of the Confirm button it was shown."""
    await bot.command("billing", command="/restart", user=user, channel=channel)
    body = bot.fake.responses[-1]
    for block in body.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == "ops_confirm":
                return str(element["value"])
    raise AssertionError(f"no Confirm shown to {user}: {bot.last_reply()}")


def _texts(fake: FakeSlack, key: str) -> list[str]:
    out = []
    for body in fake.responses:
        if body["key"] == key:
            sections = [b["text"]["text"] for b in body.get("blocks") or [] if isinstance(b.get("text"), dict)]
            out.append("\n".join([body.get("text") or "", *sections]))
    return out


async def _together(replicas: Replicas, webhook: FakeWebhook, clicks: list[Click]) -> None:
    """Each `(replica, body, headers)` posted at once; each is held at the platform's live-deployment look-up
    (the last step before the claim) until all are there, then all are let go together."""
    looked_up = _lookups(webhook)
    for _ in clicks:
        webhook.hang_until_released(body_contains='"current"')
    posted = await asyncio.gather(*(bot.post(body, headers) for bot, body, headers in clicks))
    assert {r.status_code for r in posted} == {200}
    await until(lambda: _lookups(webhook) == looked_up + len(clicks), within=10)
    webhook.release()
    await replicas.settle()


def _lookups(webhook: FakeWebhook) -> int:
    return sum(1 for seen in webhook.requests if b'"current"' in seen.body)


async def _confirm_both_at_once(
    replicas: Replicas, webhook: FakeWebhook, where: dict[str, str], round_: int
) -> dict[str, list[str]]:
    """Bob (or Alice) confirms on replica a, Carol on b, each in their channel in `where`; both are held at
    the platform's live-deployment look-up (the last step before the claim) and let go together, so both
    claims are made at the same moment. Returns what each was told."""
    clickers = list(zip(where, (replicas.a, replicas.b), strict=True))
    shown = {user: await _confirmation(bot, user, where[user]) for user, bot in clickers}
    clicks: list[Click] = []
    for user, bot in clickers:
        body, headers = req.block_actions(
            "ops_confirm",
            shown[user],
            secret=SECRET,
            user_id=user,
            channel_id=where[user],
            response_url=replicas.fake.response_url(f"r{round_}-{user}", channel_id=where[user], user_id=user),
        )
        clicks.append((bot, body, headers))
    await _together(replicas, webhook, clicks)
    return {user: _texts(replicas.fake, f"r{round_}-{user}") for user in where}


async def _last_two_claims(replicas: Replicas) -> list[AuditLog]:
    async with replicas.b.deps.db.session() as session:
        query = select(AuditLog).where(col(AuditLog.request_id).is_not(None)).order_by(col(AuditLog.id))
        return list((await session.exec(query)).all())[-2:]


def _winner(said: dict[str, list[str]]) -> tuple[str, str]:
    """Who was told their restart runs, and the other one."""
    ran = [user for user, texts in said.items() if any(f"confirmed by <@{user}>" in t for t in texts)]
    assert len(ran) == 1, said
    [other] = set(said) - set(ran)
    return ran[0], other


async def test_a_restart_confirmed_on_two_replicas_at_once_runs_once(
    ops_replicas: Replicas, webhook: FakeWebhook
) -> None:
    replicas = ops_replicas
    incident = await replicas.a.declare("P1 Billing is down")
    channel = incident.channel_id or ""
    for round_ in range(ROUNDS):
        said = await _confirm_both_at_once(replicas, webhook, {"U0BOB": channel, "U0CAROL": channel}, round_)

        assert webhook.restarts == round_ + 1, f"round {round_}: {webhook.restarts} deploy calls in all"
        ran, other = _winner(said)
        refusals = [m.group(2) for t in said[other] if (m := _REFUSED.search(t))]
        assert refusals == [ran], said[other]
        rows = await _last_two_claims(replicas)
        assert sorted((r.actor, r.outcome) for r in rows) == sorted([(ran, "succeeded"), (other, "refused")])
        [refused] = [r for r in rows if r.outcome == "refused"]
        assert f"by {ran}" in refused.detail, refused.detail

    timeline = [e.text for e in await replicas.a.timeline(incident.id or 0)]
    assert sum("not run: billing" in t for t in timeline) == ROUNDS, timeline


async def test_at_once_on_two_replicas_from_inside_and_outside_a_private_incident(
    ops_replicas: Replicas, webhook: FakeWebhook
) -> None:
    """Carol cannot see Alice's private incident: when Alice's restart wins, Carol is told someone else is
    at it; when Carol's wins, Alice (who can see everything Carol did) is told it was Carol."""
    replicas = ops_replicas
    private = await replicas.a.declare("private P1 Billing is down", user="U0ALICE")
    assert private.private and private.channel_id
    for round_ in range(3):
        where = {"U0ALICE": private.channel_id, "U0CAROL": "C0GENERAL"}
        said = await _confirm_both_at_once(replicas, webhook, where, round_)

        assert webhook.restarts == round_ + 1, f"round {round_}: {webhook.restarts} deploy calls in all"
        ran, other = _winner(said)
        [refused] = [r for r in await _last_two_claims(replicas) if r.outcome == "refused"]
        assert refused.actor == other
        if ran == "U0ALICE":
            assert any(
                "billing is being restarted right now by someone else" in t
                or "billing was restarted by someone else" in t
                for t in said[other]
            ), said[other]
            assert not any("U0ALICE" in t or private.ref in t for t in said[other]), said[other]
            assert "U0ALICE" not in refused.detail and "someone else" in refused.detail, refused.detail
        else:
            assert [m.group(2) for t in said[other] if (m := _REFUSED.search(t))] == ["U0CAROL"], said[other]


async def test_one_confirm_clicked_twice_landing_on_both_replicas_runs_once(
    ops_replicas: Replicas, webhook: FakeWebhook
) -> None:
    """A double click whose two deliveries land on the two replicas at once: one deploy call, one claim of
    the confirmation; the second click is told it was already confirmed."""
    replicas = ops_replicas
    incident = await replicas.a.declare("P1 Billing is down")
    channel = incident.channel_id or ""
    for round_ in range(3):
        value = await _confirmation(replicas.a, "U0BOB", channel)
        clicks: list[Click] = []
        for n, bot in enumerate((replicas.a, replicas.b)):
            body, headers = req.block_actions(
                "ops_confirm",
                value,
                secret=SECRET,
                user_id="U0BOB",
                channel_id=channel,
                trigger_id=f"trig-{round_}-{n}",  # two clicks: two deliveries
                response_url=replicas.fake.response_url(f"same{round_}", channel_id=channel, user_id="U0BOB"),
            )
            clicks.append((bot, body, headers))
        await _together(replicas, webhook, clicks)

        assert webhook.restarts == round_ + 1, f"round {round_}: {webhook.restarts} deploy calls in all"
        said = _texts(replicas.fake, f"same{round_}")
        assert sum("confirmed by <@U0BOB>" in t for t in said) == 1, said
        assert sum("already confirmed or cancelled" in t for t in said) == 1, said
    async with replicas.a.deps.db.session() as session:
        claims = (await session.exec(select(AuditLog).where(col(AuditLog.request_id).is_not(None)))).all()
    assert sorted(c.outcome for c in claims) == ["succeeded"] * 3
