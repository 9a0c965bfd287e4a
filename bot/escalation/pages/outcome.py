"""What a page's recipient rows say: who was reached, who is still to be, what to tell the channel.

Pure functions over `PageTarget` rows (no database, no Slack), shared by the sender, the channel
half and the final record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import utc
from bot.escalation.models import Page, PageTarget, TargetKind, TargetState
from bot.escalation.pages.records import Delivery
from bot.escalation.pages.targets import DELIVERED_KINDS
from bot.escalation.ports import PageMessage, PageReport
from bot.exceptions import unanswered
from bot.incidents.models import Incident
from bot.incidents.setup_rows import SETUP_LEASE

PEOPLE = (TargetKind.USER, TargetKind.TARGET)


@dataclass
class Attempt:
    """What one attempt at a page did, for the channel mention and the decision to retry."""

    number: int
    final: bool  # the last attempt: whoever is still pending is given up on
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # for good
    retrying: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    uninvited: list[str] = field(default_factory=list)  # not added to the channel: Slack failed for now
    mention_again: bool = False  # the first mention failed for now (throttled, Slack down): the page goes out again
    retry_in: timedelta = timedelta(0)


def row_of(rows: list[PageTarget], kind: TargetKind) -> PageTarget | None:
    return next((row for row in rows if row.kind == kind), None)


def sent(rows: list[PageTarget], kind: TargetKind) -> bool:
    return any(row.kind == kind and row.state == TargetState.SENT for row in rows)


# Still to be reached after a transient failure: a person, a bot.yml target, or PagerDuty (429/5xx).
RETRIED = (*PEOPLE, TargetKind.PAGERDUTY)


def outstanding(rows: list[PageTarget]) -> dict[str, str]:
    """People, bot.yml targets and PagerDuty still pending after a transient failure -> the last error."""
    return {r.recipient: r.error or "failed" for r in rows if r.kind in RETRIED and r.state == TargetState.PENDING}


def reached(rows: list[PageTarget], *, channel: bool = False) -> bool:
    """Somebody got the page: a DM, PagerDuty, or (with `channel`) the mention in the incident channel."""
    kinds = {*DELIVERED_KINDS, *([TargetKind.CHANNEL] if channel else [])}
    return any(row.kind in kinds and row.state == TargetState.SENT for row in rows)


def dm_in_flight(rows: list[PageTarget], now: datetime) -> bool:
    """Someone's DM is going out: a pending person under a live claim (cleared when the outcome is recorded)."""
    return any(
        row.kind == TargetKind.USER
        and row.state == TargetState.PENDING
        and row.claim_expires_at is not None
        and utc(row.claim_expires_at) > now
        for row in rows
    )


def first_attempt(rows: list[PageTarget], now: datetime) -> datetime:
    """When the page was first tried: its oldest recipient row (none yet: this attempt, `now`)."""
    return min((utc(row.created_at) for row in rows), default=now)


def channel_settled(incident: Incident, now: datetime) -> bool:
    """The channel exists and no setup run is still working on it (its end calls `channel_ready`)."""
    if not incident.channel_id:
        return False
    claimed = incident.setup_claimed_at
    return claimed is None or utc(claimed) < now - SETUP_LEASE


def delivery_of(rows: list[PageTarget], *, attempts: int, stopped: str | None) -> Delivery:
    """The whole page's outcome, over every attempt, as the page row and the timeline record it."""
    delivery = Delivery()
    for row in rows:
        error = row.error or "failed"
        if row.state == TargetState.PENDING:
            error = f"not paged: {stopped}" if stopped else f"gave up after {attempts} attempts: {error}"
        if row.kind == TargetKind.USER:
            if row.state == TargetState.SENT:
                delivery.sent_to.append(row.recipient)
            else:
                delivery.failed[row.recipient] = error
        elif row.kind == TargetKind.TARGET:
            if row.state != TargetState.SENT:
                delivery.failed[row.recipient] = error
        elif row.kind == TargetKind.PAGERDUTY:
            if row.state == TargetState.SENT:
                delivery.via.append("PagerDuty")
            elif row.error:
                delivery.errors.append(row.error)
        elif row.kind == TargetKind.CHANNEL and row.state != TargetState.SENT and row.error:
            delivery.errors.append(row.error)
    return delivery


