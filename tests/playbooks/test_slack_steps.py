"""Playbooks through the real app and the fake Slack: declare, pick, buttons, actions, races."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web

from bot import wiring
from bot.check import run_check
from bot.deps import Deps
from bot.exceptions import ConfigError
from bot.incidents.models import Incident
from bot.playbooks import flows, runs
from bot.playbooks.models import StepStatus
from bot.playbooks.schema import Action
from bot.slack.adapters.playbooks import PlaybookActionId
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack, Message
from tests.harness import BotHarness, start_bot

# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
async def health_server() -> AsyncIterator[str]:
    """Two real health endpoints on localhost: gateway is up, api is down because of its database."""

    async def gateway(_: web.Request) -> web.Response:
        return web.json_response({"status": "UP"})

    async def api(_: web.Request) -> web.Response:
        return web.json_response(
            {"status": "DOWN", "components": {"db": {"status": "DOWN", "details": {"error": "timeout"}}}}, status=503
        )

    async def deploy(request: web.Request) -> web.Response:
        """The generic deploy webhook (bot/platforms/webhook.py) for gateway: two deployments."""
        body = await request.json()
        live = {"id": "dep-2", "status": "success", "created_at": "2026-11-20T08:00:00Z", "can_rollback": True}
        older = {"id": "dep-1", "status": "success", "created_at": "2026-11-19T08:00:00Z", "can_rollback": True}
        if body["action"] == "current":
            return web.json_response({"deployment": live})
        if body["action"] == "list":
            return web.json_response({"deployments": [live, older]})
        return web.json_response({"error": f"not in this test: {body['action']}"}, status=400)

    app = web.Application()
    app.router.add_post("/deploy", deploy)
    app.router.add_get("/gateway/health", gateway)
    app.router.add_get("/api/health", api)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
def bot_config(health_server: str) -> dict[str, Any]:
    return {
        "services": {
            "gateway": {
                "health_url": f"{health_server}/gateway/health",
                "timeout": "2s",
                "platform": "webhook",
                "webhook": {"url": f"{health_server}/deploy"},
            },
            "api": {"health_url": f"{health_server}/api/health", "timeout": "2s"},
        },
        "permissions": {"restart": ["U0LEAD"], "rollback": ["U0LEAD"]},
    }


Customize = Callable[[Deps], None]


@pytest.fixture
async def start(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, bot_config: dict[str, Any]
) -> AsyncIterator[Callable[..., Awaitable[BotHarness]]]:
    """A bot whose deps a test adjusts (fake ops/escalation services) before it starts."""
    stops = []

    async def _start(customize: Customize | None = None) -> BotHarness:
        settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=bot_config)
        harness, stop = await start_bot(fake=fake_slack, settings=settings, customize=customize)
        stops.append(stop)
        return harness

    yield _start
    for stop in stops:
        await stop()


# --- helpers -------------------------------------------------------------------------------------


def progress_messages(bot: BotHarness, incident: Incident) -> list[Message]:
    assert incident.channel_id
    return [
        m
        for m in bot.fake.messages(incident.channel_id)
        if m.blocks and m.blocks[0].get("type") == "header" and "Playbook" in m.blocks[0]["text"]["text"]
    ]


def progress_message(bot: BotHarness, incident: Incident) -> Message:
    messages = progress_messages(bot, incident)
    assert len(messages) == 1, f"expected one progress message, got {len(messages)}"
    return messages[0]


def buttons(message: Message) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in message.blocks or [] if b["type"] == "actions" for e in b["elements"]}


def text_of(message: Message) -> str:
    parts = []
    for block in message.blocks or []:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        parts.extend(e["text"] for e in block.get("elements") or [] if isinstance(e.get("text"), str))
    return "\n".join(parts)


async def click(bot: BotHarness, incident: Incident, action_id: str, *, user: str, settle: bool = True) -> None:
    message = progress_message(bot, incident)
    value = buttons(message)[action_id]["value"]
    await bot.click(action_id, value, user=user, channel=incident.channel_id, message_ts=message.ts, settle=settle)


async def step_events(bot: BotHarness, number: int) -> list[Any]:
    return [e for e in await bot.timeline(number) if e.kind == "playbook_step"]


async def current_states(bot: BotHarness, number: int) -> dict[str, Any]:
    async with bot.deps.db.session() as session:
        run = await runs.current_run(session, incident_id=number)
        assert run is not None and run.id is not None
        return {s.step_id: s for s in await runs.step_states(session, run_id=run.id)}


# --- starting ------------------------------------------------------------------------------------


async def test_declare_starts_the_matching_playbook(bot: BotHarness) -> None:
    incident = await bot.declare("P1 service:gateway Gateway down, 502 everywhere")
    incident = await bot.incident(incident.id or 0)
    assert incident.playbook_id == "service-down"
    message = progress_message(bot, incident)
    text = text_of(message)
    assert "Playbook: Service down" in text
    assert "👉 1. Check the health endpoints" in text and "⬜ 2. Look at what changed" in text
    assert "curl -sS -o /dev/null" in text and "/gateway/health" in text  # the catalog's URL filled in
    assert set(buttons(message)) == {PlaybookActionId.DONE, PlaybookActionId.SKIP, PlaybookActionId.RUN}
    assert buttons(message)[PlaybookActionId.RUN]["text"]["text"] == "Check health"
    [event] = [e for e in await bot.timeline(1) if e.kind == "playbook"]
    assert event.actor == "U0ALICE"
    assert event.text == "Started playbook Service down (keywords 'down', '502')"


async def test_playbook_on_declare_wins_over_the_match(bot: BotHarness) -> None:
    await bot.declare("P2 playbook:database Checkout slow, p95 at 4s")
    incident = await bot.incident(1)
    assert incident.playbook_id == "database"
    assert "Playbook: Database issues" in text_of(progress_message(bot, incident))
    [event] = [e for e in await bot.timeline(1) if e.kind == "playbook"]
    assert event.data["reason"] == "playbook:database chosen when declaring"


async def test_no_match_offers_a_picker_that_becomes_the_progress_message(bot: BotHarness) -> None:
    await bot.declare("P3 Weird numbers on the dashboard")
    incident = await bot.incident(1)
    assert incident.channel_id
    [picker] = [m for m in bot.fake.messages(incident.channel_id) if "Which playbook" in m.text]
    choices = buttons(picker)
    assert set(choices) == {
        f"{PlaybookActionId.PICK_PREFIX}{p}" for p in ("database", "high-latency", "security-breach", "service-down")
    }
    before = len(bot.fake.messages(incident.channel_id))
    await bot.click(
        f"{PlaybookActionId.PICK_PREFIX}high-latency",
        choices[f"{PlaybookActionId.PICK_PREFIX}high-latency"]["value"],
        user="U0BOB",
        channel=incident.channel_id,
        message_ts=picker.ts,
    )
    message = progress_message(bot, incident)
    assert message.ts == picker.ts and message.edited  # the picker was replaced in place
    assert len(bot.fake.messages(incident.channel_id)) == before
    assert "Playbook: High latency" in text_of(message)
    assert (await bot.incident(1)).playbook_id == "high-latency"
    [event] = [e for e in await bot.timeline(1) if e.kind == "playbook"]
    assert event.actor == "U0BOB" and "picked by U0BOB" in event.text


async def test_playbook_command_switches_and_keeps_one_message(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    first = progress_message(bot, incident)
    await bot.command("playbook database", user="U0BOB", channel=incident.channel_id or "")
    assert "now follows the Database issues playbook (was `service-down`)" in bot.last_reply()
    message = progress_message(bot, incident)
    assert message.ts == first.ts and "Playbook: Database issues" in text_of(message)
    kinds = [(e.kind, e.data.get("status")) for e in await bot.timeline(1) if e.kind == "playbook"]
    assert kinds == [("playbook", "started"), ("playbook", "switched"), ("playbook", "started")]
    # Asking for the running one again changes nothing.
    await bot.command("playbook database", channel=incident.channel_id or "")
    assert "already running" in bot.last_reply()
    # Unknown id: the grammar names the closest one.
    await bot.command("playbook databse", channel=incident.channel_id or "")
    assert "Did you mean: `/incident playbook database`" in bot.last_reply()


# --- stepping through ----------------------------------------------------------------------------


async def test_step_through_with_done_and_skip(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    assert incident.channel_id
    posted = len(bot.fake.calls_to("chat.postMessage"))
    ts = progress_message(bot, incident).ts

    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    await click(bot, incident, PlaybookActionId.SKIP, user="U0CAROL")

    message = progress_message(bot, incident)
    assert message.ts == ts and message.edited
    assert len(bot.fake.calls_to("chat.postMessage")) == posted  # updated in place, never re-posted
    text = text_of(message)
    assert "✅ 1. Check the health endpoints — <@U0BOB>" in text
    assert "⏭ 2. Look at what changed — skipped by <@U0CAROL>" in text
    assert "👉 3. Read the logs" in text and "*Next: 3. Read the logs*" in text
    assert buttons(message)[PlaybookActionId.DONE]["value"].endswith(":logs")
    assert PlaybookActionId.RUN not in buttons(message)  # reading logs has no action
    events = await step_events(bot, 1)
    assert [(e.actor, e.data["status"], e.data["step_id"]) for e in events] == [
        ("U0BOB", "done", "check-health"),
        ("U0CAROL", "skipped", "recent-deploys"),
    ]


async def test_finishing_every_required_step(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    for _ in range(3):
        await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    # Restart and rollback are optional: skip them, verify is required.
    await click(bot, incident, PlaybookActionId.SKIP, user="U0BOB")
    await click(bot, incident, PlaybookActionId.SKIP, user="U0BOB")
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    message = progress_message(bot, incident)
    assert "All required steps are finished" in text_of(message)
    assert not buttons(message)
    finished = [e for e in await bot.timeline(1) if e.kind == "playbook" and e.data.get("status") == "completed"]
    assert len(finished) == 1 and finished[0].text == "Finished playbook Service down: 4 done, 2 skipped"


async def test_two_people_clicking_done_at_once_is_recorded_once(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    await asyncio.gather(
        click(bot, incident, PlaybookActionId.DONE, user="U0BOB", settle=False),
        click(bot, incident, PlaybookActionId.DONE, user="U0CAROL", settle=False),
    )
    await bot.settle()
    events = await step_events(bot, 1)
    assert len(events) == 1
    winner = events[0].actor
    loser = "U0CAROL" if winner == "U0BOB" else "U0BOB"
    assert (await current_states(bot, 1))["check-health"].by == winner
    told = [r for r in bot.replies() if "already done" in r]
    assert told == [f"Step *Check the health endpoints* was already done by <@{winner}>."]
    assert loser not in text_of(progress_message(bot, incident))


async def test_restricted_playbook_only_the_lead_can_work_it(bot: BotHarness) -> None:
    await bot.declare("P1 Leaked credentials in a public repo")
    incident = await bot.incident(1)
    assert incident.playbook_id == "security-breach"
    assert bot.fake.channels[incident.channel_id or ""].is_private  # the playbook asked for a private channel
    assert "🔒 Incident lead only" in text_of(progress_message(bot, incident))
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")  # not in the private channel: sees nothing
    assert "not one you can see" in bot.last_reply()
    bot.fake.channels[incident.channel_id or ""].members.add("U0BOB")
    bot.deps.incident_access.forget(channel_id=incident.channel_id or "")
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")  # a member, but not the commander
    assert "Only the incident's commander can work the Security breach playbook (now: <@U0ALICE>)" in bot.last_reply()
    assert await step_events(bot, 1) == []
    await click(bot, incident, PlaybookActionId.DONE, user="U0ALICE")  # the declarer is the commander
    assert [e.actor for e in await step_events(bot, 1)] == ["U0ALICE"]


# --- actions -------------------------------------------------------------------------------------


async def test_status_action_checks_the_incident_service(bot: BotHarness) -> None:
    await bot.declare("P1 service:api API down")
    incident = await bot.incident(1)
    await click(bot, incident, PlaybookActionId.RUN, user="U0BOB")
    state = (await current_states(bot, 1))["check-health"]
    assert state.action_ok is False and state.action_by == "U0BOB"
    assert state.state == StepStatus.PENDING  # a check does not tick the step
    assert state.action_output.startswith("api: failing") and "db" in state.action_output
    [event] = await step_events(bot, 1)
    assert event.actor == "U0BOB" and event.data["status"] == "status failed"
    assert event.data["output"] == state.action_output
    text = text_of(progress_message(bot, incident))
    assert "⚠️ Last status by <@U0BOB>" in text and "api: failing" in text


async def test_status_action_on_a_healthy_service(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    await click(bot, incident, PlaybookActionId.RUN, user="U0BOB")
    state = (await current_states(bot, 1))["check-health"]
    assert state.action_ok is True and state.action_output.startswith("gateway: healthy")


async def test_restart_step_shows_the_restart_confirmation_with_its_permissions(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    for _ in range(3):
        await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    assert buttons(progress_message(bot, incident))[PlaybookActionId.RUN]["text"]["text"] == "Restart"
    await click(bot, incident, PlaybookActionId.RUN, user="U0BOB")  # not in permissions.restart
    assert "you may not restart gateway" in bot.last_reply()
    refused = (await current_states(bot, 1))["restart"]
    assert refused.action_ok is False and "you may not restart gateway" in (refused.action_output or "")

    await click(bot, incident, PlaybookActionId.RUN, user="U0LEAD")
    confirmation = bot.fake.responses[-1]
    assert confirmation["text"] == "Restart gateway on deploy webhook (live: dep-2)? Confirm or cancel."
    assert confirmation["response_type"] == "ephemeral"
    ops_buttons = [e["action_id"] for b in confirmation["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ops_buttons == ["ops_confirm", "ops_cancel"]  # handled by the ops listener, as for /restart
    offered = (await current_states(bot, 1))["restart"]
    assert offered.action_ok is True and offered.action_by == "U0LEAD"
    assert offered.action_output == "confirmation shown to U0LEAD: Restart gateway on deploy webhook (live: dep-2)"
    assert offered.state == StepStatus.PENDING  # done once someone says so, after the restart


async def test_missing_domains_answer_not_available(start: Callable[..., Awaitable[BotHarness]]) -> None:
    def without(deps: Deps) -> None:
        deps.ops = None
        deps.escalator = None

    bot = await start(without)
    await bot.declare("P1 Leaked credentials")
    incident = await bot.incident(1)
    await click(bot, incident, PlaybookActionId.DONE, user="U0ALICE")  # contain
    await click(bot, incident, PlaybookActionId.RUN, user="U0ALICE")  # escalate: page
    assert "`page` is not available: escalation is not set up" in bot.last_reply()
    [event] = [e for e in await step_events(bot, 1) if e.data["step_id"] == "escalate"]
    assert event.data["ok"] is False and event.data["output"].startswith("not available")

    await bot.declare("P1 service:gateway Gateway down")
    second = await bot.incident(2)
    for _ in range(3):
        await click(bot, second, PlaybookActionId.DONE, user="U0BOB")
    await click(bot, second, PlaybookActionId.RUN, user="U0BOB")  # step 4: restart
    assert "`restart` is not available: restart is not set up in this bot; type `/restart gateway`" in bot.last_reply()
    assert not [r for r in bot.fake.responses if "Confirm or cancel" in (r.get("text") or "")]
    restart = (await current_states(bot, 2))["restart"]
    assert restart.action_ok is False and (restart.action_output or "").startswith("not available")


async def test_a_restart_step_is_returned_as_an_offer_and_recorded_once_shown(bot: BotHarness) -> None:
    """The playbook domain calls neither ops nor Slack: it says what to offer; the listener shows and records it."""
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    for _ in range(3):
        await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    answered = len(bot.fake.responses)
    result = await flows.run_action(bot.deps, run_id=1, step_id="restart", actor="U0LEAD")
    assert result.offer == flows.OpsOffer(action=Action.RESTART, service="gateway", incident_id=1)
    assert len(bot.fake.responses) == answered  # nothing shown by the domain
    assert (await current_states(bot, 1))["restart"].action_by is None  # nor recorded before it is shown

    await flows.record_action(
        bot.deps, run_id=1, step_id="restart", actor="U0LEAD", result=flows.ActionResult(Action.RESTART, True, "shown")
    )
    recorded = (await current_states(bot, 1))["restart"]
    assert recorded.action_ok is True and recorded.action_by == "U0LEAD" and recorded.action_output == "shown"


async def test_the_page_action_is_delegated_to_the_escalator(start: Callable[..., Awaitable[BotHarness]]) -> None:
    pages: list[tuple[int, str]] = []

    class Escalation:
        async def escalate_now(self, incident_id: int, *, actor: str) -> str:
            pages.append((incident_id, actor))
            return "paged level 2 (Team lead)"

    def fakes(deps: Deps) -> None:
        deps.escalator = cast(Any, Escalation())  # stands in for the real escalator: records the call

    bot = await start(fakes)
    await bot.declare("P1 Database disk full")  # database playbook, step 7 pages
    incident = await bot.incident(1)
    for _ in range(6):
        await click(bot, incident, PlaybookActionId.SKIP, user="U0ALICE")
    await click(bot, incident, PlaybookActionId.RUN, user="U0ALICE")
    assert pages == [(1, "U0ALICE")]
    assert (await current_states(bot, 1))["escalate"].action_output == "paged level 2 (Team lead)"


async def test_notify_posts_to_the_step_channel(bot: BotHarness) -> None:
    bot.fake.add_channel("security", channel_id="C0SECURITY", members=["U0ALICE"])
    await bot.declare("P1 Leaked credentials <!channel>")
    incident = await bot.incident(1)
    for _ in range(5):
        await click(bot, incident, PlaybookActionId.DONE, user="U0ALICE")
    message = progress_message(bot, incident)
    assert buttons(message)[PlaybookActionId.RUN]["text"]["text"] == "Send notification"
    await click(bot, incident, PlaybookActionId.RUN, user="U0ALICE")
    [posted] = bot.fake.messages("C0SECURITY")
    assert "Security incident INC-1 (P1) is being handled in a private channel" in posted.text
    assert "<!channel>" not in posted.text
    state = (await current_states(bot, 1))["notify"]
    assert state.action_ok is True and state.action_output.startswith("posted to #security")


# --- validation at start-up ----------------------------------------------------------------------


async def test_an_invalid_playbook_stops_start_up_and_check_names_it(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "database.yml").write_text(
        "id: database\ntitle: Database\nsteps:\n"
        "  - {id: look, title: Look, instructions: look}\n"
        "  - {id: kill-idle, title: Kill, instructions: kill, action: restrat}\n"
    )
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, playbooks_dir=playbooks)
    expected = (
        f"{playbooks}/database.yml: steps[1] (kill-idle): action: unknown action 'restrat' "
        "(expected one of status, restart, rollback, page, notify)"
    )
    with pytest.raises(ConfigError) as err:
        wiring.build(settings)
    assert str(err.value) == expected
    assert await run_check(settings) == 1
    assert f"error: {expected}" in capsys.readouterr().out
