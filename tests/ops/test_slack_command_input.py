"""/status, /restart and /rollback with a service misspelled: the usage and the command it meant, only to
the person who typed it, and nothing checked or run."""

from __future__ import annotations

import pytest

from tests.ops.conftest import Stack


@pytest.mark.parametrize(
    ("command", "text", "usage", "meant"),
    [
        ("/status", "gatway", "/status [service]", "/status gateway"),
        ("/restart", "gatway", "/restart &lt;service&gt;", "/restart gateway"),
        ("/rollback", "wbe dpl_1234567", "/rollback &lt;service&gt; [deployment-id]", "/rollback web dpl_1234567"),
    ],
)
async def test_a_misspelled_service_gets_the_usage_and_the_command_it_meant(
    stack: Stack, command: str, text: str, usage: str, meant: str
) -> None:
    await stack.bot.command(text, command=command, user="U0LEAD")

    reply = stack.last_response()
    assert reply["response_type"] == "ephemeral"
    section = reply["blocks"][0]["text"]["text"]
    assert f"Usage: `{usage}`" in section and f"Did you mean: `{meant}`" in section, section
    assert stack.health.hits == 0 and stack.railway.restarts == 0
    assert await stack.audit() == []


async def test_a_service_nothing_is_close_to_lists_the_services_with_the_usage(stack: Stack) -> None:
    await stack.bot.command("<!channel>", command="/status", user="U0ALICE")

    reply = stack.last_response()
    assert reply["response_type"] == "ephemeral"
    section = reply["blocks"][0]["text"]["text"]
    assert "`&lt;!channel&gt;`" in section and "gateway" in section and "Usage: `/status [service]`" in section
    assert "Did you mean" not in section and "<!channel>" not in section
