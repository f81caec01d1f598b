"""The steward's report in a real browser: Debian's chromium, headless, driven over the DevTools protocol.

The page must load from file:// with no request anywhere else, no console error, no failed load;
the key figures must be on the screen; it must fit a phone-width window and print. Every test runs
on the English report of the shared sample run and on the Spanish one (``--lang es``, built on a copy
of the run). Full-page screenshots at desktop and phone width are kept beside each report
(reports/screenshot.png, reports/screenshot-phone.png). `.ci/run` installs chromium; a machine
without it skips these tests with the reason.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from pipelines import i18n
from pipelines.report import REPORT_PATH, build_report
from pipelines.report.terms import role_text

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
websocket = pytest.importorskip("websocket", reason="websocket-client (the `test` extra) is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`apt-get install chromium`; "
                                                          ".ci/run installs it)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--remote-debugging-port=0"]
LOCAL_SCHEMES = ("file:", "data:", "about:")


class DevTools:
    """A headless chromium and one page of it, over the Chrome DevTools Protocol (flattened sessions)."""

    def __init__(self, profile: Path, timeout: float = 30.0):
        self.timeout = timeout
        self.events: list[dict] = []
        self._id = 0
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=timeout,
                                              suppress_origin=True)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def page(self, method: str, **params) -> dict:
        return self.call(method, self.session, **params)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == self.session:
                    return event
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive in the next ``seconds`` (late requests, late errors)."""
        self.ws.settimeout(0.1)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                pass
        self.ws.settimeout(self.timeout)

    def evaluate(self, expression: str):
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            if getattr(self, "ws", None):
                try:
                    self.call("Browser.close")
                except Exception:  # the browser may close the socket before replying
                    pass
                self.ws.close()
        finally:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def problems(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions, error log entries, failed loads and non-local requests."""
    found = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            found.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p.get('args', [])]}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            found.append(f"log error: {p['entry'].get('text')} ({p['entry'].get('url')})")
        elif method == "Network.loadingFailed":
            found.append(f"failed load: {p.get('errorText')} {p.get('blockedReason') or ''}")
        elif method == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith(LOCAL_SCHEMES):
                found.append(f"external request: {url}")
    return found


@pytest.fixture(scope="module")
def published(sample_run):
    return sample_run  # the session's shared run (tests/conftest.py)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tools = DevTools(tmp_path_factory.mktemp("chromium-profile"))
    for domain in ("Runtime", "Log", "Network", "Page"):
        tools.page(f"{domain}.enable")
    yield tools
    tools.close()


@pytest.fixture(scope="module", params=["en", "es"])
def lang(request):
    return request.param


@pytest.fixture(scope="module")
def loaded(published, browser, lang, tmp_path_factory):
    report = Path(published.run_dir) / REPORT_PATH
    if lang != "en":  # the shared run stays as it is: the other language's report goes on a copy of it
        copy = tmp_path_factory.mktemp(f"report-{lang}") / Path(published.run_dir).name
        shutil.copytree(published.run_dir, copy)
        report = Path(build_report(str(copy), lang=lang))
    assert report.is_file()
    browser.page("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
    browser.events.clear()
    browser.page("Page.navigate", url=report.as_uri())
    browser.wait_for("Page.loadEventFired")
    browser.drain(1.0)
    return report


def test_report_loads_offline_without_errors(loaded, browser):
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert requests and requests[0] == loaded.as_uri()  # the page itself was seen by the Network domain
    assert problems(browser.events) == []
    assert browser.evaluate("document.scripts.length") == 0


def test_key_figures_are_on_the_page(loaded, browser, published, lang):
    text = browser.evaluate("document.body.innerText")
    assert browser.evaluate("document.documentElement.lang") == i18n.BCP47[lang]
    figures = published.manifest["figures"]
    per_agency = figures["per_agency"]
    with i18n.use(lang):  # figures in the page's format (1,600 / 1 600), headings in its language
        for agency, f in per_agency.items():
            for role in ("victims", "offenders"):
                if f.get(role):
                    assert i18n.number(f[role]) in text, (agency, role)
        for role, u in figures["reconciled_unique"].items():
            assert f"{role_text(role, 'unique')}\n{i18n.number(u['persons'])}" in text
        assert i18n.number(per_agency["PNP"]["victims_by_child_adult"]["CHILD"]) in text  # 287 children (PNP)
        assert i18n.gettext("Overlap between agencies") in text and "PNP + MP" in text
    assert "built-in method" not in text and "object at 0x" not in text and "None" not in text.split()
    charts = browser.evaluate("Array.from(document.querySelectorAll('svg[role=img]')).map("
                              "s => [s.getBoundingClientRect().width, s.querySelector('title').textContent])")
    assert len(charts) >= 4 and all(width > 200 for width, _ in charts)
    assert any("UpSet" in title for _, title in charts)


def screenshot(browser, target: Path, width: int) -> tuple[int, int]:
    """A full-page PNG at the window's width, written to ``target``; returns its (width, height) in pixels."""
    height = browser.evaluate("Math.ceil(document.documentElement.scrollHeight)")
    shot = browser.page("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
    png = base64.b64decode(shot["data"])
    target.write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    return struct.unpack(">II", png[16:24])


def test_full_page_screenshot_is_kept_with_the_run(loaded, browser):
    height = browser.evaluate("Math.ceil(document.documentElement.scrollHeight)")
    assert screenshot(browser, loaded.parent / "screenshot.png", 1280) == (1280, height)
    assert height > 3000  # the whole page, not one viewport


def test_report_fits_a_narrow_window_and_prints(loaded, browser):
    browser.page("Emulation.setDeviceMetricsOverride", width=375, height=800, deviceScaleFactor=2, mobile=True)
    try:
        browser.drain(0.3)
        overflow = browser.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than a 375px window"
        width, height = screenshot(browser, loaded.parent / "screenshot-phone.png", 375)
        assert width == 2 * 375 and height > 2 * 3000  # device pixels: the whole page, not one window
        pdf = base64.b64decode(browser.page("Page.printToPDF", printBackground=True)["data"])
        assert pdf[:5] == b"%PDF-" and len(pdf) > 20_000
    finally:
        browser.page("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
    assert problems(browser.events) == []
