"""Live servers and a real Chromium for the end-to-end tests.

The Canvas simulator and the tool run in background threads on 127.0.0.1, each on a free port. The browser reaches
the simulator as ``http://localhost:<port>`` and the tool as ``http://127.0.0.1:<port>``: two different *sites*, so
the tool runs in a cross-site iframe as it does inside real Canvas (partitioned cookies, postMessage across
origins, CSP frame-ancestors).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from canvas_sim import SimConfig, SimPlatform, create_sim_app
from canvas_sim.demo import demo_platform, demo_users
from kurspakke.crypto import Encryptor
from kurspakke.db import make_engine, make_session_factory, transaction, upgrade
from kurspakke.services.demo import load_demo
from kurspakke.services.keys import ensure_key
from lti_tool import create_app
from tests.conftest import IN_CI

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
SECRET = "x" * 64
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Every frame in the page's own renderer process. With site isolation the tool's frame changes process at each
    # hop of the launch (tool, simulator, tool again), and on a cold machine Playwright at times kept showing the
    # frame's previous document (CI saw the login page's heading after the landing page had loaded). Cookies,
    # their partitions, SameSite, CSP and postMessage origins are decided per site, not per process: unchanged.
    "--disable-site-isolation-trials",
]

expect.set_options(timeout=15_000)  # a launch is six page loads; leave room on a busy CI machine

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: str
    cookies: dict[str, str]
    body: bytes = field(default=b"", repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # lower-case names


@dataclass
class LateApp:
    """A WSGI app filled in after its server is bound (each app needs the other's port), recording what the tool
    receives so tests can tell which requests carried which cookies."""

    app: WSGIApp | None = field(default=None, repr=False)
    seen: list[SeenRequest] = field(default_factory=list, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        jar: SimpleCookie = SimpleCookie()
        jar.load(environ.get("HTTP_COOKIE", ""))
        assert self.app is not None, "app not set"
        chunks = self.app(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        seen = SeenRequest(
            method=environ["REQUEST_METHOD"],
            path=environ.get("PATH_INFO", ""),
            query=environ.get("QUERY_STRING", ""),
            cookies={k: m.value for k, m in jar.items()},
            body=body,
            headers={k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")},
        )
        with self.lock:
            self.seen.append(seen)
        return [body]

    def requests(self, method: str, path: str | None = None) -> list[SeenRequest]:
        with self.lock:
            return [r for r in self.seen if r.method == method and path in (None, r.path)]

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()


@dataclass
class LiveStack:
    sim_url: str
    tool_url: str
    sim: SimPlatform = field(repr=False)
    tool_app: Flask = field(repr=False)
    tool_recorder: LateApp = field(repr=False)
    sim_app: Flask | None = field(default=None, repr=False)  # its REST half: canvas_sim.rest.rest_of(sim_app)


def _start(server: BaseWSGIServer, stack: ExitStack) -> None:
    thread = threading.Thread(target=server.serve_forever, name=f"e2e-server-{server.port}", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=5)

    stack.callback(stop)


def _load_demo_data(database_url: str, sim_config: SimConfig) -> None:
    """What `kurspakke demo` does: schema, a signing key, the simulator registered, its course and people."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        platform = demo_platform(sim_config)
        users = demo_users(sim_config)
        with transaction(make_session_factory(engine)) as session:
            ensure_key(session, Encryptor(secret_key=SECRET))
            load_demo(session, platform, users)
    finally:
        engine.dispose()


@contextmanager
def _live_stack(tmp: Path, *, canvas_layout: bool) -> Iterator[LiveStack]:
    """The tool and the simulator on loopback servers. With canvas_layout, as hosted Canvas is laid out: the
    Canvas page on one origin, authorization and the post_message_forwarding frame on another (sso), the tool on
    a third."""
    sim_wsgi, tool_wsgi = LateApp(), LateApp()
    with ExitStack() as stack:
        # Bound first (port 0: the OS picks free ports), because each app must know the other's URL.
        sim_server = make_server("127.0.0.1", 0, sim_wsgi, threaded=True)
        stack.callback(sim_server.server_close)
        tool_server = make_server("127.0.0.1", 0, tool_wsgi, threaded=True)
        stack.callback(tool_server.server_close)
        sim_url = f"http://localhost:{sim_server.port}"  # another site than the tool, as Canvas is
        tool_url = f"http://127.0.0.1:{tool_server.port}"
        layout: dict[str, Any] = {}
        if canvas_layout:
            sso_server = make_server("127.0.0.1", 0, sim_wsgi, threaded=True)  # the same simulator, another origin
            stack.callback(sso_server.server_close)
            layout = {"sso_url": f"http://localhost:{sso_server.port}", "storage_target": "post_message_forwarding"}

        sim_config = SimConfig(
            base_url=sim_url,
            tool_login_url=tool_url + "/lti/login",
            tool_launch_url=tool_url + "/lti/launch",
            tool_jwks_url=tool_url + "/lti/jwks",
            **layout,
        )
        assert sim_config.storage_target  # the simulator offers LTI Platform Storage
        sim = SimPlatform(sim_config)
        sim_wsgi.app = create_sim_app(sim_config, sim)

        database_url = f"sqlite:///{tmp / 'kurspakke.sqlite3'}"
        _load_demo_data(database_url, sim_config)
        tool_app = create_app(
            {
                "settings": {
                    "env": "test",
                    "database_url": database_url,
                    "base_url": tool_url,
                    "instance_path": tmp / "instance",
                    "secret_key": SECRET,
                    "log_json": False,
                },
                "environ": {},
            }
        )
        stack.callback(tool_app.extensions["kurspakke"].engine.dispose)
        tool_wsgi.app = tool_app

        _start(sim_server, stack)
        _start(tool_server, stack)
        if canvas_layout:
            _start(sso_server, stack)
        yield LiveStack(
            sim_url=sim_url,
            tool_url=tool_url,
            sim=sim,
            tool_app=tool_app,
            tool_recorder=tool_wsgi,
            sim_app=sim_wsgi.app,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with _live_stack(tmp_path_factory.mktemp("e2e"), canvas_layout=False) as stack:
        assert stack.sim.config.storage_target == "_parent"
        yield stack


@pytest.fixture(scope="session")
def live_canvas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with _live_stack(tmp_path_factory.mktemp("e2e-canvas"), canvas_layout=True) as stack:
        yield stack


def _missing(what: str) -> None:
    """In CI a missing browser test prerequisite fails the run (as PostgreSQL does); elsewhere it skips."""
    if IN_CI:
        pytest.fail(f"{what}; CI requires the browser tests")
    pytest.skip(what)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _missing(f"no Chromium at {CHROMIUM} (make test installs Debian's chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser, live: LiveStack) -> Iterator[BrowserContext]:
    ctx = browser.new_context(locale="nb-NO")
    ctx.set_default_timeout(10_000)
    live.tool_recorder.clear()
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def silent_platform(live: LiveStack) -> Iterator[LiveStack]:
    """The simulator still sends lti_storage_target but answers no postMessage, as Canvas's mobile apps do."""
    live.sim.config.storage_answers = False
    try:
        yield live
    finally:
        live.sim.config.storage_answers = True


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_JS.exists():
        _missing(f"axe-core not installed at {AXE_JS} (npm ci)")
    return AXE_JS.read_text(encoding="utf-8")
