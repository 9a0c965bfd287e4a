"""A stateful fake of the Slack Web API, held to Slack's published method specs.

Why: no test machine can reach Slack, and a fake that accepts a call Slack would
reject makes a test lie. Every call is first checked against
``slack-web-api/methods/<method>.json`` (does the method exist, are the required
args there, are booleans/numbers well-formed), then a small handler applies it to
in-memory state and answers with the error codes those spec files list.

Use it with slack_sdk's real client::

    fake = FakeSlack()
    await fake.start()
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.url)

Deliberate departures from the brief are documented where they happen (search
for "Slack:" in comments); each follows the spec files or Slack's documentation.

Where things are: server.py (the aiohttp server, dispatch, faults, rate limits and the
method table), base.py (the state and the helpers every handler shares), state.py (the
dataclasses tests assert on), specs.py, args.py, blocks.py (checking a call), and one
module per method family: users, conversations, chat, pins_reactions, views, files,
respond (response_url) and sockets (Socket Mode).
"""

from tests.fakes.slack_api.blocks import validate_blocks
from tests.fakes.slack_api.server import FakeSlack
from tests.fakes.slack_api.specs import load_spec
from tests.fakes.slack_api.state import Call, Channel, FakeFile, Message, SlackError, User, Usergroup

__all__ = [
    "Call",
    "Channel",
    "FakeFile",
    "FakeSlack",
    "Message",
    "SlackError",
    "User",
    "Usergroup",
    "load_spec",
    "validate_blocks",
]
