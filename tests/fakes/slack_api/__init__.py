"""The fake Slack Web API (server.py); the package exports what tests import."""

from tests.fakes.slack_api.server import (
    Call,
    Channel,
    FakeFile,
    FakeSlack,
    Message,
    SlackError,
    User,
    Usergroup,
    load_spec,
    validate_blocks,
)

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
