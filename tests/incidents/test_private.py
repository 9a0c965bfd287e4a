"""Private incidents through the real app: Mallory, outside the channel, learns nothing and changes nothing.

Alice declares the security-breach playbook (a private channel). Mallory, in #general, walks every
surface: each answer is exactly the one for an incident that does not exist, nothing changes, and
nothing the bot sent outside the private channel names the title, the service or a person. The
same walk succeeds for a member of the channel and for the security team
(`permissions.private_incidents`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.alerts.models import AlertGroup  # noqa: F401  (the alerts tables exist)
from bot.config import Severity
from bot.incidents.models import Incident, Status
from bot.ops.models import AuditLog
from bot.slack.adapters.alerts import AlertActionId
from bot.slack.blocks import ActionId, CallbackId
from tests.harness import BotHarness

TITLE = "Leaked credentials"
SECRET_NOTE = "hunter2 was in the repo"


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {
        "services": {"vault": {"health_url": "http://127.0.0.1:9/health"}},
        "permissions": {"private_incidents": ["S0SECURITY"]},
    }


@pytest.fixture(autouse=True)
def people(fake_slack: Any) -> None:
    fake_slack.add_user("U0MALLORY", "mallory")
    fake_slack.add_user("U0CISO", "ciso")
    fake_slack.add_usergroup("S0SECURITY", "security", ["U0CISO"])
    for channel in ("C0GENERAL", "C0INCIDENTS", "C0ALERTS"):
        fake_slack.channels[channel].members |= {"U0MALLORY", "U0CISO"}


async def declare_private(bot: BotHarness) -> Incident:
    incident = await bot.declare(f"service:vault playbook:security-breach {TITLE}")
    assert incident.private and incident.channel_id
    await bot.command(f"note {SECRET_NOTE}", channel=incident.channel_id)  # Alice, in the channel
    return await bot.incident(incident.id or 0)


def answers_since(bot: BotHarness, mark: int) -> list[str]:
    return [str(r.get("text") or "") for r in bot.fake.responses[mark:]]


async def answer(bot: BotHarness, text: str, *, user: str) -> str:
    mark = len(bot.fake.responses)
    await bot.command(text, user=user, channel="C0GENERAL")
    got = answers_since(bot, mark)
    assert len(got) == 1, got
    return got[0]


def leaks(
    bot: BotHarness, incident: Incident, secrets: tuple[str, ...] = (), viewers: frozenset[str] = frozenset()
) -> list[str]:
    """Everything the bot sent anywhere but the private channel (or, privately, to those who may see it:
    the declarer and `viewers`) that names a secret."""
    secrets = secrets or (TITLE, SECRET_NOTE, "vault", "U0ALICE", "alice")
    found = []
    for call in bot.fake.calls:
        if call.method.startswith(("conversations.", "users.", "usergroups.", "auth.", "pins.", "views.")):
            continue
        if call.args.get("channel") == incident.channel_id or call.args.get("channel_id") == incident.channel_id:
            continue
        text = json.dumps(call.args)
        found += [f"{call.method} to {call.args.get('channel')}: {s}" for s in secrets if s in text]
    for body in bot.fake.responses:
        context = bot.fake._response_contexts.get(body["key"]) or {}
        if context.get("user") in {"U0ALICE", *viewers} and body.get("response_type") == "ephemeral":
            continue  # answers only they see
        text = json.dumps(body)
        found += [f"response to {context.get('user')}: {s}" for s in secrets if s in text]
    return found


async def test_declared_private_says_nothing_outside_the_channel(bot: BotHarness) -> None:
    incident = await declare_private(bot)
    channel = bot.fake.channels[incident.channel_id or ""]
    assert channel.is_private and channel.members >= {"U0ALICE"}
    declare_reply = bot.fake.responses[0]
    assert declare_reply["response_type"] == "ephemeral" and TITLE in declare_reply["text"]
    announcement = [m for m in bot.fake.messages("C0INCIDENTS") if not m.ephemeral_to]
    assert [m.text for m in announcement] == ["🔒 A private P1 incident was declared."]
    assert leaks(bot, incident) == []


async def test_the_word_private_and_the_form_checkbox(bot: BotHarness) -> None:
    incident = await bot.declare("private P2 Payroll export mailed to the wrong team")
    assert incident.private and incident.title == "Payroll export mailed to the wrong team"
    assert bot.fake.channels[incident.channel_id or ""].is_private
    public = await bot.declare("P3 Checkout slow for private customers")  # `private` counts among the leading words
    assert not public.private and public.title == "Checkout slow for private customers"
    also = await bot.declare("P4 private Old admin token found")
    assert also.private and also.title == "Old admin token found"

    await bot.command("declare private")  # no title: the form opens with the box ticked
    view = bot.fake.calls_to("views.open")[-1].args["view"]
    box = next(b for b in view["blocks"] if b["block_id"] == "private")
    assert box["element"]["initial_options"][0]["value"] == "private"
    state = {
        "title": {"value": {"type": "plain_text_input", "value": "Badge reader logs exposed"}},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "P2"}}},
        "private": {"value": {"type": "checkboxes", "selected_options": [{"value": "private"}]}},
    }
    await bot.submit(CallbackId.DECLARE, state, private_metadata="C0GENERAL")
    formed = await bot.incident(4)
    assert formed.private and formed.title == "Badge reader logs exposed"
    assert bot.fake.channels[formed.channel_id or ""].is_private
    for private in (incident, also, formed):  # (the public INC-3 names Alice, as it should)
        assert leaks(bot, private, secrets=(private.title,)) == []


async def test_mallory_walk_is_answered_as_for_a_missing_incident(bot: BotHarness) -> None:
    incident = await declare_private(bot)
    number, channel = incident.id or 0, incident.channel_id or ""
    missing = "⚠️ There is no incident INC-99 that you can see. `/incident list` shows the open incidents."
    hidden = missing.replace("INC-99", f"INC-{number}")

    listing = await answer(bot, "list", user="U0MALLORY")
    assert listing == "0 open incidents" and TITLE not in json.dumps(bot.fake.responses[-1])
    for text in [
        "timeline",
        "note pwned",
        "role commander <@U0MALLORY>",
        "ack",
        "sev p4",
        "update monitoring x",
        "action rotate <@U0MALLORY>",
        "postmortem",
        "playbook service-down",
        "resolve nothing to see",
    ]:
        assert await answer(bot, f"INC-99 {text}", user="U0MALLORY") == missing, text
        assert await answer(bot, f"INC-{number} {text}", user="U0MALLORY") == hidden, text
    stats = await answer(bot, "stats", user="U0MALLORY")
    assert stats.startswith("Stats of incidents declared in the last 30 days: 1.")  # counted...
    shown = json.dumps(bot.fake.responses[-1])
    assert "(private)  " in shown and "vault" not in shown and TITLE not in shown  # ...but not described

    # Buttons and forms on it: refused the same way, nothing opened, nothing changed.
    summary = incident.summary_ts or ""
    for action in (ActionId.ACK, ActionId.RESOLVE, ActionId.UPDATE, ActionId.RETRY_SETUP, AlertActionId.RESOLVE):
        mark = len(bot.fake.responses)
        await bot.click(action, str(number), user="U0MALLORY", channel=channel, message_ts=summary)
        in_a_form = action in (ActionId.RESOLVE, ActionId.UPDATE)  # said once, in the form (below)
        assert answers_since(bot, mark) == ([] if in_a_form else [hidden]), action
    await bot.submit(CallbackId.RESOLVE, {}, user="U0MALLORY", private_metadata=str(number))
    await bot.submit(
        CallbackId.UPDATE,
        {"status": {"value": {"type": "static_select", "selected_option": {"value": "monitoring"}}}},
        user="U0MALLORY",
        private_metadata=str(number),
    )
    # Update status / Resolve open an empty form at once (the trigger cannot wait for the check); it only
    # ever says what a missing incident gets, and no form that could be submitted is shown.
    forms = [opened["view"] for opened in bot.fake.views]
    assert forms and all("callback_id" not in form for form in forms)
    assert {block["text"]["text"] for form in forms for block in form["blocks"]} == {"⏳ Loading…", hidden}
    assert not bot.fake.calls_to("files.completeUploadExternal")

    after = await bot.incident(number)
    assert after.status == Status.INVESTIGATING and after.acknowledged_by is None
    assert after.commander == "U0ALICE" and after.severity == "P1"
    assert "U0MALLORY" not in bot.fake.channels[channel].members
    assert not [e for e in await bot.timeline(number) if e.actor == "U0MALLORY"]
    assert leaks(bot, incident) == []
    # Mallory's form submissions were answered by DM, in the same words, naming nothing.
    assert [m.text for m in bot.fake.dms("U0MALLORY")] == [hidden, hidden]


@pytest.mark.parametrize("who", ["member", "security team"])
async def test_the_same_walk_works_for_who_may_see_it(bot: BotHarness, who: str) -> None:
    incident = await declare_private(bot)
    number, channel = incident.id or 0, incident.channel_id or ""
    person = "U0BOB" if who == "member" else "U0CISO"
    if who == "member":
        bot.fake.channels[channel].members.add("U0BOB")  # joined in Slack: seen within the cache's minute
        bot.deps.incident_access.forget(channel_id=channel)

    assert await answer(bot, "list", user=person) == "1 open incident"
    assert TITLE in json.dumps(bot.fake.responses[-1])
    assert await answer(bot, f"INC-{number} timeline", user=person) == f"INC-{number} timeline"
    assert SECRET_NOTE in json.dumps(bot.fake.responses[-1])
    await answer(bot, f"INC-{number} role scribe <@{person}>", user=person)
    assert person in bot.fake.channels[channel].members  # invited
    await answer(bot, f"INC-{number} timeline", user=person)
    assert f"*role* <@{person}> scribe: <@{person}>" in bot.last_reply()  # the person, by name
    await bot.click(ActionId.ACK, str(number), user=person, channel=channel, message_ts=incident.summary_ts)
    await answer(bot, f"INC-{number} resolve rotated every key", user=person)
    after = await bot.incident(number)
    assert (after.scribe, after.acknowledged_by, after.status) == (person, person, Status.RESOLVED)
    # The post-mortem draft went to the private channel only.
    uploads = bot.fake.calls_to("files.completeUploadExternal")
    assert uploads and all(c.args.get("channel_id") == channel for c in uploads)
    assert leaks(bot, incident, viewers=frozenset({person})) == []
    announcement = [m for m in bot.fake.messages("C0INCIDENTS") if not m.ephemeral_to]
    assert [m.text for m in announcement] == ["🔒 A private P1 incident was resolved."]


async def test_a_refusal_keeps_its_mentions_and_escapes_what_was_typed(bot: BotHarness) -> None:
    incident = await bot.declare("P2 Search <b>is</b> slow")
    channel = incident.channel_id or ""
    await bot.command("resolve fixed", channel=channel, user="U0BOB")
    await bot.command("resolve again", channel=channel)
    reply = bot.last_reply()
    assert reply == "⚠️ INC-1 was resolved already by <@U0BOB>."  # a mention, not &lt;@U0BOB&gt;
    await bot.command("INC-1 playbook <!channel>", channel="C0GENERAL")
    assert "<!channel>" not in bot.last_reply()


async def test_done_or_skip_on_a_resolved_incident_is_refused(bot: BotHarness) -> None:
    from bot.slack.adapters.playbooks import PlaybookActionId
    from tests.playbooks.conftest import buttons, progress_message, step_events

    incident = await declare_private(bot)
    message = progress_message(bot, incident)
    done = buttons(message)[PlaybookActionId.DONE]["value"]
    skip = buttons(message)[PlaybookActionId.SKIP]["value"]
    await bot.command("resolve contained", channel=incident.channel_id or "")
    for action, value in ((PlaybookActionId.DONE, done), (PlaybookActionId.SKIP, skip)):
        await bot.click(action, value, channel=incident.channel_id, message_ts=message.ts)
        assert bot.last_reply() == "⚠️ INC-1 is resolved; its checklist is closed."
    assert await step_events(bot, 1) == []
    # A Done naming this run from another message is refused and audited.
    other = await bot.declare("P3 Emails delayed")
    await bot.click(PlaybookActionId.DONE, done, channel=other.channel_id, message_ts=other.summary_ts)
    assert "not one you can see" in bot.last_reply()
    async with bot.deps.db.session() as session:
        from sqlmodel import select

        rows = list((await session.exec(select(AuditLog))).all())
    assert [(r.action, r.outcome, r.incident_id) for r in rows] == [("click:step", "refused", 1)]


def test_a_playbook_notice_outside_the_channel_sees_no_title_service_or_person() -> None:
    from bot.incidents.channels import channel_name
    from bot.playbooks.render import build_context, outside_view, render_or_raw

    incident = Incident(
        id=5,
        title=TITLE,
        service="vault",
        declared_by="U0ALICE",
        commander="U0ALICE",
        private=True,
        severity=Severity.P1,
        channel_id="C0SECRET",
        channel_name=channel_name(5, TITLE),  # as the setup names it, from the title
    )
    template = (
        "{{ incident.ref }} {{ incident.severity }}: {{ incident.title }} on {{ service }} "
        "led by {{ incident.commander }} in {{ channel }} ({{ channel_id }})"
    )
    context = build_context(incident=outside_view(incident), playbook_id="security-breach", playbook_title="Security")
    text = render_or_raw(template, context)
    assert text.strip() == "INC-5 P1: (private) on SERVICE led by  in the incident channel (C0SECRET)"
    assert TITLE in render_or_raw(template, build_context(incident=incident, playbook_id="x", playbook_title="X"))
