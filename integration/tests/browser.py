"""Pages checked in a real browser: headless Chromium (Debian's `chromium`) driven over the
DevTools protocol (websocket-client), for every test that publishes a page.

    from browser import requires_browser, open_browser, serve

    @requires_browser
    def test_page(tmp_path):
        with serve(site_dir) as base, open_browser() as browser:
            page = browser.check(base + "index.html")
        assert page.errors == [] and page.charts and page.all_charts_rendered

`check` loads the page, waits for its load event and for its Plotly charts (every `div.chart`)
to draw, and returns what a person would see go wrong: console errors and failed asserts,
uncaught exceptions, failed resource loads (the browser's log), plus each chart's state.
Tests skip only when no Chromium is installed (`.ci/run` installs one); STACKCI_CHROMIUM names
another binary.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--remote-debugging-port=0")
START_TIMEOUT_S = 60.0


def chromium_path() -> str | None:
    named = os.environ.get("STACKCI_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


requires_browser = pytest.mark.skipif(chromium_path() is None,
                                      reason="no Chromium installed (apt-get install chromium)")

# What each chart of the page shows once Plotly has drawn it.
_CHARTS_JS = """JSON.stringify(Array.from(document.querySelectorAll('div.chart')).map(el => ({
  id: el.id,
  plotted: el.classList.contains('js-plotly-plot'),
  failed: el.dataset.failed === '1',
  svg: el.querySelector('svg.main-svg') !== null,
  traces: (el._fullData || []).filter(t => t.visible !== false).length,
  marks: el.querySelectorAll('.scatterlayer .point, .barlayer .point, .scatterlayer .js-line')
    .length})))"""


_SCROLL_TO_JS = "document.getElementById(%s).scrollIntoView({block: 'center'})"


@dataclass
class PageCheck:
    url: str
    title: str = ""
    errors: list[str] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)
    text: str = ""
    loaded_s: float = 0.0  # from navigating to the load event
    drawn_s: float = 0.0  # until every chart was drawn (lazy ones scrolled into view) or failed

    @property
    def unrendered(self) -> list[str]:
        return [c["id"] for c in self.charts
                if not (c["plotted"] and c["svg"] and c["traces"] and c["marks"])]

    @property
    def all_charts_rendered(self) -> bool:
        return not self.unrendered


class Browser:
    """One headless Chromium; each `check` opens the page in a fresh tab and closes it."""

    def __init__(self, binary: str, profile: Path):
        import websocket  # websocket-client: pinned in constraints.txt

        self._process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{binary} did not open its DevTools port")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self._ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=30,
                                               suppress_origin=True)
        self._ids = itertools.count(1)
        self._events: list[dict] = []

    def close(self) -> None:
        if getattr(self, "_ws", None) is not None:
            self._ws.close()
        # Chromium's own helper processes share the session it was started in: end them all
        # (they still write into the profile otherwise).
        self._signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._process.wait()

    def _signal(self, number: int) -> None:
        try:
            os.killpg(self._process.pid, number)
        except ProcessLookupError:
            pass

    def _send(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and wait for its answer, keeping every event seen meanwhile."""
        message = {"id": next(self._ids), "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while True:
            answer = json.loads(self._ws.recv())
            if answer.get("id") == message["id"]:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error'].get('message')}")
                return answer.get("result", {})
            self._events.append(answer)

    def _wait_event(self, method: str, session: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(e.get("method") == method and e.get("sessionId") == session
                   for e in self._events):
                return True
            self._ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self._events.append(json.loads(self._ws.recv()))
            except Exception:  # the socket's timeout: check the deadline again
                pass
            finally:
                self._ws.settimeout(30)
        return False

    def _evaluate(self, session: str, expression: str):
        result = self._send("Runtime.evaluate", session, expression=expression,
                            returnByValue=True)
        return result.get("result", {}).get("value")

    def check(self, url: str, *, timeout_s: float = 60.0, screenshot: Path | None = None,
              width: int = 1280, height: int = 900) -> PageCheck:
        target = self._send("Target.createTarget", url="about:blank")["targetId"]
        session = self._send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self._events.clear()
        try:
            for domain in ("Page", "Runtime", "Log"):
                self._send(f"{domain}.enable", session)
            self._send("Emulation.setDeviceMetricsOverride", session, width=width,
                       height=height, deviceScaleFactor=1, mobile=False)
            started = time.monotonic()
            self._send("Page.navigate", session, url=url)
            if not self._wait_event("Page.loadEventFired", session, timeout_s):
                return PageCheck(url, errors=[f"no load event within {timeout_s:g} s"])
            page = PageCheck(url)
            deadline = time.monotonic() + timeout_s
            page.loaded_s = time.monotonic() - started
            while True:  # charts drawn by inline scripts are usually there at once
                page.charts = json.loads(self._evaluate(session, _CHARTS_JS) or "[]")
                waiting = [c for c in page.charts if c["id"] in page.unrendered
                           and not c.get("failed")]
                if not waiting or time.monotonic() > deadline:
                    break
                # A lazy chart (assets/lazy.js) is drawn once it scrolls into view: bring the
                # first one still waiting there, as a reader scrolling down would.
                self._evaluate(session, _SCROLL_TO_JS % json.dumps(waiting[0]["id"]))
                time.sleep(0.1)
            page.drawn_s = time.monotonic() - started
            page.title = self._evaluate(session, "document.title") or ""
            page.text = self._evaluate(session, "document.body.innerText") or ""
            if screenshot is not None:
                import base64

                shot = self._send("Page.captureScreenshot", session, format="png",
                                  captureBeyondViewport=True)
                Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
            self._wait_event("__settle__", session, 0.2)  # late console messages
            page.errors = _errors(e for e in self._events if e.get("sessionId") == session)
            return page
        finally:
            self._send("Target.closeTarget", targetId=target)


def _errors(events) -> list[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append("exception: " + (details.get("exception", {}).get("description")
                                          or details.get("text", "")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
    return found


@contextmanager
def open_browser():
    binary = chromium_path()
    if binary is None:
        pytest.skip("no Chromium installed")
    with tempfile.TemporaryDirectory(prefix="stackci-chromium-",
                                     ignore_cleanup_errors=True) as profile:
        browser = Browser(binary, Path(profile))
        try:
            yield browser
        finally:
            browser.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def serve(directory: Path):
    """A local http server (127.0.0.1, a free port) over `directory`; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def check_site(site: Path, pages: list[str] | None = None, **options) -> dict[str, PageCheck]:
    """Every page of a published site (default: every .html under it), checked in one browser
    over a local http server."""
    site = Path(site)
    names = pages or sorted(str(p.relative_to(site)) for p in site.rglob("*.html"))
    with serve(site) as base, open_browser() as browser:
        return {name: browser.check(base + name, **options) for name in names}
