"""The post-mortem port with the Slack Web API: share the draft as a file, and the stats message.

Files go through Slack's current upload flow (`files.files_upload_v2` = `files.getUploadURLExternal`,
a POST of the bytes to the returned URL, `files.completeUploadExternal`); `files.upload` is closed
to new apps. The summary rides along as the file's comment, so the channel gets one message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import format_duration, utc
from bot.exceptions import NO_FILE, ChatError
from bot.postmortem.data import Metric, PostmortemData
from bot.postmortem.stats import Figures, Stats
from bot.postmortem.text import fmt_duration as _d
from bot.slack import blocks
from bot.slack.api import call
from bot.slack.api import data as response_data
from bot.slack.text import clip, escape, severity, ts, user

Block = blocks.Block
MAX_SERVICES = 15


class SlackPostmortemChat:
    NAME_TTL = 3600.0  # seconds a display name is reused: a regenerated draft names the same people
    CREATED_SKEW = timedelta(seconds=10)  # Slack's clock against ours, and `created` cut to the second
    LIST_PAGE = 100
    LIST_MAX_PAGES = 5

    def __init__(self, client: AsyncWebClient, *, lookups_at_once: int = 5) -> None:
        self.client = client
        self._limit = asyncio.Semaphore(lookups_at_once)
        self._names: dict[str, tuple[float, str]] = {}  # user ID -> (looked up at, monotonic; name)
        self._me: str | None = None

    async def user_names(self, *, user_ids: Iterable[str]) -> dict[str, str]:
        now = time.monotonic()
        names: dict[str, str] = {}
        missing: list[str] = []
        for user_id in dict.fromkeys(user_ids):
            cached = self._names.get(user_id)
            if cached is not None and now - cached[0] < self.NAME_TTL:
                names[user_id] = cached[1]
            else:
                missing.append(user_id)
        for user_id, name in await asyncio.gather(*(self._lookup(u) for u in missing)):
            if name:  # a failed lookup is not remembered: it is retried next time
                self._names[user_id] = (now, name)
                names[user_id] = name
        return names

    async def _lookup(self, user_id: str) -> tuple[str, str | None]:
        async with self._limit:
            try:
                response = await call("look up a user", self.client.users_info(user=user_id))
            except ChatError:
                return user_id, None
        info = response_data(response).get("user") or {}
        profile = info.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or info.get("real_name") or info.get("name")
        return user_id, str(name) if name else None

    async def upload(self, *, data: PostmortemData, filename: str, content: bytes, trigger: str) -> str:
        assert data.channel_id
        response = await call(
            "share the post-mortem",
            self.client.files_upload_v2(
                channel=data.channel_id,
                filename=filename,
                content=content,
                title=f"{data.ref} post-mortem draft",
                initial_comment=summary_text(data, trigger=trigger),
                request_file_info=False,
            ),
        )
        files = response_data(response).get("files") or []
        if not files or not files[0].get("id"):
            # files.completeUploadExternal's contract answers ok with `files`, each with an `id`. An ok without
            # one says Slack took the upload, and it may well have shared the file: as with an answer lost on
            # the way, the resolve's retry looks in the channel (files.list) before it shares another draft.
            raise ChatError("share the post-mortem: Slack returned no file", step="share the post-mortem", code=NO_FILE)
        return str(files[0]["id"])

    async def find_shared(self, *, channel_id: str, filename: str, since: datetime) -> str | None:
        """files.list of the bot's own files in the channel since `since`, newest first, a few pages at most.
        Only the bot's: a person may well have shared a file of the same name."""
        me = await self._own_user_id()
        ts_from = int((utc(since) - self.CREATED_SKEW).timestamp())
        for page in range(1, self.LIST_MAX_PAGES + 1):
            request = self.client.files_list(
                channel=channel_id, user=me, ts_from=str(ts_from), count=self.LIST_PAGE, page=page
            )
            body = response_data(await call("look for the shared post-mortem", request))
            for file in body.get("files") or []:
                if file.get("name") == filename and file.get("user") == me and file.get("id"):
                    return str(file["id"])
            if page >= int((body.get("paging") or {}).get("pages") or 1):
                return None
        return None

    async def _own_user_id(self) -> str:
        """auth.test once: the bot's user ID, the owner of the files it uploads."""
        if self._me is None:
            me = str(response_data(await call("auth.test", self.client.auth_test())).get("user_id") or "")
            if not me:
                raise ChatError("auth.test: Slack named no bot user", step="auth.test")
            self._me = me
        return self._me

    async def report_failure(
        self, *, channel_id: str, ref: str, error: str, code: str = "", dashboard: str | None = None
    ) -> None:
        await call(
            "report the post-mortem failure",
            self.client.chat_postMessage(
                channel=channel_id,
                text=(
                    f"⚠️ The post-mortem draft for {ref} could not be shared: {escape(error)}. "
                    + _advice(code, ref=ref, dashboard=dashboard)
                ),
                unfurl_links=False,
            ),
        )


