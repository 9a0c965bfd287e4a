"""Links in what people wrote, as the post-mortem shows them."""

from __future__ import annotations

from tests.harness import BotHarness


def _document(bot: BotHarness) -> str:
    [*_, last] = [f for f in bot.fake.files.values() if f.completed]
    return (last.content or b"").decode("utf-8")


async def test_an_address_slack_linked_for_itself_is_said_once(bot: BotHarness) -> None:
    """Slack links an address typed bare (`example.com`, `oncall@acme.io`) as `<http://example.com|example.com>`:
    the post-mortem said each twice, "example.com (http://example.com)"."""
    incident = await bot.declare("P2 Checkout times out")
    assert incident.id is not None and incident.channel_id
    said = (
        "mail <mailto:oncall@acme.io|oncall@acme.io>, see <http://status.acme.io/|status.acme.io> "
        "and <https://grafana.acme.io/d/1|the dashboard>"
    )
    await bot.event(bot.fake.user_says(incident.channel_id, "U0BOB", said), event_id="Ev800")
    await bot.command("postmortem", channel=incident.channel_id)
    shown = "mail oncall@acme.io, see http://status.acme.io/ and the dashboard (https://grafana.acme.io/d/1)"
    assert shown in _document(bot), _document(bot)
