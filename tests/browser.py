"""Headless Chromium driven over the DevTools protocol: open a page, wait, read, screenshot."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_FLAGS", "Browser", "chromium"]

# flags without which Chromium stalls on blocked network lookups in a sandboxed machine
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1200,800",
]


def chromium() -> str | None:
    """The Chromium executable on PATH, or None."""
    return next(
        (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
    )


def _get_json(url: str) -> Any:
    """GET a JSON document, bypassing any proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return json.loads(response.read())


class Browser:
    """One headless Chromium with a fresh profile, and its first tab over a websocket."""

    def __init__(self, profile: Path, executable: str | None = None) -> None:
        from websockets.sync.client import connect

        profile.mkdir(parents=True, exist_ok=True)
        argv = [executable or chromium() or "chromium", *CHROMIUM_FLAGS]
        argv += [f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start its DevTools server")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = [t for t in _get_json(f"http://127.0.0.1:{port}/json/list") if t["type"] == "page"]
        self.socket = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, proxy=None)
        self._ids = itertools.count(1)
        self.requests: list[str] = []  # every URL the page asked for (Network events)
        self.call("Network.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (of the events in between, only
        requests are kept, in ``requests``)."""
        ident = next(self._ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("method") == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def open(self, url: str) -> None:
        """Navigate the tab to ``url``."""
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        """Poll a JavaScript expression until it is truthy; its value, or TimeoutError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"page never satisfied: {expression}")

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """Save the tab (or the whole page) as a PNG."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"]}
            params["clip"]["scale"] = 1
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def outside_requests(self) -> list[str]:
        """The URLs requested since the last call that would leave this machine (not
        127.0.0.1, file:, data:, blob:); the record starts afresh."""
        self.evaluate("0")  # collect the events sent so far
        local = ("http://127.0.0.1", "ws://127.0.0.1", "file:", "data:", "blob:", "about:")
        outside = [url for url in self.requests if not url.startswith(local)]
        self.requests = []
        return outside

    def close(self) -> None:
        """Close the socket and stop Chromium."""
        socket = getattr(self, "socket", None)
        if socket is not None:
            socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
