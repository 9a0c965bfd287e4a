"""What a finished restart or rollback says, through the real app: in its Slack report, on the
timeline, and in the post-mortem built from that timeline."""

from __future__ import annotations

from bot.postmortem import service as postmortem
from tests.fakes.webhook import Fault
from tests.ops.conftest import Stack, incident_channel


async def test_the_timeline_and_post_mortem_of_a_deploy_that_left_the_service_failing_say_so(stack: Stack) -> None:
    """Slack said ⚠️ "deployed, but billing is still failing" while the timeline (and so the post-mortem)
    said "succeeded": a reader of the post-mortem took the restart for the fix."""
    channel = await incident_channel(stack)
    await stack.bot.command("billing", command="/restart", user="U0LEAD", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    [line] = [e.text for e in await stack.bot.timeline(1) if e.kind == "deploy" and "started" not in e.text]
    assert ": deployed, but billing is still failing; deployed in " in line and "succeeded" not in line, line
    async with stack.bot.deps.db.session() as session:
        data = await postmortem.build(session, incident_id=1)
    [action] = data.actions
    assert (action.service, action.outcome) == ("billing", "deployed, but still failing"), action
    document = postmortem.render(data)
    assert "| restart | billing | deployed, but still failing |" in document, document
    assert "Restart of billing: deployed, but still failing — Restart billing on " in document, document
    assert "succeeded" not in document, document


async def test_a_rollback_waiting_for_approval_in_railway_says_so(stack: Stack) -> None:
    """Railway's NEEDS_APPROVAL was shown as "queued" for the whole deploy timeout, then "no final status
    (last seen: queued)": nobody learnt that a person had to approve it in Railway."""
    channel = await incident_channel(stack)
    stack.railway.hold_next_in("NEEDS_APPROVAL")
    await stack.bot.command("gateway", command="/rollback", user="U0LEAD", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    notes = [c.args.get("blocks") for c in stack.fake.calls_to("chat.update")]
    assert any("someone must approve this deployment in Railway" in str(b) for b in notes), notes
    [report] = stack.progress(channel)
    assert "last seen: queued, waiting for approval: someone must approve" in report.text, report.text
    [line] = [e.text for e in await stack.bot.timeline(1) if e.kind == "deploy" and "started" not in e.text]
    assert "outcome unknown; no final status from Railway" in line and "waiting for approval" in line, line


async def test_a_deploy_webhook_note_is_shown_but_cannot_mention_anyone_nor_carry_a_link(stack: Stack) -> None:
    """The receiver's `meta.note` went into the progress message and the report as mrkdwn Slack would act on."""
    channel = await incident_channel(stack)
    stack.webhook.note = (
        "<!channel> approve it at <https://evil.example/x|the approval page> @here https://evil.example"
    )
    stack.webhook.stall()
    await stack.bot.command("billing", command="/restart", user="U0LEAD", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    shown = "&lt;!channel&gt; approve it at &lt;https://evil.example/x|the approval page&gt; @here https://evil.example"
    updates = [c.args for c in stack.fake.calls_to("chat.update") if shown in str(c.args.get("blocks"))]
    [report] = stack.progress(channel)
    assert updates and f"last seen: deploying, {shown}" in report.text, report.text
    for blocks in [u["blocks"] for u in updates] + [report.blocks]:
        assert "<!channel>" not in str(blocks) and "<https://evil" not in str(blocks), blocks
        [section] = [b for b in blocks if shown in str(b)]
        assert section["text"]["verbatim"] is True, section  # Slack neither links nor mentions in it


async def test_a_restart_whose_platform_stops_answering_while_followed_says_the_outcome_is_unknown(
    stack: Stack,
) -> None:
    """Railway took the restart, then answered every status look with a 500: the report said
    "lost track of the deployment: Railway had an internal error (HTTP 500): boom; try again shortly",
    inviting a second restart of a service that may already be restarting."""
    channel = await incident_channel(stack)
    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)
    for _ in range(5):
        stack.railway.inject(Fault(500, {}, {"errors": [{"message": "boom"}]}, body_contains="query Deployment("))
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    assert stack.railway.restarts == 1
    [report] = stack.progress(channel)
    assert "try again shortly" not in report.text, report.text
    assert "lost track of the deployment (Railway: HTTP 500: boom)" in report.text, report.text
    assert "it may still be under way: check `/status gateway` before you run it again" in report.text
    notes = [str(c.args.get("blocks")) for c in stack.fake.calls_to("chat.update")]
    assert any("Railway did not answer (HTTP 500: boom); looking again in" in n for n in notes), notes
    assert not any("try again shortly" in n for n in notes), notes


async def test_a_deploy_whose_health_could_not_be_read_is_not_reported_as_a_success(stack: Stack) -> None:
    """The health re-check ended "unknown" (a sign-in proxy answered for the service), yet the report was
    ✅ "succeeded", and so were the timeline and the post-mortem: read at 3 a.m., that is "fixed"."""
    channel = await incident_channel(stack)
    stack.health.behind_login.add("gateway")
    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    [report] = stack.progress(channel)
    head = str(report.blocks[0]["text"]["text"]).splitlines()[0]
    assert "✅" not in head and "succeeded" not in head, head
    assert head.startswith("⚠️") and "deployed, health unknown" in head, head
    assert "succeeded" not in report.text and "deployed, health unknown" in report.text, report.text
    assert "still unknown" not in report.text, report.text
    assert "check `/status gateway`" in report.text, report.text
    [line] = [e.text for e in await stack.bot.timeline(1) if e.kind == "deploy" and "started" not in e.text]
    assert ": deployed, health unknown; deployed in " in line and "succeeded" not in line, line
    [entry] = [e for e in await stack.audit() if e.outcome != "started"]
    assert entry.outcome == "succeeded" and "health unknown" in entry.detail, (entry.outcome, entry.detail)
    async with stack.bot.deps.db.session() as session:
        data = await postmortem.build(session, incident_id=1)
    [action] = data.actions
    assert (action.service, action.outcome) == ("gateway", "deployed, health unknown"), action


async def test_a_deploy_of_a_service_with_no_health_url_says_its_health_was_not_checked(stack: Stack) -> None:
    """`jobs` has no health_url, so nothing re-checked it after the restart; the report was still ✅ "succeeded"
    (its only hint a "no health_url to re-check" after it), and so were the timeline and the post-mortem."""
    channel = await incident_channel(stack)
    await stack.bot.command("jobs", command="/restart", user="U0LEAD", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    [report] = stack.progress(channel)
    head = str(report.blocks[0]["text"]["text"]).splitlines()[0]
    assert head.startswith("⚠️") and "deployed, health not checked" in head and "✅" not in head, head
    assert "succeeded" not in report.text, report.text
    assert "health not checked: no health_url configured for jobs" in report.text, report.text
    [line] = [e.text for e in await stack.bot.timeline(1) if e.kind == "deploy" and "started" not in e.text]
    assert ": deployed, health not checked; deployed in " in line and "succeeded" not in line, line
    [entry] = [e for e in await stack.audit() if e.outcome != "started"]
    assert entry.outcome == "succeeded" and "no health_url configured for jobs" in entry.detail, entry.detail
    async with stack.bot.deps.db.session() as session:
        data = await postmortem.build(session, incident_id=1)
    [action] = data.actions
    assert (action.service, action.outcome) == ("jobs", "deployed, health not checked"), action
    document = postmortem.render(data)
    assert "| restart | jobs | deployed, health not checked |" in document, document
    assert "succeeded" not in document, document


async def test_a_deploy_still_under_way_at_the_timeout_is_not_reported_as_failed(stack: Stack) -> None:
    """A webhook deploy still `deploying` at the deploy timeout was reported ❌ "failed" in Slack, on the
    timeline and in the post-mortem: at 3 a.m. "failed" reads as "nothing changed, run it again", while
    the platform may still be rolling it out."""
    channel = await incident_channel(stack)
    stack.webhook.stall()
    await stack.bot.command("billing", command="/restart", user="U0LEAD", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    [report] = stack.progress(channel)
    assert "outcome unknown; no final status from" in report.text and "failed" not in report.text, report.text
    assert "❌" not in str(report.blocks) and "⚠️" in str(report.blocks), report.blocks
    [line] = [e.text for e in await stack.bot.timeline(1) if e.kind == "deploy" and "started" not in e.text]
    assert ": outcome unknown; no final status from" in line, line
    async with stack.bot.deps.db.session() as session:
        data = await postmortem.build(session, incident_id=1)
    [action] = data.actions
    assert action.outcome == "outcome unknown", action


async def test_a_restart_whose_platform_stops_answering_is_not_headlined_failed(stack: Stack) -> None:
    """Railway took the restart, then stopped answering the status looks: the message said "it may still be
    under way", under a ❌ "failed" headline."""
    channel = await incident_channel(stack)
    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)
    for _ in range(5):
        stack.railway.inject(Fault(500, {}, {"errors": [{"message": "boom"}]}, body_contains="query Deployment("))
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    [report] = stack.progress(channel)
    assert report.text.startswith("Restart gateway on Railway") and ": outcome unknown; lost track" in report.text
    assert "❌" not in str(report.blocks), report.blocks


async def test_a_report_slack_fails_to_show_in_place_is_posted_anew(stack: Stack) -> None:
    """Slack answered the last edit of the progress message (the report) with a 500: the message stayed at
    "⏳ health" for good, and nobody in the channel learnt how the restart ended."""
    channel = await incident_channel(stack)
    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)
    before = len(stack.fake.calls_to("chat.update"))
    stack.fake.server_error("chat.update", after=4 - before)  # the 5th edit is the report
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    assert len(stack.fake.calls_to("chat.update")) >= 5
    assert any("succeeded" in m.text for m in stack.progress(channel)), [m.text for m in stack.progress(channel)]
