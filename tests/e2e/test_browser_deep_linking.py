"""Deep linking in a real Chromium: the course owner picks pages in the tool's frame, and the tool's signed
LtiDeepLinkingResponse goes back to the platform by a cross-origin form post from inside that frame.

That last post is what the tool's CSP `form-action` governs: unless it names the platform's origin, Chromium
refuses to send the form and the links never reach Canvas. Only a browser enforces it, so only a browser test
proves the policy lets the return through.
"""

from __future__ import annotations

import json
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import jwt
import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, expect

from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
START_BUTTON = "Legg til lenker (dyplenking) som kurseier"

# Runs in every document of the page before its own scripts (outside their CSP). A violation in the tool's
# cross-origin frame cannot be read from the simulator page, so the frame posts it up; the top page keeps them
# all in window.__cspViolations, where the test can wait on them together with the return landing.
CSP_LISTENER = """
(() => {
  const top = window === window.top;
  if (top) {
    window.__cspViolations = [];
    window.addEventListener("message", (e) => {
      if (e.data && e.data.kpCspViolation) window.__cspViolations.push(e.data.kpCspViolation);
    });
  }
  document.addEventListener("securitypolicyviolation", (e) => {
    const v = {directive: e.effectiveDirective, blocked: e.blockedURI, document: e.documentURI,
               policy: e.originalPolicy};
    if (top) window.__cspViolations.push(v); else window.top.postMessage({kpCspViolation: v}, "*");
  });
})();
"""

# Settles as soon as either the simulator's answer page is in the frame (same origin as the simulator page, so
# readable from it) or a CSP violation was reported: a blocked return fails at once, not after a timeout.
RETURN_SETTLED = """() => {
  if (window.__cspViolations.length) return window.__cspViolations;
  const doc = document.getElementById("tool_frame").contentDocument;  // null while the tool's origin is shown
  return doc && doc.getElementById("dl-heading") ? [] : null;
}"""


def tool_signing_keys(live: LiveStack) -> jwt.PyJWKSet:
    with urllib.request.urlopen(live.tool_url + "/lti/jwks", timeout=5) as resp:
        return jwt.PyJWKSet.from_dict(json.load(resp))


def test_owner_places_links_by_keyboard_and_the_signed_response_reaches_the_platform(
    page: Page, live: LiveStack, axe_source: str
) -> None:
    sim = live.sim
    return_url = f"{sim.config.base}/courses/{sim.config.course_id}/deep_linking_response"
    responses_before = len(sim.deep_link_responses)
    jwks_fetches_before = sim.tool_jwks_fetches
    page.add_init_script(CSP_LISTENER)
    csp_console: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # Chromium also logs each refusal ("Sending form data to '…' violates the following Content Security Policy
        # directive …"); a second witness beside the securitypolicyviolation events.
        if "Content Security Policy" in message.text:
            csp_console.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    returns: list[Request] = []
    page.on("request", lambda r: returns.append(r) if r.url == return_url and r.method == "POST" else None)

    # Canvas opens a deep-linking launch in an iframe of its external-tool dialog (editor, modules); the simulator's
    # course page opens it in its tool frame: a cross-site iframe on the platform's page either way.
    page.goto(live.sim_url + "/")
    start = page.get_by_role("button", name=START_BUTTON, exact=True)
    start.focus()
    page.keyboard.press("Enter")
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text("Legg til lenker i emnet")
    frame = tool_frame(page)
    assert frame.url.startswith(live.tool_url + "/"), frame.url

    violations = run_axe(frame, axe_source)
    assert violations == [], axe_summary(violations)

    # Keyboard alone, from the button that opened the frame: Tab walks into the tool's page in document order, and
    # every stop is asserted so a control that cannot be reached (or is reached out of order) fails here.
    participant = tool.get_by_role("checkbox", name="Min fremdrift (for deltakere)")
    mentor = tool.get_by_role("checkbox", name="Mentoroversikt (for mentorer)")
    licences = tool.get_by_role("checkbox", name="Lisenser (for lisensadministratorer)")
    submit = tool.get_by_role("button", name="Legg til lenker", exact=True)
    expect(start).to_be_focused()
    page.keyboard.press("Tab")
    expect(tool.get_by_role("link", name="Gå til innholdet")).to_be_focused()
    # The language switcher in the header: the two other languages, each named in itself.
    for language in ("Nynorsk", "English"):
        page.keyboard.press("Tab")
        expect(tool.get_by_role("button", name=language, exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    expect(participant).to_be_focused()
    expect(participant).to_be_checked()  # preselected; Space takes it out
    page.keyboard.press("Space")
    expect(participant).not_to_be_checked()
    page.keyboard.press("Tab")
    expect(mentor).to_be_focused()
    page.keyboard.press("Space")
    expect(mentor).to_be_checked()
    page.keyboard.press("Tab")
    expect(licences).to_be_focused()
    page.keyboard.press("Space")
    expect(licences).to_be_checked()
    page.keyboard.press("Tab")
    expect(submit).to_be_focused()
    page.keyboard.press("Enter")

    # The tool answers with its return page, whose script posts the JWT to the platform from inside the frame.
    seen = page.wait_for_function(RETURN_SETTLED).json_value()
    assert seen == [], f"Chromium reported CSP violations on the way back to the platform: {seen}"
    expect(tool.locator("h1")).to_have_text("Lenker mottatt fra verktøyet")
    expect(tool.locator(".sim-items li")).to_have_text(["Mentoroversikt", "Lisenser"])
    assert tool_frame(page).url == return_url

    # The platform received the response and accepted it, which it does only after verifying the tool's signature
    # with a key fetched from the tool's /lti/jwks, and its own signed `data` echoed back.
    assert len(sim.deep_link_responses) == responses_before + 1
    received = sim.deep_link_responses[-1]
    items = received[DL_CLAIM + "content_items"]
    assert [(i["type"], i["title"], i["custom"]) for i in items] == [
        ("ltiResourceLink", "Mentoroversikt", {"kurspakke_view": "mentor"}),
        ("ltiResourceLink", "Lisenser", {"kurspakke_view": "licences"}),
    ]
    assert sim.tool_jwks_fetches == jwks_fetches_before + 1
    assert live.tool_recorder.requests("GET", "/lti/jwks"), "the simulator did not fetch the tool's JWKS"

    # And independently of the simulator's code: what the browser posted is the tool's RS256 signature over exactly
    # what the simulator recorded, addressed to the platform.
    assert len(returns) == 1
    posted = parse_qs(returns[0].post_data or "")["JWT"][0]
    key = tool_signing_keys(live)[jwt.get_unverified_header(posted)["kid"]]
    claims: dict[str, Any] = jwt.decode(posted, key.key, algorithms=["RS256"], audience=sim.issuer)
    assert claims == received

    violations_at_end = page.evaluate("window.__cspViolations")
    assert violations_at_end == [], violations_at_end
    assert csp_console == [], csp_console
