"""LTI Advantage services (NRPS 2.0; AGS 2.0 line items, scores and results) over SimPlatform's in-memory state."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from canvas_sim.errors import SimAuthError
from canvas_sim.platform import SimPlatform
from canvas_sim.users import LEARNER, SimUser


def _check_course(platform: SimPlatform, course_id: int) -> None:
    if course_id != platform.config.course_id:
        raise SimAuthError("ukjent emne", error="not_found", status=404)


def _member(user: SimUser) -> dict[str, Any]:
    return {
        "status": "Active",
        "name": user.name,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "email": user.email,
        "user_id": user.sub,
        "lti11_legacy_user_id": user.lti11_legacy_user_id,
        "roles": user.context_roles,
    }


def memberships(
    platform: SimPlatform,
    course_id: int,
    *,
    limit: int | None = None,
    page: int = 1,
    role: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Return (membership container, next page URL or None)."""
    _check_course(platform, course_id)
    cfg = platform.config
    url = f"{cfg.base}/api/lti/courses/{course_id}/names_and_roles"
    users = cfg.users
    if role:
        # NRPS allows short role names ("Learner") as well as full URIs.
        users = [u for u in users if any(r == role or r.endswith(f"#{role}") for r in u.context_roles)]
    if page < 1 or (limit is not None and limit < 1):
        raise SimAuthError("ugyldig limit/page", error="invalid_request")
    next_url = None
    if limit is not None:
        start = (page - 1) * limit
        if start + limit < len(users):
            q: dict[str, Any] = {"limit": limit, "page": page + 1}
            if role:
                q["role"] = role
            next_url = f"{url}?{urlencode(q)}"
        users = users[start : start + limit]
    container = {
        "id": url,
        "context": {"id": cfg.context_id, "label": cfg.course_label, "title": cfg.course_title},
        "members": [_member(u) for u in users],
    }
    return container, next_url


# ----------------------------------------------------------------- AGS
# Modelled on Canvas's Lti::IMS line items, scores and results controllers (Canvas LMS source and its API docs
# "Line Items", "Score", "Result" and the AGS "Common Error Codes" table). One course, one developer key.
NOT_FOUND = "The specified resource does not exist."
NOT_A_STUDENT = "User not found in course or is not a student"
DEFAULT_PER_PAGE = 10  # Canvas's Api::PER_PAGE
MAX_PER_PAGE = 100  # Canvas's Api::MAX_PER_PAGE
# Canvas grades the submission (and requires scoreMaximum) only for these; other values ignore scoreGiven.
_GRADED = {"FullyGraded", "PendingManual"}
_SCORE_REQUIRED = ("userId", "activityProgress", "gradingProgress", "timestamp")


class CanvasNotFound(SimAuthError):
    """Canvas's generic 404 (ActiveRecord::RecordNotFound): `{"errors": [{"message": NOT_FOUND}]}`, unlike the
    `{"errors": {"type", "message"}}` body of the LTI services' own checks."""

    def __init__(self) -> None:
        super().__init__(NOT_FOUND, error="not_found", status=404)


def _line_item_url(platform: SimPlatform, course_id: int, item_id: int) -> str:
    return f"{platform.config.base}/api/lti/courses/{course_id}/line_items/{item_id}"


def list_line_items(platform: SimPlatform, course_id: int, filters: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every line item matching the filters (resource_link_id, resource_id, tag), in id order (Canvas orders by id)."""
    _check_course(platform, course_id)
    keys = {"resource_link_id": "resourceLinkId", "resource_id": "resourceId", "tag": "tag"}
    items = [platform.line_items[i] for i in sorted(platform.line_items)]
    for param, field in keys.items():
        if filters.get(param):
            items = [i for i in items if i.get(field) == filters[param]]
    return items


def _ruby_int(raw: str) -> int:
    """Ruby's String#to_i, which Canvas applies to per_page: leading digits, else 0."""
    digits = re.match(r"\s*([+-]?\d+)", raw)
    return int(digits.group(1)) if digits else 0


def line_items_page(
    platform: SimPlatform, course_id: int, query: Mapping[str, str]
) -> tuple[list[dict[str, Any]], str]:
    """One page of the filtered line items and Canvas's Link header for it.

    Canvas (Api.paginate): `per_page` (AGS's `limit` stands in for it on this endpoint) clamped to 1..100, default
    10; numbered pages; Link always names current, first and last, plus next/prev where they exist; each link
    repeats the request's other query parameters (sorted, as Rails' to_query does) before page and per_page."""
    items = list_line_items(platform, course_id, query)
    raw_size = query.get("limit") or query.get("per_page")
    per_page = min(max(_ruby_int(raw_size), 1), MAX_PER_PAGE) if raw_size is not None else DEFAULT_PER_PAGE
    raw_page = query.get("page", "1")
    if not raw_page.isdigit() or int(raw_page) < 1:
        raise CanvasNotFound()  # Folio::InvalidPage surfaces as a 404
    page = int(raw_page)
    last = max(1, math.ceil(len(items) / per_page))
    base = f"{platform.config.base}/api/lti/courses/{course_id}/line_items?"
    kept = sorted((k, v) for k, v in query.items() if k not in ("page", "per_page", "access_token", "api_key"))
    if kept:
        base += urlencode(kept) + "&"
    rels = {"current": page, "next": page + 1 if page < last else None, "prev": page - 1 if page > 1 else None}
    rels |= {"first": 1, "last": last}
    link = ",".join(f'<{base}page={n}&per_page={per_page}>; rel="{rel}"' for rel, n in rels.items() if n)
    start = (page - 1) * per_page
    return items[start : start + per_page], link


def get_line_item(platform: SimPlatform, course_id: int, item_id: int) -> dict[str, Any]:
    _check_course(platform, course_id)
    item = platform.line_items.get(item_id)
    if item is None:
        raise CanvasNotFound()
    return item


def create_line_item(platform: SimPlatform, course_id: int, body: Any) -> dict[str, Any]:
    _check_course(platform, course_id)
    if not isinstance(body, dict):
        raise SimAuthError("line item må være et JSON-objekt")
    label = body.get("label")
    maximum = body.get("scoreMaximum")
    if not isinstance(label, str) or not label.strip():
        raise SimAuthError("label mangler")
    if isinstance(maximum, bool) or not isinstance(maximum, int | float) or maximum <= 0:
        raise SimAuthError("scoreMaximum må være et positivt tall")
    for key in ("resourceId", "tag", "resourceLinkId"):
        if key in body and body[key] is not None and not isinstance(body[key], str | int):
            raise SimAuthError(f"{key} må være en streng")
    with platform._lock:
        item_id = platform._next_line_item_id
        platform._next_line_item_id += 1
        item = {k: v for k, v in body.items() if k != "id"}
        item["id"] = _line_item_url(platform, course_id, item_id)
        platform.line_items[item_id] = item
        platform.scores[item_id] = []
    return item


_ACTIVITY = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
_GRADING = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}


