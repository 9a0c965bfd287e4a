"""A POST body that is not a form (bytes that are not UTF-8, a multipart body without its boundary) is
refused like a form without its CSRF token, not answered with a 500."""

from __future__ import annotations

from sqlmodel import select

from bot.postmortem.models import PostmortemSection
from tests.harness import BotHarness
from tests.web.conftest import Browser, csrf_of


async def test_a_body_that_is_not_a_form_is_refused_not_a_500(site: BotHarness, alice: Browser) -> None:
    """Bytes that are not UTF-8, or a broken multipart body, are refused like a form without its token."""
    incident = await site.declare("P2 Search is slow service:search")
    path = f"/incidents/{incident.ref}/postmortem"
    token = csrf_of((await alice.get(path)).text).encode()
    urlencoded = {"content-type": "application/x-www-form-urlencoded"}
    broken = [
        (b"csrf=" + token + b"&impact=\xff\xfe", urlencoded),
        (b"\xff", {"content-type": "multipart/form-data; boundary=zz"}),
    ]
    for body, headers in broken:
        for target in (path, "/logout"):
            answer = await alice.http.post(target, content=body, headers=headers)
            assert answer.status_code == 403, (target, body)
        assert await _post_signed_out(site, path, body, headers) == 401, body
    async with site.deps.db.session() as session:
        assert (await session.exec(select(PostmortemSection))).all() == []
    assert (await alice.get(path)).status_code == 200  # still signed in


async def _post_signed_out(site: BotHarness, path: str, body: bytes, headers: dict[str, str]) -> int:
    stranger = Browser(site)
    try:
        return (await stranger.http.post(path, content=body, headers=headers)).status_code
    finally:
        await stranger.close()
