"""Hostile shapes of a launch get a 4xx, never a 500, and write nothing.

A validly signed token can still carry claims of any JSON type, nested to any depth and of any size: the platform's
key signs what it is given. The property test below takes a genuine launch of the simulator, breaks one claim's
type, nesting or size, signs it with the simulator's key and checks the answer and the database. Its table of
expected types is written from the LTI 1.3 core and OpenID Connect specifications, on purpose apart from the
product's own table (lti_tool/lti/message_launch.py CLAIM_TYPES): a claim dropped from that table is found here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from config.settings import Settings
from kurspakke.models import LaunchRecord, PersonIdentity, UnlicensedLaunch
from lti_tool.lti import message_launch
from lti_tool.lti.message_launch import CLAIM, MAX_JSON_DEPTH
from lti_tool.lti.oidc_login import binding_name, state_binding
from tests.support.lti import LtiDriver

MODELS = (LaunchRecord, PersonIdentity, UnlicensedLaunch)
MAX_ID_TOKEN = Settings.max_id_token_bytes  # the default; the tests' settings keep it
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
EXTRA = "https://example.test/claim/extension"  # a claim nobody reads: any type and any value is fine

# JSON kinds: "null", "boolean", "number", "string", "array", "object"; "strings" = an array of strings only.
EXPECTED: dict[str, str] = {
    "iss": "string",
    "sub": "string",
    "azp": "string",
    "exp": "number",
    "iat": "number",
    "nonce": "string",
    "name": "string",
    "given_name": "string",
    "family_name": "string",
    "email": "string",
    "locale": "string",
    CLAIM + "message_type": "string",
    CLAIM + "version": "string",
    CLAIM + "deployment_id": "string",
    CLAIM + "target_link_uri": "string",
    CLAIM + "roles": "strings",
    CLAIM + "lti11_legacy_user_id": "string",
    CLAIM + "context": "object",
    CLAIM + "resource_link": "object",
    CLAIM + "tool_platform": "object",
    CLAIM + "launch_presentation": "object",
    CLAIM + "custom": "object",
    CLAIM + "lis": "object",
    AGS: "object",
    NRPS: "object",
    DL + "deep_linking_settings": "object",
}
# Members of object claims with a type of their own: (claim, member) -> kind.
EXPECTED_MEMBERS: dict[tuple[str, str], str] = {
    (CLAIM + "resource_link", "id"): "string",
    (CLAIM + "context", "id"): "string",
    (CLAIM + "context", "type"): "strings",
    (CLAIM + "tool_platform", "guid"): "string",
    (CLAIM + "launch_presentation", "locale"): "string",
    (CLAIM + "launch_presentation", "return_url"): "string",
    (CLAIM + "custom", "kurspakke_view"): "string",
    (AGS, "scope"): "strings",
    (AGS, "lineitems"): "string",
    (NRPS, "context_memberships_url"): "string",
    (DL + "deep_linking_settings", "deep_link_return_url"): "string",
    (DL + "deep_linking_settings", "accept_types"): "strings",
}
STRING_CLAIMS = sorted(claim for claim, kind in EXPECTED.items() if kind == "string")

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12)
)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "number": st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
    "string": st.text(max_size=24),
    "array": st.lists(_scalars, max_size=3),
    "object": st.dictionaries(st.text(max_size=8), _scalars, max_size=3),
    "mixed array": st.lists(_scalars, min_size=1, max_size=3).filter(lambda v: not all(isinstance(i, str) for i in v)),
}


def kind_of(value: Any) -> str:
    """The JSON kind of a value, an array of strings (the empty one included) being "strings"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "strings" if all(isinstance(i, str) for i in value) else "array"
    return "object"


def breaks_a_type(body: dict[str, Any]) -> bool:
    """Whether any claim of the body (or member of one) has a JSON type the specifications do not allow."""
    for claim, expected in EXPECTED.items():
        if claim in body and kind_of(body[claim]) != expected:
            return True
    for (claim, member), expected in EXPECTED_MEMBERS.items():
        parent = body.get(claim)
        if isinstance(parent, dict) and member in parent and kind_of(parent[member]) != expected:
            return True
    return False


def depth(value: Any) -> int:
    """JSON nesting depth (an object or array counts one level); the body itself is 1."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@dataclass(frozen=True)
class Mutation:
    """One hostile change to a genuine launch's claims (its repr is what hypothesis reports for a failure)."""

    family: str  # type, nesting or size
    what: str
    claim: str
    change: Callable[[Any], Any]  # the claim's current value (None when absent) -> its new value
    member: str | None = None

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """The top-level claims to replace in the simulator's claims."""
        if self.member is None:
            return {self.claim: self.change(body.get(self.claim))}
        parent = dict(body.get(self.claim) or {})
        parent[self.member] = self.change(parent.get(self.member))
        return {self.claim: parent}

    def __repr__(self) -> str:
        member = f", member={self.member!r}" if self.member else ""
        return f"Mutation({self.family}: {self.what!r}, {self.claim!r}{member})"


