"""Pages: one row per escalation level (and per repeat of the last level) of an incident.

- `planning`   rows from the escalation rules (`policy`): plan, re-plan, cancel, acknowledge, page now
- `queries`    reading pages: an incident's, the due ones, the next due time
- `targets`    a page's recipient rows (who was DMed, mentioned, given up on)
- `recipients` bot.yml targets (`oncall`, U…, S…, @handle) → users, at send time
- `writes`     claims and DM outcomes of pages going out at once, in one transaction
- `sending`    one page: claim → DMs → channel half → record, with retries
- `channel`    the channel half: invite, PagerDuty, the mention; catching up once the channel exists
- `outcome`    what the rows say (reached, still pending, the mention's text parts); pure
- `records`    marking a page sent: the timeline event and the next repeat
"""