# Refusals Slack will repeat until a person mends something: what to do, then.
_NOT_ALLOWED = "This workspace does not let the bot share the file here: `{cli}` on the server prints the draft."
_ADVICE = {
    "not_in_channel": "Add the app to this channel (channel details › Integrations), then run `/incident postmortem`.",
    "missing_scope": (
        "The Slack app lacks the `files:write` scope: an admin must add it and reinstall the app. "
        "Meanwhile `{cli}` on the server prints the draft."
    ),
    "posting_to_channel_denied": _NOT_ALLOWED,
    "file_type_not_allowed": _NOT_ALLOWED,
    "file_uploads_except_images_disabled": _NOT_ALLOWED,
}


def _advice(code: str, *, ref: str, dashboard: str | None) -> str:
    cli = f"python -m bot postmortem {ref}"
    if code != "http_413":
        return _ADVICE.get(code, "Run `/incident postmortem` to try again, or `{cli}` on the server.").format(cli=cli)
    # Slack's upload URL refused the bytes as too large: regenerating only makes the draft longer.
    head = "The draft is larger than Slack takes as a file, so `/incident postmortem` would be refused too. "
    if dashboard:
        return (
            head
            + f"Read or download it on the dashboard: <{dashboard}|{ref} post-mortem>, or run `{cli}` on the server."
        )
    return head + f"`{cli}` on the server prints it (`-o FILE` writes it to a file)."


def names_reader(*, token: str, api_url: str) -> SlackPostmortemChat:
    """Display names for a process without the Slack app (the post-mortem CLI): users.info, cached."""
    return SlackPostmortemChat(AsyncWebClient(token=token, base_url=api_url))


def _after(label: str, metric: Metric) -> str:
    return f"{label} {format_duration(metric.after)}" if metric.after is not None else metric.missing


def _impact_from(data: PostmortemData) -> str:
    if data.impact_from == "first alert":
        return "from the first alert"
    if data.impact_from == "set by":
        return "from the start set with `/incident started`"
    return "from the declaration"


def _lowered(data: PostmortemData) -> bool:
    return bool(data.severity_peak) and data.severity_peak != data.severity


def key_figures(data: PostmortemData) -> str:
    """The post-mortem's key metrics in one line, each saying where it counts from: the impact from its
    start (the document's Duration), the others from the declaration, as its key metrics table does."""
    if data.duration is not None:
        impact = f"impact {format_duration(data.duration)} {_impact_from(data)}"
    else:
        impact = f"impact ongoing, {_d(data.ongoing_for)} so far {_impact_from(data)}"
    return " · ".join(
        [
            severity(data.severity) + (f" ({data.severity_peak} at its worst)" if _lowered(data) else ""),
            impact,
            f"time to detect {format_duration(data.time_to_detect)}",
            "after declaration: "
            + ", ".join(
                [
                    _after("acknowledged", data.acknowledged),
                    _after("mitigated", data.mitigated) + (" (did not hold)" if data.relapsed_at else ""),
                    _after("resolved", data.resolved),
                ]
            ),
        ]
    )


