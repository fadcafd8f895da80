"""Launching the tool from the Canvas simulator in a real Chromium, as each role, in a cross-site iframe."""

from __future__ import annotations

import http.client
import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, Page, Request, Route, expect

from tests.e2e.helpers import TOOL_FRAME, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

STATE_COOKIE_PREFIX = "kp_state_"
ROLES = [
    ("deltaker", "Start som deltaker", "Min fremdrift"),
    ("mentor", "Start som mentor", "Mentoroversikt"),
    ("lisensadministrator", "Start som lisensadministrator", "Lisenser"),
    ("kurseier", "Start som kurseier", "Kursadministrasjon"),
]


def launch(page: Page, live: LiveStack, button: str, heading: str) -> Frame:
    """Open the simulator, press the role's button and wait for the tool's landing page in the iframe."""
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name=button, exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    try:
        expect(tool.locator("h1")).to_have_text(heading)
    except AssertionError as failure:
        seen = [(r.method, r.path, sorted(r.cookies)) for r in live.tool_recorder.requests("POST")]
        raise AssertionError(f"{failure}\nthe tool saw: {seen}") from failure
    expect(tool.locator("body[data-canonical-url]")).to_have_count(1)
    frame = tool_frame(page)
    assert frame.url.startswith(live.tool_url + "/"), frame.url
    return frame


def launch_posts(live: LiveStack) -> list[dict[str, str]]:
    return [r.cookies for r in live.tool_recorder.requests("POST", "/lti/launch")]


@pytest.mark.parametrize(("user", "button", "heading"), ROLES, ids=[r[0] for r in ROLES])
def test_each_role_lands_without_wcag_violations(
    page: Page, live: LiveStack, axe_source: str, user: str, button: str, heading: str
) -> None:
    frame = launch(page, live, button, heading)

    posts = launch_posts(live)
    assert len(posts) == 1
    assert any(name.startswith(STATE_COOKIE_PREFIX) for name in posts[0]), "the state cookie came back with the launch"

    violations = run_axe(frame, axe_source)
    if violations:
        print(f"\naxe violations on the {user} landing page ({frame.url}):")
        print(json.dumps(violations, indent=2, ensure_ascii=False))
    assert violations == [], [f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}" for v in violations]