def _other_kinds(expected: str) -> list[str]:
    kinds = ["null", "boolean", "number", "string", "array", "object"]
    if expected == "strings":  # an array, but of strings only: any other array breaks it
        return [k for k in kinds if k != "array"] + ["mixed array"]
    return [k for k in kinds if k != expected]


@st.composite
def retyped(draw: st.DrawFn) -> Mutation:
    """A claim, or a member of an object claim, replaced by a value of another JSON type."""
    target = draw(st.sampled_from([*EXPECTED.items(), *EXPECTED_MEMBERS.items()]))
    place, expected = target
    kind = draw(st.sampled_from(_other_kinds(expected)))
    value = draw(VALUES[kind])
    claim, member = (place, None) if isinstance(place, str) else place
    return Mutation("type", f"{kind} {value!r}"[:80], claim, lambda _old: value, member)


@st.composite
def nested(draw: st.DrawFn) -> Mutation:
    """A claim's value wrapped in lists or objects, mostly beyond the depth cap."""
    claim = draw(st.sampled_from([*EXPECTED, EXTRA]))
    levels = draw(st.integers(min_value=1, max_value=3 * MAX_JSON_DEPTH))
    container = draw(st.sampled_from(["array", "object"]))

    def wrap(old: Any) -> Any:
        value = "x" if old is None else old
        for _ in range(levels):
            value = [value] if container == "array" else {"k": value}
        return value

    return Mutation("nesting", f"{levels} {container}s deep", claim, wrap)


@st.composite
def oversized(draw: st.DrawFn) -> Mutation:
    """A string claim made long: up to the token limit it is still a string; beyond it the request is too large."""
    claim = draw(st.sampled_from([*STRING_CLAIMS, EXTRA]))
    length = draw(st.integers(min_value=1_000, max_value=2 * MAX_ID_TOKEN))
    unit = draw(st.sampled_from(["x", "ø", "[", '\\"', "😀"]))
    return Mutation("size", f"{length} × {unit!r}", claim, lambda _old: (unit * length)[:length])


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed_raw(driver: LtiDriver, payload: bytes) -> str:
    """A token whose body is exactly these bytes, signed with the simulator's key (for JSON json.dumps never makes)."""
    return jwt.api_jws.encode(payload, driver.sim.private_key, algorithm="RS256", headers={"kid": driver.sim.kid})


def counts(db_session: Any) -> tuple[int, ...]:
    return tuple(db_session.scalar(select(func.count()).select_from(model)) for model in MODELS)


def post(driver: LtiDriver, fields: dict[str, str]) -> Any:
    """Post a launch; an exception from the app (TESTING propagates them) is the 500 this file is about."""
    return driver.post_launch(fields)


def forget_login(driver: LtiDriver, state: str) -> None:
    """Each example logs in afresh; its binding cookie must not pile up in the client across examples."""
    driver.client.delete_cookie(binding_name(state_binding(state)), domain="kurspakke.test", path="/lti/")


@settings(
    max_examples=300,
    deadline=None,
    database=None,  # a failure is reported with its example; nothing is kept in .hypothesis/examples for replay
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(mutation=st.one_of(retyped(), nested(), oversized()))
def test_hostile_claims_are_refused_and_write_nothing(driver, db_session, linked, mutation):
    login = driver.login()
    body = driver.sim.claims_for(driver.sim.user("deltaker"), nonce=login.nonce)
    final = {**body, **mutation.apply(body)}
    # Signed as raw JSON with the simulator's key: PyJWT's encode (driver.crafted) refuses e.g. a non-string iss.
    fields = {"id_token": signed_raw(driver, json.dumps(final).encode()), "state": login.state}
    before = counts(db_session)
    try:
        resp = post(driver, fields)
    finally:
        forget_login(driver, login.state)
    status, page = resp.status_code, resp.get_data(as_text=True)
    event(f"{mutation.family} -> {status}")
    assert status < 500, page[:300]
    too_large = len(fields["id_token"]) > MAX_ID_TOKEN
    too_deep = depth(final) > MAX_JSON_DEPTH
    if too_large:
        assert status == 413, page[:300]
    elif too_deep:
        assert status == 400 and "token_malformed" in page, page[:300]
    elif breaks_a_type(final):
        assert 400 <= status < 500, (status, page[:300])
    else:
        assert status == 200 or 400 <= status < 500  # a change the types allow may launch
    if status != 200:
        assert counts(db_session) == before, "a refused launch wrote something"
        assert "data-launch-token" not in page and "data-canonical-url" not in page


# --- The two concrete findings, and their relatives ----------------------------------------------------------------


def refusals(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.fields["code"], r.fields["detail"]) for r in caplog.records if r.getMessage() == "refused"]  # type: ignore[attr-defined]


def assert_refused_quietly(resp: Any, db_session: Any, before: tuple[int, ...], status: int, code: str) -> None:
    page = resp.get_data(as_text=True)
    assert resp.status_code == status, page[:300]
    assert f"Feilkode: {code} " in page
    assert "data-launch-token" not in page and "data-canonical-url" not in page  # no launch token handed out
    assert counts(db_session) == before


