"""Loading and validating playbook files: the shipped ones, and broken ones with clear messages."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.config import BotConfig, Severity
from bot.exceptions import ConfigError
from bot.playbooks.loader import check, check_playbooks, load_playbooks
from bot.playbooks.render import build_context, render, sample_context
from bot.playbooks.schema import MAX_STEPS, Action

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


GOOD = textwrap.dedent(
    """
    id: good
    title: Good one
    steps:
      - id: look
        title: Look
        instructions: Look at {{ service }}.
    """
)


# --- the shipped playbooks ---------------------------------------------------------------


def test_every_shipped_playbook_loads_and_renders_every_step() -> None:
    assert check_playbooks(SHIPPED) == []
    registry = load_playbooks(SHIPPED)
    assert registry.ids() == ["database", "high-latency", "security-breach", "service-down"]
    context = sample_context()
    for playbook in registry:
        assert len(playbook.steps) >= 5, playbook.id
        for step in playbook.steps:
            text = render(step.instructions, context)
            assert text and "{{" not in text and "}}" not in text, (playbook.id, step.id)
            # Each step says what to run or look at: a command in backticks or a button to click.
            assert "`" in text or step.action is not None, (playbook.id, step.id)


def test_shipped_playbooks_render_for_an_incident_without_a_service() -> None:
    registry = load_playbooks(SHIPPED)
    incident = SimpleNamespace(id=7, title="Everything is slow", severity="P2", declared_by="U0ALICE")
    for playbook in registry:
        context = build_context(incident=incident, playbook_id=playbook.id, playbook_title=playbook.title)
        for step in playbook.steps:
            text = render(step.instructions, context)
            assert "None" not in text, (playbook.id, step.id)


def test_context_uses_the_service_catalog() -> None:
    config = BotConfig.model_validate(
        {
            "services": {
                "api": {
                    "health_url": "http://api.prod.svc/health",
                    "platform": "kubernetes",
                    "kubernetes": {"namespace": "prod", "deployment": "api-server"},
                }
            }
        }
    )
    incident = SimpleNamespace(id=3, title="api down", severity="P1", service="api", channel_name="inc-3-api-down")
    context = build_context(incident=incident, playbook_id="x", playbook_title="X", config=config)
    text = render(
        "curl {{ health_url }}; kubectl -n {{ namespace }} rollout status deployment/{{ deployment }} "
        "in {{ channel }} for {{ incident.ref }}",
        context,
    )
    assert text == (
        "curl http://api.prod.svc/health; kubectl -n prod rollout status deployment/api-server "
        "in #inc-3-api-down for INC-3"
    )


def test_shipped_security_playbook_is_private_and_restricted_to_the_lead() -> None:
    registry = load_playbooks(SHIPPED)
    security = registry.get("security-breach")
    assert security.private is True
    assert security.restricted is not None and [r.value for r in security.restricted.roles] == ["commander"]
    assert security.severity == Severity.P1
    assert not registry.get("service-down").private
    notify = [s for s in security.steps if s.action == Action.NOTIFY]
    assert notify and notify[0].notify is not None and notify[0].notify.channel == "#security"


# --- broken files ------------------------------------------------------------------------


def test_unknown_action_names_file_step_and_field(tmp_path: Path) -> None:
    write(
        tmp_path,
        "database.yml",
        """
        id: database
        title: Database issues
        steps:
          - {id: a, title: A, instructions: a}
          - {id: b, title: B, instructions: b}
          - {id: c, title: C, instructions: c}
          - id: kill-idle
            title: Kill idle connections
            instructions: do it
            action: restrat
        """,
    )
    assert check_playbooks(tmp_path) == [
        f"{tmp_path}/database.yml: line 10: steps[3] (kill-idle): action: unknown action 'restrat' "
        "(expected one of status, restart, rollback, page, notify)"
    ]


def test_unknown_field_suggests_the_right_one(tmp_path: Path) -> None:
    write(
        tmp_path,
        "x.yml",
        """
        id: x
        title: X
        match: {keyword: [slow]}
        steps:
          - id: one
            title: One
            instruction: typo here
        """,
    )
    problems = check_playbooks(tmp_path)
    assert any(
        p.startswith(f"{tmp_path}/x.yml: line 3: match.keyword: unknown field (did you mean 'keywords'?")
        for p in problems
    ), problems
    assert any(
        p.startswith(
            f"{tmp_path}/x.yml: line 7: steps[0] (one): instruction: unknown field (did you mean 'instructions'?"
        )
        for p in problems
    ), problems
    assert any(
        p == f"{tmp_path}/x.yml: line 5: steps[0] (one): instructions: required field is missing" for p in problems
    )


def test_typo_in_a_template_variable_is_caught(tmp_path: Path) -> None:
    write(
        tmp_path,
        "x.yml",
        """
        id: x
        title: X
        steps:
          - id: logs
            title: Logs
            instructions: railway logs --service {{ servce }}
          - id: ref
            title: Ref
            instructions: "{{ incident.numbr }}"
          - id: syntax
            title: Syntax
            instructions: "{% if service %}unclosed"
        """,
    )
    problems = check_playbooks(tmp_path)
    assert len(problems) == 3, problems
    assert problems[0].startswith(
        f"{tmp_path}/x.yml: line 6: steps[0] (logs): instructions: unknown variable: 'servce'"
    )
    assert "variables you can use: service," in problems[0]
    assert problems[1].startswith(
        f"{tmp_path}/x.yml: line 9: steps[1] (ref): instructions: unknown variable: 'incident'"
    )
    assert "numbr" in problems[1]
    assert problems[2].startswith(f"{tmp_path}/x.yml: line 12: steps[2] (syntax): instructions: template syntax error")


def test_structural_errors(tmp_path: Path) -> None:
    write(
        tmp_path,
        "x.yml",
        """
        id: Bad Id
        title: X
        severity: P7
        steps:
          - {id: n, title: N, instructions: n, action: notify}
          - {id: s, title: S, instructions: s, action: page, service: api}
          - {id: c, title: C, instructions: c, action: notify, notify: {channel: security, text: hi}}
        """,
    )
    problems = "\n".join(check_playbooks(tmp_path))
    assert "x.yml: line 1: id: playbook id 'Bad Id': use lowercase letters" in problems
    assert "x.yml: line 3: severity: Input should be 'P1', 'P2', 'P3' or 'P4'" in problems
    assert "x.yml: line 5: steps[0] (n): action 'notify' needs a 'notify:' section" in problems
    assert "x.yml: line 6: steps[1] (s): 'service' only applies to the status, restart and rollback actions" in problems
    assert "x.yml: line 7: steps[2] (c): notify.channel: 'security' is not a channel" in problems


def test_duplicate_step_ids(tmp_path: Path) -> None:
    write(
        tmp_path,
        "x.yml",
        """
        id: x
        title: X
        steps:
          - {id: same, title: A, instructions: a}
          - {id: same, title: B, instructions: b}
        """,
    )
    assert check_playbooks(tmp_path) == [
        f"{tmp_path}/x.yml: line 5: steps: step id 'same' is used twice (steps[0] and steps[1])"
    ]


def test_yaml_problems_give_the_line(tmp_path: Path) -> None:
    write(tmp_path, "broken.yml", "id: x\ntitle: [unclosed\nsteps: []\n")
    write(tmp_path, "dupkey.yml", "id: y\ntitle: Y\ntitle: Z\nsteps: []\n")
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "list.yml", "- a\n- b\n")
    problems = check_playbooks(tmp_path)
    assert problems[0].startswith(f"{tmp_path}/broken.yml: line 3: not valid YAML")
    assert problems[1] == f"{tmp_path}/dupkey.yml: line 3: not valid YAML: key 'title' is given twice"
    assert problems[2] == f"{tmp_path}/empty.yaml: the file is empty (a playbook needs id, title and steps)"
    assert problems[3].startswith(f"{tmp_path}/list.yml: the top level must be a mapping")


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", GOOD)
    write(tmp_path, "b.yml", GOOD)
    assert check_playbooks(tmp_path) == [f"{tmp_path}/b.yml: line 1: id: 'good' is already used by {tmp_path}/a.yml"]


def test_an_id_clash_is_reported_even_when_the_first_file_is_invalid(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", GOOD.replace("title: Good one", "title: Good one\nseverity: P9"))
    write(tmp_path, "b.yml", GOOD.replace("id: good\ntitle: Good one", "title: Other\nid: good"))
    assert check_playbooks(tmp_path) == [
        f"{tmp_path}/a.yml: line 3: severity: Input should be 'P1', 'P2', 'P3' or 'P4'",
        f"{tmp_path}/b.yml: line 2: id: 'good' is already used by {tmp_path}/a.yml",
    ]


def test_load_refuses_any_error_and_lists_them_all(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", GOOD)
    write(tmp_path, "b.yml", GOOD.replace("id: good", "id: other").replace("{{ service }}", "{{ nope }}"))
    write(tmp_path, "c.yml", GOOD.replace("id: good", "id: third").replace("title: Look", "titel: Look"))
    with pytest.raises(ConfigError) as err:
        load_playbooks(tmp_path)
    message = str(err.value)
    assert message.startswith("invalid playbook:\n")
    assert "b.yml: line 6: steps[0] (look): instructions: unknown variable: 'nope' is undefined" in message
    assert "c.yml: line 5: steps[0] (look): titel: unknown field (did you mean 'title'?" in message


def test_labels_accept_a_value_or_a_list(tmp_path: Path) -> None:
    write(
        tmp_path,
        "x.yml",
        GOOD.replace("title: Good one", "title: Good one\nmatch: {labels: {alertname: A, team: [db, ops], n: 5}}"),
    )
    registry = load_playbooks(tmp_path)
    assert registry.get("good").match.labels == {"alertname": ["A"], "team": ["db", "ops"], "n": ["5"]}
    write(tmp_path, "x.yml", GOOD.replace("title: Good one", "title: Good one\nmatch: {labels: {a: []}}"))
    assert check_playbooks(tmp_path) == [f"{tmp_path}/x.yml: line 3: match.labels: label 'a': empty list of values"]


def test_missing_directory_is_an_empty_registry(tmp_path: Path) -> None:
    assert check_playbooks(tmp_path / "nope") == []
    assert len(load_playbooks(tmp_path / "nope")) == 0


def test_severity_spellings(tmp_path: Path) -> None:
    write(tmp_path, "x.yml", GOOD.replace("title: Good one", "title: Good one\nseverity: sev2"))
    assert load_playbooks(tmp_path).get("good").severity == Severity.P2


def test_a_typo_in_a_branch_the_sample_does_not_take_is_caught(tmp_path: Path) -> None:
    """The sample incident is on `gateway`: a typo under `{% if service == "api" %}` was found only on the
    first incident on api, as raw text in the middle of an outage."""
    write(
        tmp_path,
        "x.yml",
        """
        id: x
        title: X
        steps:
          - id: api
            title: Api
            instructions: '{% if service == "api" %}curl {{ helth_url }}{% else %}curl {{ health_url }}{% endif %}'
          - id: ref
            title: Ref
            instructions: '{% if incident.severity == "P4" %}{{ incident.titel }}{% endif %}'
          - id: fine
            title: Fine
            instructions: '{% for s in [service] %}{{ s }} {{ loop.index }} {{ range(2)|list }}{% endfor %}'
        """,
    )
    problems = check_playbooks(tmp_path)
    assert len(problems) == 2, problems
    assert problems[0].startswith(
        f"{tmp_path}/x.yml: line 6: steps[0] (api): instructions: unknown variable: 'helth_url'"
    )
    assert problems[1].startswith(
        f"{tmp_path}/x.yml: line 9: steps[1] (ref): instructions: unknown variable: 'incident' has no attribute 'titel'"
    )


def test_ids_longer_than_the_database_keeps_are_refused(tmp_path: Path) -> None:
    """Playbook and step ids are stored in 100-character columns: a longer one passed the check and then
    failed the playbook's start on PostgreSQL, at declare."""
    write(
        tmp_path,
        "x.yml",
        f"""
        id: {"p" * 101}
        title: X
        steps:
          - id: {"s" * 101}
            title: Look
            instructions: look
        """,
    )
    problems = check_playbooks(tmp_path)
    assert len(problems) == 2, problems
    assert problems[0].startswith(f"{tmp_path}/x.yml: line 1: id: String should have at most 100 characters")
    assert problems[1].startswith(
        f"{tmp_path}/x.yml: line 4: steps[0] ({'s' * 101}): id: String should have at most 100"
    )


