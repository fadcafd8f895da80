"""The tool's platform-storage script (lti_tool/static/js/platform_storage.js) under Node, against a fake Canvas
page: which frame it talks to, with which target origin, what it stores, what it does when nobody answers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

JS = Path(__file__).resolve().parents[3] / "lti_tool" / "static" / "js" / "platform_storage.js"
PLATFORM = "https://sso.canvaslms.example"

# A fake tool page inside a fake Canvas page. `answers` says how the platform replies to each subject:
# "reply" (normally), "silent" (never), "wrong_origin", "wrong_subject", "wrong_id" (another message's id),
# "silent_once" (first attempt unanswered). putFrame / getFrame: the frames its capabilities answer names.
HARNESS = r"""
const fs = require("fs");
const vm = require("vm");
const { webcrypto } = require("crypto");
const cfg = JSON.parse(fs.readFileSync(0, "utf8"));
const out = { posted: [], replaced: null, submitted: null, failedShown: false };
const handlers = [];
const storage = Object.assign({}, cfg.stored || {});
const seen = {};
function answer(msg) {
  const mode = (cfg.answers || {})[msg.subject] || "reply";
  seen[msg.subject] = (seen[msg.subject] || 0) + 1;
  if (mode === "silent" || (mode === "silent_once" && seen[msg.subject] === 1)) return;
  let data = { subject: msg.subject + ".response", message_id: msg.message_id };
  if (msg.subject === "lti.capabilities") {
    data.supported_messages = [
      { subject: "lti.put_data", frame: cfg.putFrame }, { subject: "lti.get_data", frame: cfg.getFrame },
    ];
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
  setTimeout(() => handlers.forEach((h) => h({ origin, data, source: {} })), 1);
}
function frame(name) {
  return { postMessage: (msg, target) => { out.posted.push({ frame: name, target, msg }); answer(msg); } };
}
const frames = {};
(cfg.frames || []).forEach((n) => { frames[n] = frame(n); });
const parent = Object.assign(frame("_parent"), { frames });
const attrs = cfg.attrs;
const elements = {
  "storage-status": { hidden: false },
  "storage-failed": { hidden: true },
  "storage-confirm": { elements: { proof: { value: "" } }, submit() { out.submitted = this.elements.proof.value; } },
};
const document = {
  body: { getAttribute: (n) => (n in attrs ? attrs[n] : null) },
  getElementById: (id) => elements[id],
};
const window = {
  parent, opener: null, crypto: webcrypto,
  location: { replace: (url) => { out.replaced = url; } },
  addEventListener: (t, fn) => { if (t === "message") handlers.push(fn); },
  removeEventListener: (t, fn) => { const i = handlers.indexOf(fn); if (i >= 0) handlers.splice(i, 1); },
};
const globals = { window, document, Promise, setTimeout, clearTimeout, Uint8Array, Array, parseInt };
vm.runInNewContext(fs.readFileSync(cfg.js, "utf8"), globals);
setTimeout(() => {
  out.failedShown = !elements["storage-failed"].hidden;
  out.storage = storage;
  process.stdout.write(JSON.stringify(out));
}, cfg.waitMs || 400);
"""


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        if IN_CI:
            pytest.fail("node is not installed (make test installs it)")
        pytest.skip("node is not installed")
    return node


def run(mode: str, **cfg: Any) -> dict[str, Any]:
    attrs = {
        "data-storage-mode": mode,
        "data-target": cfg.pop("target", "post_message_forwarding"),
        "data-platform-origin": PLATFORM,
        "data-key": "kp_state_" + "b" * 32,
        "data-timeout-ms": "60",
    }
    if mode == "login":
        attrs.update({"data-value": "the-proof", "data-next": PLATFORM + "/api/lti/authorize_redirect?state=s"})
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


KEY = "kp_state_" + "b" * 32


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


def test_login_with_a_platform_that_never_answers_asks_twice_then_relies_on_the_cookie():
    out = run("login", answers={"lti.capabilities": "silent"})
    assert [p["msg"]["subject"] for p in out["posted"]] == ["lti.capabilities", "lti.capabilities"]
    assert out["replaced"] is not None and out["storage"] == {}


def test_check_posts_what_it_read_and_clears_the_key():
    out = run("check", stored={KEY: "the-proof"})
    assert out["submitted"] == "the-proof"
    assert [(p["msg"]["subject"], p["msg"].get("value", "-")) for p in out["posted"]] == [
        ("lti.capabilities", "-"),
        ("lti.get_data", "-"),
        ("lti.put_data", None),
    ]
    assert out["storage"] == {}  # cleared: Canvas's storage per tool is limited
    assert not out["failedShown"]


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
    assert out["submitted"] == "the-proof"


@pytest.mark.parametrize("answer", ["wrong_origin", "wrong_subject", "wrong_id", "silent"])
def test_check_ignores_answers_that_are_not_the_platforms_and_then_gives_up(answer):
    out = run("check", stored={KEY: "the-proof"}, answers={"lti.get_data": answer})
    assert out["submitted"] is None and out["failedShown"]


def test_check_with_nothing_stored_gives_up():
    out = run("check", stored={})
    assert out["submitted"] is None and out["failedShown"]


def test_a_missing_storage_frame_fails_at_once_instead_of_posting_to_the_parent():
    out = run("check", stored={KEY: "the-proof"}, frames=[], waitMs=30)
    assert out["posted"] == [] and out["failedShown"] and out["submitted"] is None


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
const document = {
  body: { getAttribute: (n) => (n === "data-canonical-url" ? "/app/participant?lt=x.y" : null) },
  getElementById: (id) => (id === "kp-storage-clear" ? clear : null),
};
const replaced = [];
const window = { parent, history: { replaceState: (s, t, url) => replaced.push(url) } };
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
