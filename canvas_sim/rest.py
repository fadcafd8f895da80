"""The simulator's REST half: Canvas's /api/v1 for accounts, users, logins, courses, sections and enrolments.

In memory, with Canvas's documented response shapes, error bodies, Link-header pagination, the leaky-bucket
throttle of DESIGN.md §5 with its headers, and injectable latency and faults (5xx, timeouts, connections dropped
before or after the change is applied). Written from Canvas's public API documentation, not its source.

Endpoints (form-encoded `a[b]=…` / `a[]=…` parameters or a JSON body; ids may be `sis_user_id:…`,
`sis_section_id:…`, `sis_course_id:…`; the account is SimConfig.rest_account_id or `self`):
  GET    /api/v1/accounts/:account_id                  includes[]=lti_guid → lti_guid (= SimConfig.platform_guid)
  GET    /api/v1/accounts/:account_id/users            search_term (≥ 3 chars), include[]=email, sort, order
  POST   /api/v1/accounts/:account_id/users            user[name|short_name|sortable_name], pseudonym[unique_id|
                                                       sis_user_id|integration_id|authentication_provider_id],
                                                       communication_channel[type|address]
  POST   /api/v1/accounts/:account_id/logins           user[id], login[unique_id|sis_user_id|…]
  GET    /api/v1/users/:user_id                        PUT the same with user[name|short_name|sortable_name|email]
  GET    /api/v1/users/:user_id/profile                primary_email
  GET    /api/v1/users/:user_id/logins
  GET    /api/v1/courses/:course_id                    the SimConfig's course
  GET    /api/v1/courses/:course_id/sections           POST with course_section[name|sis_section_id|integration_id]
  GET    /api/v1/courses/:course_id/sections/:id       and GET /api/v1/sections/:id
  POST   /api/v1/sections/:section_id/enrollments      enrollment[user_id|type|enrollment_state|
                                                       limit_privileges_to_course_section]
  GET    /api/v1/courses/:course_id/enrollments        and /api/v1/sections/:section_id/enrollments:
                                                       type[], role[], state[] (default active+invited), user_id
  DELETE /api/v1/courses/:course_id/enrollments/:id    task=conclude (default) | delete | deactivate | inactivate
  GET    /api/v1/courses/:course_id/assignments        (canvas_sim.grading: Classic Quiz, New Quiz, plain)
  GET    /api/v1/courses/:course_id/students/submissions
                                                       student_ids[] (ids or "all"), assignment_ids[],
                                                       submitted_since, graded_since, workflow_state
Group sets, groups, memberships and calendar events: canvas_sim.groups (its routes register with this router).
Lists: per_page 10 by default, at most 100; numbered pages (rel current/next/prev/first/last) except enrolments,
and submissions, which use opaque `page=bookmark:…` links without rel="last", as Canvas does for large collections.

Tests drive it through `CanvasRest` (found with `rest_of(app)`): `inject(...)` faults, `set_latency(...)`,
`set_last_activity(...)`, `add_assignment(...)`, `record_submission(...)`, `throttle.fill(...)`; read `counts`
per endpoint label (e.g. "POST /api/v1/accounts/:account_id/users", refused requests included), `refusals`,
`faults_fired`, `max_in_flight`. A `FakeClock` makes the throttle and the simulated service time deterministic.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import json
import math
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

from flask import Flask, Response, request

from canvas_sim.config import SimConfig
from canvas_sim.grading import (
    SUBMISSION_STATES,
    Assignment,
    AssignmentKind,
    Submission,
    assignment_json,
    submission_json,
)
from canvas_sim.users import INSTRUCTOR, LEARNER, TEACHING_ASSISTANT

EXTENSION_KEY = "canvas_sim_rest"
DROP_KEY = "canvas_sim.drop_connection"
NOT_FOUND = "The specified resource does not exist."
DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100

ENROLLMENT_TYPES = (
    "StudentEnrollment",
    "TeacherEnrollment",
    "TaEnrollment",
    "DesignerEnrollment",
    "ObserverEnrollment",
)
# Base role ids as a fresh Canvas install numbers them (they differ per install; clients must not rely on them).
_ROLE_IDS = dict(zip(ENROLLMENT_TYPES, (3, 4, 5, 6, 7), strict=True))
_ENROLLMENT_STATES = ("active", "invited", "inactive", "completed", "rejected", "deleted", "creation_pending")
_TASKS = {"conclude": "completed", "delete": "deleted", "deactivate": "inactive", "inactivate": "inactive"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

FaultKind = Literal["status", "timeout", "drop_before", "drop_after", "throttle"]


class SimConnectionDropped(ConnectionResetError):
    """Raised out of the WSGI app when a fault drops the connection (the socket is shut down first)."""


# ------------------------------------------------------------------ clocks
class Clock(Protocol):
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Monotonic time; sleeps end early once `close()` is called (so a hung request never outlives a test)."""

    def __init__(self) -> None:
        self._closed = threading.Event()

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._closed.wait(seconds)

    def close(self) -> None:
        self._closed.set()


class FakeClock:
    """A clock tests move by hand; sleeping advances it (so simulated service time is instant and exact)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._lock = threading.Lock()

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += max(0.0, seconds)


# ---------------------------------------------------------------- throttle
class Throttle:
    """Canvas's leaky bucket, one per access token.

    Admission: refused while the bucket is at or above the high-water mark (X-Rate-Limit-Remaining ≤ 0).
    An admitted request adds `up_front` while in flight; on completion the up-front is refunded and its cost
    (simulated service time in seconds) added. The bucket leaks `leak_rate` units per second, never below 0.
    """

    def __init__(
        self, clock: Clock, *, high_water: float = 700.0, leak_rate: float = 10.0, up_front: float = 50.0
    ) -> None:
        self.clock = clock
        self.high_water = high_water
        self.leak_rate = leak_rate
        self.up_front = up_front
        self._levels: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _level(self, key: str) -> float:
        now = self.clock.now()
        level, last = self._levels.get(key, (0.0, now))
        level = max(0.0, level - self.leak_rate * (now - last))
        self._levels[key] = (level, now)
        return level

    def _add(self, key: str, amount: float) -> float:
        level = max(0.0, self._level(key) + amount)
        self._levels[key] = (level, self.clock.now())
        return level

    def level(self, key: str) -> float:
        with self._lock:
            return self._level(key)

    def remaining(self, key: str) -> float:
        return self.high_water - self.level(key)

    def admit(self, key: str) -> bool:
        with self._lock:
            if self._level(key) >= self.high_water:
                return False
            self._add(key, self.up_front)
            return True

    def complete(self, key: str, cost: float) -> None:
        with self._lock:
            self._add(key, cost - self.up_front)

    def fill(self, key: str, level: float) -> None:
        """Set a bucket's level (tests)."""
        with self._lock:
            self._levels[key] = (level, self.clock.now())