def _steps(count: int) -> str:
    return "".join(f"  - {{id: s{i}, title: Step {i}, instructions: do it}}\n" for i in range(count))


def test_a_playbook_too_long_for_one_progress_message_is_refused(tmp_path: Path) -> None:
    """The progress message lists every step in one Slack message (at most 50 blocks): a playbook with more
    steps than the message can hold is refused when the bot starts, not at the incident whose checklist
    Slack would refuse to post."""
    write(tmp_path, "long.yml", "id: long\ntitle: Long\nsteps:\n" + _steps(MAX_STEPS + 1))
    write(tmp_path, "longest.yml", "id: longest\ntitle: Longest\nsteps:\n" + _steps(MAX_STEPS))
    assert MAX_STEPS == 100
    assert check_playbooks(tmp_path) == [
        f"{tmp_path}/long.yml: line 3: steps: has 101 steps, at most 100 are allowed (the progress message lists every "
        "step and must fit one Slack message of 50 blocks): split it into two playbooks"
    ]
    with pytest.raises(ConfigError, match=r"long\.yml: line 3: steps: has 101 steps, at most 100 are allowed"):
        load_playbooks(tmp_path)
    (tmp_path / "long.yml").unlink()
    assert load_playbooks(tmp_path).ids() == ["longest"]