def summary_text(data: PostmortemData, *, trigger: str) -> str:
    """The comment posted with the file: the key figures, and what people still have to write."""
    open_items = sum(1 for i in data.action_items if not i.done)
    items = f"{len(data.action_items)} action item{'s' if len(data.action_items) != 1 else ''}"
    if data.action_items:
        items += f" ({open_items} open)"
    head = f"📝 *Post-mortem draft for {data.ref}*: {escape(clip(data.title, 200))}"
    if trigger == "command":
        head += " (regenerated on request)"
    figures = key_figures(data)
    counts = (
        f"{data.pages} page{'s' if data.pages != 1 else ''} · "
        f"{len(data.actions)} restart/rollback step{'s' if len(data.actions) != 1 else ''} · {items} · "
        f"{len(data.events)} timeline events"
    )
    owner = user(data.commander) if data.commander else "the incident commander"
    todo = (
        f"{owner}: please fill in the impact, root cause, trigger and lessons learned. "
        "`/incident action <text> @owner` adds follow-ups; `/incident postmortem` regenerates the draft."
    )
    return f"{head}\n{figures}\n{counts}\n{todo}"


# --- /incident stats ------------------------------------------------------------------------------


def _table(rows: dict[str, Figures], label: str) -> str:
    head = (
        f"{label:<14} {'count':>5} {'TTD mean':>9} {'TTA mean':>9} {'TTA med':>9} {'no ack':>6} "
        f"{'TTM mean':>9} {'TTR mean':>9} {'TTR med':>9} {'open':>5}"
    )
    lines = [head]
    for name, f in rows.items():
        safe = escape(name).replace("`", "'")[:14]
        lines.append(
            f"{safe:<14} {f.count:>5} {_d(f.ttd_mean):>9} {_d(f.tta_mean):>9} {_d(f.tta_median):>9} "
            f"{f.not_acknowledged:>6} {_d(f.ttm_mean):>9} {_d(f.ttr_mean):>9} {_d(f.ttr_median):>9} {f.not_resolved:>5}"
        )
    return "```\n" + "\n".join(lines) + "\n```"


def stats_message(stats: Stats) -> tuple[str, list[Block]]:
    """Text fallback and blocks for `/incident stats`."""
    o = stats.overall
    since = ts(stats.since)
    title = f"Incidents declared in the last {stats.days} day{'s' if stats.days != 1 else ''}"
    if o.count == 0:
        text = f"{title} (since {since}): none."
        return text, [blocks.mrkdwn(text)]
    overall = (
        f"*{title}* (since {since}): *{o.count}*\n"
        f"Time to detect: mean *{_d(o.ttd_mean)}*, median *{_d(o.ttd_median)}* "
        f"({o.impact_known} with an impact start from an alert or `/incident started`; the rest count as 0)\n"
        f"Time to acknowledge: mean *{_d(o.tta_mean)}*, median *{_d(o.tta_median)}* "
        f"over {o.acknowledged} acknowledged"
        + (f"; {o.not_acknowledged} never acknowledged (left out)" if o.not_acknowledged else "")
        + "\n"
        f"Time to mitigate: mean *{_d(o.ttm_mean)}*, median *{_d(o.ttm_median)}* over {o.mitigated} mitigated\n"
        f"Time to resolve: mean *{_d(o.ttr_mean)}*, median *{_d(o.ttr_median)}* over {o.resolved} resolved"
        + (f"; {o.not_resolved} still open (left out)" if o.not_resolved else "")
    )
    services = dict(list(stats.by_service.items())[:MAX_SERVICES])
    out: list[Block] = [
        blocks.mrkdwn(overall),
        blocks.mrkdwn("*By severity*\n" + _table(stats.by_severity, "severity")),
        blocks.mrkdwn("*By service*\n" + _table(services, "service")),
    ]
    if len(stats.by_service) > MAX_SERVICES:
        out.append(blocks.context(f"… and {len(stats.by_service) - MAX_SERVICES} more services"))
    out.append(
        blocks.context(
            "TTD: impact start → declared. TTA: declared → first acknowledgement. "
            "TTM: declared → mitigated. TTR: declared → resolved. "
            "Mean and median; unacknowledged and open incidents are counted apart, not as zero."
        )
    )
    text = (
        f"Stats of incidents declared in the last {stats.days} days: {o.count}. "
        f"TTD mean {_d(o.ttd_mean)}, median {_d(o.ttd_median)}; "
        f"TTA mean {_d(o.tta_mean)}, median {_d(o.tta_median)}; "
        f"TTR mean {_d(o.ttr_mean)}, median {_d(o.ttr_median)}."
    )
    return text, out
