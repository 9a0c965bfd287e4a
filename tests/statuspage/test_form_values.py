"""A form's hidden number is a hint: a value that only looks like digits is answered as an unknown one."""

from __future__ import annotations

from bot.slack.blocks import ActionId
from tests.harness import BotHarness, until
from tests.statuspage.test_form_and_reminders import _form_values


async def test_a_superscript_number_in_the_publish_form_is_an_unknown_incident(sbot: BotHarness) -> None:
    """`"²".isdigit()` is true but `int("²")` fails: the submission ended in a stack trace and no answer."""
    await sbot.declare("P2 service:api Card payments time out")
    values = _form_values(impact="major", components=[], title="x", message="Payments fail.")
    told: list[str] = []
    for metadata in ("0", "²"):
        mark = len(sbot.fake.calls_to("chat.postMessage"))
        await sbot.submit("status_page_publish", values, private_metadata=metadata)
        told.append(str(sbot.fake.calls_to("chat.postMessage")[mark:][-1].args.get("text")))
    assert told[0].startswith("⚠️") and told[1] == told[0]


async def test_the_publish_form_opens_while_the_access_check_waits_on_slack(sbot: BotHarness) -> None:
    """Slack's trigger expires 3 s after the click; the check before the form may wait on Slack (users.info)."""
    incident = await sbot.declare("P2 service:api Card payments time out")
    sbot.fake.add_user("U0CAROL", "carol")  # not read yet: the check asks Slack about her
    gate = sbot.fake.hold("users.info", lambda args: args.get("user") == "U0CAROL")
    try:
        await sbot.click(ActionId.PUBLISH, str(incident.id), user="U0CAROL", channel=incident.channel_id, settle=False)
        await until(lambda: sbot.fake.held)
        await until(lambda: sbot.fake.views)  # opened with the click's trigger while users.info is unanswered
        [opened] = sbot.fake.views
        assert opened["method"] == "views.open" and "callback_id" not in opened["view"]
    finally:
        gate.set()
    await sbot.settle()
    filled = sbot.fake.views[-1]
    assert filled["method"] == "views.update" and filled["view_id"] == opened["view_id"]
    assert filled["view"]["callback_id"] == "status_page_publish"
