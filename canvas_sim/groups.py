"""The simulator's group categories (group sets), groups, group memberships and calendar events.

Written from Canvas's public API documentation (Group Categories, Groups, Calendar Events) and its observable
behaviour, not copied from its source. The state lives in `GroupData`, one per `CanvasRest` (`rest.group_data`);
the routes register themselves with canvas_sim.rest's router when this module is imported (rest.py does that).

  GET    /api/v1/courses/:course_id/group_categories     the course's active group sets (paginated)
  POST   /api/v1/courses/:course_id/group_categories     name (required, unique in the course: 400 "… is already in
                                                         use."), self_signup, auto_leader, group_limit,
                                                         sis_group_category_id
  GET    /api/v1/group_categories/:group_category_id
  GET    /api/v1/group_categories/:group_category_id/groups   its active groups (paginated)
  POST   /api/v1/group_categories/:group_category_id/groups   name, description, join_level, sis_group_id
  GET    /api/v1/groups/:group_id                         a deleted group is 404, as Canvas finds only active ones
  PUT    /api/v1/groups/:group_id                         name, description, members[] (overwrites the membership:
                                                         ids of users who are not in the group's course — no
                                                         enrolment, or only a deleted one — are left out silently,
                                                         as Canvas does; `members[]=` empties the group)
  DELETE /api/v1/groups/:group_id
  GET    /api/v1/groups/:group_id/users                   (paginated)
  POST   /api/v1/calendar_events                          calendar_event[context_code] (course_N or group_N,
                                                         required), [title], [description], [start_at], [end_at],
                                                         [location_name], [location_address]
  GET    /api/v1/calendar_events/:id                      PUT with the same fields, DELETE (a deleted event is 404)
  GET    /api/v1/calendar_events                          context_codes[], all_events, start_date, end_date
                                                         (default: today), type=event (paginated)

A user is in at most one group of a category: adding them to one removes them from the others (Canvas's
mutually exclusive memberships). Group and calendar-event answers of create and edit include `users`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from canvas_sim.rest import (
    NOT_FOUND,
    CanvasError,
    CanvasRest,
    _bad,
    _iso,
    _list,
    _route,
    _section_of,
    _str,
    paginate,
)

CATEGORY_NAME_MAX = 255


@dataclass
class GroupCategory:
    id: int
    course_id: int
    name: str
    self_signup: str | None
    auto_leader: str | None
    group_limit: int | None
    sis_group_category_id: str | None
    created_at: datetime
    deleted: bool = False


@dataclass
class Group:
    id: int
    category_id: int
    course_id: int
    name: str
    description: str | None
    join_level: str
    sis_group_id: str | None
    created_at: datetime
    members: list[int] = field(default_factory=list)  # user ids, in the order they joined
    deleted: bool = False


@dataclass
class CalendarEvent:
    id: int
    context_code: str
    title: str
    description: str | None
    start_at: datetime | None
    end_at: datetime | None
    location_name: str | None
    location_address: str | None
    created_at: datetime
    updated_at: datetime
    deleted: bool = False


class GroupData:
    """Group sets, groups and calendar events of one simulated Canvas."""

    def __init__(self) -> None:
        self.categories: dict[int, GroupCategory] = {}
        self.groups: dict[int, Group] = {}
        self.events: dict[int, CalendarEvent] = {}
        self._category_ids = itertools.count(1)
        self._group_ids = itertools.count(1)
        self._event_ids = itertools.count(1)

    # Test helpers: what a person would see in Canvas.
    def active_categories(self, course_id: int) -> list[GroupCategory]:
        return [c for c in self.categories.values() if c.course_id == course_id and not c.deleted]

    def active_groups(self, category_id: int | None = None) -> list[Group]:
        return [
            g for g in self.groups.values() if not g.deleted and (category_id is None or g.category_id == category_id)
        ]

    def active_events(self, context_code: str | None = None) -> list[CalendarEvent]:
        return [
            e
            for e in self.events.values()
            if not e.deleted and (context_code is None or e.context_code == context_code)
        ]


def data_of(rest: CanvasRest) -> GroupData:
    return rest.group_data


def _not_found() -> CanvasError:
    return CanvasError(404, {"errors": [{"message": NOT_FOUND}]})


def _invalid(attribute: str, message: str) -> CanvasError:
    """A model validation refusal as Canvas renders `record.errors` (400)."""
    return CanvasError(400, {"errors": {attribute: [{"attribute": attribute, "type": message, "message": message}]}})


def _id(ref: str) -> int | None:
    return int(ref) if ref.isdigit() else None


def _category(rest: CanvasRest, ref: str) -> GroupCategory:
    found = rest.group_data.categories.get(_id(ref) or 0)
    if found is None or found.deleted:
        raise _not_found()
    return found


def _group(rest: CanvasRest, ref: str) -> Group:
    found = rest.group_data.groups.get(_id(ref) or 0)
    if found is None or found.deleted:
        raise _not_found()
    return found


def _event(rest: CanvasRest, ref: str) -> CalendarEvent:
    found = rest.group_data.events.get(_id(ref) or 0)
    if found is None or found.deleted:
        raise _not_found()
    return found


def course_user_ids(rest: CanvasRest, course_id: int) -> set[int]:
    """Canvas's `course.users`: everyone with an enrolment in the course that is not deleted."""
    return {e.user_id for e in rest.enrollments.values() if e.course_id == course_id and e.state != "deleted"}


