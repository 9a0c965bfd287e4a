"""files.getUploadURLExternal, the upload URL, files.completeUploadExternal, files.info and files.list."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from tests.fakes.slack_api.args import id_list
from tests.fakes.slack_api.base import SlackBase
from tests.fakes.slack_api.state import Channel, FakeFile, Message, SlackError


class Files(SlackBase):
    """The external upload flow: a ticket, the bytes at the upload URL, then completion shares it."""

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        length = args["length"]
        if not isinstance(length, int) or length < 0:
            raise SlackError("invalid_arguments", "[ERROR] length must be a non-negative integer")
        file = FakeFile(id=self._new_id("F"), filename=str(args["filename"]), title="", length=length)
        self.files[file.id] = file
        upload_url = f"{self.url.removesuffix('/api/')}/upload/v1/{file.id}"
        return {"upload_url": upload_url, "file_id": file.id}

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args["files"]
        if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("id") for i in items):
            raise SlackError("invalid_arguments", "[ERROR] files must be an array of {id, title}")
        channels = self._share_targets(args)
        tickets = [(self._uploaded_file(item), item) for item in items]
        for file, item in tickets:
            file.title = str(item.get("title") or file.filename)
            file.completed = True
            file.channel_id = channels[0].id if channels else None
            file.channels = [c.id for c in channels]
        text = str(args.get("initial_comment") or "")
        for channel in channels:
            channel.messages.append(
                Message(
                    ts=self._next_ts(),
                    channel=channel.id,
                    user=self.bot_user_id,
                    text=text,
                    thread_ts=args.get("thread_ts") or None,
                    files=[f.id for f, _ in tickets],
                )
            )
        return {"files": [{"id": f.id, "title": f.title} for f, _ in tickets]}

    def _share_targets(self, args: dict[str, Any]) -> list[Channel]:
        targets = id_list(args.get("channels"))
        if args.get("channel_id"):
            targets.insert(0, str(args["channel_id"]))
        channels = []
        for ref in targets:
            channel = self._channel(ref)
            self._member(channel)  # Slack: sharing files needs membership, even in public channels
            channels.append(channel)
        return channels

    def _uploaded_file(self, item: dict[str, Any]) -> FakeFile:
        """The open ticket for ``item``, refused unless exactly the declared bytes were uploaded."""
        file = self.files.get(str(item["id"]))
        if file is None or file.completed:
            raise SlackError("file_not_found", f"[ERROR] no open upload ticket for {item['id']}")
        if file.content is None:
            raise SlackError("file_not_found", f"[ERROR] no bytes were uploaded for {file.id}")
        if len(file.content) != file.length:
            raise SlackError(
                "file_update_failed",
                f"[ERROR] {file.id}: uploaded {len(file.content)} bytes, declared length {file.length}",
            )
        return file

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        file = self.files.get(str(args["file"]))
        if file is None or not file.completed:
            raise SlackError("file_not_found")
        return {
            "file": file.to_api(self.bot_user_id),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    def _files_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """Shared files, newest first, narrowed as Slack does (`channel`, `user`, `ts_from`/`ts_to`
        inclusive, on `created`) and paged by `count`/`page`. Every file here is the bot's own upload."""
        if args.get("types") not in (None, "", "all"):
            raise SlackError("unknown_type", "[ERROR] the fake lists all types only")
        user = str(args.get("user") or "")
        if user and user != self.bot_user_id:
            self._user(user)  # user_not_found for a user that does not exist
        ts_from = self._file_ts(args, "ts_from", 0.0)
        ts_to = self._file_ts(args, "ts_to", float("inf"))
        channel = str(args.get("channel") or "")
        found = [
            f
            for f in reversed(self.files.values())
            if f.completed
            and (not user or user == self.bot_user_id)
            and (not channel or channel in f.channels)
            and ts_from <= f.created <= ts_to
        ]
        found.sort(key=lambda f: f.created, reverse=True)  # stable: the newest upload first within a second
        count = max(1, min(int(args.get("count") or 100), 1000))
        page = max(1, int(args.get("page") or 1))
        pages = max(1, -(-len(found) // count))
        shown = found[(page - 1) * count : page * count]
        return {
            "files": [f.to_api(self.bot_user_id) for f in shown],
            "paging": {"count": count, "total": len(found), "page": page, "pages": pages},
        }

    @staticmethod
    def _file_ts(args: dict[str, Any], key: str, default: float) -> float:
        if args.get(key) in (None, ""):
            return default
        try:
            return float(args[key])
        except (TypeError, ValueError) as exc:
            raise SlackError("invalid_arguments", f"[ERROR] {key} must be a timestamp") from exc

    def refuse_upload(self, *, status: int, count: int = 1) -> None:
        """The next ``count`` POSTs to an upload URL answer HTTP ``status`` and keep no bytes: 413 for a file
        larger than Slack takes, another 4xx for a request it will not take, a 5xx when it is down. The
        ticket stays open, as at Slack: nothing was uploaded, so a later completion finds no bytes."""
        self._upload_refusals.extend([status] * count)

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL: raw bytes (what slack_sdk sends) or multipart with a ``file``/``filename`` part.
        It is not a Web API method: it answers with an HTTP status and a short text, never `{"ok": ...}`."""
        file_id = request.match_info["file_id"]
        file = self.files.get(file_id)
        if file is None or file.completed:
            self.uploads.append((file_id, 404))
            return web.Response(status=404, text="file_not_found", content_type="text/plain")
        if self._upload_refusals:
            status = self._upload_refusals.popleft()
            await request.read()  # the client sends the whole body before it reads the answer
            self.uploads.append((file_id, status))
            return web.Response(status=status, text=f"{status} {HTTPStatus(status).phrase}", content_type="text/plain")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = form.get("file") or form.get("filename")
            if part is None:
                self.uploads.append((file_id, 400))
                return web.Response(status=400, text="missing file part", content_type="text/plain")
            data = part.file.read() if hasattr(part, "file") else str(part).encode()
        else:
            data = await request.read()
        file.content = bytes(data)
        self.uploads.append((file_id, 200))
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")
