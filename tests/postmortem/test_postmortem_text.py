"""Escaping user text for Markdown and reading Slack markup."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.postmortem import text


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain words", "plain words"),
        ("a | b", r"a \| b"),
        ("# heading", r"\# heading"),
        ("## two", r"\#\# two"),
        ("title ##", r"title \#\#"),
        ("issue #42 fixed", "issue #42 fixed"),
        ("- item", r"\- item"),
        ("+ item", r"\+ item"),
        ("1. first", r"1\. first"),
        ("2) second", r"2\) second"),
        ("> quote", r"\> quote"),
        ("*bold* and _it_", r"\*bold\* and \_it\_"),
        ("snake_case_name", "snake_case_name"),
        ("[x](http://e)", r"\[x\](http://e)"),
        ("<b>raw</b>", r"\<b\>raw\</b\>"),
        ("`code`", r"\`code\`"),
        ("~~gone~~", r"\~\~gone\~\~"),
        ("back\\slash", r"back\\slash"),
        ("&copy; &#60; entity", r"\&copy; \&#60; entity"),
        ("fish & chips", "fish & chips"),
        ("two\nlines", "two lines"),
        ("   indented code", "indented code"),
        ("", ""),
    ],
)
def test_md_inline(raw: str, escaped: str) -> None:
    assert text.md_inline(raw) == escaped


def test_md_block_keeps_lines_and_paragraphs() -> None:
    assert text.md_block("one\n# two\n\n\n- three") == "one\\\n\\# two\n\n\\- three"


def test_slack_markup() -> None:
    names = {"U1": "alice"}
    assert text.slack_plain("<@U1> and <@U2|bob> and <@U3>", names) == "@alice and @bob and @U3"
    assert text.slack_plain("<#C1|ops> <#C2>") == "#ops #C2"
    assert text.slack_plain("<!channel> <!here> <!subteam^S1|@oncall> <!subteam^S2>") == "@channel @here @oncall @S2"
    assert text.slack_plain("<https://x.io|docs> <https://y.io>") == "docs (https://x.io) https://y.io"
    assert text.slack_plain("&lt;b&gt; &amp;lt;") == "&lt;b&gt; &amp;lt;"  # as typed: nothing decoded
    assert text.slack_decoded("&lt;b&gt; &amp;lt;") == "<b> &lt;"  # a channel message, once
    assert text.slack_plain("<b>not slack</b>") == "<b>not slack</b>"


def test_user_label() -> None:
    assert text.user_label("U0BOB") == "@U0BOB"
    assert text.user_label("U0BOB", {"U0BOB": "bob"}) == "@bob"
    assert text.user_label("<@U0BOB>", {"U0BOB": "bob"}) == "@bob"
    assert text.user_label("alertmanager") == "alertmanager"
    assert text.user_label(None) == "—"


def test_safe_url() -> None:
    assert text.safe_url("https://a.slack.com/archives/C1/p1") == "https://a.slack.com/archives/C1/p1"
    assert text.safe_url("https://x.io/a b)(<") == "https://x.io/a%20b%29%28%3C"
    assert text.safe_url("javascript:alert(1)") == ""
    assert text.safe_url(None) == ""


def test_offsets_and_durations() -> None:
    assert text.fmt_offset(timedelta(minutes=3, seconds=12)) == "T+3m 12s"
    assert text.fmt_offset(timedelta(minutes=-2)) == "T-2m 00s"
    assert text.fmt_offset(timedelta(0)) == "T+0s"
    assert text.fmt_duration(None) == "—"
