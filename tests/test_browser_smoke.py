"""The browser fixture itself works: a page served on localhost is rendered and read back."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.browser import screenshot


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"<!doctype html><title>smoke</title><h1 id=h>It renders</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_chromium_renders_a_local_page(browser: object) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{server.server_port}/")  # type: ignore[attr-defined]
        assert browser.find_element("id", "h").text == "It renders"  # type: ignore[attr-defined]
        assert screenshot(browser, "smoke").stat().st_size > 1000
    finally:
        server.shutdown()
