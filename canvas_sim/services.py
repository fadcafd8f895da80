"""LTI Advantage services (NRPS 2.0, a minimal AGS) over SimPlatform's in-memory state."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from canvas_sim.errors import SimAuthError
from canvas_sim.platform import SimPlatform
from canvas_sim.users import SimUser


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
def _line_item_url(platform: SimPlatform, course_id: int, item_id: int) -> str:
    return f"{platform.config.base}/api/lti/courses/{course_id}/line_items/{item_id}"


def list_line_items(platform: SimPlatform, course_id: int, filters: dict[str, str]) -> list[dict[str, Any]]:
    _check_course(platform, course_id)
    keys = {"resource_link_id": "resourceLinkId", "resource_id": "resourceId", "tag": "tag"}
    items = list(platform.line_items.values())
    for param, field in keys.items():
        if filters.get(param):
            items = [i for i in items if i.get(field) == filters[param]]
    return items


def get_line_item(platform: SimPlatform, course_id: int, item_id: int) -> dict[str, Any]:
    _check_course(platform, course_id)
    item = platform.line_items.get(item_id)
    if item is None:
        raise SimAuthError("ukjent line item", error="not_found", status=404)
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


def post_score(platform: SimPlatform, course_id: int, item_id: int, body: Any) -> dict[str, Any]:
    item = get_line_item(platform, course_id, item_id)
    if not isinstance(body, dict):
        raise SimAuthError("score må være et JSON-objekt")
    user_id = body.get("userId")
    if not isinstance(user_id, str) or platform.config.user_by_sub(user_id) is None:
        raise SimAuthError(f"ukjent userId: {user_id!r}")
    if body.get("activityProgress") not in _ACTIVITY:
        raise SimAuthError("ugyldig activityProgress")
    if body.get("gradingProgress") not in _GRADING:
        raise SimAuthError("ugyldig gradingProgress")
    if not isinstance(body.get("timestamp"), str):
        raise SimAuthError("timestamp mangler")
    given = body.get("scoreGiven")
    if given is not None and (
        isinstance(given, bool) or not isinstance(given, int | float) or "scoreMaximum" not in body
    ):
        raise SimAuthError("scoreGiven krever numerisk verdi og scoreMaximum")
    with platform._lock:
        platform.scores[item_id].append(dict(body))
    return {"resultUrl": f"{item['id']}/results?user_id={user_id}"}


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
        if score.get("scoreGiven") is not None:
            # Results are reported on the line item's scale.
            result["resultScore"] = score["scoreGiven"] * item["scoreMaximum"] / score["scoreMaximum"]
            result["resultMaximum"] = item["scoreMaximum"]
        if score.get("comment"):
            result["comment"] = score["comment"]
        out.append(result)
    return out