def test_a_keyword_with_no_letter_or_digit_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "x.yml", GOOD.replace("title: Good one", "title: Good one\nmatch: {keywords: [database, '-']}"))
    assert check_playbooks(tmp_path) == [
        f"{tmp_path}/x.yml: line 3: match.keywords: keyword '-' has no letter or digit: it would match punctuation "
        "in any title"
    ]


def test_a_keyword_found_in_every_title_is_warned_of_and_the_playbook_still_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A playbook that loaded before an upgrade must not keep the bot from starting: a warning, not an error."""
    write(
        tmp_path,
        "x.yml",
        GOOD.replace("title: Good one", "title: Good one\nmatch: {keywords: [database, the, a, Incident]}"),
    )
    warning = (
        "x.yml: match.keywords: keywords 'the', 'a', 'Incident' are in almost every incident title, so this "
        "playbook would start for nearly every incident: use words specific to it (e.g. 'database', 'too many "
        "connections')"
    )
    assert check_playbooks(tmp_path) == []
    errors, warnings, _ = check(SimpleNamespace(playbooks_dir=tmp_path, config=BotConfig()))
    assert errors == []
    assert [w.removeprefix(f"{tmp_path}/") for w in warnings] == [warning]
    with caplog.at_level("WARNING", logger="bot.playbooks.loader"):
        assert load_playbooks(tmp_path).ids() == ["good"]
    assert [r.getMessage().removeprefix(f"{tmp_path}/") for r in caplog.records] == [warning]


def test_a_single_value_where_a_list_is_expected_shows_how_to_write_it(tmp_path: Path) -> None:
    write(tmp_path, "x.yml", GOOD.replace("title: Good one", "title: Good one\nmatch:\n  keywords: down"))
    assert check_playbooks(tmp_path) == [
        f"{tmp_path}/x.yml: line 4: match.keywords: Input should be a valid list, got 'down': write a list, e.g. [down]"
    ]
