"""The story the demo plays, act by act, through the driver: what Alice, Bob, Dana and Chris do, and when.

Each act narrates, then acts as a person would (a click, a command) and waits for what the bot does.
A feature this build lacks is skipped with a note (`Story.skipped`), never a crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bot.demo.driver import Driver
from bot.demo.services import LocalServices
from bot.demo.slack_stand_in import SlackStandIn
from bot.demo.slack_workspace import StandInMessage, find_button
from bot.demo.transcript import Transcript
from bot.demo.world import ALERT_AGE, alert_body

if TYPE_CHECKING:
    from bot.deps import Deps
    from bot.incidents.models import Incident

log = logging.getLogger(__name__)
T = TypeVar("T")


async def wait_for(check: Callable[[], T], *, within: float, step: float = 0.1) -> T:
    """Poll `check` until it answers something truthy (returned) or `within` seconds pass (its last answer)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if found := check():
            return found
        await asyncio.sleep(step)
    return check()


@dataclass
class Story:
    """The people's side of the incident, and what the demo leaves behind (the post-mortem, the summary)."""

    deps: Deps
    slack: SlackStandIn
    services: LocalServices
    driver: Driver
    transcript: Transcript
    pace: float
    skipped: list[str] = field(default_factory=list)
    alert_started: datetime = field(init=False)  # the alert's startsAt, the same when it fires and resolves

    def __post_init__(self) -> None:
        self.alert_started = self.deps.clock.now() - ALERT_AGE

    async def pause(self, factor: float = 1.0) -> None:
        if self.pace > 0:
            await asyncio.sleep(self.pace * factor)

    def skip(self, what: str) -> None:
        self.skipped.append(what)
        self.transcript.narrate(f"(skipped: {what})")

    def last_with_button(self, channel: str, label: str, *, user: str | None = None) -> StandInMessage | None:
        """The latest message in `channel` with that button (`user`: also ephemeral ones only they see)."""
        for message in reversed(self.slack.messages(channel)):
            if message.ephemeral_to in (None, user) and find_button(message, label)[0] is not None:
                return message
        return None

    def paged(self, user: str) -> bool:
        dm = self.slack.dm(user)
        return dm is not None and any(
            find_button(m, "Acknowledge")[0] is not None or "Paged" in m.text for m in dm.messages
        )

    async def play(self) -> bool:
        """The incident from the alert to its resolution; True when it ran to the end and is resolved."""
        if not await self._alert_fires():
            return False
        incident = await self._declare()
        if incident is None:
            self.transcript.narrate("no incident was declared; stopping here")
            return False
        channel = incident.channel_id or "C0GENERAL"
        await self.pause()

        escalates = self.deps.escalator is not None
        if escalates:
            await self._page_on_call()
        else:
            self.skip("paging (escalation is not installed in this build)")
        ops = await self._check_health(channel)
        await self.pause()

        await self._playbook_steps(channel)
        if escalates:
            await self._page_team_lead()
        await self._restart_gateway(channel, ops=ops)
        await self.pause()
        if escalates:
            await self._page_cto()
        await self._write_up(channel, ops=ops)
        return await self._resolve(channel)

    async def _alert_fires(self) -> bool:
        t = self.transcript
        t.narrate("Prometheus notices the gateway is down; Alertmanager posts the alert to the bot.")
        response = await self.driver.alert(alert_body(status="firing", starts_at=self.alert_started))
        if response.status_code != 200:
            t.narrate(f"the alert webhook answered {response.status_code}: {response.text}")
            return False
        await self.pause()
        return True

    async def _declare(self) -> Incident | None:
        """From the alert's button and form; with the slash command when this build has no button."""
        t = self.transcript
        t.narrate("Alice sees the alert in #alerts and declares an incident from it.")
        alert = self.last_with_button("C0ALERTS", "Declare incident")
        declared = False
        if alert is not None and await self.driver.click("U0ALICE", alert, "Declare incident") and self.slack.views:
            await self.pause(0.5)
            await self.driver.submit("U0ALICE", self.slack.views[-1]["view"])
            declared = True
        if not declared:
            t.narrate("(no Declare button: declaring with the slash command instead)")
            await self.driver.command(
                "U0ALICE", "C0GENERAL", "/incident", "declare P1 service:gateway Checkout API returns 502"
            )
        return await self._incident()

    async def _page_on_call(self) -> None:
        t = self.transcript
        t.narrate("Level 1: bob is on call this week, so the bot pages him (a DM and a mention).")
        if not await wait_for(lambda: self.paged("U0BOB"), within=15):
            t.narrate("(bob was not paged within 15 s)")

    async def _check_health(self, channel: str) -> bool:
        """Bob's /status; False when this build has no ops (then the gateway is restarted by hand)."""
        ops = self.deps.ops is not None
        if ops:
            self.transcript.narrate("Bob checks every service's health endpoint at once.")
            response = await self.driver.command("U0BOB", channel, "/status", "")
            if response.status_code == 404:
                ops = False
        if not ops:
            self.skip("/status and /restart (ops is not installed in this build)")
        return ops

    async def _playbook_steps(self, channel: str) -> None:
        if self.deps.playbooks is None:
            self.skip("playbook steps (playbooks are not installed in this build)")
            return
        message = self.last_with_button(channel, "Done")
        if message is None:
            self.skip("playbook steps (no playbook was started for this incident)")
            return
        self.transcript.narrate("The service-down playbook guides them: Bob ticks off the first steps.")
        for _ in range(3):
            message = self.last_with_button(channel, "Done")
            if message is None:
                break
            await self.driver.click("U0BOB", message, "Done")
            await self.pause(0.5)

    async def _page_team_lead(self) -> None:
        self.transcript.narrate("Nobody has resolved it yet: the team lead is paged (level 2).")
        await wait_for(lambda: self.paged("U0DANA"), within=20)
        await self.pause(0.5)

    async def _restart_gateway(self, channel: str, *, ops: bool) -> None:
        """Alice's /restart, confirmed, until the gateway is healthy; by hand when there is no ops."""
        t = self.transcript
        if not ops:
            t.narrate("The logs show a stuck connection pool. Someone restarts the gateway by hand.")
            self.services.gateway_up = True
            return
        t.narrate("The logs show a stuck connection pool. Alice restarts the gateway (bot.yml allows her to).")
        await self.driver.command("U0ALICE", channel, "/restart", "gateway")
        confirm = await wait_for(lambda: self.last_with_button(channel, "Confirm", user="U0ALICE"), within=10)
        if confirm is None:
            self.skip("the restart confirmation did not appear")
            self.services.gateway_up = True
            return
        await self.pause(0.5)
        await self.driver.click("U0ALICE", confirm, "Confirm")
        await wait_for(lambda: self.services.gateway_up, within=30)
        await self.driver.settle()

    async def _page_cto(self) -> None:
        t = self.transcript
        t.narrate("Still open after the last delay: the CTO is paged too (level 3).")
        await wait_for(lambda: self.paged("U0CHRIS"), within=20)
        dm = self.slack.dm("U0BOB")
        page = self.last_with_button(dm.id, "Acknowledge") if dm else None
        if page is not None:
            t.narrate("Bob acknowledges his page.")
            await self.driver.click("U0BOB", page, "Acknowledge")
        await self.pause()

    async def _write_up(self, channel: str, *, ops: bool) -> None:
        """A status update, then the root cause and a follow-up action for the post-mortem."""
        t = self.transcript
        t.narrate("The gateway answers again. Alice posts a status update.")
        if ops:
            await self.driver.command("U0ALICE", channel, "/status", "gateway")
        await self.driver.command(
            "U0ALICE", channel, "/incident", "update monitoring Gateway restarted; checkout errors back to 0.1%"
        )
        await self.pause()

        t.narrate("Alice writes down what they found, for the post-mortem.")
        await self.driver.command(
            "U0ALICE", channel, "/incident", "note Root cause: connection pool leak in gateway v2.3"
        )
        await self.driver.command(
            "U0ALICE", channel, "/incident", "action Alert on connection pool exhaustion before it takes checkout down"
        )
        await self.pause()

    async def _resolve(self, channel: str) -> bool:
        """The alert clears and Alice resolves (the offered button, else the command); True once it is resolved."""
        t = self.transcript
        t.narrate("Alertmanager sends the resolved notification; the bot offers to resolve the incident.")
        await self.driver.alert(alert_body(status="resolved", starts_at=self.alert_started))
        offer = self.last_with_button(channel, "Resolve INC")
        if offer is not None:
            await self.pause(0.5)
            await self.driver.click("U0ALICE", offer, "Resolve INC")
        else:
            await self.driver.command(
                "U0ALICE", channel, "/incident", "resolve Gateway restarted; connection pool leak"
            )
        incident = await self._incident()
        if incident is None or incident.is_open:
            t.narrate("the incident is still open; resolving with the slash command")
            await self.driver.command("U0ALICE", channel, "/incident", "resolve Gateway restarted")
            incident = await self._incident()
        return incident is not None and not incident.is_open

    async def _incident(self) -> Incident | None:
        """The newest incident (the demo declares one), read again from the database."""
        from sqlmodel import col, select

        from bot.incidents.models import Incident

        async with self.deps.db.session() as session:
            result = await session.exec(select(Incident).order_by(col(Incident.id).desc()))
            return result.first()

    async def write_postmortem(self, output: Path) -> bool:
        """The draft the bot shared in the channel; else rendered from the database like the CLI does."""
        files = await wait_for(self.slack.shared_files, within=10 if self.deps.postmortem_chat is not None else 0)
        await asyncio.to_thread(output.parent.mkdir, parents=True, exist_ok=True)
        if files:
            await asyncio.to_thread(output.write_bytes, files[-1]["content"])
            return True
        incident = await self._incident()
        if incident is None or incident.id is None:  # a row read back always has its id
            return False
        text = await self._render(incident, incident_id=incident.id)
        await asyncio.to_thread(output.write_text, text, encoding="utf-8")
        return True

    async def _render(self, incident: Incident, *, incident_id: int) -> str:
        """The post-mortem as `python -m bot postmortem` renders it; the bare timeline if that fails."""
        from bot.postmortem import service as postmortem
        from bot.timeline import service as timeline
        from bot.timeline import shown

        try:
            async with self.deps.db.session() as session:
                return postmortem.render(await postmortem.build(session, incident_id=incident_id))
        except Exception as exc:
            log.warning("could not render the post-mortem (%s); writing the timeline instead", exc)
        async with self.deps.db.session() as session:
            events = await timeline.events(session, incident_id=incident_id)
        lines = [f"# {incident.ref}: {incident.title}", "", "## Timeline", ""]
        lines += [f"- {e.at:%H:%M:%S} UTC — {e.kind}: {shown.text(e.kind, e.text)}" for e in events]
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        lines = ["", "What you saw, and where it lives:"]
        lines.append("  alerts      POST /alerts/alertmanager and /alerts/grafana (bot/alerts)")
        lines.append("  incidents   /incident declare|update|resolve, buttons and forms (bot/incidents)")
        for name, what in (
            ("escalator", "  paging      levels from bot.yml escalation, exactly once (bot/escalation)"),
            ("playbooks", "  playbooks   YAML runbooks in PLAYBOOKS_DIR (bot/playbooks)"),
            ("ops", "  ops         /status, /restart, /rollback (bot/ops, bot/platforms)"),
            ("postmortem_chat", "  post-mortem drafted on resolve (bot/postmortem)"),
        ):
            if getattr(self.deps, name, None) is not None:
                lines.append(what)
        if self.skipped:
            lines.append("Skipped in this build: " + "; ".join(self.skipped))
        lines.append(
            "Next: copy bot.example.yml to bot.yml, create the Slack app from manifest.yml, run `python -m bot check`."
        )
        return "\n".join(lines) + "\n"