# How a failed mention's row names its failure: the prefix, then Slack's code (or the failure's message).
MENTION_FAILED = "channel mention failed: "


def mention_unknown(rows: list[PageTarget], *, retry: bool) -> bool:
    """Whether the mention may be in the channel though its row does not say so: its last try heard no answer
    of Slack's (`unanswered`), or, on a retry (`retry`), an earlier attempt left no row at all (it died or broke
    on an error of our own, perhaps after Slack took the mention)."""
    row = row_of(rows, TargetKind.CHANNEL)
    if row is None:
        return retry
    return row.state == TargetState.PENDING and unanswered((row.error or "").removeprefix(MENTION_FAILED) or None)


def tried_again(rows: list[PageTarget], attempt: Attempt, *, in_channel: bool) -> bool:
    """Whether the page goes out once more after this attempt: someone is still to be reached or added to the
    channel, or the channel told of it (Slack failed for now), or nothing reached anybody (the mention counts
    where it was made here)."""
    unreached = in_channel and not reached(rows, channel=True)
    return not attempt.final and bool(outstanding(rows) or unreached or attempt.uninvited or attempt.mention_again)


def first_mention(rows: list[PageTarget]) -> bool:
    """The channel has not had this page's mention yet: the next one tells everything."""
    channel = row_of(rows, TargetKind.CHANNEL)
    return channel is None or channel.state != TargetState.SENT


def page_report(rows: list[PageTarget], message: PageMessage, attempt: Attempt) -> PageReport | None:
    """The mention in the incident channel: everything the first time, then only what changed.

    None when a retry has nothing new (the DM failed again); the last attempt says who it gave up on.
    """
    still = outstanding(rows)
    full = first_mention(rows)
    failed, paged, via = _everything(rows) if full else (dict(attempt.failed), list(attempt.sent), list(attempt.via))
    if not (full or failed or paged or via or (attempt.final and still)):
        return None
    if attempt.final:
        failed.update({t: f"gave up after {attempt.number} attempts: {e}" for t, e in still.items()})
    users = {r.recipient for r in rows if r.kind == TargetKind.USER}
    return PageReport(
        page=message,
        paged=paged,
        failed={t: e for t, e in failed.items() if t in users},
        unresolved={t: e for t, e in failed.items() if t not in users},
        via=via,
        retrying={} if attempt.final else still,
        retry_in=None if attempt.final or not still else attempt.retry_in,
        attempt=attempt.number,
    )


def _everything(rows: list[PageTarget]) -> tuple[dict[str, str], list[str], list[str]]:
    """For the first mention: (who failed for good, who was paged, which services took it)."""
    failed = {r.recipient: r.error or "failed" for r in rows if r.kind in PEOPLE and r.state == TargetState.FAILED}
    paged = [r.recipient for r in rows if r.kind == TargetKind.USER and r.state == TargetState.SENT]
    via = ["PagerDuty"] if sent(rows, TargetKind.PAGERDUTY) else []
    return failed, paged, via


def page_message(page: Page, rows: list[PageTarget], now: datetime, *, late_after: timedelta) -> PageMessage:
    """What the DM and the channel mention say; late is measured from the first attempt."""
    assert page.id is not None
    delay = first_attempt(rows, now) - utc(page.due_at)
    return PageMessage(
        page_id=page.id,
        level=page.level,
        name=page.name,
        repeat=page.repeat,
        late_by=delay if delay > late_after else None,
    )


def why(rows: list[PageTarget], attempt: Attempt) -> str:
    """The error a retry is released with: who is still to be reached, and what else failed."""
    problems = [*(f"{k}: {v}" for k, v in outstanding(rows).items()), *attempt.errors]
    return "; ".join(problems or [f"{r.recipient}: {r.error}" for r in rows if r.error]) or "no target"
