"""NRPS 2.0 and the minimal AGS endpoints, reached with bearer tokens from the token endpoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
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
    # Canvas parses application/json as well as the score media type (it registers a JSON parser for the latter).
    assert client.post(scores_url, json=score, headers=rw).status_code == 200
    ok = client.post(scores_url, data=_dumps(score), headers={**rw, **mt})
    assert ok.status_code == 200, ok.get_json()
    assert platform.scores[1][0]["scoreGiven"] == 7
    unknown = client.post(scores_url, data=_dumps({**score, "userId": "nobody"}), headers={**rw, **mt})
    assert unknown.status_code == 422  # Canvas: "User not found in course or is not a student"
    assert client.post(items_url + "/9/scores", data=_dumps(score), headers={**rw, **mt}).status_code == 404

    results = client.get(items_url + "/1/results", headers=rw).get_json(force=True)
    assert results[0]["userId"] == DEMO_USERS[0].sub and results[0]["resultScore"] == 7


def _dumps(data: object) -> str:
    import json

    return json.dumps(data)


# ------------------------------------------------------------------ AGS as Canvas answers it
ITEMS = "/api/lti/courses/1/line_items"
MT_SCORE = {"Content-Type": "application/vnd.ims.lis.v1.score+json"}


def _links(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(","):
        url, rel = part.split(">; rel=")
        out[rel.strip('"')] = url.lstrip("<").removeprefix("http://127.0.0.1:5001")
    return out


def test_ags_line_items_paginate_with_canvas_link_headers(
    client: FlaskClient, auth: Auth, platform: SimPlatform
) -> None:
    from canvas_sim.services import create_line_item

    for i in range(25):
        create_line_item(platform, 1, {"label": f"L{i}", "scoreMaximum": 1, "tag": "a" if i % 2 == 0 else "b"})
    headers = auth(LINEITEM_RO)

    first = client.get(ITEMS + "?tag=a&per_page=5", headers=headers)
    assert [i["label"] for i in first.get_json(force=True)] == ["L0", "L2", "L4", "L6", "L8"]
    links = _links(first.headers["Link"])
    assert links == {
        "current": ITEMS + "?tag=a&page=1&per_page=5",
        "next": ITEMS + "?tag=a&page=2&per_page=5",
        "first": ITEMS + "?tag=a&page=1&per_page=5",
        "last": ITEMS + "?tag=a&page=3&per_page=5",
    }
    seen: list[str] = []
    url: str | None = ITEMS + "?tag=a&per_page=5"
    while url:
        resp = client.get(url, headers=headers)
        seen += [i["label"] for i in resp.get_json(force=True)]
        url = _links(resp.headers["Link"]).get("next")
    assert seen == [f"L{i}" for i in range(0, 25, 2)]
    assert "prev" in _links(client.get(ITEMS + "?tag=a&per_page=5&page=3", headers=headers).headers["Link"])

    assert len(client.get(ITEMS, headers=headers).get_json(force=True)) == 10  # Canvas's default page
    everything = client.get(ITEMS + "?limit=500", headers=headers)  # AGS limit: Canvas's per_page, at most 100
    assert len(everything.get_json(force=True)) == 25
    assert _links(everything.headers["Link"])["last"].endswith("&page=1&per_page=100")
    assert client.get(ITEMS + "?page=0", headers=headers).status_code == 404


def test_ags_scores_follow_canvas_checks(client: FlaskClient, auth: Auth, platform: SimPlatform) -> None:
    rw = auth(f"{LINEITEM} {SCORE} {RESULT_RO}")
    assert client.post(ITEMS, json={"label": "Kursbevis", "scoreMaximum": 1}, headers=rw).status_code == 201
    scores_url = ITEMS + "/1/scores"
    score = {
        "userId": DEMO_USERS[0].sub,
        "scoreGiven": 1,
        "scoreMaximum": 1,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": "2025-01-01T10:00:00.000Z",
    }

    def post(body: dict[str, object], headers: dict[str, str] = MT_SCORE) -> tuple[int, object]:
        resp = client.post(scores_url, data=_dumps(body), headers={**rw, **headers})
        return resp.status_code, resp.get_json(force=True, silent=True)

    assert post(score)[0] == 200
    # The same timestamp again is applied again; an earlier one is refused with Canvas's message.
    assert post(score)[0] == 200
    assert post({**score, "timestamp": "2025-01-01T09:59:59.999Z"}) == (
        400,
        {
            "errors": {
                "type": "bad_request",
                "message": "Provided timestamp of 2025-01-01T09:59:59.999Z before last updated timestamp of "
                "2025-01-01T10:00:00.000Z",
            }
        },
    )
    assert post({**score, "timestamp": "2025-01-01T11:00:00+01:00"})[0] == 200  # the same instant
    assert post({**score, "timestamp": "i går"}) == (
        400,
        {"errors": {"type": "bad_request", "message": "Provided timestamp of i går not a valid timestamp"}},
    )
    not_student = {
        "errors": {"type": "unprocessable_entity", "message": "User not found in course or is not a student"}
    }
    assert post({**score, "userId": DEMO_USERS[1].sub}) == (422, not_student)  # the mentor teaches
    assert post(score, {"Content-Type": "text/plain"}) == (422, not_student)  # Canvas parses no parameters
    assert post({**score, "userId": str(DEMO_USERS[0].canvas_user_id)})[0] == 200  # Canvas user ids work too
    missing = {k: v for k, v in score.items() if k != "activityProgress"}
    assert post(missing)[0] == 400
    no_max = {k: v for k, v in score.items() if k != "scoreMaximum"}
    assert post(no_max) == (
        422,
        {"errors": {"type": "unprocessable_entity", "message": "ScoreMaximum not supplied when ScoreGiven present."}},
    )
    gone = client.post(ITEMS + "/9/scores", data=_dumps(score), headers={**rw, **MT_SCORE})
    assert (gone.status_code, gone.get_json()) == (
        404,
        {"errors": [{"message": "The specified resource does not exist."}]},
    )
    assert [s["userId"] for s in platform.scores[1]] == [DEMO_USERS[0].sub] * 4


def test_ags_routes_take_the_rest_half_injected_faults(app: Flask, client: FlaskClient, auth: Auth) -> None:
    from canvas_sim.rest import rest_of

    rest = rest_of(app)
    fault = rest.inject("status", status=503, method="GET", path=r"/line_items$")
    headers = auth(LINEITEM)
    assert client.get(ITEMS, headers=headers).status_code == 503
    assert client.get(ITEMS, headers=headers).status_code == 200
    assert fault.fired == 1
    rest.inject("throttle", endpoint="POST /api/lti/courses/:course_id/line_items")
    assert client.post(ITEMS, json={"label": "x", "scoreMaximum": 1}, headers=headers).status_code == 403
