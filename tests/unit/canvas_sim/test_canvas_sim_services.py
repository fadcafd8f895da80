"""NRPS 2.0 and the minimal AGS endpoints, reached with bearer tokens from the token endpoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from canvas_sim import DEMO_USERS, SimPlatform

NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
LINEITEM_RO = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
RESULT_RO = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
NRPS_URL = "/api/lti/courses/1/names_and_roles"
MT_NRPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"

TokenForm = Callable[..., dict[str, str]]
Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def auth(client: FlaskClient, token_form: TokenForm) -> Auth:
    def get(scope: str) -> dict[str, str]:
        resp = client.post("/login/oauth2/token", data=token_form(scope=scope))
        assert resp.status_code == 200, resp.json
        assert resp.json is not None
        return {"Authorization": f"Bearer {resp.json['access_token']}"}

    return get


def test_nrps_requires_bearer(client: FlaskClient) -> None:
    resp = client.get(NRPS_URL)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(NRPS_URL, headers={"Authorization": "Bearer forged"}).status_code == 401


def test_nrps_requires_nrps_scope(client: FlaskClient, auth: Auth) -> None:
    assert client.get(NRPS_URL, headers=auth(SCORE)).status_code == 401


def test_nrps_lists_members(client: FlaskClient, auth: Auth) -> None:
    resp = client.get(NRPS_URL, headers=auth(NRPS))
    assert resp.status_code == 200
    assert resp.mimetype == MT_NRPS
    body = resp.get_json(force=True)
    assert body["id"] == "http://127.0.0.1:5001" + NRPS_URL
    assert body["context"]["id"] == "sim-course-1"
    assert body["context"]["title"] == "Lindrende behandling og omsorg ved livets slutt"
    assert [m["user_id"] for m in body["members"]] == [u.sub for u in DEMO_USERS]
    kari = body["members"][0]
    assert kari["status"] == "Active"
    assert kari["name"] == "Kari Nordmann" and kari["email"] == "kari.nordmann@example.no"
    assert kari["roles"] == ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]
    owner = body["members"][3]
    # Only course (membership) roles in NRPS, not the institution role.
    assert owner["roles"] == ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]
    assert "Link" not in resp.headers


def test_nrps_paginates(client: FlaskClient, auth: Auth) -> None:
    headers = auth(NRPS)
    seen: list[str] = []
    url: str | None = NRPS_URL + "?limit=3"
    pages = 0
    while url:
        resp = client.get(url, headers=headers)
        assert resp.status_code == 200
        seen += [m["user_id"] for m in resp.get_json(force=True)["members"]]
        pages += 1
        link = resp.headers.get("Link")
        if link:
            assert link.endswith('>; rel="next"')
            full = link[1 : link.index(">")]
            assert full.startswith("http://127.0.0.1:5001/")
            url = full.removeprefix("http://127.0.0.1:5001")
        else:
            url = None
    assert pages == 2
    assert seen == [u.sub for u in DEMO_USERS]


def test_nrps_role_filter_and_bad_limit(client: FlaskClient, auth: Auth) -> None:
    headers = auth(NRPS)
    resp = client.get(NRPS_URL + "?role=Learner", headers=headers)
    keys = {m["user_id"] for m in resp.get_json(force=True)["members"]}
    assert keys == {u.sub for u in DEMO_USERS if u.key in ("deltaker", "lisensadministrator")}
    assert client.get(NRPS_URL + "?limit=x", headers=headers).status_code == 400
    assert client.get(NRPS_URL + "?limit=0", headers=headers).status_code == 400


def test_nrps_unknown_course_404(client: FlaskClient, auth: Auth) -> None:
    assert client.get("/api/lti/courses/99/names_and_roles", headers=auth(NRPS)).status_code == 404


def test_ags_line_items_and_scores(client: FlaskClient, auth: Auth, platform: SimPlatform) -> None:
    items_url = "/api/lti/courses/1/line_items"
    assert client.get(items_url).status_code == 401
    assert client.post(items_url, json={"label": "x", "scoreMaximum": 1}, headers=auth(LINEITEM_RO)).status_code == 401

    rw = auth(f"{LINEITEM} {SCORE} {RESULT_RO}")
    created = client.post(
        items_url,
        json={"label": "Modul 1", "scoreMaximum": 10, "resourceLinkId": "sim-link-1", "tag": "modul"},
        headers={**rw, "Content-Type": "application/vnd.ims.lis.v2.lineitem+json"},
    )
    assert created.status_code == 201
    assert created.mimetype == "application/vnd.ims.lis.v2.lineitem+json"
    item = created.get_json(force=True)
    assert item["id"] == "http://127.0.0.1:5001/api/lti/courses/1/line_items/1"

    listing = client.get(items_url + "?tag=modul", headers=auth(LINEITEM_RO))
    assert listing.mimetype == "application/vnd.ims.lis.v2.lineitemcontainer+json"
    assert [i["label"] for i in listing.get_json(force=True)] == ["Modul 1"]
    assert client.get(items_url + "?tag=annet", headers=rw).get_json(force=True) == []

    bad = client.post(items_url, json={"label": "", "scoreMaximum": 10}, headers=rw)
    assert bad.status_code == 400

    score = {
        "userId": DEMO_USERS[0].sub,
        "scoreGiven": 7,
        "scoreMaximum": 10,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": "2025-01-01T10:00:00Z",
    }
    scores_url = items_url + "/1/scores"
    mt = {"Content-Type": "application/vnd.ims.lis.v1.score+json"}
    assert client.post(scores_url, json=score, headers={**auth(LINEITEM), **mt}).status_code == 401
    assert client.post(scores_url, json=score, headers=rw).status_code == 415  # application/json
    ok = client.post(scores_url, data=_dumps(score), headers={**rw, **mt})
    assert ok.status_code == 200, ok.get_json()
    assert platform.scores[1][0]["scoreGiven"] == 7
    unknown = client.post(scores_url, data=_dumps({**score, "userId": "nobody"}), headers={**rw, **mt})
    assert unknown.status_code == 400
    assert client.post(items_url + "/9/scores", data=_dumps(score), headers={**rw, **mt}).status_code == 404

    results = client.get(items_url + "/1/results", headers=rw).get_json(force=True)
    assert results[0]["userId"] == DEMO_USERS[0].sub and results[0]["resultScore"] == 7


def _dumps(data: object) -> str:
    import json

    return json.dumps(data)
