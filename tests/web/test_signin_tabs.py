"""Sign-ins begun in several tabs of one browser at once (a browser restoring its dashboard tabs, a few
links opened from Slack in a row, after the session ended): each finishes in its own tab."""

from __future__ import annotations

from bot.web.session import LOGIN_COOKIE, MAX_PENDING_SIGN_INS
from tests.harness import BotHarness
from tests.web.conftest import Browser


async def test_two_tabs_signing_in_at_once_both_get_in(site: BotHarness) -> None:
    await site.declare("P1 Checkout is down")
    await site.declare("P2 Search is slow")
    client = Browser(site)
    try:
        first = await client.start_login("/incidents/INC-1")
        second = await client.start_login("/incidents/INC-2")
        back_first = await client.http.get(first.callback)
        back_second = await client.http.get(second.callback)
        assert back_first.status_code == 303, back_first.text
        assert back_first.headers["location"] == "/incidents/INC-1"
        assert back_second.status_code == 303, back_second.text
        assert back_second.headers["location"] == "/incidents/INC-2"
        assert (await client.get("/incidents/INC-2")).status_code == 200
        assert not [name for name in client.http.cookies if name.startswith(LOGIN_COOKIE)]  # each cleared on use
    finally:
        await client.close()


async def test_a_made_up_callback_does_not_cancel_the_sign_in_under_way(site: BotHarness) -> None:
    client = Browser(site)
    try:
        pending = await client.start_login("/stats")
        forged = await client.get("/auth/slack/callback", params={"code": "123.abc", "state": "forged"})
        assert forged.status_code == 400
        back = await client.http.get(pending.callback)
        assert back.status_code == 303 and back.headers["location"] == "/stats"
        assert site.fake.calls_to("openid.connect.token")[0].args["code"] != "123.abc"
    finally:
        await client.close()


async def test_a_browser_that_starts_many_sign_ins_keeps_few_cookies(site: BotHarness) -> None:
    client = Browser(site)
    try:
        logins = [await client.start_login(f"/incidents/INC-{n}") for n in range(1, 21)]
        pending = [name for name in client.http.cookies if name.startswith(LOGIN_COOKIE)]
        assert 1 <= len(pending) <= MAX_PENDING_SIGN_INS
        back = await client.http.get(logins[-1].callback)
        assert back.status_code == 303 and back.headers["location"] == "/incidents/INC-20"
    finally:
        await client.close()
