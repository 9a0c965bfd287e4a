"""Escalation: page people when an incident starts, remind the channel, exactly once across replicas.

Where things live:

- `policy`       the escalation rules: which levels a severity pages, when, repeats, what stops them
- `oncall`       who is on call (rotation, overrides, hand-offs)
- `models`       the tables: pages, their recipients, reminders (timers are rows with a due time)
- `leases`       claims: conditional UPDATE (… RETURNING, SKIP LOCKED on PostgreSQL) with a lease,
                 so each page, reminder and DM goes out once whichever replica or restart sends it
- `pages/`       planning pages, resolving targets, sending a page (DMs, channel half, record)
- `reminders/`   status-update and post-mortem reminders: rows and sending
- `retries`      bounded retries after a back-off, shared by pages and reminders
- `sweep`        sending what is due: one incident's rows, or every due row as it falls due
- `flows`        `Escalator`: what the rest of the bot calls (declared, acked, severity, resolved)
- `runtime`      what the parts share (engines, clock, chat port, bot.yml, timings, wake-ups)
- `scheduler`    APScheduler only wakes the process; start/stop, catching up after a restart
- `setup`        wiring: signal handlers, the scheduler's start/stop, `python -m bot check`
- `ports`        what escalation needs from a chat platform (Slack: `bot/slack/adapters/escalation.py`)
- `pagerduty`    PagerDuty Events v2, an extra channel for level 1
"""