def test_header_of_20000_brackets(driver, db_session, linked, caplog):
    """Unsigned, and need not be: the header is parsed before any key is looked up. It used to be a RecursionError
    in json.loads (a 500); now the depth is measured on the text first."""
    login = driver.login()
    body = json.dumps(driver.sim.claims_for(driver.sim.user("deltaker"), nonce=login.nonce)).encode()
    token = f"{b64(b'[' * 20_000)}.{b64(body)}.{b64(b'signature')}"
    assert len(token) < MAX_ID_TOKEN  # so it reaches the parser, not the size limit
    before = counts(db_session)
    resp = post(driver, {"id_token": token, "state": login.state})
    assert_refused_quietly(resp, db_session, before, 400, "token_malformed")
    assert refusals(caplog) == [("token_malformed", f"JSON nested deeper than {MAX_JSON_DEPTH}")]


def test_signed_body_nested_beyond_the_cap(driver, db_session, linked, caplog):
    login = driver.login()
    deep: Any = "x"
    for _ in range(MAX_JSON_DEPTH):  # with the body itself: one level too many
        deep = [deep]
    before = counts(db_session)
    resp = post(driver, driver.crafted(login, claims={EXTRA: deep}))
    assert_refused_quietly(resp, db_session, before, 400, "token_malformed")
    assert refusals(caplog) == [("token_malformed", f"JSON nested deeper than {MAX_JSON_DEPTH}")]


def test_nesting_up_to_the_cap_and_brackets_in_strings_launch(driver, db_session, linked):
    """The cap counts structure, not bracket characters: strings full of brackets, quotes and backslashes, and an
    extension claim exactly at the cap, are a normal launch."""
    deep: Any = "x"
    for _ in range(MAX_JSON_DEPTH - 1):
        deep = {"k": deep}
    claims = {EXTRA: deep, "name": '[{"\\' * 200 + "[" * 500, "family_name": '\\"[[[' * 100}
    resp = post(driver, driver.crafted(driver.login(), claims=claims))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]


def test_resource_link_as_a_list(driver, db_session, linked, caplog):
    """It used to reach pylti1p3's ResourceMessageValidator, whose .get() on a list was an AttributeError (a 500)."""
    login = driver.login()
    before = counts(db_session)
    resp = post(driver, driver.crafted(login, claims={CLAIM + "resource_link": [{"id": "sim-link-1"}]}))
    assert_refused_quietly(resp, db_session, before, 400, "claims_invalid")
    assert refusals(caplog) == [("claims_invalid", f"{CLAIM}resource_link must be an object")]


def test_whatever_a_library_validator_raises_is_a_refusal(driver, db_session, linked, caplog, monkeypatch):
    """The type table is the first line; the second is that pylti1p3's validators can raise anything and it is still
    a 400. Without the table, the resource_link list reaches the library's validator again."""
    monkeypatch.setattr(message_launch, "CLAIM_TYPES", {})
    login = driver.login()
    before = counts(db_session)
    resp = post(driver, driver.crafted(login, claims={CLAIM + "resource_link": ["sim-link-1"]}))
    assert_refused_quietly(resp, db_session, before, 400, "claims_invalid")
    assert refusals(caplog) == [("claims_invalid", "ResourceMessageValidator: AttributeError")]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'"exp": 1e999', "token_malformed"),  # an infinity: no database or JSON encoder takes it back
        (b'"exp": NaN', "token_malformed"),  # not JSON at all, though Python's json reads it
        (b'"https://example.test/claim/n": -Infinity', "token_malformed"),
        (b'"sub": "a\\u0000b"', "claims_invalid"),  # PostgreSQL text refuses NUL
        (b'"name": "Kari \\ud800"', "claims_invalid"),  # a lone surrogate: not UTF-8
        (b'"https://purl.imsglobal.org/spec/lti/claim/context": {"id": "c", "title": "\\udfff"}', "claims_invalid"),
        (b'"exp": "99999999999"', "claims_invalid"),  # PyJWT int()s a string; a NumericDate is a number
    ],
    ids=["infinity", "nan", "minus-infinity", "nul", "lone-surrogate", "nested-surrogate", "string-exp"],
)
def test_values_no_database_can_store(driver, db_session, linked, raw, code):
    login = driver.login()
    body = driver.sim.claims_for(driver.sim.user("deltaker"), nonce=login.nonce)
    key = raw.split(b'"')[1].decode()
    body.pop(key, None)
    text = json.dumps(body).encode()
    payload = text[:-1] + b", " + raw + b"}"
    before = counts(db_session)
    resp = post(driver, {"id_token": signed_raw(driver, payload), "state": login.state})
    assert_refused_quietly(resp, db_session, before, 400, code)


@pytest.mark.parametrize("length", [MAX_ID_TOKEN, 300_000], ids=["over-token-limit", "over-request-limit"])
def test_oversized_token_is_413(driver, db_session, linked, length):
    login = driver.login()
    fields = driver.crafted(login, claims={"name": "x" * length})
    before = counts(db_session)
    resp = post(driver, fields)
    assert_refused_quietly(resp, db_session, before, 413, "token_too_large")