# ------------------------------------------------------------------ faults
@dataclass
class Fault:
    """One injected fault, matched against each request by method, path regex and/or endpoint label.

    kind: "status" answers `status` (500 with Canvas's JSON error, 502/503/504 with a proxy's HTML page) without
    applying anything; "timeout" hangs `seconds` before handling the request, which is then applied (the client
    has given up by then); "drop_before" closes the connection without applying; "drop_after" applies the change
    and then closes the connection before answering; "throttle" answers as the throttle does when it refuses.
    times: how many matching requests get it (None: all); rate: the chance per matching request (seeded).
    """

    kind: FaultKind
    method: str | None = None
    path: str | None = None
    endpoint: str | None = None
    times: int | None = 1
    rate: float = 1.0
    status: int = 503
    seconds: float = 30.0
    fired: int = 0

    def matches(self, method: str, path: str, endpoint: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if self.endpoint and self.endpoint != endpoint:
            return False
        return not (self.path and not re.search(self.path, path))


@dataclass
class _LatencyRule:
    seconds: float
    method: str | None
    path: str | None
    endpoint: str | None

    def matches(self, method: str, path: str, endpoint: str) -> bool:
        return Fault("status", self.method, self.path, self.endpoint).matches(method, path, endpoint)


# ------------------------------------------------------------------- state
class CanvasError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def _not_found() -> CanvasError:
    return CanvasError(404, {"errors": [{"message": NOT_FOUND}]})


def _bad(message: str) -> CanvasError:
    return CanvasError(400, {"errors": [{"message": message}]})


def _field_error(model: str, attribute: str, kind: str, message: str) -> CanvasError:
    return CanvasError(
        400, {"errors": {model: {attribute: [{"attribute": attribute, "type": kind, "message": message}]}}}
    )


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


def _sortable(name: str) -> str:
    parts = name.strip().split()
    return f"{parts[-1]}, {' '.join(parts[:-1])}" if len(parts) > 1 else name.strip()


@dataclass
class User:
    id: int
    name: str
    short_name: str
    sortable_name: str
    created_at: datetime
    emails: list[str] = field(default_factory=list)
    lti_user_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Login:
    id: int
    user_id: int
    account_id: int
    unique_id: str
    sis_user_id: str | None
    integration_id: str | None
    authentication_provider_id: int | None
    created_at: datetime


@dataclass
class Section:
    id: int
    course_id: int
    name: str
    sis_section_id: str | None
    integration_id: str | None
    created_at: datetime


@dataclass
class Enrollment:
    id: int
    user_id: int
    course_id: int
    section_id: int
    type: str
    state: str
    limit_privileges_to_course_section: bool
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime | None = None


class CanvasRest:
    """The REST state of one simulated Canvas (one root account, the SimConfig's course) and its machinery."""

    def __init__(self, config: SimConfig, *, clock: Clock | None = None, seed: int | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or RealClock()
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.throttle = Throttle(
            self.clock,
            high_water=config.rest_throttle_high_water,
            leak_rate=config.rest_throttle_leak_rate,
            up_front=config.rest_throttle_up_front,
        )
        self.throttle_enabled = config.rest_throttle_enabled
        self.throttle_status = config.rest_throttle_status
        self.default_latency = config.rest_latency
        self.faults: list[Fault] = []
        self._latency_rules: list[_LatencyRule] = []
        self._random = random.Random(config.rest_seed if seed is None else seed)
        self.lock = threading.RLock()
        # Observability for tests and benchmarks.
        self.counts: Counter[str] = Counter()
        self.refusals = 0
        self.faults_fired: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._error_reports = itertools.count(1)
        # Data.
        self.account_id = config.rest_account_id
        self.account_uuid = uuid.uuid5(uuid.NAMESPACE_URL, config.base).hex
        self.users: dict[int, User] = {}
        self.logins: dict[int, Login] = {}
        self.sections: dict[int, Section] = {}
        self.enrollments: dict[int, Enrollment] = {}
        # Indexes (the benchmarks provision thousands of people).
        self._logins_by_user: dict[int, list[Login]] = {}
        self._login_keys: set[tuple[str, int | None]] = set()
        self._login_by_sis: dict[str, Login] = {}
        self._enrollment_by_key: dict[tuple[int, int, str], Enrollment] = {}
        self.assignments: dict[int, Assignment] = {}
        self.submissions: dict[tuple[int, int], Submission] = {}  # (assignment id, user id) → its one submission
        self._assignment_ids = itertools.count(1)
        self._quiz_ids = itertools.count(1)
        self._submission_ids = itertools.count(1)
        self._user_ids = itertools.count(1001)
        self._login_ids = itertools.count(1)
        self._section_ids = itertools.count(1)
        self._enrollment_ids = itertools.count(1)
        from canvas_sim.groups import GroupData  # the group sets, groups and calendar events (canvas_sim.groups)

        self.group_data = GroupData()
        self._seed_demo()

    # -------------------------------------------------------------- seeding
    def _seed_demo(self) -> None:
        """The LTI half's users exist here too, under the same Canvas ids, enrolled in the default section."""
        now = self.now()
        default = self._new_section(self.config.course_title, None, None)
        for u in self.config.users:
            self.users[u.canvas_user_id] = User(u.canvas_user_id, u.name, u.name, _sortable(u.name), now, [u.email])
            self._new_login(u.canvas_user_id, u.email, None, None, None)
            if TEACHING_ASSISTANT in u.roles:
                kind = "TaEnrollment"
            elif INSTRUCTOR in u.roles:
                kind = "TeacherEnrollment"
            elif LEARNER in u.roles:
                kind = "StudentEnrollment"
            else:
                continue
            self._enroll(u.canvas_user_id, default, kind, "active", False)

    # ------------------------------------------------------------ test API
    def inject(self, kind: FaultKind, **kw: Any) -> Fault:
        """Add a fault (see `Fault`); returns it so a test can read `fired`."""
        fault = Fault(kind, **kw)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def set_latency(
        self, seconds: float, *, method: str | None = None, path: str | None = None, endpoint: str | None = None
    ) -> None:
        """Simulated service time for matching requests (the newest matching rule wins; else `default_latency`)."""
        with self.lock:
            self._latency_rules.insert(0, _LatencyRule(seconds, method, path, endpoint))

    def set_last_activity(self, enrollment_id: int, when: datetime | None) -> None:
        with self.lock:
            self.enrollments[enrollment_id].last_activity_at = when

    def add_assignment(
        self,
        name: str,
        *,
        kind: AssignmentKind = "classic_quiz",
        points_possible: float | None = 10.0,
        published: bool = True,
        due_at: datetime | None = None,
    ) -> Assignment:
        """Add an assignment to the course: a graded Classic Quiz (gets a quiz_id, submission_types
        ["online_quiz"]), a New Quiz (["external_tool"], is_quiz_lti_assignment) or a plain one."""
        with self.lock:
            a = Assignment(
                next(self._assignment_ids),
                self.config.course_id,
                name,
                kind,
                points_possible,
                published,
                len(self.assignments) + 1,
                next(self._quiz_ids) if kind == "classic_quiz" else None,
                due_at,
                self.now(),
            )
            self.assignments[a.id] = a
            return a

    def record_submission(
        self,
        assignment_id: int,
        user_id: int,
        *,
        submitted_at: datetime | None = None,
        score: float | None = None,
        graded_at: datetime | None = None,
        workflow_state: str | None = None,
        excused: bool | None = None,
    ) -> Submission:
        """Set a user's submission of an assignment (Canvas's one submission per student and assignment, so a
        second call changes the same one and keeps its id). Defaults as Canvas would have them: graded_at now
        when a score or excuse is given; workflow_state "graded" when graded, "submitted" when handed in, else
        "unsubmitted"; attempt 1 once handed in."""
        with self.lock:
            if assignment_id not in self.assignments or user_id not in self.users:
                raise KeyError((assignment_id, user_id))
            if workflow_state is not None and workflow_state not in SUBMISSION_STATES:
                raise ValueError(f"unknown submission workflow_state {workflow_state!r}")
            s = self._submission(assignment_id, user_id)
            s.submitted_at = submitted_at
            s.score = score
            s.excused = excused
            graded = score is not None or bool(excused)
            s.graded_at = graded_at if graded_at is not None or not graded else self.now()
            if workflow_state is None:
                workflow_state = "graded" if graded else "submitted" if submitted_at else "unsubmitted"
            s.workflow_state = workflow_state
            s.attempt = 1 if submitted_at else None
            return s

    def _submission(self, assignment_id: int, user_id: int) -> Submission:
        s = self.submissions.get((assignment_id, user_id))
        if s is None:
            s = Submission(next(self._submission_ids), assignment_id, user_id)
            self.submissions[(assignment_id, user_id)] = s
        return s

    def student_ids(self) -> set[int]:
        """Users with a StudentEnrollment in the course that is not deleted (Canvas's all_student_enrollments)."""
        return {
            e.user_id
            for e in self.enrollments.values()
            if e.type == "StudentEnrollment" and e.state != "deleted" and e.course_id == self.config.course_id
        }

    def count(self, endpoint: str) -> int:
        return self.counts[endpoint]

    def close(self) -> None:
        """Wake any request hanging in a timeout fault (RealClock only)."""
        if isinstance(self.clock, RealClock):
            self.clock.close()

    def _pick_fault(self, method: str, path: str, endpoint: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times is not None and fault.fired >= fault.times:
                    continue
                if not fault.matches(method, path, endpoint):
                    continue
                if fault.rate < 1.0 and self._random.random() >= fault.rate:
                    continue
                fault.fired += 1
                self.faults_fired[fault.kind] += 1
                return fault
        return None

    def _latency(self, method: str, path: str, endpoint: str) -> float:
        with self.lock:
            for rule in self._latency_rules:
                if rule.matches(method, path, endpoint):
                    return rule.seconds
        return self.default_latency

    # --------------------------------------------------------------- lookups
    def _account(self, ref: str) -> int:
        if ref in ("self", str(self.account_id)):
            return self.account_id
        raise _not_found()

    def _course(self, ref: str) -> int:
        cfg = self.config
        if ref == str(cfg.course_id) or ref == f"sis_course_id:{cfg.course_sis_id}":
            return cfg.course_id
        raise _not_found()

    def _user(self, ref: str) -> User:
        if ref.startswith("sis_user_id:"):
            sis = ref.partition(":")[2]
            found = self._login_by_sis.get(sis)
            if found is None:
                raise _not_found()
            return self.users[found.user_id]
        try:
            user = self.users.get(int(ref))
        except ValueError:
            user = None
        if user is None:
            raise _not_found()
        return user

    def _section(self, ref: str, course_id: int | None = None) -> Section:
        section: Section | None = None
        if ref.startswith("sis_section_id:"):
            sis = ref.partition(":")[2]
            section = next((s for s in self.sections.values() if s.sis_section_id == sis), None)
        elif ref.isdigit():
            section = self.sections.get(int(ref))
        if section is None or (course_id is not None and section.course_id != course_id):
            raise _not_found()
        return section

    def _logins_of(self, user_id: int) -> list[Login]:
        return list(self._logins_by_user.get(user_id, ()))

    def _unique_id_taken(self, unique_id: str, provider: int | None) -> bool:
        return (unique_id.lower(), provider) in self._login_keys

    def _sis_taken(self, sis: str) -> bool:
        return sis in self._login_by_sis

    # -------------------------------------------------------------- mutation
    def _new_login(
        self, user_id: int, unique_id: str, sis: str | None, integration: str | None, provider: int | None
    ) -> Login:
        login_id = next(self._login_ids)
        login = Login(login_id, user_id, self.account_id, unique_id, sis, integration, provider, self.now())
        self.logins[login.id] = login
        self._logins_by_user.setdefault(user_id, []).append(login)
        self._login_keys.add((unique_id.lower(), provider))
        if sis:
            self._login_by_sis[sis] = login
        return login

    def _new_section(self, name: str, sis: str | None, integration: str | None) -> Section:
        section = Section(next(self._section_ids), self.config.course_id, name, sis, integration, self.now())
        self.sections[section.id] = section
        return section

    def _enroll(self, user_id: int, section: Section, kind: str, state: str, limit: bool) -> Enrollment:
        # Canvas re-uses a user's enrolment of the same type in the same section instead of adding a second one.
        key = (user_id, section.id, kind)
        e = self._enrollment_by_key.get(key)
        if e is not None and e.state != "deleted":
            e.state = state
            e.limit_privileges_to_course_section = limit
            e.updated_at = self.now()
            return e
        now = self.now()
        e = Enrollment(next(self._enrollment_ids), user_id, section.course_id, section.id, kind, state, limit, now, now)
        self.enrollments[e.id] = e
        self._enrollment_by_key[key] = e
        return e

    # ----------------------------------------------------------------- JSON
    def _primary_login(self, user_id: int) -> Login | None:
        logins = self._logins_of(user_id)
        return logins[0] if logins else None

    def user_json(self, user: User, *, email: bool = False) -> dict[str, Any]:
        login = self._primary_login(user.id)
        out: dict[str, Any] = {
            "id": user.id,
            "name": user.name,
            "created_at": _iso(user.created_at),
            "sortable_name": user.sortable_name,
            "short_name": user.short_name,
            "sis_user_id": login.sis_user_id if login else None,
            "integration_id": login.integration_id if login else None,
            "sis_import_id": None,
            "login_id": login.unique_id if login else None,
        }
        if email:
            out["email"] = user.emails[0] if user.emails else None
        return out

    def profile_json(self, user: User) -> dict[str, Any]:
        login = self._primary_login(user.id)
        return {
            "id": user.id,
            "name": user.name,
            "short_name": user.short_name,
            "sortable_name": user.sortable_name,
            "title": None,
            "bio": None,
            "primary_email": user.emails[0] if user.emails else None,
            "login_id": login.unique_id if login else None,
            "sis_user_id": login.sis_user_id if login else None,
            "integration_id": login.integration_id if login else None,
            "lti_user_id": user.lti_user_id,
            "avatar_url": f"{self.config.base}/images/messages/avatar-50.png",
            "calendar": {"ics": f"{self.config.base}/feeds/calendars/user_{user.lti_user_id}.ics"},
            "time_zone": "Europe/Oslo",
            "locale": None,
        }

    def login_json(self, login: Login) -> dict[str, Any]:
        provider = login.authentication_provider_id
        return {
            "id": login.id,
            "user_id": login.user_id,
            "account_id": login.account_id,
            "unique_id": login.unique_id,
            "sis_user_id": login.sis_user_id,
            "integration_id": login.integration_id,
            "authentication_provider_id": provider,
            "authentication_provider_type": self.config.rest_auth_providers.get(provider) if provider else None,
            "workflow_state": "active",
            "declared_user_type": None,
            "created_at": _iso(login.created_at),
        }

    def section_json(self, section: Section) -> dict[str, Any]:
        return {
            "id": section.id,
            "course_id": section.course_id,
            "name": section.name,
            "start_at": None,
            "end_at": None,
            "created_at": _iso(section.created_at),
            "restrict_enrollments_to_section_dates": None,
            "nonxlist_course_id": None,
            "sis_section_id": section.sis_section_id,
            "sis_course_id": self.config.course_sis_id,
            "integration_id": section.integration_id,
            "sis_import_id": None,
        }

    def enrollment_json(self, e: Enrollment) -> dict[str, Any]:
        user = self.users[e.user_id]
        login = self._primary_login(e.user_id)
        section = self.sections[e.section_id]
        base = self.config.base
        out: dict[str, Any] = {
            "id": e.id,
            "user_id": e.user_id,
            "course_id": e.course_id,
            "type": e.type,
            "created_at": _iso(e.created_at),
            "updated_at": _iso(e.updated_at),
            "associated_user_id": None,
            "start_at": None,
            "end_at": None,
            "course_section_id": e.section_id,
            "root_account_id": self.account_id,
            "limit_privileges_to_course_section": e.limit_privileges_to_course_section,
            "enrollment_state": e.state,
            "role": e.type,
            "role_id": _ROLE_IDS[e.type],
            "last_activity_at": _iso(e.last_activity_at),
            "last_attended_at": None,
            "total_activity_time": 0,
            "sis_account_id": None,
            "sis_course_id": self.config.course_sis_id,
            "course_integration_id": None,
            "sis_section_id": section.sis_section_id,
            "section_integration_id": section.integration_id,
            "sis_user_id": login.sis_user_id if login else None,
            "html_url": f"{base}/courses/{e.course_id}/users/{e.user_id}",
            "user": self.user_json(user),
        }
        if e.type == "StudentEnrollment":
            out["grades"] = {
                "html_url": f"{base}/courses/{e.course_id}/grades/{e.user_id}",
                "current_score": None,
                "final_score": None,
                "current_grade": None,
                "final_grade": None,
            }
        return out

    def account_json(self, includes: Iterable[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.account_id,
            "name": self.config.rest_account_name,
            "uuid": self.account_uuid,
            "parent_account_id": None,
            "root_account_id": None,
            "workflow_state": "active",
            "default_time_zone": "Europe/Oslo",
            "sis_account_id": None,
            "integration_id": None,
            "sis_import_id": None,
        }
        if "lti_guid" in includes:
            out["lti_guid"] = self.config.platform_guid
        return out

    def course_json(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "id": cfg.course_id,
            "name": cfg.course_title,
            "course_code": cfg.course_label,
            "sis_course_id": cfg.course_sis_id,
            "integration_id": None,
            "account_id": self.account_id,
            "root_account_id": self.account_id,
            "enrollment_term_id": 1,
            "uuid": uuid.uuid5(uuid.NAMESPACE_URL, f"{cfg.base}/courses/{cfg.course_id}").hex,
            "workflow_state": "available",
            "default_view": "modules",
            "start_at": None,
            "end_at": None,
            "is_public": False,
            "time_zone": "Europe/Oslo",
        }


# -------------------------------------------------------------- parameters
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def _nest(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Rails-style parameters: `user[name]=x`, `include[]=a&include[]=b` → {"user": {"name": "x"}, ...}."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        m = _KEY.match(key)
        if not m:
            out[key] = value
            continue
        parts = [m.group(1), *re.findall(r"\[([^\[\]]*)\]", m.group(2))]
        node = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = parts[i + 1] if not last else None
            if last:
                if part == "":
                    continue
                node[part] = value
            elif nxt == "" and i + 1 == len(parts) - 1:
                existing = node.get(part)
                if not isinstance(existing, list):
                    existing = [] if existing is None else [existing]
                    node[part] = existing
                existing.append(value)
                break
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return out


def _params() -> dict[str, Any]:
    params = _nest(request.args.items(multi=True))
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            params.update(body)
    else:
        params.update(_nest(request.form.items(multi=True)))
    return params


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _section_of(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    return value if isinstance(value, dict) else {}


# -------------------------------------------------------------- pagination
def _per_page(params: Mapping[str, Any]) -> int:
    try:
        n = int(str(params.get("per_page", DEFAULT_PER_PAGE)))
    except ValueError:
        return DEFAULT_PER_PAGE
    return DEFAULT_PER_PAGE if n < 1 else min(n, MAX_PER_PAGE)


def _page_url(page: str, per_page: int) -> str:
    keep = [(k, v) for k, v in request.args.items(multi=True) if k not in ("page", "per_page", "access_token")]
    query = urlencode([*keep, ("page", page), ("per_page", str(per_page))])
    return f"{request.url_root.rstrip('/')}{request.path}?{query}"


def _link_header(links: list[tuple[str, str]]) -> str:
    return ",".join(f'<{url}>; rel="{rel}"' for rel, url in links)


def paginate(items: list[Any], params: Mapping[str, Any]) -> tuple[list[Any], str]:
    """Numbered pages (rel current/next/prev/first/last)."""
    per_page = _per_page(params)
    try:
        page = max(1, int(str(params.get("page", "1"))))
    except ValueError:
        page = 1
    last = max(1, math.ceil(len(items) / per_page))
    links = [("current", _page_url(str(page), per_page))]
    if page < last:
        links.append(("next", _page_url(str(page + 1), per_page)))
    if page > 1:
        links.append(("prev", _page_url(str(page - 1), per_page)))
    links += [("first", _page_url("1", per_page)), ("last", _page_url(str(last), per_page))]
    start = (page - 1) * per_page
    return items[start : start + per_page], _link_header(links)


def _bookmark(item_id: int) -> str:
    return "bookmark:" + base64.urlsafe_b64encode(json.dumps([item_id]).encode()).decode().rstrip("=")


def paginate_bookmarked(
    items: list[Any], params: Mapping[str, Any], key: Callable[[Any], int]
) -> tuple[list[Any], str]:
    """Bookmark pages as Canvas sends them for large collections: opaque `page=bookmark:…`, no rel="last"."""
    per_page = _per_page(params)
    page = str(params.get("page") or "first")
    after: int | None = None
    if page.startswith("bookmark:"):
        raw = page.removeprefix("bookmark:")
        try:
            decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            after = int(decoded[0])
        except (binascii.Error, ValueError, TypeError, IndexError, KeyError):
            raise _bad("invalid bookmark") from None
    elif page != "first":
        raise _bad("invalid bookmark")
    items = sorted(items, key=key)
    if after is not None:
        items = [i for i in items if key(i) > after]
    chunk = items[:per_page]
    links = [("current", _page_url(page, per_page))]
    if len(items) > per_page:
        links.append(("next", _page_url(_bookmark(key(chunk[-1])), per_page)))
    links.append(("first", _page_url("first", per_page)))
    return chunk, _link_header(links)


# ------------------------------------------------------------------ routes
Handler = Callable[[CanvasRest, dict[str, str], dict[str, Any]], tuple[Any, str | None]]
_ROUTES: list[tuple[str, str, re.Pattern[str], Handler]] = []


def _route(method: str, template: str) -> Callable[[Handler], Handler]:
    pattern = re.compile("^" + re.sub(r":(\w+)", r"(?P<\1>[^/]+)", template) + "$")

    def register(fn: Handler) -> Handler:
        _ROUTES.append((method, f"{method} {template}", pattern, fn))
        return fn

    return register


def _match(method: str, path: str) -> tuple[str, Handler | None, dict[str, str]]:
    for m, label, pattern, fn in _ROUTES:
        found = pattern.match(path)
        if found and m == method:
            return label, fn, found.groupdict()
    return f"{method} (unknown)", None, {}


@_route("GET", "/api/v1/accounts/:account_id")
def _get_account(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    rest._account(a["account_id"])
    # Canvas takes `includes[]` (plural) on this endpoint; `include[]` does not reveal lti_guid.
    return rest.account_json(_list(p.get("includes"))), None


@_route("GET", "/api/v1/courses/:course_id")
def _get_course(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    rest._course(a["course_id"])
    return rest.course_json(), None


def _user_matches(rest: CanvasRest, user: User, term: str) -> bool:
    t = term.lower()
    if term.isdigit() and int(term) == user.id:
        return True
    texts = [user.name, user.short_name, user.sortable_name, *user.emails]
    for login in rest._logins_of(user.id):
        texts += [login.unique_id, login.sis_user_id or "", login.integration_id or ""]
    return any(t in x.lower() for x in texts if x)


@_route("GET", "/api/v1/accounts/:account_id/users")
def _list_users(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    rest._account(a["account_id"])
    users = list(rest.users.values())
    term = _str(p.get("search_term"))
    if "search_term" in p:
        if term is None or len(term) < 3:
            n = len(term or "")
            raise CanvasError(
                400,
                {"errors": [{"field": "search_term", "code": "invalid", "message": f"{n} characters is too short"}]},
            )
        users = [u for u in users if _user_matches(rest, u, term)]
    sort = str(p.get("sort") or "username")
    sort_keys: dict[str, Callable[[User], Any]] = {
        "username": lambda u: (u.sortable_name.lower(), u.id),
        "email": lambda u: ((u.emails or [""])[0].lower(), u.id),
        "sis_id": lambda u: ((rest.user_json(u)["sis_user_id"] or ""), u.id),
        "id": lambda u: u.id,
    }
    users.sort(key=sort_keys.get(sort, sort_keys["username"]), reverse=str(p.get("order")) == "desc")
    page, link = paginate(users, p)
    email = "email" in _list(p.get("include"))
    return [rest.user_json(u, email=email) for u in page], link


def _check_provider(rest: CanvasRest, raw: Any, model: str) -> int | None:
    value = _str(raw)
    if value is None or value == "canvas":
        return None
    providers = rest.config.rest_auth_providers
    if value.isdigit() and int(value) in providers:
        return int(value)
    for pid, kind in providers.items():
        if kind == value:
            return pid
    raise _field_error(model, "authentication_provider_id", "invalid", "invalid authentication provider")


def _check_login(rest: CanvasRest, unique_id: str | None, sis: str | None, provider: int | None, model: str) -> str:
    if not unique_id:
        raise _field_error(model, "unique_id", "too_short", "is too short (minimum is 1 character)")
    if rest._unique_id_taken(unique_id, provider):
        message = "ID already in use for this account and authentication provider"
        raise _field_error(model, "unique_id", "taken", message)
    if sis and rest._sis_taken(sis):
        raise _field_error(model, "sis_user_id", "taken", f'SIS ID "{sis}" is already in use')
    return unique_id


@_route("POST", "/api/v1/accounts/:account_id/users")
def _create_user(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    try:
        return _create_user_checked(rest, a, p)
    except CanvasError as exc:
        errors = exc.body.get("errors") if isinstance(exc.body, dict) else None
        if exc.status != 400 or not isinstance(errors, dict):
            raise
        # Canvas answers a refused user with every part's errors, empty where that part was fine.
        body: dict[str, Any] = {
            "user": {},
            "pseudonym": {},
            "observee": {},
            "pairing_code": {},
            "recaptcha": None,
        } | errors
        raise CanvasError(400, {"errors": body}) from None


def _create_user_checked(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    rest._account(a["account_id"])
    u, ps, cc = _section_of(p, "user"), _section_of(p, "pseudonym"), _section_of(p, "communication_channel")
    sis = _str(ps.get("sis_user_id"))
    provider = _check_provider(rest, ps.get("authentication_provider_id"), "pseudonym")
    unique_id = _check_login(rest, _str(ps.get("unique_id")), sis, provider, "pseudonym")
    address = _str(cc.get("address"))
    kind = _str(cc.get("type")) or "email"
    if address and kind == "email" and not _EMAIL.match(address):
        raise _field_error("communication_channel", "address", "invalid", "Email is invalid")
    if address is None and _EMAIL.match(unique_id):
        address = unique_id  # Canvas makes an e-mail login's unique_id its e-mail channel.
    name = _str(u.get("name")) or unique_id
    user = User(
        next(rest._user_ids),
        name,
        _str(u.get("short_name")) or name,
        _str(u.get("sortable_name")) or _sortable(name),
        rest.now(),
        [address] if address and kind == "email" else [],
    )
    rest.users[user.id] = user
    rest._new_login(user.id, unique_id, sis, _str(ps.get("integration_id")), provider)
    return rest.user_json(user), None


@_route("GET", "/api/v1/users/:user_id")
def _get_user(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    return rest.user_json(rest._user(a["user_id"]), email=True), None


@_route("PUT", "/api/v1/users/:user_id")
def _update_user(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    user = rest._user(a["user_id"])
    u = _section_of(p, "user")
    email = _str(u.get("email"))
    if email is not None and not _EMAIL.match(email):
        raise _field_error("user", "email", "invalid", "Email is invalid")
    if _str(u.get("name")):
        user.name = str(_str(u.get("name")))
    if _str(u.get("short_name")):
        user.short_name = str(_str(u.get("short_name")))
    if _str(u.get("sortable_name")):
        user.sortable_name = str(_str(u.get("sortable_name")))
    if email is not None:
        # The new address becomes the default e-mail; the old one stays as a further channel.
        user.emails = [email, *[e for e in user.emails if e.lower() != email.lower()]]
    return rest.user_json(user, email=True), None


@_route("GET", "/api/v1/users/:user_id/profile")
def _profile(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    return rest.profile_json(rest._user(a["user_id"])), None


@_route("GET", "/api/v1/users/:user_id/logins")
def _user_logins(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    user = rest._user(a["user_id"])
    page, link = paginate(rest._logins_of(user.id), p)
    return [rest.login_json(lg) for lg in page], link


@_route("POST", "/api/v1/accounts/:account_id/logins")
def _create_login(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    rest._account(a["account_id"])
    u, lg = _section_of(p, "user"), _section_of(p, "login")
    user = rest._user(str(_str(u.get("id")) or ""))
    sis = _str(lg.get("sis_user_id"))
    provider = _check_provider(rest, lg.get("authentication_provider_id"), "unique_id")
    unique_id = _check_login(rest, _str(lg.get("unique_id")), sis, provider, "unique_id")
    login = rest._new_login(user.id, unique_id, sis, _str(lg.get("integration_id")), provider)
    return rest.login_json(login), None


@_route("GET", "/api/v1/courses/:course_id/sections")
def _list_sections(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    course_id = rest._course(a["course_id"])
    sections = sorted((s for s in rest.sections.values() if s.course_id == course_id), key=lambda s: s.id)
    page, link = paginate(sections, p)
    return [rest.section_json(s) for s in page], link


@_route("POST", "/api/v1/courses/:course_id/sections")
def _create_section(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    rest._course(a["course_id"])
    cs = _section_of(p, "course_section")
    sis = _str(cs.get("sis_section_id"))
    if sis and any(s.sis_section_id == sis for s in rest.sections.values()):
        raise _field_error("course_section", "sis_source_id", "taken", f'SIS ID "{sis}" is already in use')
    section = rest._new_section(_str(cs.get("name")) or "Section", sis, _str(cs.get("integration_id")))
    return rest.section_json(section), None


@_route("GET", "/api/v1/courses/:course_id/sections/:section_id")
def _get_course_section(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    return rest.section_json(rest._section(a["section_id"], rest._course(a["course_id"]))), None


@_route("GET", "/api/v1/sections/:section_id")
def _get_section(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    return rest.section_json(rest._section(a["section_id"])), None


@_route("POST", "/api/v1/sections/:section_id/enrollments")
def _enroll(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    section = rest._section(a["section_id"])
    e = _section_of(p, "enrollment")
    if not e:
        raise CanvasError(400, {"message": "No parameters given"})
    user_ref = _str(e.get("user_id"))
    if user_ref is None:
        raise _bad("Can't create an enrollment without a user. Include enrollment[user_id] to create an enrollment")
    user = rest._user(user_ref)
    kind = _str(e.get("type"))
    if kind not in ENROLLMENT_TYPES:
        raise _bad("Invalid type")
    state = _str(e.get("enrollment_state")) or "invited"
    if state not in ("active", "invited", "inactive"):
        raise _bad("Invalid enrollment_state")
    limit = _bool(e.get("limit_privileges_to_course_section", False))
    return rest.enrollment_json(rest._enroll(user.id, section, kind, state, limit)), None


def _filter_enrollments(rest: CanvasRest, items: Iterable[Enrollment], p: dict[str, Any]) -> list[Enrollment]:
    types = _list(p.get("type"))
    roles = _list(p.get("role"))
    states = _list(p.get("state")) or ["active", "invited"]  # Canvas's default when state[] is omitted
    out = [e for e in items if e.state in states]
    if types:
        out = [e for e in out if e.type in types]
    if roles:
        out = [e for e in out if e.type in roles]
    if _str(p.get("user_id")):
        user = rest._user(str(_str(p.get("user_id"))))
        out = [e for e in out if e.user_id == user.id]
    return out


@_route("GET", "/api/v1/courses/:course_id/enrollments")
def _course_enrollments(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    course_id = rest._course(a["course_id"])
    items = _filter_enrollments(rest, (e for e in rest.enrollments.values() if e.course_id == course_id), p)
    page, link = paginate_bookmarked(items, p, key=lambda e: e.id)
    return [rest.enrollment_json(e) for e in page], link


@_route("GET", "/api/v1/sections/:section_id/enrollments")
def _section_enrollments(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    section = rest._section(a["section_id"])
    items = _filter_enrollments(rest, (e for e in rest.enrollments.values() if e.section_id == section.id), p)
    page, link = paginate_bookmarked(items, p, key=lambda e: e.id)
    return [rest.enrollment_json(e) for e in page], link


@_route("DELETE", "/api/v1/courses/:course_id/enrollments/:enrollment_id")
def _end_enrollment(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    course_id = rest._course(a["course_id"])
    ref = a["enrollment_id"]
    e = rest.enrollments.get(int(ref)) if ref.isdigit() else None
    if e is None or e.course_id != course_id or e.state == "deleted":
        raise _not_found()
    task = str(p.get("task") or "conclude")
    if task not in _TASKS:
        raise _bad(f"{task} is not a valid task")
    e.state = _TASKS[task]
    e.updated_at = rest.now()
    return rest.enrollment_json(e), None


@_route("GET", "/api/v1/courses/:course_id/assignments")
def _list_assignments(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    course_id = rest._course(a["course_id"])
    items = sorted((x for x in rest.assignments.values() if x.course_id == course_id), key=lambda x: x.position)
    page, link = paginate(items, p)
    handed_in = {aid for (aid, _), s in rest.submissions.items() if s.submitted_at is not None}
    base = rest.config.base
    return [assignment_json(x, base, has_submissions=x.id in handed_in) for x in page], link


_ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


def _since(p: dict[str, Any], name: str) -> datetime | None:
    raw = _str(p.get(name))
    if raw is None:
        return None
    if not _ISO8601.match(raw):
        raise CanvasError(400, {"errors": {name: f"Invalid datetime for {name}"}})
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _unauthorized() -> CanvasError:
    return CanvasError(
        401, {"status": "unauthorized", "errors": [{"message": "user not authorized to perform that action"}]}
    )


@_route("GET", "/api/v1/courses/:course_id/students/submissions")
def _student_submissions(rest: CanvasRest, a: dict[str, str], p: dict[str, Any]) -> tuple[Any, str | None]:
    course_id = rest._course(a["course_id"])
    students = rest.student_ids()
    asked = _list(p.get("student_ids"))
    if "all" in asked:
        wanted = students
    else:
        if not asked:
            raise _unauthorized()  # Canvas would list the caller's own submissions; the API user is no student
        if len(asked) > MAX_PER_PAGE:
            raise CanvasError(400, {"error": "too many students"})
        wanted = set()
        for ref in asked:
            if ref.startswith("sis_user_id:"):
                login = rest._login_by_sis.get(ref.partition(":")[2])
                if login is not None:
                    wanted.add(login.user_id)
            elif ref.isdigit():
                wanted.add(int(ref))
        if wanted - students:
            raise _unauthorized()  # an id that is not a student of the course
    published = {x.id: x for x in rest.assignments.values() if x.course_id == course_id and x.published}
    requested = _list(p.get("assignment_ids"))
    if requested:
        ids = {int(r) if r.isdigit() else 0 for r in requested}
        if ids - set(published):
            raise CanvasError(403, {"error": "invalid assignment ids requested"})
        published = {i: x for i, x in published.items() if i in ids}
    submitted_since, graded_since = _since(p, "submitted_since"), _since(p, "graded_since")
    state = _str(p.get("workflow_state"))
    items: list[Submission] = []
    for assignment_id in published:
        for user_id in wanted:
            s = rest._submission(assignment_id, user_id)  # Canvas has one for every student, handed in or not
            if state and s.workflow_state != state:
                continue
            if submitted_since and (s.submitted_at is None or s.submitted_at <= submitted_since):
                continue
            if graded_since and (s.graded_at is None or s.graded_at <= graded_since):
                continue
            items.append(s)
    page, link = paginate_bookmarked(items, p, key=lambda s: s.id)
    now, base = rest.now(), rest.config.base
    return [submission_json(s, published[s.assignment_id], base, now) for s in page], link


# -------------------------------------------------------------- HTTP layer
def _canvas_json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _refusal(status: int) -> Response:
    text = "403 Forbidden (Rate Limit Exceeded)\n" if status == 403 else "429 Too Many Requests (Rate Limit Exceeded)\n"
    return Response(text, status=status, mimetype="text/plain")


def _server_error(rest: CanvasRest, status: int) -> Response:
    if status == 500:
        body = {
            "errors": [{"message": "An error occurred.", "error_code": "internal_server_error"}],
            "error_report_id": next(rest._error_reports),
        }
        return _canvas_json(body, 500)
    reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Error")
    html = f"<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>\n"
    return Response(html, status=status, mimetype="text/html")


def _check_token(rest: CanvasRest, authorization: str | None) -> Response | None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token and token in rest.config.rest_api_tokens:
        return None
    if not token:
        body: dict[str, Any] = {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]}
    else:
        body = {"errors": [{"message": "Invalid access token."}]}
    resp = _canvas_json(body, 401)
    resp.headers["WWW-Authenticate"] = 'Bearer realm="canvas-lms"'
    return resp


def handle(rest: CanvasRest, path: str) -> Response:
    method = request.method
    path = path.removesuffix(".json")
    label, handler, args = _match(method, path)
    key = request.headers.get("Authorization") or "anonymous"
    with rest.lock:
        rest.counts[label] += 1
    throttled = rest.throttle_enabled
    if throttled and not rest.throttle.admit(key):
        with rest.lock:
            rest.refusals += 1
        resp = _refusal(rest.throttle_status)
        resp.headers["X-Request-Cost"] = "0"
        resp.headers["X-Rate-Limit-Remaining"] = f"{rest.throttle.remaining(key):.1f}"
        return resp
    with rest.lock:
        rest.in_flight += 1
        rest.max_in_flight = max(rest.max_in_flight, rest.in_flight)
    cost = rest._latency(method, path, label)
    try:
        resp, hang = _serve(rest, method, path, label, handler, args, cost)
        cost += hang
    finally:
        with rest.lock:
            rest.in_flight -= 1
        if throttled:
            rest.throttle.complete(key, cost)
    resp.headers["X-Request-Cost"] = f"{cost:.6f}".rstrip("0").rstrip(".") if cost else "0"
    if throttled:
        resp.headers["X-Rate-Limit-Remaining"] = f"{rest.throttle.remaining(key):.1f}"
    return resp


def _serve(
    rest: CanvasRest,
    method: str,
    path: str,
    label: str,
    handler: Handler | None,
    args: dict[str, str],
    latency: float,
) -> tuple[Response, float]:
    """Answer the request (or mark it for dropping); returns the response and seconds spent hanging."""
    fault = rest._pick_fault(method, path, label)
    rest.clock.sleep(latency)
    hang = 0.0
    if fault is not None:
        if fault.kind == "status":
            return _server_error(rest, fault.status), 0.0
        if fault.kind == "throttle":
            return _refusal(rest.throttle_status), 0.0
        if fault.kind == "drop_before":
            request.environ[DROP_KEY] = True
            return Response(status=204), 0.0
        if fault.kind == "timeout":
            hang = fault.seconds
            rest.clock.sleep(hang)
    denied = _check_token(rest, request.headers.get("Authorization"))
    if denied is not None:
        return denied, hang
    if handler is None:
        return _canvas_json({"errors": [{"message": NOT_FOUND}]}, 404), hang
    try:
        params = _params()
        with rest.lock:
            body, link = handler(rest, args, params)
    except CanvasError as exc:
        return _canvas_json(exc.body, exc.status), hang
    resp = _canvas_json(body)
    if link:
        resp.headers["Link"] = link
    if fault is not None and fault.kind == "drop_after":
        request.environ[DROP_KEY] = True
    return resp, hang


class DropConnectionMiddleware:
    """Turns a request marked by a drop fault into a dropped connection.

    Under werkzeug's server the socket is shut down and SimConnectionDropped (a ConnectionError, which the server
    treats as a client that went away) ends the request with nothing sent. Under Flask's test client the
    exception reaches the test, as the error a real client would see.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        result = self.app(environ, start_response)
        if environ.get(DROP_KEY):
            close = getattr(result, "close", None)
            if close is not None:
                close()
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            raise SimConnectionDropped("canvas_sim: connection dropped by an injected fault")
        return result


def register_rest(app: Flask, config: SimConfig, rest: CanvasRest | None = None) -> CanvasRest:
    rest = rest or CanvasRest(config)
    app.extensions[EXTENSION_KEY] = rest

    @app.route("/api/v1/<path:subpath>", methods=["GET", "POST", "PUT", "DELETE"])
    def canvas_api(subpath: str) -> Response:
        return handle(rest, f"/api/v1/{subpath}")

    app.wsgi_app = DropConnectionMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return rest


def rest_of(app: Flask) -> CanvasRest:
    rest: CanvasRest = app.extensions[EXTENSION_KEY]
    return rest


# The group and calendar routes (canvas_sim.groups) register themselves with the router above when imported.
from canvas_sim import groups as _groups  # noqa: E402,F401
