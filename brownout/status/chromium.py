"""Headless Chromium over the DevTools protocol on a pipe: screenshots of pages and of single charts.

Standard library only: Chromium is started with ``--remote-debugging-pipe`` and spoken to in
NUL-separated JSON on file descriptors 3 and 4, so no websocket client or browser download is
needed, only Debian's ``chromium`` (``apt-get install chromium``). The flags are the ones a closed
network needs (no background networking, component updates or sync) and a fresh profile.

>>> import shutil
>>> find_chromium() is None or find_chromium().endswith(("chromium", "chrome", "chromium-browser"))
True
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

__all__ = ["ChromiumError", "HeadlessChromium", "find_chromium", "CHROMIUM_FLAGS"]

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe",
)


class ChromiumError(RuntimeError):
    """Chromium is missing, did not start, or answered a command with an error."""


def find_chromium() -> str | None:
    """``$BROWNOUT_CHROMIUM``, else the first of chromium, chromium-browser, google-chrome on PATH."""
    configured = os.environ.get("BROWNOUT_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class HeadlessChromium:
    """One headless browser with one page; use as a context manager.

    >>> # with HeadlessChromium() as b:
    >>> #     b.goto("http://127.0.0.1:9464/status", width=390, height=844, mobile=True)
    >>> #     png = b.screenshot()
    """

    def __init__(self, executable: str | None = None, *, timeout: float = 30.0) -> None:
        exe = executable or find_chromium()
        if exe is None:
            raise ChromiumError("headless Chromium not found: install Debian's chromium package "
                                "(apt-get install chromium) or set BROWNOUT_CHROMIUM")
        self.executable = exe
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._id = 0
        self._buf = b""
        self._session: str | None = None
        self._events: list[dict[str, Any]] = []

    # --- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> "HeadlessChromium":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="brownout-chromium-")
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()

        def wire_fds() -> None:  # the child reads commands on fd 3 and writes replies on fd 4
            a, b = os.dup(to_child), os.dup(from_child)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"]
        try:
            self._proc = subprocess.Popen(args, preexec_fn=wire_fds, close_fds=False, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as exc:
            raise ChromiumError(f"cannot start {self.executable}: {exc}") from exc
        finally:
            os.close(to_child)
            os.close(from_child)
        self._out = os.fdopen(from_parent, "wb", buffering=0)
        self._in = os.fdopen(to_parent, "rb", buffering=0)
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                  session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")

    def close(self) -> None:
        proc = self._proc
        if proc is not None:
            try:
                self.send("Browser.close", session=False, timeout=5.0)
            except (ChromiumError, OSError):
                pass
            self._proc = None
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            for f in (self._out, self._in):
                try:
                    f.close()
                except OSError:
                    pass
            if proc.stderr is not None:
                proc.stderr.close()
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

    # --- protocol --------------------------------------------------------------------
    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True,
             timeout: float | None = None) -> dict[str, Any]:
        """Send one DevTools command and wait for its result (events that arrive meanwhile are kept)."""
        if self._proc is None:
            raise ChromiumError("the browser is not running")
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session and self._session:
            msg["sessionId"] = self._session
        try:
            self._out.write(json.dumps(msg).encode() + b"\0")
        except BrokenPipeError:
            raise ChromiumError(f"Chromium exited: {self._stderr_tail()}") from None
        reply = self._wait(lambda m: m.get("id") == self._id, timeout or self.timeout, method)
        if "error" in reply:
            raise ChromiumError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return dict(reply.get("result", {}))

    def _wait(self, match: Any, timeout: float, what: str) -> dict[str, Any]:
        import select

        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                m = json.loads(raw)
                if match(m):
                    return dict(m)
                if "method" in m:
                    self._events.append(m)
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChromiumError(f"{what}: no answer from Chromium within {timeout:g} s")
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = self._in.read(1 << 20)
                if not chunk:
                    raise ChromiumError(f"Chromium exited: {self._stderr_tail()}")
                self._buf += chunk

    def _stderr_tail(self) -> str:
        proc = self._proc
        if proc is None or proc.stderr is None or proc.poll() is None:
            return "(still running)"
        return proc.stderr.read().decode(errors="replace")[-500:]

    # --- pages -----------------------------------------------------------------------
    def goto(self, url: str, *, width: int = 1280, height: int = 900, mobile: bool = False, scale: float = 1.0) -> None:
        """Load ``url`` at this viewport and wait for its load event."""
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": scale,
                                                         "mobile": mobile})
        self._events = [e for e in self._events if e.get("method") != "Page.loadEventFired"]
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise ChromiumError(f"cannot load {url}: {result['errorText']}")
        if not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            self._wait(lambda m: m.get("method") == "Page.loadEventFired", self.timeout, f"loading {url}")
        self._events.clear()

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise ChromiumError(f"script failed: {r['exceptionDetails'].get('text', r['exceptionDetails'])}")
        return r.get("result", {}).get("value")

    def rects(self, selector: str) -> list[dict[str, float]]:
        """Page-coordinate boxes (x, y, width, height) of the elements matching a CSS selector."""
        js = ("Array.from(document.querySelectorAll(%s)).map(e => { const r = e.getBoundingClientRect(); "
              "return {x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height}; })"
              % json.dumps(selector))
        return list(self.evaluate(js) or [])

    def screenshot(self, clip: dict[str, float] | None = None, *, full_page: bool = False, scale: float = 1.0) -> bytes:
        """A PNG of the viewport, of the whole page, or of ``clip`` (a box from :meth:`rects`)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": bool(full_page or clip)}
        if clip is not None:
            params["clip"] = {**{k: float(clip[k]) for k in ("x", "y", "width", "height")}, "scale": scale}
        elif full_page:
            w, h = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": float(w), "height": float(h), "scale": scale}
        return base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
