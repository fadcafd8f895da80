"""The tool's platform-storage script (lti_tool/static/js/platform_storage.js) under Node, against a fake Canvas
page: which frame it talks to, with which target origin, what it stores, what it does when nobody answers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.canvas_sim.test_canvas_sim_storage_js import node as node_binary

JS = Path(__file__).resolve().parents[3] / "lti_tool" / "static" / "js" / "platform_storage.js"
PLATFORM = "https://sso.canvaslms.example"

# A fake tool page inside a fake Canvas page, on a virtual clock: the script's timers fire in order without real
# waiting, so a test sees when the page would have gone on (replacedAt, submittedAt, failedAt, in ms) and which
# delays the script set (timeouts). `answers` says how the platform replies to each subject: "reply" (normally),
# "silent" (never), "wrong_origin", "wrong_subject", "wrong_id" (another message's id), "silent_once" (the first
# copy is lost), "error" (an error answer). `latency` (ms per subject, default 5) is how long an answer takes.
# putFrame / getFrame: the frames its capabilities answer names; supports: the subjects it lists there.
# `cookie`: what document.cookie holds when the page loads ("throw": reading it throws, as in a sandbox).
HARNESS = r"""
const fs = require("fs");
const vm = require("vm");
const { webcrypto } = require("crypto");
const cfg = JSON.parse(fs.readFileSync(0, "utf8"));
let now = 0;
let seq = 0;
const timers = [];
function schedule(fn, ms) {
  const t = { id: ++seq, at: now + Math.max(0, Number(ms) || 0), fn };
  timers.push(t);
  return t.id;
}
const out = {
  posted: [], replaced: null, replacedAt: null, submitted: null, submittedAt: null, failedAt: null,
  timeouts: [], cookieWrites: [],
};
const handlers = [];
const storage = Object.assign({}, cfg.stored || {});
const seen = {};
function answer(msg) {
  const mode = (cfg.answers || {})[msg.subject] || "reply";
  seen[msg.subject] = (seen[msg.subject] || 0) + 1;
  if (mode === "silent" || (mode === "silent_once" && seen[msg.subject] === 1)) return;
  let data = { subject: msg.subject + ".response", message_id: msg.message_id };
  if (mode === "error") {
    data.error = { code: "bad_request", message: "no" };
  } else if (msg.subject === "lti.capabilities") {
    const supports = cfg.supports || ["lti.put_data", "lti.get_data"];
    const frames = { "lti.put_data": cfg.putFrame, "lti.get_data": cfg.getFrame };
    data.supported_messages = supports.map((subject) => ({ subject, frame: frames[subject] }));
  } else if (msg.subject === "lti.put_data") {
    if (msg.value === null) delete storage[msg.key]; else storage[msg.key] = msg.value;
    data.key = msg.key; data.value = msg.value;
  } else if (msg.subject === "lti.get_data") {
    data.key = msg.key; data.value = msg.key in storage ? storage[msg.key] : null;
  }
  let origin = cfg.origin;
  if (mode === "wrong_origin") origin = "https://evil.example";
  if (mode === "wrong_subject") data.subject = "lti.something_else.response";
  if (mode === "wrong_id") data.message_id = "another-" + msg.message_id;
  const latency = (cfg.latency || {})[msg.subject];
  schedule(() => handlers.slice().forEach((h) => h({ origin, data, source: {} })), latency === undefined ? 5 : latency);
}
function frame(name) {
  return { postMessage: (msg, target) => { out.posted.push({ frame: name, target, msg, at: now }); answer(msg); } };
}
const frames = {};
(cfg.frames || []).forEach((n) => { frames[n] = frame(n); });
const parent = Object.assign(frame("_parent"), { frames });
const attrs = cfg.attrs;
const texts = {
  "storage-text-heading": "Innloggingen kunne ikke fullføres",
  "storage-text-title": "Innloggingen kunne ikke fullføres – Kurspakke",
  "storage-text-no-answer": "NO-ANSWER",
  "storage-text-not-confirmed": "NOT-CONFIRMED",
};
const alert = { className: "", _text: "" };
Object.defineProperty(alert, "textContent", {
  get() { return this._text; },
  set(v) { this._text = v; if (out.failedAt === null) out.failedAt = now; },
});
const elements = {
  "storage-heading": { textContent: "Logger inn" },
  "storage-status": { hidden: false },
  "storage-failed": alert,
  "storage-confirm": {
    elements: { proof: { value: "" } },
    submit() { out.submitted = this.elements.proof.value; out.submittedAt = now; },
  },
};
Object.keys(texts).forEach((id) => { elements[id] = { textContent: texts[id] }; });
let jar = cfg.cookie || "";
const document = {
  title: "Logger inn – Kurspakke",
  body: { getAttribute: (n) => (n in attrs ? attrs[n] : null) },
  getElementById: (id) => elements[id] || null,
};
Object.defineProperty(document, "cookie", {
  get() { if (jar === "throw") throw new Error("SecurityError"); return jar; },
  set(v) { if (jar === "throw") throw new Error("SecurityError"); out.cookieWrites.push(v); },
});
const window = {
  parent, opener: null, crypto: webcrypto,
  location: { replace: (url) => { out.replaced = url; out.replacedAt = now; } },
  addEventListener: (t, fn) => { if (t === "message") handlers.push(fn); },
  removeEventListener: (t, fn) => { const i = handlers.indexOf(fn); if (i >= 0) handlers.splice(i, 1); },
};
// The script's own timers are recorded (the delays it chose) and run on the virtual clock.
const scriptSetTimeout = (fn, ms) => { out.timeouts.push(ms); return schedule(fn, ms); };
const scriptClearTimeout = (id) => { const i = timers.findIndex((t) => t.id === id); if (i >= 0) timers.splice(i, 1); };
const globals = {
  window, document, Promise, Error, Object, Uint8Array, Array, parseInt,
  setTimeout: scriptSetTimeout, clearTimeout: scriptClearTimeout,
};
(async () => {
  vm.runInNewContext(fs.readFileSync(cfg.js, "utf8"), globals);
  for (;;) {
    await new Promise((resolve) => setImmediate(resolve));  // every promise reaction due so far runs first
    if (!timers.length) break;
    timers.sort((a, b) => a.at - b.at || a.id - b.id);
    if (timers[0].at > 600000) break;
    const t = timers.shift();
    now = t.at;
    t.fn();
  }
  out.failed = elements["storage-failed"].textContent;
  out.alertClass = alert.className;
  out.statusHidden = elements["storage-status"].hidden;
  out.heading = elements["storage-heading"].textContent;
  out.title = document.title;
  out.storage = storage;
  out.pendingTimers = timers.length;
  process.stdout.write(JSON.stringify(out));
})();
"""


KEY = "kp_state_" + "b" * 32
PROBE = KEY + "_probe"


def run(mode: str, **cfg: Any) -> dict[str, Any]:
    attrs = {
        "data-storage-mode": mode,
        "data-target": cfg.pop("target", "post_message_forwarding"),
        "data-platform-origin": PLATFORM,
        "data-key": KEY,
    }
    if mode == "login":
        attrs.update(
            {
                "data-value": "the-proof",
                "data-next": PLATFORM + "/api/lti/authorize_redirect?state=s",
                "data-probe": PROBE,
            }
        )
    payload = {"js": str(JS), "origin": PLATFORM, "attrs": attrs, "frames": ["post_message_forwarding"], **cfg}
    proc = subprocess.run(
        [node_binary(), "-e", HARNESS],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(proc.stdout)


def subjects(out: dict[str, Any]) -> list[str]:
    return [p["msg"]["subject"] for p in out["posted"]]


# The most the page may wait on the platform: two messages, each given a second.
BUDGET_MS = 2000


def test_login_with_cookies_goes_on_at_once_without_waiting_on_the_platform():
    out = run("login", cookie=f"other=1; {PROBE}=1", answers={"lti.capabilities": "silent", "lti.put_data": "silent"})
    assert out["replaced"].startswith(PLATFORM + "/api/lti/authorize_redirect") and out["replacedAt"] == 0
    assert out["timeouts"] == []  # not a single wait: no question to the platform was waiting for an answer
    # The proof went to the platform's storage anyway, unawaited, in case the launch comes without the cookie.
    assert [(p["frame"], p["target"], p["msg"]["subject"], p["msg"]["value"]) for p in out["posted"]] == [
        ("post_message_forwarding", PLATFORM, "lti.put_data", "the-proof")
    ]
    # The probe has done its work: deleted with the attributes it was set with (else the browser keeps it).
    assert out["cookieWrites"] == [f"{PROBE}=; Max-Age=0; Path=/lti/; Secure; SameSite=None; Partitioned"]


@pytest.mark.parametrize(
    "cookie",
    ["", "other=1", "kp_state_" + "c" * 32 + "_probe=1", f"x{PROBE}=1", f"{PROBE}=0", "throw"],
    ids=["none", "other-cookie", "another-logins-probe", "longer-name", "other-value", "unreadable"],
)
def test_login_without_this_logins_probe_asks_the_platform(cookie):
    out = run("login", cookie=cookie, putFrame="storage_frame", frames=["post_message_forwarding", "storage_frame"])
    assert subjects(out) == ["lti.capabilities", "lti.put_data"]
    assert out["storage"] == {KEY: "the-proof"} and out["replaced"] is not None


def test_login_stores_the_proof_in_the_named_frame_then_goes_on():
    out = run("login", putFrame="storage_frame", frames=["post_message_forwarding", "storage_frame"])
    assert [(p["frame"], p["target"], p["msg"]["subject"]) for p in out["posted"]] == [
        ("post_message_forwarding", PLATFORM, "lti.capabilities"),
        ("storage_frame", PLATFORM, "lti.put_data"),
    ]
    put = out["posted"][1]["msg"]
    assert (put["key"], put["value"]) == (KEY, "the-proof")
    assert len(put["message_id"]) == 32 and put["message_id"] != out["posted"][0]["msg"]["message_id"]
    assert out["replaced"].startswith(PLATFORM + "/api/lti/authorize_redirect")
    assert out["replacedAt"] < 50  # an answering platform: gone on as soon as it answered
    assert out["pendingTimers"] == 0  # nothing left running once answered (no resend after the answer)


def test_login_with_a_silent_platform_and_no_cookie_waits_a_second_then_goes_on():
    out = run("login", answers={"lti.capabilities": "silent"})
    assert 0 < out["replacedAt"] <= 1000 and out["replaced"] is not None
    assert max(out["timeouts"]) <= 1000  # before: 5000 ms per message, asked twice
    assert set(subjects(out)) == {"lti.capabilities"} and out["storage"] == {}
    # Asked again while waiting (a first message can be lost before the platform's handler loads).
    assert len(out["posted"]) >= 2 and len({p["msg"]["message_id"] for p in out["posted"]}) == len(out["posted"])


def test_login_whose_put_goes_unanswered_still_goes_on_within_the_budget():
    out = run("login", answers={"lti.put_data": "silent"})
    assert out["replaced"] is not None and out["replacedAt"] <= BUDGET_MS


def test_login_accepts_a_late_answer_to_an_earlier_copy():
    # The platform answers the first capabilities question after 600 ms; the page has asked again meanwhile.
    out = run("login", latency={"lti.capabilities": 600})
    assert out["storage"] == {KEY: "the-proof"}
    assert 600 <= out["replacedAt"] < 700


def test_check_posts_what_it_read_and_clears_the_key():
    out = run("check", stored={KEY: "the-proof"})
    assert out["submitted"] == "the-proof"
    assert [(p["msg"]["subject"], p["msg"].get("value", "-")) for p in out["posted"]] == [
        ("lti.capabilities", "-"),
        ("lti.get_data", "-"),
        ("lti.put_data", None),
    ]
    assert out["storage"] == {}  # cleared: Canvas's storage per tool is limited
    assert out["failed"] == "" and out["failedAt"] is None


def test_check_reads_and_clears_in_the_frames_the_platform_names():
    out = run(
        "check",
        stored={KEY: "the-proof"},
        frames=["post_message_forwarding", "storage_frame"],
        getFrame="storage_frame",
        putFrame="storage_frame",
    )
    assert out["submitted"] == "the-proof"
    assert [(p["frame"], p["msg"]["subject"]) for p in out["posted"]] == [
        ("post_message_forwarding", "lti.capabilities"),
        ("storage_frame", "lti.get_data"),
        ("storage_frame", "lti.put_data"),
    ]


def test_check_asks_again_when_the_first_question_goes_unanswered():
    out = run("check", stored={KEY: "the-proof"}, answers={"lti.get_data": "silent_once"})
    assert out["submitted"] == "the-proof" and out["submittedAt"] < 1000


@pytest.mark.parametrize("answer", ["wrong_origin", "wrong_subject", "wrong_id", "silent"])
def test_check_ignores_answers_that_are_not_the_platforms_and_then_gives_up(answer):
    out = run("check", stored={KEY: "the-proof"}, answers={"lti.get_data": answer})
    assert out["submitted"] is None and out["failed"] == "NO-ANSWER"
    assert out["failedAt"] <= BUDGET_MS


def test_check_with_a_silent_platform_fails_within_a_second_and_says_the_platform_did_not_answer():
    out = run("check", stored={KEY: "the-proof"}, answers={"lti.capabilities": "silent"})
    assert out["submitted"] is None
    assert 0 < out["failedAt"] <= 1000  # before: 10 s (5 s, asked twice)
    assert max(out["timeouts"]) <= 1000
    # The failure: an alert (role="alert" in the page) with the cause, a failure heading and title, no spinner text.
    assert out["failed"] == "NO-ANSWER" and out["alertClass"] == "notice notice-error"
    assert out["heading"] == "Innloggingen kunne ikke fullføres"
    assert out["title"] == "Innloggingen kunne ikke fullføres – Kurspakke"
    assert out["statusHidden"] is True


@pytest.mark.parametrize(
    "case",
    [
        {"stored": {}},  # answered, nothing stored under the key (the browser kept the login's put from it)
        {"stored": {KEY: "the-proof"}, "answers": {"lti.get_data": "error"}},
        {"stored": {KEY: "the-proof"}, "supports": ["lti.put_data"]},  # no get_data
        {"stored": {KEY: "the-proof"}, "answers": {"lti.capabilities": "error"}},
    ],
    ids=["nothing-stored", "error-answer", "no-get-data", "capabilities-error"],
)
def test_check_where_the_platform_answered_without_the_proof_says_so(case):
    out = run("check", **case)
    assert out["submitted"] is None and out["failed"] == "NOT-CONFIRMED"
    assert out["heading"] == "Innloggingen kunne ikke fullføres" and out["failedAt"] < 50


def test_a_missing_storage_frame_fails_at_once_instead_of_posting_to_the_parent():
    out = run("check", stored={KEY: "the-proof"}, frames=[])
    assert out["posted"] == [] and out["submitted"] is None
    assert out["failed"] == "NO-ANSWER" and out["failedAt"] == 0


def test_parent_as_target_posts_to_the_parent_window():
    out = run("check", stored={KEY: "the-proof"}, target="_parent")
    assert out["posted"][0]["frame"] == "_parent" and out["submitted"] == "the-proof"


LAUNCH_JS = JS.parent / "launch.js"
LAUNCH_HARNESS = r"""
const fs = require("fs");
const vm = require("vm");
const cfg = JSON.parse(fs.readFileSync(0, "utf8"));
const posted = [];
const frame = (name) => ({ postMessage: (msg, target) => posted.push({ frame: name, target, msg }) });
const frames = {};
(cfg.frames || []).forEach((n) => { frames[n] = frame(n); });
const parent = Object.assign(frame("_parent"), { frames });
const clear = cfg.clear && { getAttribute: (n) => cfg.clear[n] };
const bodyAttrs = { "data-canonical-url": "/app/participant?lt=x.y" };
const document = {
  body: { getAttribute: (n) => (n in bodyAttrs ? bodyAttrs[n] : null), hasAttribute: (n) => n in bodyAttrs },
  getElementById: (id) => (id === "kp-storage-clear" ? clear : null),
  addEventListener: () => {},
};
const replaced = [];
const session = {};
const window = {
  parent,
  history: { replaceState: (s, t, url) => replaced.push(url) },
  sessionStorage: { getItem: (k) => (k in session ? session[k] : null), setItem: (k, v) => { session[k] = v; } },
  location: { pathname: "/app/participant" },
};
vm.runInNewContext(fs.readFileSync(cfg.js, "utf8"), { window, document, Date, Math });
process.stdout.write(JSON.stringify({ posted, replaced }));
"""


def run_launch_js(**cfg: Any) -> dict[str, Any]:
    payload = json.dumps({"js": str(LAUNCH_JS), **cfg})
    proc = subprocess.run(
        [node_binary(), "-e", LAUNCH_HARNESS], input=payload, capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(proc.stdout)


def test_landing_page_clears_the_stored_key_in_the_named_frame():
    clear = {"data-target": "post_message_forwarding", "data-platform-origin": PLATFORM, "data-key": KEY}
    out = run_launch_js(clear=clear, frames=["post_message_forwarding"])
    assert out["replaced"] == ["/app/participant?lt=x.y"]
    assert [
        (p["frame"], p["target"], p["msg"]["subject"], p["msg"]["key"], p["msg"]["value"]) for p in out["posted"]
    ] == [("post_message_forwarding", PLATFORM, "lti.put_data", KEY, None)]


def test_landing_page_without_a_stored_key_posts_nothing():
    assert run_launch_js(frames=["post_message_forwarding"])["posted"] == []
    clear = {"data-target": "post_message_forwarding", "data-platform-origin": PLATFORM, "data-key": KEY}
    assert run_launch_js(clear=clear, frames=[])["posted"] == []  # no such frame: nothing goes to the parent