# ------------------------------------------------------------------ JSON
def category_json(rest: CanvasRest, c: GroupCategory) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "role": None,
        "self_signup": c.self_signup,
        "auto_leader": c.auto_leader,
        "context_type": "Course",
        "course_id": c.course_id,
        "group_limit": c.group_limit,
        "sis_group_category_id": c.sis_group_category_id,
        "sis_import_id": None,
        "progress": None,
        "non_collaborative": False,
        "protected": False,
        "allows_multiple_memberships": False,
        "is_member": False,
    }


def group_json(rest: CanvasRest, g: Group, *, users: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "is_public": False,
        "followed_by_user": False,
        "join_level": g.join_level,
        "members_count": len(g.members),
        "avatar_url": None,
        "context_type": "Course",
        "course_id": g.course_id,
        "role": None,
        "group_category_id": g.category_id,
        "sis_group_id": g.sis_group_id,
        "sis_import_id": None,
        "storage_quota_mb": 50,
        "concluded": False,
        "created_at": _iso(g.created_at),
        "leader": None,
        "permissions": {"create_discussion_topic": True, "join": False, "create_announcement": True},
    }
    if users:
        out["users"] = [_short_user(rest, uid) for uid in g.members]
    return out


def _short_user(rest: CanvasRest, user_id: int) -> dict[str, Any]:
    user = rest.users[user_id]
    return {
        "id": user.id,
        "name": user.name,
        "created_at": _iso(user.created_at),
        "sortable_name": user.sortable_name,
        "short_name": user.short_name,
    }


def _context_name(rest: CanvasRest, code: str) -> str:
    kind, _, raw = code.partition("_")
    if kind == "group":
        return rest.group_data.groups[int(raw)].name
    return rest.config.course_title


def event_json(rest: CanvasRest, e: CalendarEvent) -> dict[str, Any]:
    base = rest.config.base
    return {
        "id": e.id,
        "title": e.title,
        "start_at": _iso(e.start_at),
        "end_at": _iso(e.end_at),
        "description": e.description,
        "location_name": e.location_name,
        "location_address": e.location_address,
        "context_code": e.context_code,
        "effective_context_code": None,
        "context_name": _context_name(rest, e.context_code),
        "all_context_codes": e.context_code,
        "workflow_state": "deleted" if e.deleted else "active",
        "hidden": False,
        "parent_event_id": None,
        "child_events_count": 0,
        "child_events": [],
        "url": f"{base}/api/v1/calendar_events/{e.id}",
        "html_url": f"{base}/calendar?event_id={e.id}&include_contexts={e.context_code}",
        "all_day_date": None,
        "all_day": False,
        "created_at": _iso(e.created_at),
        "updated_at": _iso(e.updated_at),
        "appointment_group_id": None,
        "appointment_group_url": None,
        "own_reservation": False,
        "reserve_url": None,
        "reserved": False,
        "participant_type": "User",
        "series_uuid": None,
        "rrule": None,
        "important_dates": False,
        "blackout_date": False,
        "type": "event",
    }


