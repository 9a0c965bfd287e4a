"""Follow-ups to issues: `create_issue` (the Slack button, and the dashboard), all open ones when the
post-mortem is done, and `refresh` (a closed issue marks its follow-up done, a reopened one opens it again,
a deleted one drops its link; on a schedule and whenever follow-ups are shown)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from functools import partial

from bot.deps import Deps
from bot.exceptions import BotError, InvalidState, NotFound
from bot.followups import service
from bot.followups.ports import Issue, IssueState, IssueTracker, NewIssue, TrackerError, TrackerRateLimited
from bot.incidents import service as incidents
from bot.incidents.models import ActionItem, Incident
from bot.tasks import renew_every, renewing

log = logging.getLogger(__name__)


def tracker_of(deps: Deps) -> IssueTracker:
    if deps.issue_tracker is None:
        raise InvalidState("No issue tracker is configured: add issue_tracker: to bot.yml (github, jira or linear).")
    return deps.issue_tracker


CLOSING = "Closing this issue marks the follow-up done in the incident bot."


def new_issue(item: ActionItem, incident: Incident, *, token: str = "") -> NewIssue:
    tag = "private incident" if incident.private else incident.ref
    title = f"[{tag}] {item.text}"
    if incident.private:
        # The tracker is read by people outside a private incident's channel: its issue says what its
        # title says and the follow-up's own text (written for the tracker), no more. No number, title,
        # owner, severity, time or channel: to anyone outside, the incident does not exist.
        body = "\n".join(["Follow-up from a private incident", "", item.text, "", CLOSING])
        return NewIssue(title=title, body=body, token=token)
    lines = [
        f"Follow-up from incident {incident.ref}: {incident.title}",
        "",
        item.text,
        "",
        f"Severity: {incident.severity} · declared {incident.declared_at:%Y-%m-%d %H:%M} UTC",
    ]
    if item.owner:
        lines.append(f"Owner (Slack user): {item.owner}")
    if incident.channel_id:
        lines.append(f"Incident channel: https://slack.com/app_redirect?channel={incident.channel_id}")
    lines.append(CLOSING)
    return NewIssue(title=title, body="\n".join(lines), token=token)


async def create_issue(deps: Deps, *, item_id: int, actor: str, via: str | None = None) -> ActionItem:
    """Open an issue for one follow-up (idempotent: a follow-up that has one keeps it); for the dashboard too.

    `actor` must be able to see the follow-up's incident; anyone else is told it does not exist.
    """
    return (await file_issue(deps, item_id=item_id, actor=actor, via=via)).item


@dataclass(frozen=True)
class Filing:
    item: ActionItem
    created: bool  # False: it had an issue already
    channel_id: str | None = None  # the incident's channel: the one place to announce it in
    # Made by this create after the follow-up got another issue meanwhile (a create that outlived its claim):
    # the stored link is kept, and this one is for a person to close.
    duplicate: Issue | None = None


async def file_issue(deps: Deps, *, item_id: int, actor: str, via: str | None = None) -> Filing:
    tracker = tracker_of(deps)
    async with deps.db.session() as session:
        item = await service.get(session, item_id=item_id)
        incident = await incidents.get(session, number=item.incident_id)
    if not await deps.incident_access.can_see(person=actor, incident=incident):
        raise NotFound(f"There is no follow-up #{item_id}.")
    if item.issue_url:
        return Filing(item, created=False, channel_id=incident.channel_id)
    async with deps.db.session() as session:
        if not await service.claim(session, item_id=item_id, now=deps.clock.now()):
            item = await service.get(session, item_id=item_id)
            if item.issue_url:
                return Filing(item, created=False, channel_id=incident.channel_id)
            raise InvalidState("An issue is being created for this follow-up right now.")
    try:
        renew = partial(_renew_claim, deps, item_id)
        async with renewing(renew, every=RENEW_EVERY, what=f"follow-up {item_id}'s create claim"):
            issue = await _find_or_create(deps, tracker, item, incident)
    except BaseException:
        async with deps.db.session() as session:
            await service.release(session, item_id=item_id)
        raise
    async with deps.db.session() as session:
        item, stored = await service.record(
            session,
            item=item,
            url=issue.url,
            key=issue.key,
            name=issue.name,
            actor=actor,
            now=deps.clock.now(),
            via=via,
        )
    duplicate = None if item.issue_key == issue.key else issue
    return Filing(item, created=stored, channel_id=incident.channel_id, duplicate=duplicate)


# The claim's lease is renewed this often (seconds) while the tracker is asked: a create waiting out rate
# limits and lost answers can take longer than `service.LEASE`, and a claim that lapsed meanwhile would let
# a second click (or `/incident postmortem done`, or another replica) create the issue a second time.
RENEW_EVERY = renew_every(service.LEASE)


async def _renew_claim(deps: Deps, item_id: int) -> None:
    async with deps.db.session() as session:
        await service.renew(session, item_id=item_id, now=deps.clock.now())


async def _find_or_create(deps: Deps, tracker: IssueTracker, item: ActionItem, incident: Incident) -> Issue:
    """The token goes into the database before the tracker is asked; a token already there means an
    earlier attempt may have created the issue (its answer lost to a crash): look for it first."""
    async with deps.db.session() as session:
        earlier = await service.pending_token(session, item_id=item.id or 0, token=str(uuid.uuid4()))
        token = earlier or (await service.get(session, item_id=item.id or 0)).issue_token or ""
    if earlier:
        found = await tracker.find(token=earlier)
        if found is not None:
            log.warning(
                "follow-up %s: its issue %s was created by an attempt whose answer was lost", item.id, found.name
            )
            return found
    return await tracker.create(new_issue(item, incident, token=token))


@dataclass
class Filed:
    created: list[ActionItem] = field(default_factory=list)
    existing: list[ActionItem] = field(default_factory=list)
    failed: list[tuple[ActionItem, str]] = field(default_factory=list)
    # Made by this filing after the follow-up got another issue meanwhile (`Filing.duplicate`): to close.
    duplicates: list[tuple[ActionItem, Issue]] = field(default_factory=list)


async def create_open_issues(deps: Deps, *, incident_id: int, actor: str) -> Filed:
    """`/incident postmortem done`: every open follow-up without an issue gets one."""
    tracker_of(deps)
    filed = Filed()
    async with deps.db.session() as session:
        items = await service.open_items(session, incident_id=incident_id)
    limited: str | None = None
    for item in items:
        if item.issue_url:
            filed.existing.append(item)
        elif limited is not None:
            filed.failed.append((item, limited))  # not tried: it would be refused too
        else:
            try:
                filing = await file_issue(deps, item_id=item.id or 0, actor=actor)
                (filed.created if filing.created else filed.existing).append(filing.item)
                if filing.duplicate is not None:
                    filed.duplicates.append((filing.item, filing.duplicate))
            except TrackerRateLimited as exc:
                limited = str(exc)
                filed.failed.append((item, limited))
            except BotError as exc:
                filed.failed.append((item, str(exc)))
            except Exception:  # a bug or a database blip on one: the others are still filed, and this one said
                log.exception("follow-up %s: creating its issue failed", item.id)
                filed.failed.append((item, "something went wrong on our side; try its Create issue button"))
    return filed


CHECK_AT_MOST = 200  # issues asked about in one pass


@dataclass
class Checked:
    """What one pass over follow-ups' issues found: the checker keeps a streak of passes that left some unread."""

    changed: int = 0  # done, open again, or their issue gone
    read: int = 0
    unread: list[TrackerError] = field(default_factory=list)  # issues the tracker would not let us read
    # Not every watched issue was asked about: rate-limited (the rest is asked next time), or more are
    # watched than one pass asks about (`CHECK_AT_MOST`, least recently asked first).
    partial: bool = False

    def failure(self) -> TrackerError | None:
        """Not one issue read: the tracker itself is failing (down, a revoked token)."""
        if self.unread and not self.read:
            return TrackerError(
                f"could not read any of {len(self.unread)} issue(s) from the tracker: {self.unread[-1]}"
            )
        return None


