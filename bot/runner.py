"""Serving: HTTP on $PORT always (Slack in HTTP mode, /health, /metrics, alerts), plus Socket Mode when set."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import signal
import socket

from aiohttp import web

from bot import wiring
from bot.exceptions import ConfigError
from bot.server import build_web_app
from bot.settings import Settings
from bot.slack.front import FrontDoor, SocketModeDoor

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, taken before anything starts: a port in use is one clear line, not a
    traceback after the scheduler (and its pages) already started."""
    try:
        family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        return socket.create_server((host, port), family=family, backlog=128)
    except socket.gaierror as exc:
        raise ConfigError(f"HOST: cannot listen on {host!r}: {exc.strerror}") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"PORT: {port} is already in use on {host} (is the bot already running?): stop that process "
                "or set PORT to a free port"
            ) from None
        raise ConfigError(f"PORT: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


async def serve(settings: Settings, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    listening = bind(settings.host, settings.port)
    try:
        deps, app = wiring.build(settings)
        await wiring.start(deps)
    except BaseException:
        listening.close()
        raise
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests, embedding)
    web_app = build_web_app(deps, None if settings.socket_mode else app)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.SockSite(runner, listening)
    await site.start()
    socket_handler = None
    if settings.socket_mode:
        assert settings.slack_app_token is not None
        door = FrontDoor(app, deps, signing_secret=None)
        socket_handler = SocketModeDoor(app, settings.slack_app_token.get_secret_value(), door)
        await socket_handler.connect_async()  # type: ignore[no-untyped-call]  # unannotated in slack_bolt
        log.info("connected to Slack in Socket Mode; health on port %s", settings.port)
    else:
        log.info("serving Slack at http://%s:%s/slack/events", settings.host, settings.port)
    # What startup loaded (modules, settings, the app) lives as long as the process: keep it out of
    # the collector's full passes, which otherwise walk all of it (~140k objects, ~100 ms) mid-burst.
    gc.freeze()
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        if socket_handler is not None:
            await socket_handler.close_async()  # type: ignore[no-untyped-call]  # unannotated in slack_bolt
        await runner.cleanup()
        await wiring.stop(deps)
        for sig in handled:
            loop.remove_signal_handler(sig)
