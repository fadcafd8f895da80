"""Run static/platform_storage.js under Node with a fake window to check the postMessage protocol."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import canvas_sim
from tests.conftest import IN_CI

JS = Path(canvas_sim.__file__).parent / "static" / "platform_storage.js"
TOOL = "http://127.0.0.1:5000"
EVIL = "http://evil.example"

HARNESS = """
const fs = require("fs");
const vm = require("vm");
const [src, origin, events] = JSON.parse(fs.readFileSync(0, "utf8"));
let handler = null;
const window = { addEventListener: (type, fn) => { if (type === "message") handler = fn; } };
const document = { currentScript: { getAttribute: (n) => (n === "data-tool-origin" ? origin : null) } };
vm.runInNewContext(src, { window, document, JSON, Object });
const out = [];
for (const ev of events) {
  const source = ev.nosource ? null : { postMessage: (data, target) => out.push({ data, target }) };
  handler({ origin: ev.origin, data: ev.data, source });
}
process.stdout.write(JSON.stringify(out));
"""


def node() -> str:
    """The node binary. Elsewhere a missing node skips these tests; in CI it fails them (as tests/e2e/conftest.py
    does for Chromium and axe-core): a CI image without node would otherwise pass with the script never run."""
    found = shutil.which("node")
    if found is None:
        if IN_CI:
            pytest.fail("node is not installed (CI requires it for the platform-storage script tests)")
        pytest.skip("node is not installed")
    return found


def run(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    payload = json.dumps([JS.read_text(encoding="utf-8"), TOOL, events])
    command = [node(), "-e", HARNESS]
    proc = subprocess.run(command, input=payload, capture_output=True, text=True, timeout=30, check=True)
    return json.loads(proc.stdout)


def test_capabilities_put_get() -> None:
    out = run(
        [
            {"origin": TOOL, "data": {"subject": "lti.capabilities", "message_id": "m1"}},
            {"origin": TOOL, "data": {"subject": "lti.put_data", "message_id": "m2", "key": "state-1", "value": "n1"}},
            {"origin": TOOL, "data": {"subject": "lti.get_data", "message_id": "m3", "key": "state-1"}},
        ]
    )
    assert [o["target"] for o in out] == [TOOL] * 3
    assert out[0]["data"] == {
        "subject": "lti.capabilities.response",
        "message_id": "m1",
        "supported_messages": [{"subject": "lti.put_data"}, {"subject": "lti.get_data"}],
    }
    assert out[1]["data"] == {"subject": "lti.put_data.response", "message_id": "m2", "key": "state-1", "value": "n1"}
    assert out[2]["data"] == {"subject": "lti.get_data.response", "message_id": "m3", "key": "state-1", "value": "n1"}


def test_string_messages_are_accepted() -> None:
    out = run([{"origin": TOOL, "data": json.dumps({"subject": "lti.capabilities", "message_id": "s"})}])
    assert out[0]["data"]["subject"] == "lti.capabilities.response"


def test_foreign_origin_is_ignored() -> None:
    out = run(
        [
            {"origin": EVIL, "data": {"subject": "lti.put_data", "message_id": "x", "key": "k", "value": "v"}},
            {"origin": EVIL, "data": {"subject": "lti.capabilities", "message_id": "y"}},
            {"origin": TOOL, "data": {"subject": "lti.get_data", "message_id": "z", "key": "k"}},
        ]
    )
    # Only the tool's get_data is answered, and the evil put_data never landed.
    assert len(out) == 1
    assert out[0]["data"] == {"subject": "lti.get_data.response", "message_id": "z", "key": "k", "value": None}


def test_a_null_value_deletes_the_key_as_in_canvas() -> None:
    out = run(
        [
            {"origin": TOOL, "data": {"subject": "lti.put_data", "message_id": "p", "key": "k", "value": "v"}},
            {"origin": TOOL, "data": {"subject": "lti.put_data", "message_id": "d", "key": "k", "value": None}},
            {"origin": TOOL, "data": {"subject": "lti.get_data", "message_id": "g", "key": "k"}},
        ]
    )
    assert [o["data"].get("value", "?") for o in out] == ["v", None, None]
    assert not any("error" in o["data"] for o in out)


def test_errors() -> None:
    out = run(
        [
            {"origin": TOOL, "data": {"subject": "lti.get_data", "message_id": "b"}},
            {"origin": TOOL, "data": {"subject": "lti.put_data", "message_id": "c", "key": "k"}},
            {"origin": TOOL, "data": {"subject": "lti.frobnicate", "message_id": "d"}},
            {"origin": TOOL, "data": {"subject": "lti.get_data.response", "message_id": "e"}},
            {"origin": TOOL, "data": "not json"},
            {"origin": TOOL, "data": {"subject": "lti.capabilities", "message_id": "f"}, "nosource": True},
        ]
    )
    codes = [(o["data"]["subject"], o["data"]["message_id"], o["data"]["error"]["code"]) for o in out]
    assert codes == [
        ("lti.get_data.response", "b", "bad_request"),
        ("lti.put_data.response", "c", "bad_request"),
        ("lti.frobnicate.response", "d", "unsupported_subject"),
    ]


@pytest.mark.parametrize("in_ci", [True, False], ids=["ci", "elsewhere"])
def test_missing_node_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, in_ci: bool) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(globals(), "IN_CI", in_ci)  # node() reads this module's name
    # Both outcomes caught and told apart: a skip escaping a raises(Failed) would only skip this test too.
    with pytest.raises((pytest.fail.Exception, pytest.skip.Exception), match="node is not installed") as outcome:
        node()
    assert outcome.type is (pytest.fail.Exception if in_ci else pytest.skip.Exception)
