"""What to check when a tracker refuses the bot, in each vendor's terms (their documented answers):

- GitHub answers 404, not 403, to a token that cannot see a private repository (so as not to reveal it),
  the same as for a repository that does not exist; 401 "Bad credentials" for a token it does not accept;
  403 to a token that may read but not write; 410 to a create in a repository whose issues are turned off.
- Jira Cloud answers a create naming an unknown project (or one the account may not create in) with 400
  and `errors.project`, an unknown issue type with `errors.issuetype`; 401 to wrong credentials; 403 to an
  account without the permission; 404 to a project it does not have or the account may not browse (and,
  on some endpoints, to wrong credentials).
- Linear answers "Entity not found: Team" to a team id the API key cannot use, and an authentication
  error to a key it does not accept.
"""

from __future__ import annotations

from typing import Any

import httpx


def _env(name: str) -> str:
    return f"the token in the environment variable {name}"


def github(response: httpx.Response, *, repo: str, token_env: str) -> str:
    code = response.status_code
    if code == 404:
        return (
            f'check issue_tracker.repo in bot.yml (now "{repo}", as owner/name), and that {_env(token_env)} can '
            "see that repository: GitHub answers 404, not 403, to a token without access to a private repository"
        )
    if code == 401:
        return f"GitHub refused {_env(token_env)} (bad credentials): check that it is set, and not expired or revoked"
    if code == 403:
        return (
            f"GitHub refused {_env(token_env)} for this: it needs write access to the issues of {repo} "
            "(a fine-grained token's Issues permission, or a classic token's repo scope)"
        )
    if code == 410:
        return f"issues are turned off in {repo}: turn them on in its settings, or change issue_tracker.repo in bot.yml"
    return ""


def _jira_errors(response: httpx.Response) -> tuple[dict[str, str], list[str]]:
    try:
        body: Any = response.json()
    except ValueError:
        return {}, []
    if not isinstance(body, dict):
        return {}, []
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
    messages = body.get("errorMessages") if isinstance(body.get("errorMessages"), list) else []
    return {str(k): str(v) for k, v in (errors or {}).items()}, [str(m) for m in messages or []]


def jira(
    response: httpx.Response, *, project: str, issue_type: str, api_url: str, email_env: str, token_env: str
) -> str:
    code = response.status_code
    errors, messages = _jira_errors(response)
    if code == 400 and "project" in errors:
        return (
            f'check issue_tracker.project in bot.yml (now "{project}", a project key): Jira says "{errors["project"]}"'
            " (the account must be able to create issues in it)"
        )
    if code == 400 and "issuetype" in errors:
        return (
            f'check issue_tracker.issue_type in bot.yml (now "{issue_type}"): Jira says "{errors["issuetype"]}"'
            f" (it must be one of project {project}'s issue types)"
        )
    if code == 401:
        return (
            f"Jira refused the token (wrong credentials): check the email in the environment variable {email_env} and "
            f"{_env(token_env)} (an Atlassian API token of that account), and issue_tracker.api_url ({api_url})"
        )
    if code == 403:
        return (
            f"the account may not do this in project {project}: it needs the Browse projects and Create issues "
            "permissions there"
        )
    if code == 404:
        return (
            f'check issue_tracker.project (now "{project}") and issue_tracker.api_url (now {api_url}) in bot.yml, '
            "and that the account can browse the project: Jira answers 404 to an account without access to it"
        )
    said = "; ".join([*messages, *(f"{k}: {v}" for k, v in errors.items())])
    return f'Jira says "{said[:300]}"' if code == 400 and said else ""


def linear(message: str, *, team_id: str, token_env: str) -> str:
    if message.startswith("Entity not found: Team"):
        return (
            f'check issue_tracker.team_id in bot.yml (now "{team_id}", the team\'s id, not its key): Linear '
            "finds no team by that id that the API key may use (the key's user must be a member)"
        )
    if "authentication" in message.lower() or "not authenticated" in message.lower():
        return f"Linear refused the API key: check {_env(token_env)} (a Linear personal API key)"
    return ""
