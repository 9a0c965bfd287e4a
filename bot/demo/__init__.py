"""`python -m bot demo`: a whole incident, played locally, with the real app and no Slack workspace.

What runs is the bot itself (`bot.wiring.build`, the Bolt app, the HTTP server), fed with signed
requests exactly as Slack sends them. Around it the demo starts, in this process:

- a small Slack stand-in (`slack_stand_in.SlackStandIn`, state in `slack_workspace`): the Web API
  methods the bot calls, response URLs and file uploads, printing every message as a chat
  transcript (`transcript`);
- the services the bot watches (`services`): `/health` endpoints (the gateway is down until
  restarted) and a deploy webhook (the generic `webhook` platform) that restarts it;
- a temporary SQLite database, and a bot.yml with short escalation delays (`world`).

Then it plays the story (`story`, acted through `driver`): an alert fires, Alice declares from it,
the on-call is paged, the playbook is worked through, /status shows the failure, Alice restarts the
gateway, the pages climb to the team lead and the CTO, the alert clears, Alice resolves, and the
post-mortem draft is written to a file. Features another build lacks are skipped with a note, not a
crash. `run.run_demo` is the entry point.
"""
