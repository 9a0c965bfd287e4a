"""FakeSlack: the aiohttp server, dispatch (spec check, auth, faults, rate limit) and the method table."""

from __future__ import annotations

import asyncio
import json
import math
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes.slack_api.args import check_required, normalise
from tests.fakes.slack_api.chat import Chat
from tests.fakes.slack_api.conversations import Conversations
from tests.fakes.slack_api.files import Files
from tests.fakes.slack_api.pins_reactions import PinsAndReactions
from tests.fakes.slack_api.respond import Responses
from tests.fakes.slack_api.sockets import SocketMode
from tests.fakes.slack_api.specs import load_spec
from tests.fakes.slack_api.state import Call, SlackError
from tests.fakes.slack_api.users import AuthAndUsers
from tests.fakes.slack_api.views import Views
from tests.fakes.slack_oidc import OpenIDConnect

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class FakeSlack(AuthAndUsers, Conversations, Chat, PinsAndReactions, Views, Files, Responses, SocketMode):
    """An aiohttp server on 127.0.0.1 that answers Web API calls like Slack does."""

    def __init__(self) -> None:
        super().__init__()
        # Sign in with Slack (tests/fakes/slack_oidc.py): the authorize page and the two openid methods.
        self.oidc = OpenIDConnect(self)
        self._handlers: dict[str, Handler] = self._method_table()

    def _method_table(self) -> dict[str, Handler]:
        """Each method the fake implements and its handler; a spec'd method missing here answers unknown_method."""
        return {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "bots.info": self._bots_info,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.create": self._conversations_create,
            "conversations.invite": self._conversations_invite,
            "conversations.setTopic": self._conversations_set_topic,
            "conversations.setPurpose": self._conversations_set_purpose,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.list": self._conversations_list,
            "conversations.members": self._conversations_members,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.open": self._conversations_open,
            "conversations.archive": self._conversations_archive,
            "conversations.rename": self._conversations_rename,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "apps.connections.open": self._apps_connections_open,
            "pins.add": self._pins_add,
            "pins.remove": self._pins_remove,
            "pins.list": self._pins_list,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "reactions.get": self._reactions_get,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
            "files.list": self._files_list,
            "openid.connect.token": self.oidc.token,
        }

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port."""
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/respond/{key}", self._handle_response_url)
        app.router.add_get("/socket", self._handle_socket)
        app.router.add_get("/openid/connect/authorize", self.oidc.authorize)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- fault injection

    def throttle(self, method: str, *, count: int = 1, retry_after: int = 1) -> None:
        """Next ``count`` calls to ``method``: HTTP 429 with Retry-After, error ``ratelimited``."""
        self._faults.setdefault(method, deque()).extend([("throttle", retry_after)] * count)

    def fail(self, method: str, error: str, *, count: int = 1) -> None:
        """Next ``count`` calls to ``method`` answer ``{"ok": false, "error": error}``."""
        self._faults.setdefault(method, deque()).extend([("fail", error)] * count)

    def server_error(self, method: str, *, count: int = 1, status: int = 500, after: int = 0) -> None:
        """Next ``count`` calls to ``method`` answer HTTP ``status`` with an HTML body, as a gateway would;
        with ``after``, that many calls are answered as usual first (Slack fails partway through)."""
        queue = self._faults.setdefault(method, deque())
        queue.extend([("pass", None)] * after + [("server", status)] * count)

    def disconnect(self, method: str, *, count: int = 1, acted: bool = False) -> None:
        """Next ``count`` calls to ``method`` end with the connection closed: no answer, as when Slack or a
        proxy drops a keep-alive connection (Slack did nothing; the call is recorded with status 0). With
        ``acted``, Slack did it and the answer is cut partway. slack_sdk's client sends a call once more by
        itself after a dropped connection, not after a cut answer."""
        self._faults.setdefault(method, deque()).extend([("disconnect", acted)] * count)

    def hold(self, method: str, when: Callable[[dict[str, Any]], bool] = lambda args: True) -> asyncio.Event:
        """Calls to ``method`` whose arguments match ``when`` wait (unanswered) until the event is set."""
        gate = asyncio.Event()
        self._holds.append((method, when, gate))
        return gate

    def hold_after(self, method: str, when: Callable[[dict[str, Any]], bool] = lambda args: True) -> asyncio.Event:
        """Like `hold`, but Slack has done it (the channel exists, the message is posted): only the
        answer waits, as when the caller dies between Slack acting and hearing back."""
        gate = asyncio.Event()
        self._holds_after.append((method, when, gate))
        return gate

    def drop_held(self) -> None:
        """Release every call waiting in `hold` without acting on it: its caller died (kill -9)
        before the request was complete, so Slack never did it."""
        for _, _, gate in self._holds:
            if not gate.is_set():
                self._dropped.add(id(gate))
                gate.set()

    # ---------------------------------------------------------------- HTTP plumbing

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            args = await self._read_args(request)
        except SlackError as exc:
            return self._answer(method, {}, self._error_body(exc))
        for held, when, gate in list(self._holds):
            if held == method and not gate.is_set() and when(args):
                self.held.append((method, args))
                await gate.wait()
                if id(gate) in self._dropped:
                    return web.Response(status=502, text="the caller went away")
        token = args.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        acted = self._next_disconnect(method)
        if acted is False:
            self.calls.append(Call(method, args, 0, {}))
            return self._hang_up(request, web.Response())
        answer = self._dispatch(method, dict(args), token)
        for held, when, gate in list(self._holds_after):
            if held == method and not gate.is_set() and when(args):
                self.held.append((method, args))
                await gate.wait()
        if acted:
            return await self._cut(request, answer)
        return answer

    def _next_disconnect(self, method: str) -> bool | None:
        """A `disconnect` queued for this call: None if there is none, else whether Slack acts first."""
        queue = self._faults.get(method)
        if queue and queue[0][0] == "disconnect":
            return bool(queue.popleft()[1])
        return None

    @staticmethod
    def _hang_up(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        """Close the connection: whatever the handler returns next is never sent."""
        assert request.transport is not None
        request.transport.close()
        return response

    async def _cut(self, request: web.Request, answer: web.Response) -> web.StreamResponse:
        """Send the answer's headers and half its body, then close the connection."""
        body = answer.body
        assert isinstance(body, bytes)
        cut = web.StreamResponse(status=answer.status, headers={"Content-Type": answer.headers["Content-Type"]})
        cut.content_length = len(body)
        await cut.prepare(request)
        await cut.write(body[: len(body) // 2])
        return self._hang_up(request, cut)

    async def _read_args(self, request: web.Request) -> dict[str, Any]:
        """JSON body, then form body, then query string (later sources never override earlier ones)."""
        args: dict[str, Any] = dict(request.query)
        ctype = request.content_type
        if ctype.startswith("multipart/"):
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
            return args
        raw = await request.read()
        if not raw:
            return args
        if ctype == "application/json":
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise SlackError("invalid_json", "[ERROR] body is not valid JSON") from exc
            if not isinstance(body, dict):
                raise SlackError("invalid_json", "[ERROR] body must be a JSON object")
            args.update(body)
        else:
            args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        return args

    def _answer(
        self,
        method: str,
        args: dict[str, Any],
        body: dict[str, Any],
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.calls.append(Call(method, args, status, body))
        return web.json_response(body, status=status, headers=headers)

    @staticmethod
    def _error_body(exc: SlackError) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": exc.error}
        if exc.messages:
            body["response_metadata"] = {"messages": exc.messages}
        return body

    def _dispatch(self, method: str, args: dict[str, Any], token: str | None) -> web.Response:
        spec = load_spec(method)
        if spec is None:
            note = f"{method} is not a Slack Web API method"
            return self._answer(method, args, {"ok": False, "error": "unknown_method"}, headers={"X-Fake-Slack": note})
        fault = self._next_fault(method)
        if fault is not None and fault[0] != "pass":
            return self._fault_response(method, args, fault)
        if method == "openid.connect.userInfo":  # a user token from openid.connect.token, not the bot's
            try:
                return self._answer(method, args, {"ok": True, **self.oidc.user_info(token)})
            except SlackError as exc:
                return self._answer(method, args, self._error_body(exc))
        refusal = self._refusal(method, args, spec, token)
        if refusal is not None:
            return refusal
        return self._run(method, args, spec, self._handlers[method])

    def _refusal(
        self, method: str, args: dict[str, Any], spec: dict[str, Any], token: str | None
    ) -> web.Response | None:
        """What Slack answers before the method runs: a bad token, a method the fake lacks, the rate limit."""
        auth_error = self._auth_error(method, spec, token)
        if auth_error is not None:
            return self._answer(method, args, {"ok": False, "error": auth_error})
        if method not in self._handlers:
            note = f"FakeSlack does not implement {method}: add a handler in tests/fakes/slack_api/"
            return self._answer(method, args, {"ok": False, "error": "unknown_method"}, headers={"X-Fake-Slack": note})
        retry_after = self._rate_limited(method)
        if retry_after is not None:
            return self._ratelimited(method, args, retry_after)
        return None

    def _run(self, method: str, args: dict[str, Any], spec: dict[str, Any], handler: Handler) -> web.Response:
        """Check the args against the spec, run the handler, answer with its body or its Slack error."""
        try:
            args = normalise(spec, args)
            check_required(spec, args)
            body = {"ok": True, **handler(args)}
        except SlackError as exc:
            return self._answer(method, args, self._error_body(exc))
        if method == "auth.test" and self.oauth_scopes is not None:
            return self._answer(method, args, body, headers={"x-oauth-scopes": ",".join(self.oauth_scopes)})
        return self._answer(method, args, body)

    def _fault_response(self, method: str, args: dict[str, Any], fault: tuple[str, Any]) -> web.Response:
        """Answer with a queued fault: a 429, an HTML 5xx page, or a Slack error code."""
        kind, value = fault
        if kind == "throttle":
            return self._ratelimited(method, args, value)
        if kind == "server":
            self.calls.append(Call(method, args, value, {}))
            html = f"<html><body><h1>{value} Server Error</h1></body></html>"
            return web.Response(status=value, text=html, content_type="text/html")
        return self._answer(method, args, {"ok": False, "error": value})

    def _ratelimited(self, method: str, args: dict[str, Any], retry_after: Any) -> web.Response:
        body = {"ok": False, "error": "ratelimited"}
        return self._answer(method, args, body, status=429, headers={"Retry-After": str(retry_after)})

    def _auth_error(self, method: str, spec: dict[str, Any], token: str | None) -> str | None:
        """not_authed / invalid_auth for a method whose spec requires a token, else None."""
        if "token" not in (spec.get("args", {}).get("required") or []):
            return None
        # apps.connections.open takes the app-level token (Socket Mode); everything else the bot token.
        valid_token = self.app_token if method == "apps.connections.open" else self.bot_token
        if not token:
            return "not_authed"
        if token != valid_token:
            return "invalid_auth"
        return None

    def _next_fault(self, method: str) -> tuple[str, Any] | None:
        queue = self._faults.get(method)
        return queue.popleft() if queue else None

    def _rate_limited(self, method: str) -> int | None:
        """Sliding-window tier-2 limit on conversations.create when ``rate_limit_tier2`` is on."""
        if not (self.rate_limit_tier2 and method == "conversations.create"):
            return None
        now = self.clock()
        window = self._windows.setdefault(method, deque())
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= self.tier2_per_minute:
            return max(1, math.ceil(window[0] + 60.0 - now))
        window.append(now)
        return None
