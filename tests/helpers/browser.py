"""Drive headless Chromium from tests over the DevTools protocol, with no extra packages.

Chromium's ``--remote-debugging-pipe`` speaks CDP as NUL-terminated JSON
messages on file descriptors 3 (commands in) and 4 (replies and events out),
so no websocket client and no network port are needed. Usage::

    with Browser() as b:
        page = b.open("file:///tmp/report.html")
        page.wait_for("document.readyState === 'complete'")
        assert page.console_errors() == []
        page.screenshot(Path("shot.png"))
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("EDGEKIT_CHROMIUM", "/usr/bin/chromium"))
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
)


REPO = Path(__file__).resolve().parents[2]
IMAGES_JS = ("Array.from(document.images).map(i => [i.alt, i.naturalWidth, i.naturalHeight,"
             " i.getBoundingClientRect().width])")
"""[alt, natural width, natural height, shown width] of every <img> on the page."""


def keep_test_artifacts(stem: str, *files: Path) -> None:
    """Copy ``files`` to test-artifacts/<stem><suffix> when EDGEKIT_TEST_ARTIFACTS is set (CI keeps them)."""
    if not os.environ.get("EDGEKIT_TEST_ARTIFACTS"):
        return
    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    for f in files:
        shutil.copy(f, out / f"{stem}{f.suffix}")


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"needs headless Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    return None


class BrowserError(RuntimeError):
    """The browser died, timed out, or a CDP command failed."""


class Browser:
    """One headless Chromium process with a fresh profile, spoken to over a CDP pipe."""

    def __init__(self, width: int = 1280, height: int = 900, timeout_s: float = 30.0) -> None:
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self._profile = Path(tempfile.mkdtemp(prefix="edgekit-chromium-"))
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()

        def _wire_fds() -> None:  # in the child: fd 3 reads commands, fd 4 writes replies
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        self._proc = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_wire_fds,
            pass_fds=(3, 4),
        )
        os.close(cmd_r)
        os.close(out_w)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._closed = False
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._read_loop, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    # -- transport ---------------------------------------------------------
    def _read_loop(self) -> None:
        buf = b""
        with os.fdopen(self._out_r, "rb", buffering=0) as f:
            while True:
                chunk = f.read(1 << 16)
                if not chunk:
                    break
                buf += chunk
                while b"\0" in buf:
                    raw, buf = buf.split(b"\0", 1)
                    msg = json.loads(raw)
                    with self._cond:
                        if "id" in msg:
                            self._replies[msg["id"]] = msg
                        else:
                            self._events.append(msg)
                        self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.stderr_lines.append(line.decode(errors="replace").rstrip())

    def send(self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None) -> dict[str, Any]:
        """Send one CDP command and wait for its result."""
        with self._cond:
            self._next_id += 1
            mid = self._next_id
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session_id:
            msg["sessionId"] = session_id
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        with self._cond:
            while mid not in self._replies:
                if self._closed:
                    raise BrowserError(f"chromium exited during {method}: {' | '.join(self.stderr_lines[-5:])}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"timed out after {self.timeout_s:.0f}s waiting for {method}")
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def events(self, session_id: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self._events if session_id is None or e.get("sessionId") == session_id]

    # -- pages -------------------------------------------------------------
    def open(self, url: str) -> "Page":
        """Open ``url`` in a new tab with console and log capture enabled."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, sid)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session_id=sid)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False}, sid)
        page.navigate(url)
        return page

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self.send("Browser.close")
            except BrowserError:
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        try:
            os.close(self._cmd_w)
        except OSError:
            pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab attached with a flat CDP session."""

    def __init__(self, browser: Browser, session_id: str) -> None:
        self.browser, self.session_id = browser, session_id

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session_id)

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'")

    def eval(self, expression: str, await_promise: bool = False) -> Any:
        """Evaluate JS in the page and return its JSON value; a thrown exception raises BrowserError."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": await_promise})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise BrowserError(f"JS exception: {d.get('exception', {}).get('description') or d.get('text')}")
        return r.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float | None = None) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + (timeout_s or self.browser.timeout_s)
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression!r}")
            time.sleep(0.05)

    def console_messages(self) -> list[tuple[str, str]]:
        """(level, text) of every console call, uncaught exception and browser log entry so far."""
        out: list[tuple[str, str]] = []
        for e in self.browser.events(self.session_id):
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                out.append((p.get("type", "log"), text))
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append(("error", d.get("exception", {}).get("description") or d.get("text", "")))
            elif method == "Log.entryAdded":
                entry = p.get("entry", {})
                out.append((entry.get("level", "info"), f"{entry.get('text', '')} {entry.get('url', '')}".strip()))
        return out

    def console_errors(self) -> list[str]:
        return [text for level, text in self.console_messages() if level in ("error", "assert")]

    def wait_for_images(self) -> list[list[Any]]:
        """Wait until every image has loaded; returns :data:`IMAGES_JS` for them."""
        self.wait_for("Array.from(document.images).every(i => i.complete)")
        return self.eval(IMAGES_JS)

    def remote_requests(self) -> list[str]:
        """Requested URLs that left the machine (anything but file: and data:)."""
        return [u for u in self.requested_urls() if not u.startswith(("file:", "data:"))]

    def requested_urls(self) -> list[str]:
        """Every URL the page requested (Network is enabled before navigation)."""
        return [e["params"]["request"]["url"] for e in self.browser.events(self.session_id)
                if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole scroll height when ``full_page``)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            m = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": m["width"], "height": m["height"], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
