"""A form's hidden number is a hint: a value that only looks like digits is answered as an unknown one."""

from __future__ import annotations

from tests.harness import BotHarness
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