# ------------------------------------------------------------ group sets
@_route("GET", "/api/v1/courses/:course_id/group_categories")
def _list_categories(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    course_id = rest._course(a["course_id"])
    items = sorted(rest.group_data.active_categories(course_id), key=lambda c: c.id)
    page, link = paginate(items, p)
    return [category_json(rest, c) for c in page], link


@_route("POST", "/api/v1/courses/:course_id/group_categories")
def _create_category(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    course_id = rest._course(a["course_id"])
    data = rest.group_data
    name = _str(p.get("name"))
    if name is None:
        raise _invalid("name", "Name is required")
    if name in ("Student Groups", "Imported Groups"):
        raise _invalid("name", f"{name} is a reserved name.")
    if any(c.name == name for c in data.active_categories(course_id)):
        raise _invalid("name", f"{name} is already in use.")
    if len(name) > CATEGORY_NAME_MAX:
        raise _invalid("name", "Enter a shorter category name")
    self_signup = _str(p.get("self_signup"))
    if self_signup is not None and self_signup not in ("enabled", "restricted"):
        raise _invalid(
            "self_signup", "Self-signup needs to be one of the following values: null, 'enabled', 'restricted'"
        )
    auto_leader = _str(p.get("auto_leader"))
    if auto_leader is not None and auto_leader not in ("first", "random"):
        raise _invalid(
            "auto_leader", "AutoLeader type needs to be one of the following values: null, 'first', 'random'"
        )
    limit_text = _str(p.get("group_limit"))
    limit = int(limit_text) if limit_text and limit_text.isdigit() else None
    if limit is not None and limit <= 1:
        raise _invalid("group_limit", "Must be greater than 1")
    category = GroupCategory(
        next(data._category_ids),
        course_id,
        name,
        self_signup,
        auto_leader,
        limit,
        _str(p.get("sis_group_category_id")),
        rest.now(),
    )
    data.categories[category.id] = category
    return category_json(rest, category), None


@_route("GET", "/api/v1/group_categories/:group_category_id")
def _get_category(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    return category_json(rest, _category(rest, a["group_category_id"])), None


@_route("GET", "/api/v1/group_categories/:group_category_id/groups")
def _category_groups(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    category = _category(rest, a["group_category_id"])
    items = sorted(rest.group_data.active_groups(category.id), key=lambda g: g.id)
    page, link = paginate(items, p)
    return [group_json(rest, g) for g in page], link


_JOIN_LEVELS = ("parent_context_auto_join", "parent_context_request", "invitation_only")


@_route("POST", "/api/v1/group_categories/:group_category_id/groups")
def _create_group(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    category = _category(rest, a["group_category_id"])
    data = rest.group_data
    join_level = _str(p.get("join_level")) or "invitation_only"
    if join_level not in _JOIN_LEVELS:
        raise _invalid("join_level", "is not included in the list")
    name = _str(p.get("name")) or "Unnamed Group"
    if len(name) > 255:
        raise _invalid("name", "is too long (maximum is 255 characters)")
    sis = _str(p.get("sis_group_id"))
    if sis and any(g.sis_group_id == sis for g in data.groups.values() if not g.deleted):
        raise _invalid("sis_source_id", f'SIS ID "{sis}" is already in use')
    group = Group(
        next(data._group_ids),
        category.id,
        category.course_id,
        name,
        _str(p.get("description")),
        join_level,
        sis,
        rest.now(),
    )
    data.groups[group.id] = group
    return group_json(rest, group, users=True), None


# ----------------------------------------------------------------- groups
@_route("GET", "/api/v1/groups/:group_id")
def _get_group(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    return group_json(rest, _group(rest, a["group_id"])), None


def _member_ids(raw: Any) -> list[int]:
    """`members[]=1&members[]=2`, or one comma-separated string (Canvas's Api.value_to_array); ids that are not
    numbers become 0, which matches nobody. `members[]=` alone asks for an empty group."""
    values: list[str] = []
    for value in _list(raw):
        values += value.split(",") if "," in value else [value]
    ids: list[int] = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        number = int(text) if text.isdigit() else 0
        if number not in ids:
            ids.append(number)
    return ids


@_route("PUT", "/api/v1/groups/:group_id")
def _update_group(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    group = _group(rest, a["group_id"])
    name = _str(p.get("name"))
    if name is not None and len(name) > 255:
        raise _invalid("name", "is too long (maximum is 255 characters)")
    if "join_level" in p and _str(p.get("join_level")) not in _JOIN_LEVELS:
        raise _invalid("join_level", "is not included in the list")
    if name is not None:
        group.name = name
    if "description" in p:
        group.description = _str(p.get("description"))
    if "join_level" in p:
        group.join_level = str(_str(p.get("join_level")))
    if "members" in p:
        in_course = course_user_ids(rest, group.course_id)
        wanted = [uid for uid in _member_ids(p.get("members")) if uid in in_course and uid in rest.users]
        group.members = [uid for uid in group.members if uid in wanted] + [
            uid for uid in wanted if uid not in group.members
        ]
        for peer in rest.group_data.active_groups(group.category_id):
            if peer.id != group.id:
                peer.members = [uid for uid in peer.members if uid not in wanted]
    return group_json(rest, group, users=True), None


@_route("DELETE", "/api/v1/groups/:group_id")
def _delete_group(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    group = _group(rest, a["group_id"])
    group.deleted = True
    group.members = []
    return group_json(rest, group), None


@_route("GET", "/api/v1/groups/:group_id/users")
def _group_users(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    group = _group(rest, a["group_id"])
    users = sorted((rest.users[uid] for uid in group.members), key=lambda u: (u.sortable_name.lower(), u.id))
    page, link = paginate(users, p)
    return [rest.user_json(u) for u in page], link


# -------------------------------------------------------- calendar events
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


def _time(raw: Any, name: str, *, end_of_day: bool = False) -> datetime | None:
    text = _str(raw)
    if text is None:
        return None
    if _DATE.match(text):
        day = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        return day + timedelta(days=1) if end_of_day else day
    if not _DATETIME.match(text):
        raise _invalid(name, f"Invalid datetime for {name}")
    value = datetime.fromisoformat(text)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _context(rest: CanvasRest, code: str) -> str:
    """The context code if it names the course or an active group of it; else 404 (Canvas finds no context)."""
    kind, _, raw = code.partition("_")
    if kind == "course" and raw:
        return f"course_{rest._course(raw)}"
    if kind == "group" and raw:
        return f"group_{_group(rest, raw).id}"
    raise _not_found()


def _apply_event(rest: CanvasRest, event: CalendarEvent, ce: dict[str, Any]) -> None:
    start = _time(ce.get("start_at"), "start_at") if "start_at" in ce else event.start_at
    end = _time(ce.get("end_at"), "end_at") if "end_at" in ce else event.end_at
    if "title" in ce:
        title = _str(ce.get("title")) or ""
        if len(title) > 255:
            raise _invalid("title", "is too long (maximum is 255 characters)")
        event.title = title
    if "description" in ce:
        event.description = _str(ce.get("description"))
    if "location_name" in ce:
        event.location_name = _str(ce.get("location_name"))
    if "location_address" in ce:
        event.location_address = _str(ce.get("location_address"))
    # Canvas fills a missing end from the start (and the start from the end), and an end before the start
    # becomes the start: an event never runs backwards.
    start = start or end
    end = end or start
    if start is not None and end is not None and end < start:
        end = start
    event.start_at, event.end_at = start, end
    event.updated_at = rest.now()


@_route("POST", "/api/v1/calendar_events")
def _create_event(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    ce = _section_of(p, "calendar_event")
    code = _str(ce.get("context_code"))
    if code is None:
        raise _bad("Invalid parameter: context_code is required")
    context = _context(rest, code)
    data = rest.group_data
    now = rest.now()
    event = CalendarEvent(next(data._event_ids), context, "", None, None, None, None, None, now, now)
    _apply_event(rest, event, {k: v for k, v in ce.items() if k != "context_code"})
    data.events[event.id] = event
    return event_json(rest, event), None


@_route("GET", "/api/v1/calendar_events/:event_id")
def _get_event(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    return event_json(rest, _event(rest, a["event_id"])), None


@_route("PUT", "/api/v1/calendar_events/:event_id")
def _update_event(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    event = _event(rest, a["event_id"])
    ce = _section_of(p, "calendar_event")
    if "context_code" in ce:
        code = _str(ce.get("context_code"))
        event.context_code = _context(rest, code or "")
    _apply_event(rest, event, {k: v for k, v in ce.items() if k != "context_code"})
    return event_json(rest, event), None


@_route("DELETE", "/api/v1/calendar_events/:event_id")
def _delete_event(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    event = _event(rest, a["event_id"])
    event.deleted = True
    event.updated_at = rest.now()
    return event_json(rest, event), None


def _live_context(rest: CanvasRest, code: str) -> bool:
    try:
        _context(rest, code)
    except CanvasError:
        return False
    return True


@_route("GET", "/api/v1/calendar_events")
def _list_events(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    kind = _str(p.get("type")) or "event"
    if kind not in ("event", "assignment", "sub_assignment"):
        raise _bad(f"invalid type: {kind}")
    # Contexts the caller cannot see (or that do not exist) are left out, not refused.
    codes = {c for c in _list(p.get("context_codes")) if _live_context(rest, c)}
    events = [e for e in rest.group_data.active_events() if e.context_code in codes] if kind == "event" else []
    if not _truthy(p.get("all_events")):
        today = datetime.combine(rest.now().date(), datetime.min.time(), UTC)
        start = _time(p.get("start_date"), "start_date") or today
        end = _time(p.get("end_date"), "end_date", end_of_day=True) or start + timedelta(days=1)
        events = [e for e in events if e.start_at is not None and e.end_at is not None]
        events = [e for e in events if e.start_at < end and e.end_at >= start]  # type: ignore[operator]
    events.sort(key=lambda e: (e.start_at or datetime.min.replace(tzinfo=UTC), e.id))
    page, link = paginate(events, p)
    return [event_json(rest, e) for e in page], link


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on") if value is not None else False


__all__ = [
    "CalendarEvent",
    "Group",
    "GroupCategory",
    "GroupData",
    "category_json",
    "course_user_ids",
    "data_of",
    "event_json",
    "group_json",
]
