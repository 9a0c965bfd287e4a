"""api.test, auth.test, bots.info, users.* and usergroups.*."""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.slack_api.args import paginate
from tests.fakes.slack_api.base import SlackBase
from tests.fakes.slack_api.state import SlackError


class AuthAndUsers(SlackBase):
    """Who the token is and who is in the workspace."""

    def _api_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"args": {k: v for k, v in args.items() if isinstance(v, str)}}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": self.users[self.bot_user_id].name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _bots_info(self, args: dict[str, Any]) -> dict[str, Any]:
        bot = args.get("bot") or self.bot_id
        if bot != self.bot_id:
            raise SlackError("bot_not_found")
        name = self.users[self.bot_user_id].name
        return {
            "bot": {
                "id": self.bot_id,
                "deleted": False,
                "name": name,
                "updated": 0,
                "app_id": self.app_id,
                "user_id": self.bot_user_id,
                "icons": {},
            }
        }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"user": self._user(str(args["user"])).to_api(self.team_id)}

    def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        members = [u.to_api(self.team_id) for u in self.users.values()]
        page, cursor = paginate(members, args, default=200)
        return {"members": page, "cache_ts": int(time.time()), "response_metadata": {"next_cursor": cursor}}

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args["email"]).lower()
        user = next((u for u in self.users.values() if (u.email or "").lower() == email), None)
        if user is None:
            raise SlackError("users_not_found")
        return {"user": user.to_api(self.team_id)}

    def _usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        groups = []
        for g in self.usergroups.values():
            item: dict[str, Any] = {"id": g.id, "team_id": self.team_id, "handle": g.handle, "name": g.handle}
            item["user_count"] = len(g.users)
            if args.get("include_users"):
                item["users"] = list(g.users)
            groups.append(item)
        return {"usergroups": groups}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args["usergroup"]))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group.users)}