def _student(platform: SimPlatform, user_id: Any) -> SimUser:
    """The course's student named by userId (the LTI sub, or the Canvas user id, as Canvas accepts both); else
    Canvas's 422. Teachers, TAs and strangers all get it: only students have results."""
    user = None
    if isinstance(user_id, str | int) and not isinstance(user_id, bool):
        key = str(user_id)
        user = platform.config.user_by_sub(key) or next(
            (u for u in platform.config.users if str(u.canvas_user_id) == key), None
        )
    if user is None or LEARNER not in user.context_roles:
        raise SimAuthError(NOT_A_STUDENT, error="unprocessable_entity", status=422)
    return user


def _parse_timestamp(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        ts = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)  # Time.zone.parse: the zone is UTC here


def _iso3(ts: datetime) -> str:
    """Ruby's Time#iso8601(3) in UTC, as Canvas prints the result's updated_at."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def post_score(platform: SimPlatform, course_id: int, item_id: int, body: Any) -> dict[str, Any]:
    """Canvas's checks in Canvas's order: line item in the course (404), user a student (422), required params (400),
    timestamp valid and not before the result's last update (400), scoreMaximum with a graded scoreGiven (422).

    Canvas sets the result's updated_at to the score's timestamp, so a score with the *same* timestamp as the last
    one is accepted again; only an earlier one is refused."""
    item = get_line_item(platform, course_id, item_id)
    if not isinstance(body, dict):
        raise SimAuthError("score må være et JSON-objekt")
    user = _student(platform, body.get("userId"))
    for param in _SCORE_REQUIRED:
        if body.get(param) in (None, ""):
            raise SimAuthError(f"param is missing or the value is empty: {param}", error="bad_request")
    raw_ts = body["timestamp"]
    ts = _parse_timestamp(raw_ts)
    if ts is None:
        raise SimAuthError(f"Provided timestamp of {raw_ts} not a valid timestamp", error="bad_request")
    if body.get("activityProgress") not in _ACTIVITY:
        raise SimAuthError("ugyldig activityProgress")
    if body.get("gradingProgress") not in _GRADING:
        raise SimAuthError("ugyldig gradingProgress")
    given = body.get("scoreGiven")
    if given is not None and (isinstance(given, bool) or not isinstance(given, int | float)):
        raise SimAuthError("scoreGiven må være et tall")
    if given is not None and body["gradingProgress"] in _GRADED:
        maximum = body.get("scoreMaximum")
        if maximum is None:
            raise SimAuthError(
                "ScoreMaximum not supplied when ScoreGiven present.", error="unprocessable_entity", status=422
            )
        if isinstance(maximum, bool) or not isinstance(maximum, int | float) or maximum < 0:
            raise SimAuthError(
                "ScoreMaximum must be greater than or equal to 0", error="unprocessable_entity", status=422
            )
    with platform._lock:
        stored = platform.scores[item_id]
        last = next((s for s in reversed(stored) if s["userId"] == user.sub), None)
        updated_at = _parse_timestamp(last["timestamp"]) if last else None
        if updated_at is not None and updated_at > ts:
            raise SimAuthError(
                f"Provided timestamp of {raw_ts} before last updated timestamp of {_iso3(updated_at)}",
                error="bad_request",
            )
        stored.append({**body, "userId": user.sub})
    return {"resultUrl": f"{item['id']}/results/{user.sub}"}


def results(platform: SimPlatform, course_id: int, item_id: int, user_id: str | None) -> list[dict[str, Any]]:
    item = get_line_item(platform, course_id, item_id)
    latest: dict[str, dict[str, Any]] = {}
    for score in platform.scores.get(item_id, []):
        latest[score["userId"]] = score  # last write wins, as in Canvas
    out = []
    for uid, score in latest.items():
        if user_id and uid != user_id:
            continue
        result: dict[str, Any] = {
            "id": f"{item['id']}/results/{uid}",
            "scoreOf": item["id"],
            "userId": uid,
        }
        # Canvas keeps scoreGiven only when it grades (FullyGraded, PendingManual); otherwise the result has none.
        if score.get("scoreGiven") is not None and score.get("scoreMaximum") and score["gradingProgress"] in _GRADED:
            # Results are reported on the line item's scale.
            result["resultScore"] = score["scoreGiven"] * item["scoreMaximum"] / score["scoreMaximum"]
            result["resultMaximum"] = item["scoreMaximum"]
        if score.get("comment"):
            result["comment"] = score["comment"]
        out.append(result)
    return out
