"""launch.js keeps the launch token out of addresses: it names the page's address without the token, keeps the token
in the frame's session history entry (and sessionStorage where allowed), posts it when the person moves between
pages, and posts it back after a reload. Run under node with a small fake DOM."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.unit.canvas_sim.test_canvas_sim_storage_js import node as node_binary

LAUNCH_JS = Path(__file__).resolve().parents[3] / "lti_tool" / "static" / "js" / "launch.js"
KEY = "kurspakke.launch-token"
TOKEN = "launchid.signature"

HARNESS = r"""
const fs = require("fs");
const vm = require("vm");
const cfg = JSON.parse(fs.readFileSync(0, "utf8"));
const out = { replaced: [], submitted: [], storage: null, statusHidden: false, failedHidden: true, prevented: [] };
const elements = {
  "resume-status": { set hidden(v) { out.statusHidden = v; } },
  "resume-failed": { set hidden(v) { out.failedHidden = v; } },
};
const attrs = cfg.body || {};
const listeners = {};
const body = {
  getAttribute: (n) => (n in attrs ? attrs[n] : null),
  hasAttribute: (n) => n in attrs,
  appendChild: (form) => { form.attached = true; },
};
const document = {
  body,
  getElementById: (id) => elements[id] || null,
  addEventListener: (type, fn) => { listeners[type] = fn; },
  createElement: (tag) => {
    const el = { tag, children: [], appendChild(c) { this.children.push(c); } };
    if (tag === "form") {
      el.submit = function () {
        const field = this.children.find((c) => c.name === "lt");
        const lt = field && field.value;
        out.submitted.push({ method: this.method, action: this.action, lt, attached: !!this.attached });
      };
    }
    return el;
  },
};
const session = Object.assign({}, cfg.session || {});
const storage = cfg.storageBlocked
  ? { getItem: () => { throw new Error("Access is denied for this document"); },
      setItem: () => { throw new Error("Access is denied for this document"); } }
  : { getItem: (k) => (k in session ? session[k] : null), setItem: (k, v) => { session[k] = v; } };
const history = {
  state: cfg.historyState === undefined ? null : cfg.historyState,
  replaceState(state, title, url) { this.state = state; out.replaced.push({ state, url }); },
};
const window = { parent: null, history, location: { pathname: cfg.pathname || "/app/participant" } };
Object.defineProperty(window, "sessionStorage", { get: () => storage });
vm.runInNewContext(fs.readFileSync(cfg.js, "utf8"), { window, document, Date, Math });
(cfg.clicks || []).forEach((click) => {
  const link = { getAttribute: (n) => (n === "href" ? click.href : null) };
  const event = Object.assign(
    { button: 0, defaultPrevented: false, target: { closest: (sel) => (click.appLink ? link : null) } },
    click.modifiers || {}
  );
  event.preventDefault = () => { out.prevented.push(click.href); };
  listeners.click(event);
});
out.storage = session;
process.stdout.write(JSON.stringify(out));
"""


def run(**cfg: Any) -> dict[str, Any]:
    payload = json.dumps({"js": str(LAUNCH_JS), **cfg})
    proc = subprocess.run(
        [node_binary(), "-e", HARNESS], input=payload, capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(proc.stdout)


LANDING = {"data-launch-token": TOKEN, "data-canonical-url": "/app/participant"}


def test_a_landing_page_names_its_address_without_the_token_and_keeps_the_token():
    out = run(body=LANDING)
    assert out["replaced"] == [{"state": {KEY: TOKEN}, "url": "/app/participant"}]
    assert out["storage"] == {KEY: TOKEN}
    assert out["submitted"] == []


def test_where_a_cross_site_frame_may_not_use_storage_the_history_entry_still_keeps_the_token():
    out = run(body=LANDING, storageBlocked=True)
    assert out["replaced"] == [{"state": {KEY: TOKEN}, "url": "/app/participant"}]


def test_a_link_between_pages_posts_the_token_instead_of_putting_it_in_the_address():
    out = run(body=LANDING, clicks=[{"href": "/app/mentor", "appLink": True}])
    assert out["prevented"] == ["/app/mentor"]
    assert out["submitted"] == [{"method": "post", "action": "/app/mentor", "lt": TOKEN, "attached": True}]


def test_other_links_and_modified_clicks_are_left_alone():
    out = run(
        body=LANDING,
        clicks=[
            {"href": "mailto:kontakt@example.no", "appLink": False},
            {"href": "/app/mentor", "appLink": True, "modifiers": {"ctrlKey": True}},
            {"href": "/app/mentor", "appLink": True, "modifiers": {"button": 1}},
        ],
    )
    assert out["prevented"] == [] and out["submitted"] == []


def test_a_reload_posts_the_token_of_the_history_entry_back_to_the_same_address():
    out = run(body={"data-resume": ""}, historyState={KEY: TOKEN}, storageBlocked=True, pathname="/app/owner")
    assert out["submitted"] == [{"method": "post", "action": "/app/owner", "lt": TOKEN, "attached": True}]
    assert out["replaced"] == []


def test_a_reload_falls_back_to_the_frames_session_storage():
    out = run(body={"data-resume": ""}, session={KEY: TOKEN})
    assert [s["lt"] for s in out["submitted"]] == [TOKEN]


def test_a_new_tab_without_the_token_asks_to_open_the_tool_again():
    out = run(body={"data-resume": ""}, historyState={"something": "else"})
    assert out["submitted"] == []
    assert out["statusHidden"] is True and out["failedHidden"] is False


def test_the_language_switchers_answer_posts_its_token_to_the_page_even_where_storage_is_blocked():
    body = {"data-resume": "", "data-resume-to": "/app/participant", "data-launch-token": TOKEN}
    out = run(body=body, storageBlocked=True, pathname="/locale")
    assert out["submitted"] == [{"method": "post", "action": "/app/participant", "lt": TOKEN, "attached": True}]