def fetch_without_cookies(route: Route) -> None:
    """Forward the request outside the browser and answer it without its Set-Cookie headers."""
    request = route.request
    url = urlsplit(request.url)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "cookie"}
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        path = url.path + (f"?{url.query}" if url.query else "")
        conn.request(request.method, path, body=request.post_data_buffer, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        kept = {k: v for k, v in resp.getheaders() if k.lower() not in {"set-cookie", "transfer-encoding"}}
    finally:
        conn.close()
    route.fulfill(status=resp.status, headers=kept, body=body)


def test_launch_without_cookies_goes_through_platform_storage(
    context: BrowserContext, page: Page, live: LiveStack
) -> None:
    # As when the browser refuses the tool's cookie in the Canvas iframe: the login page's state cookie never
    # reaches the browser, so only the LTI Platform Storage messages can bind the launch to this browser.
    context.route(live.tool_url + "/lti/login", fetch_without_cookies)
    # Chromium counts a page fulfilled by the test as public-internet content, and a public page may not navigate
    # to a loopback host (Local Network Access) unless allowed.
    context.grant_permissions(["local-network-access"])

    launch(page, live, "Start som deltaker", "Min fremdrift")

    logins = live.tool_recorder.requests("POST", "/lti/login")
    assert len(logins) == 1
    assert b'data-storage-mode="login"' in logins[0].body  # the state went to the platform's storage
    posts = live.tool_recorder.requests("POST", "/lti/launch")
    assert len(posts) == 1
    assert not any(name.startswith(STATE_COOKIE_PREFIX) for name in posts[0].cookies), posts[0].cookies
    assert context.cookies(live.tool_url) == []
    # Without the cookie the launch answered with the storage check, which read the state back from the
    # simulator and only then opened the view.
    assert b'data-storage-mode="check"' in posts[0].body
    # The check page posted the proof it read from the platform's storage; the tool compared it and only then
    # answered with the landing page (its launch token in the page, not in an address).
    confirms = live.tool_recorder.requests("POST", "/lti/storage-confirm")
    assert len(confirms) == 1
    assert b"Min fremdrift" in confirms[0].body
    # Posted from the tool's own frame, and the browser says so: storage-confirm refuses anything else. The check
    # page's referrer policy makes Chromium name the origin (under no-referrer it sends "Origin: null").
    assert confirms[0].headers.get("sec-fetch-site") == "same-origin", confirms[0].headers
    assert confirms[0].headers.get("origin") == live.tool_url, confirms[0].headers
    assert not [r for r in live.tool_recorder.seen if "lt=" in r.query]


def test_reload_after_landing_shows_the_same_page(page: Page, live: LiveStack) -> None:
    frame = launch(page, live, "Start som mentor", "Mentoroversikt")
    canonical = frame.locator("body").get_attribute("data-canonical-url")
    assert canonical
    assert "lt=" not in canonical  # the launch token never sits in an address
    # launch.js gave the page, the answer to the launch POST, its GET address; a reload of it gets a page that posts
    # the token the frame keeps back to the same address.
    assert frame.evaluate("location.href") == live.tool_url + canonical
    frame.evaluate("window.beforeReload = true")
    live.tool_recorder.clear()

    with page.expect_response(lambda r: r.url == live.tool_url + canonical) as reloaded:
        frame.evaluate("location.reload()")
    assert reloaded.value.request.method == "GET"
    assert reloaded.value.status == 200

    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text("Mentoroversikt")
    expect(tool.locator("body[data-canonical-url]")).to_have_count(1)
    assert tool_frame(page).evaluate("window.beforeReload === undefined")  # a new document, not the old one
    assert live.tool_recorder.requests("POST", "/lti/launch") == []  # no re-post of the used id_token


def test_launch_without_cookies_through_canvas_forwarding_frame(browser: Browser, live_canvas: LiveStack) -> None:
    """Hosted Canvas's layout: the Canvas page on one origin, the OIDC authorize URL and the hidden
    post_message_forwarding frame on another (sso), the tool on a third. With the cookie withheld, the tool's
    messages must go to the named frame with the sso origin as target, and come back through it."""
    live = live_canvas
    context = browser.new_context(locale="nb-NO")
    context.set_default_timeout(15_000)
    try:
        context.route(live.tool_url + "/lti/login", fetch_without_cookies)
        context.grant_permissions(["local-network-access"])
        page = context.new_page()
        live.tool_recorder.clear()
        launch(page, live, "Start som deltaker", "Min fremdrift")
        assert page.locator("iframe[name='post_message_forwarding']").count() == 1
        posts = live.tool_recorder.requests("POST", "/lti/launch")
        assert len(posts) == 1 and b'data-storage-mode="check"' in posts[0].body
        assert not any(name.startswith(STATE_COOKIE_PREFIX) for name in posts[0].cookies)
        assert len(live.tool_recorder.requests("POST", "/lti/storage-confirm")) == 1
        login = live.tool_recorder.requests("POST", "/lti/login")[0]
        sso_origin = live.sim.config.auth_base
        assert sso_origin != live.sim_url and f'data-platform-origin="{sso_origin}"'.encode() in login.body
    finally:
        context.close()


class RequestLog:
    """The page's requests, for browser-side times: request.timing's startTime is the browser's wall clock (ms since
    the epoch), as are Date.now() and performance.timing in the page."""

    def __init__(self, page: Page) -> None:
        self.requests: list[Request] = []
        page.on("request", lambda request: self.requests.append(request))

    def first(self, path: str) -> Request:
        found = [r for r in self.requests if urlsplit(r.url).path == path]
        assert found, (path, [r.url for r in self.requests])
        return found[0]

    def started(self, path: str) -> float:
        return float(self.first(path).timing["startTime"])

    def answered(self, path: str) -> float:
        request = self.first(path)
        request.response()  # waits for it: responseEnd is known once the request has finished
        return float(request.timing["startTime"] + request.timing["responseEnd"])


def test_a_platform_that_never_answers_does_not_hold_up_a_launch_when_cookies_work(
    page: Page, silent_platform: LiveStack
) -> None:
    """Canvas's mobile apps send lti_storage_target but answer no postMessage. The frame keeps cookies here, so the
    login page goes on to the platform at once instead of waiting for answers that never come (before: two 5 s
    timeouts, about 10 s per launch)."""
    live = silent_platform
    log = RequestLog(page)
    frame = launch(page, live, "Start som deltaker", "Min fremdrift")

    logins = live.tool_recorder.requests("POST", "/lti/login")
    assert len(logins) == 1 and b'data-storage-mode="login"' in logins[0].body  # the storage page, not a redirect
    login_page_waited = log.started("/api/lti/authorize_redirect") - log.answered("/lti/login")
    landed = frame.evaluate("performance.timing.domContentLoadedEventEnd") - log.started("/lti/login")
    print(f"\nsilent platform, cookies kept: login page left after {login_page_waited:.0f} ms, landed {landed:.0f} ms")
    assert login_page_waited < 500  # no wait on the platform (one would be 1000 ms)
    assert landed < 3000
    posts = launch_posts(live)
    assert len(posts) == 1 and any(name.startswith(STATE_COOKIE_PREFIX) for name in posts[0])
    assert live.tool_recorder.requests("POST", "/lti/storage-confirm") == []


def test_a_platform_that_never_answers_without_cookies_fails_fast_with_an_alert(
    context: BrowserContext, page: Page, silent_platform: LiveStack, axe_source: str
) -> None:
    """No cookie and no platform storage: nothing can bind the launch. The check page says so within a few seconds
    (before: about 20 s), in an alert that names the platform as the one that did not answer."""
    live = silent_platform
    context.route(live.tool_url + "/lti/login", fetch_without_cookies)  # as a browser refusing the tool's cookies
    context.grant_permissions(["local-network-access"])
    log = RequestLog(page)
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som deltaker", exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("body[data-storage-mode='check']")).to_have_count(1)
    frame = tool_frame(page)
    failed_at = frame.wait_for_function(
        "() => { const a = document.getElementById('storage-failed'); return a && a.textContent ? Date.now() : 0; }",
        polling="raf",
    ).json_value()
    elapsed = failed_at - log.started("/lti/login")
    print(f"\nsilent platform, no cookies: failure shown {elapsed:.0f} ms after the login")
    assert elapsed < 4000  # two waits of a second at most, plus four page loads

    alert = tool.get_by_role("alert")
    expect(alert).to_have_text(
        "Canvas svarte ikke på innloggingskontrollen. Åpne verktøyet i en ny fane fra emnet, eller start det på nytt."
    )
    expect(alert).to_be_visible()
    expect(tool.locator("h1")).to_have_text("Innloggingen kunne ikke fullføres")
    assert frame.title() == "Innloggingen kunne ikke fullføres – Kurspakke"
    expect(tool.get_by_role("status")).to_be_hidden()
    assert live.tool_recorder.requests("POST", "/lti/storage-confirm") == []  # nothing to confirm, nothing posted

    violations = run_axe(frame, axe_source)
    assert violations == [], [f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}" for v in violations]