async def refresh(deps: Deps, *, incident_id: int | None = None) -> int:
    """Ask the tracker about watched follow-ups (`service.to_check`) not asked about within
    `service.RECHECK_AFTER`; returns how many changed now (done, open again, or their issue gone).

    TrackerError when every issue asked about failed to read: the tracker itself is failing."""
    checked = await check_issues(deps, incident_id=incident_id)
    failure = checked.failure()
    if failure is not None:
        raise failure
    return checked.changed


async def check_issues(deps: Deps, *, incident_id: int | None = None) -> Checked:
    """`refresh`, saying which issues could not be read rather than raising."""
    checked = Checked()
    if deps.issue_tracker is None:
        return checked
    async with deps.db.session() as session:
        items = await service.to_check(session, incident_id=incident_id, now=deps.clock.now(), limit=CHECK_AT_MOST)
        checked.partial = len(items) >= CHECK_AT_MOST
        ids = [item.id for item in items if item.id is not None]
        taken = await service.claim_checks(session, item_ids=ids, now=deps.clock.now())
    for item in items:
        if item.id not in taken or not item.issue_key:
            continue  # asked meanwhile (another view, the schedule, another replica)
        try:
            state = await deps.issue_tracker.state(key=item.issue_key)
        except TrackerRateLimited:
            log.info("issue tracker rate-limited; the remaining follow-ups are checked next time")
            checked.partial = True
            break
        except TrackerError as exc:
            log.warning("follow-up %s: could not check its issue: %s", item.id, exc)
            checked.unread.append(exc)
            continue
        checked.read += 1
        async with deps.db.session() as session:
            acted = await service.checked(
                session, item_id=item.id, key=item.issue_key, state=state, now=deps.clock.now()
            )
        if acted is IssueState.GONE:
            log.info("follow-up %s: its issue is gone from the tracker; its link was dropped", item.id)
        checked.changed += acted is not None
    return checked


async def refresh_quietly(deps: Deps, *, incident_id: int, within: float = 10.0) -> None:
    """Before follow-ups are shown: a tracker that fails, or takes longer than `within` s, must not stop
    the showing (what is stored is shown; the schedule and the next showing check again)."""
    try:
        await asyncio.wait_for(refresh(deps, incident_id=incident_id), timeout=within)
    except TimeoutError:
        log.info("the issue tracker took over %s s; INC-%s's follow-ups are shown as stored", within, incident_id)
    except TrackerError as exc:
        log.warning("INC-%s's follow-ups are shown as stored: %s", incident_id, exc)
    except Exception:
        log.warning("could not refresh the follow-ups of INC-%s from the tracker", incident_id, exc_info=True)
