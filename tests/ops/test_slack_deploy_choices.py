"""/restart and /rollback choosing what to deploy: what a restart with nothing live does, typed ids,
and how far back a rollback looks for a deployment that was good."""

from __future__ import annotations

from tests.ops.conftest import Stack

# --- /restart with nothing live -------------------------------------------------------------------


async def test_a_railway_restart_with_nothing_live_says_it_redeploys_the_newest(stack: Stack) -> None:
    """Railway redeploys the newest deployment when nothing is live; the confirmation said the live one
    would be restarted in place with no new code."""
    stack.railway.deployments[0]["status"] = "FAILED"  # v3's build failed: nothing is live
    stack.railway.deployments[0]["canRollback"] = False
    await stack.bot.command("gateway", command="/restart", user="U0LEAD")

    confirmation = stack.raw()
    assert "no new code" not in confirmation and "restarted in place" not in confirmation
    assert "nothing is live, so Railway builds and deploys the newest deployment again" in confirmation
    assert stack.railway.id_of("v3") in confirmation and "it ended failed" in confirmation
    assert "`/rollback gateway`" in confirmation
    assert f"from its newest deployment {stack.railway.id_of('v3')}" in stack.last_response()["text"]

    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert stack.railway.live_version() == "v3"  # what the confirmation named is what went live
