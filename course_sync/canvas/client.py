"""Our Canvas REST client: canvasapi's Requester and PaginatedList underneath, with what canvasapi leaves out.

canvasapi 3.6.0 sends every request through one requests.Session but drops per-call keyword arguments, so the
timeout is set on the session's adapters; it raises on errors without the response, so a session hook records
each response's status and X-Rate-Limit-Remaining. Retries and backoff are tenacity's. Canvas's answers are
checked field by field into small dataclasses, so no canvasapi object leaves this module.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from canvasapi import exceptions as cx
from canvasapi.paginated_list import PaginatedList
from canvasapi.requester import Requester
from canvasapi.util import combine_kwargs
from requests.adapters import HTTPAdapter
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from course_sync.canvas.errors import (
    CanvasAuthError,
    CanvasBadResponse,
    CanvasError,
    CanvasNotFound,
    CanvasOutcomeUnknown,
    CanvasThrottled,
    CanvasUnavailable,
)

PER_PAGE = 100  # Canvas's maximum page size
RATE_LIMIT_TEXT = "Rate Limit Exceeded"
# Canvas's bucket holds 700 units and charges 50 up front per request in flight: below this many units left we
# pause before the next call instead of running into 403/429.
DEFAULT_LOW_WATER = 75.0
# Canvas refuses an explicit student_ids[] list longer than its page maximum ("too many students").
MAX_STUDENT_IDS = 100
# Canvas reads at most this many context_codes[] per calendar events call (more are ignored).
MAX_CONTEXT_CODES = 10
SUBMISSION_STATES = frozenset({"submitted", "unsubmitted", "graded", "pending_review"})
ENROLLMENT_TYPES = frozenset(
    {"StudentEnrollment", "TeacherEnrollment", "TaEnrollment", "DesignerEnrollment", "ObserverEnrollment"}
)

T = TypeVar("T")


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class CanvasAccount:
    id: int
    name: str
    lti_guid: str | None


@dataclass(frozen=True)
class CanvasUser:
    id: int
    name: str
    login_id: str | None
    sis_user_id: str | None
    # Canvas sends `email` (the default e-mail channel) only when asked for it (users list with include[]=email,
    # PUT users/:id); None when not asked or when the user has no e-mail address.
    email: str | None = None


@dataclass(frozen=True)
class CanvasProfile:
    id: int
    name: str
    primary_email: str | None
    login_id: str | None


@dataclass(frozen=True)
class CanvasSection:
    id: int
    course_id: int
    name: str
    sis_section_id: str | None


@dataclass(frozen=True)
class CanvasEnrollment:
    id: int
    user_id: int
    course_id: int
    section_id: int
    type: str
    state: str
    # The user's last activity in the course (aware, UTC); None when there has been none.
    last_activity_at: datetime | None = None
    limit_privileges_to_course_section: bool = False


@dataclass(frozen=True)
class CanvasSubmission:
    """A student's submission of an assignment. Canvas keeps one per student and assignment, also before anything
    is handed in (workflow_state "unsubmitted", submitted_at None)."""

    id: int
    user_id: int
    assignment_id: int
    submitted_at: datetime | None
    graded_at: datetime | None
    score: float | None
    workflow_state: str
    excused: bool
    missing: bool


@dataclass(frozen=True)
class CanvasAssignment:
    """An assignment of a course. `is_quiz_assignment` is true for both kinds of quiz that can be mapped to a
    module: a graded Classic Quiz (`quiz_id` set, submission_types ["online_quiz"]) and a New Quiz (an
    external_tool assignment Canvas marks `is_quiz_lti_assignment`, no quiz_id)."""

    id: int
    name: str
    quiz_id: int | None
    is_quiz_assignment: bool
    points_possible: float | None
    submission_types: tuple[str, ...]
    published: bool

    @property
    def is_new_quiz(self) -> bool:
        return self.is_quiz_assignment and self.quiz_id is None


@dataclass(frozen=True)
class CanvasGroupCategory:
    """A group set of a course (Canvas calls it a group category)."""

    id: int
    name: str
    course_id: int | None
    role: str | None


@dataclass(frozen=True)
class CanvasGroup:
    """A group of a group set. `user_ids` are its members, in Canvas's order, when the answer listed them (the
    answers to creating and editing a group do; lists and GET do not: None)."""

    id: int
    name: str
    group_category_id: int | None
    course_id: int | None
    members_count: int
    user_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class CanvasCalendarEvent:
    """A calendar event of a course or group (`context_code` course_N / group_N); times aware UTC."""

    id: int
    title: str
    context_code: str
    start_at: datetime | None
    end_at: datetime | None
    location_name: str | None
    description: str | None
    workflow_state: str


def _field(data: Any, name: str, kind: type[T], *, optional: bool = False) -> T:
    if not isinstance(data, dict):
        raise CanvasBadResponse(f"expected a JSON object from Canvas, got {type(data).__name__}")
    value = data.get(name)
    if value is None and optional:
        return value  # type: ignore[return-value]
    # bool is an int in Python; an id must not be one.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CanvasBadResponse(f"Canvas's {name!r} is {value!r}, expected {kind.__name__}")
    return value


def _number(data: Any, name: str) -> float | None:
    """An optional JSON number (int or float, never a bool) as a float."""
    value = _field(data, name, object, optional=True)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CanvasBadResponse(f"Canvas's {name!r} is {value!r}, expected a number")
    return float(value)


def _flag(data: Any, name: str) -> bool:
    """An optional boolean; Canvas sends null for a flag that was never set."""
    return bool(_field(data, name, bool, optional=True))


def _when(data: Any, name: str) -> datetime | None:
    """An optional ISO 8601 timestamp with its offset (Canvas sends UTC, "2026-03-01T12:00:00Z"), as aware UTC."""
    text = _field(data, name, str, optional=True)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CanvasBadResponse(f"Canvas's {name!r} is {text!r}, expected an ISO 8601 time") from None
    if value.tzinfo is None:
        raise CanvasBadResponse(f"Canvas's {name!r} is {text!r}, a time without its offset")
    return value.astimezone(UTC)


def _iso(value: datetime, name: str) -> str:
    """A time as Canvas wants it in parameters: ISO 8601 YYYY-MM-DDTHH:MM:SSZ."""
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(d: Any) -> CanvasUser:
    return CanvasUser(
        _field(d, "id", int),
        _field(d, "name", str),
        _field(d, "login_id", str, optional=True),
        _field(d, "sis_user_id", str, optional=True),
        _field(d, "email", str, optional=True),
    )


def _section(d: Any) -> CanvasSection:
    return CanvasSection(
        _field(d, "id", int),
        _field(d, "course_id", int),
        _field(d, "name", str),
        _field(d, "sis_section_id", str, optional=True),
    )


def _enrollment(d: Any) -> CanvasEnrollment:
    kind = _field(d, "type", str)
    if kind not in ENROLLMENT_TYPES:
        raise CanvasBadResponse(f"unknown enrollment type {kind!r} from Canvas")
    return CanvasEnrollment(
        _field(d, "id", int),
        _field(d, "user_id", int),
        _field(d, "course_id", int),
        _field(d, "course_section_id", int),
        kind,
        _field(d, "enrollment_state", str),
        _when(d, "last_activity_at"),
        _flag(d, "limit_privileges_to_course_section"),
    )


def _submission(d: Any) -> CanvasSubmission:
    return CanvasSubmission(
        _field(d, "id", int),
        _field(d, "user_id", int),
        _field(d, "assignment_id", int),
        _when(d, "submitted_at"),
        _when(d, "graded_at"),
        _number(d, "score"),
        _field(d, "workflow_state", str),
        _flag(d, "excused"),
        _flag(d, "missing"),
    )


def _assignment(d: Any) -> CanvasAssignment:
    types = _field(d, "submission_types", list)
    if not all(isinstance(t, str) for t in types):
        raise CanvasBadResponse(f"Canvas's 'submission_types' is {types!r}, expected a list of strings")
    quiz_id = _field(d, "quiz_id", int, optional=True)
    classic = quiz_id is not None or "online_quiz" in types or _flag(d, "is_quiz_assignment")
    return CanvasAssignment(
        _field(d, "id", int),
        _field(d, "name", str),
        quiz_id,
        classic or _flag(d, "is_quiz_lti_assignment"),
        _number(d, "points_possible"),
        tuple(types),
        _field(d, "published", bool),
    )


def _group_category(d: Any) -> CanvasGroupCategory:
    return CanvasGroupCategory(
        _field(d, "id", int),
        _field(d, "name", str),
        _field(d, "course_id", int, optional=True),
        _field(d, "role", str, optional=True),
    )


def _group(d: Any) -> CanvasGroup:
    users = _field(d, "users", list, optional=True)
    return CanvasGroup(
        _field(d, "id", int),
        _field(d, "name", str),
        _field(d, "group_category_id", int, optional=True),
        _field(d, "course_id", int, optional=True),
        _field(d, "members_count", int, optional=True) or 0,
        None if users is None else tuple(_field(u, "id", int) for u in users),
    )


def _calendar_event(d: Any) -> CanvasCalendarEvent:
    return CanvasCalendarEvent(
        _field(d, "id", int),
        _field(d, "title", str, optional=True) or "",
        _field(d, "context_code", str),
        _when(d, "start_at"),
        _when(d, "end_at"),
        _field(d, "location_name", str, optional=True),
        _field(d, "description", str, optional=True),
        _field(d, "workflow_state", str),
    )


def _name_in_use(exc: CanvasError) -> bool:
    """Canvas's 400 for a group set name the course already has: errors.name[] "… is already in use."."""
    if exc.status != 400 or not isinstance(exc.body, dict):
        return False
    errors = exc.body.get("errors")
    name = errors.get("name") if isinstance(errors, dict) else None
    if not isinstance(name, list):
        return False
    return any(isinstance(e, dict) and "already in use" in str(e.get("message", "")) for e in name)


def _login_taken(exc: CanvasError) -> bool:
    """Canvas's 400 for a login another user already has: errors.pseudonym.unique_id[] with type "taken"."""
    if exc.status != 400 or not isinstance(exc.body, dict):
        return False
    errors = exc.body.get("errors")
    pseudonym = errors.get("pseudonym") if isinstance(errors, dict) else None
    unique_id = pseudonym.get("unique_id") if isinstance(pseudonym, dict) else None
    if not isinstance(unique_id, list):
        return False
    return any(isinstance(e, dict) and e.get("type") == "taken" for e in unique_id)


def _body(exc: Exception) -> Any:
    """Canvas's JSON error body, which canvasapi keeps as the message text of a 400, 403, 409 or 422."""
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        try:
            return json.loads(message)
        except ValueError:
            return None
    return None


# ------------------------------------------------------------------ plumbing
class _TimeoutAdapter(HTTPAdapter):
    """Every request through the session gets the timeout (canvasapi does not pass one)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, *args, **kwargs)


class _Raw:
    """PaginatedList's content class: keeps Canvas's JSON as it came, for our own checks."""

    def __init__(self, requester: Any, attributes: dict[str, Any]) -> None:
        self.data = attributes


class CanvasClient:
    """One Canvas instance's REST API under one token.

    Every call has `timeout` seconds. Lists follow Link rel="next" at per_page=100. Before a call, when Canvas's
    last X-Rate-Limit-Remaining was below `low_water`, the client pauses (longer the emptier the bucket).
    Throttle refusals (403 "Rate Limit Exceeded", 429) are retried for every call: Canvas refuses them before
    doing anything. 5xx, timeouts and dropped connections are retried for reads and for the calls that are safe
    to repeat (enrol, conclude); see each POST for what it does instead. Retries wait jittered exponential
    backoff (`retry_base` × 2ⁿ, at most `retry_max` seconds) for at most `max_tries` tries in all.

    Raises CanvasAuthError (401, or 403 for a missing permission), CanvasNotFound (404), CanvasThrottled,
    CanvasUnavailable (or CanvasOutcomeUnknown) after the tries, CanvasBadResponse for an answer of the wrong
    shape, and CanvasError with the status for other refusals (400, 409, 422).
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        max_tries: int = 5,
        retry_base: float = 0.5,
        retry_max: float = 30.0,
        low_water: float = DEFAULT_LOW_WATER,
        low_water_pause: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        max_in_flight: int | None = None,
    ) -> None:
        self._requester = Requester(api_url.rstrip("/"), token)
        # At most this many calls of this client in flight at once (threads of one worker process share it), so
        # more worker threads than Canvas's throttle admits can share the connection without refusals.
        self._in_flight = threading.BoundedSemaphore(max_in_flight) if max_in_flight else None
        session: requests.Session = self._requester._session
        adapter = _TimeoutAdapter(timeout)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.hooks["response"].append(self._observe)
        self.max_tries = max(1, max_tries)
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.low_water = low_water
        self.low_water_pause = low_water_pause
        self._sleep = sleep
        self._lock = threading.Lock()
        self._remaining: float | None = None
        self._last = threading.local()

    # ------------------------------------------------------------ transport
    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last.status = response.status_code
        header = response.headers.get("X-Rate-Limit-Remaining")
        if header is not None:
            try:
                remaining = float(header)
            except ValueError:
                return
            with self._lock:
                self._remaining = remaining

    @property
    def rate_limit_remaining(self) -> float | None:
        """X-Rate-Limit-Remaining of the newest answer (None before the first)."""
        with self._lock:
            return self._remaining

    def _pace(self) -> None:
        remaining = self.rate_limit_remaining
        if remaining is not None and remaining < self.low_water:
            self._sleep(self.low_water_pause * (1.0 - max(0.0, remaining) / self.low_water))

    def _translate(self, exc: Exception, what: str, *, idempotent: bool) -> CanvasError:
        status = getattr(self._last, "status", None)
        if isinstance(exc, requests.Timeout | requests.ConnectionError):
            kind = "timed out" if isinstance(exc, requests.Timeout) else "lost its connection"
            if not idempotent:
                return CanvasOutcomeUnknown(f"the call to {what} on Canvas {kind}; Canvas may have applied it")
            return CanvasUnavailable(f"the call to {what} on Canvas {kind}")
        if isinstance(exc, cx.RateLimitExceeded):
            return CanvasThrottled(f"Canvas throttled {what} (429)", status=429)
        if isinstance(exc, cx.Forbidden):
            if RATE_LIMIT_TEXT in str(exc):
                return CanvasThrottled(f"Canvas throttled {what} (403 Rate Limit Exceeded)", status=403)
            return CanvasAuthError(f"the Canvas token may not {what} (403): {exc}", status=403, body=_body(exc))
        if isinstance(exc, cx.InvalidAccessToken):
            return CanvasAuthError(f"Canvas refused the API token for {what} (401)", status=401)
        if isinstance(exc, cx.Unauthorized):  # a 401 without WWW-Authenticate: the token's user may not do this
            return CanvasAuthError(f"the Canvas token's user may not {what} (401)", status=401)
        if isinstance(exc, cx.ResourceDoesNotExist):
            return CanvasNotFound(f"Canvas has no such resource for {what} (404)", status=404)
        if isinstance(exc, cx.CanvasException):
            if status is not None and status >= 500:
                return CanvasUnavailable(f"Canvas answered {status} to {what}", status=status)
            return CanvasError(f"Canvas refused {what} ({status}): {exc}", status=status, body=_body(exc))
        if isinstance(exc, ValueError) and status == 401:  # a 401 whose body is not JSON
            return CanvasAuthError(f"Canvas refused the API token for {what} (401)", status=401)
        if isinstance(exc, ValueError):  # response.json() on a body that is not JSON
            return CanvasBadResponse(f"Canvas's answer to {what} is not JSON")
        raise exc

    def _call(self, what: str, attempt: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run `attempt` with pacing, error translation and retries.

        A CanvasOutcomeUnknown is never retried here; a throttle refusal always is."""

        def once() -> T:
            self._pace()
            if self._in_flight is not None:
                self._in_flight.acquire()
            try:
                return attempt()
            except (requests.RequestException, cx.CanvasException, ValueError) as exc:
                raise self._translate(exc, what, idempotent=idempotent) from exc
            finally:
                if self._in_flight is not None:
                    self._in_flight.release()

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, CanvasOutcomeUnknown):
                return False
            if isinstance(exc, CanvasThrottled):
                return True
            return isinstance(exc, CanvasUnavailable) and idempotent

        retrying = Retrying(
            stop=stop_after_attempt(self.max_tries),
            wait=wait_random_exponential(multiplier=self.retry_base, max=self.retry_max),
            retry=retry_if_exception(retryable),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(once)

    def _json(self, method: str, endpoint: str, params: Iterable[tuple[str, Any]] = ()) -> Any:
        response = self._requester.request(method, endpoint, _kwargs=list(params))
        return response.json()

    def _list(self, endpoint: str, params: Iterable[tuple[str, Any]] = ()) -> Iterator[Any]:
        pages = PaginatedList(_Raw, self._requester, "GET", endpoint, per_page=PER_PAGE, _kwargs=list(params))
        for item in pages:
            yield item.data

    # -------------------------------------------------------------- reads
    def account(self, account_id: int | str, with_lti_guid: bool = True) -> CanvasAccount:
        """The account; with `with_lti_guid`, its `lti_guid` (Canvas sends it only for `includes[]=lti_guid`).

        Raises CanvasBadResponse when lti_guid was asked for and is missing (not a root account, or not Canvas)."""
        params = [("includes[]", "lti_guid")] if with_lti_guid else []
        data = self._call("read the account", lambda: self._json("GET", f"accounts/{account_id}", params))
        guid = _field(data, "lti_guid", str, optional=not with_lti_guid)
        if with_lti_guid and not guid:
            raise CanvasBadResponse("Canvas sent an empty lti_guid")
        return CanvasAccount(_field(data, "id", int), _field(data, "name", str), guid)

    def find_users(self, account_id: int | str, search_term: str) -> list[CanvasUser]:
        """Users of the account whose name, login, SIS id or e-mail matches (Canvas needs ≥ 3 characters), with
        each one's default e-mail address (`include[]=email`)."""
        params = [("search_term", search_term), ("include[]", "email")]
        rows = self._call("search users", lambda: list(self._list(f"accounts/{account_id}/users", params)))
        return [_user(r) for r in rows]

    def user_profile(self, user_id: int | str) -> CanvasProfile:
        data = self._call("read a user's profile", lambda: self._json("GET", f"users/{user_id}/profile"))
        return CanvasProfile(
            _field(data, "id", int),
            _field(data, "name", str),
            _field(data, "primary_email", str, optional=True),
            _field(data, "login_id", str, optional=True),
        )

    def sections(self, course_id: int | str) -> list[CanvasSection]:
        rows = self._call("list sections", lambda: list(self._list(f"courses/{course_id}/sections")))
        return [_section(r) for r in rows]

    def enrollments(
        self,
        course_id: int | str,
        *,
        types: Iterable[str] = (),
        states: Iterable[str] = (),
        user_id: int | str | None = None,
    ) -> list[CanvasEnrollment]:
        """The course's enrolments (Canvas's default states: active and invited)."""
        params = combine_kwargs(type=list(types), state=list(states))
        if user_id is not None:
            params.append(("user_id", str(user_id)))
        rows = self._call("list enrolments", lambda: list(self._list(f"courses/{course_id}/enrollments", params)))
        return [_enrollment(r) for r in rows]

    def assignments(self, course_id: int | str) -> list[CanvasAssignment]:
        """The course's assignments (Canvas's order: position), published or not. Practice quizzes and ungraded
        surveys are not assignments, so they are not here."""
        rows = self._call("list assignments", lambda: list(self._list(f"courses/{course_id}/assignments")))
        return [_assignment(r) for r in rows]

    def submissions(
        self,
        course_id: int | str,
        *,
        student_ids: Iterable[int | str] | None = None,
        assignment_ids: Iterable[int | str] = (),
        submitted_since: datetime | None = None,
        graded_since: datetime | None = None,
        workflow_state: str | None = None,
    ) -> list[CanvasSubmission]:
        """Students' submissions of the course's published assignments, in one paginated call series over
        GET /courses/:id/students/submissions (Canvas's order: submission id).

        `student_ids` None asks for every student of the course (`student_ids[]=all`); an empty list asks for
        nobody, so no call is made (Canvas would answer with the caller's own submissions). `assignment_ids`
        empty means all assignments. `submitted_since` / `graded_since` keep submissions handed in / graded
        strictly after that time; Canvas applies both when both are given (an incremental sync needs one call
        series per filter). Raises ValueError for more than MAX_STUDENT_IDS ids, a naive time or an unknown
        workflow_state; CanvasAuthError when Canvas refuses (401: an id that is not a student of the course; 403:
        an assignment id that is not a published assignment of the course); the client's other errors."""
        params: list[tuple[str, Any]]
        if student_ids is None:
            params = [("student_ids[]", "all")]
        else:
            ids = [str(s) for s in student_ids]
            if not ids:
                return []
            if len(ids) > MAX_STUDENT_IDS:
                raise ValueError(f"Canvas takes at most {MAX_STUDENT_IDS} student ids per call, got {len(ids)}")
            params = [("student_ids[]", s) for s in ids]
        params += [("assignment_ids[]", str(a)) for a in assignment_ids]
        if submitted_since is not None:
            params.append(("submitted_since", _iso(submitted_since, "submitted_since")))
        if graded_since is not None:
            params.append(("graded_since", _iso(graded_since, "graded_since")))
        if workflow_state is not None:
            if workflow_state not in SUBMISSION_STATES:
                raise ValueError(f"unknown submission workflow_state {workflow_state!r}")
            params.append(("workflow_state", workflow_state))
        endpoint = f"courses/{course_id}/students/submissions"
        rows = self._call("list submissions", lambda: list(self._list(endpoint, params)))
        return [_submission(r) for r in rows]

    # -------------------------------------------------------------- writes
    def create_user(
        self,
        account_id: int | str,
        name: str,
        login: str,
        email: str,
        sis_user_id: str | None = None,
        auth_provider_id: int | None = None,
        look_first: bool = True,
        send_registration: bool = False,
    ) -> CanvasUser:
        """Create a user with the login `login`, or return the one that already has it.

        With `send_registration` Canvas sends its own registration e-mail (the person finishes registering and
        chooses a password: Canvas's own sign-in); without it the account is registered at once and the person
        signs in through the authentication provider (Feide and the like).

        Look before create: a user whose login_id is `login` is returned as is. With `look_first=False` the
        first try skips that look (the caller has just searched). When the POST times out, loses its connection
        or gets a 5xx, Canvas may have created the user, so the client looks again and returns what it finds;
        only when nobody has the login does it try the POST again (within `max_tries`). When Canvas refuses the
        login as taken (someone created it meanwhile), the user who has it is returned.
        Raises CanvasError (400, with Canvas's `body`) when Canvas refuses otherwise (a SIS id in use, an
        invalid e-mail, a login taken under another authentication provider)."""
        params = [
            ("user[name]", name),
            ("user[skip_registration]", "false" if send_registration else "true"),
            ("pseudonym[unique_id]", login),
            ("pseudonym[send_confirmation]", "true" if send_registration else "false"),
            ("communication_channel[type]", "email"),
            ("communication_channel[address]", email),
            ("communication_channel[skip_confirmation]", "true"),
        ]
        if sis_user_id:
            params.append(("pseudonym[sis_user_id]", sis_user_id))
        if auth_provider_id is not None:
            params.append(("pseudonym[authentication_provider_id]", str(auth_provider_id)))
        look = look_first
        for tries_left in range(self.max_tries, 0, -1):
            if look:
                existing = self._user_with_login(account_id, login)
                if existing is not None:
                    return existing
            look = True
            try:
                data = self._call(
                    "create a user",
                    lambda: self._json("POST", f"accounts/{account_id}/users", params),
                    idempotent=False,
                )
            except CanvasUnavailable:  # includes CanvasOutcomeUnknown: look again before another POST
                if tries_left == 1:
                    raise
                self._sleep(self.retry_base)
                continue
            except CanvasError as exc:
                if _login_taken(exc):  # a concurrent creator won
                    winner = self._user_with_login(account_id, login)
                    if winner is not None:
                        return winner
                raise
            return _user(data)
        raise CanvasUnavailable("could not create the user")  # pragma: no cover - the loop returns or raises

    def _user_with_login(self, account_id: int | str, login: str) -> CanvasUser | None:
        if len(login) < 3:  # Canvas refuses shorter search terms
            return None
        for user in self.find_users(account_id, login):
            if user.login_id is not None and user.login_id.lower() == login.lower():
                return user
        return None

    def update_user(self, user_id: int | str, *, name: str | None = None, email: str | None = None) -> CanvasUser:
        """Change a user's name and/or default e-mail address (PUT users/:id). Safe to repeat, so retried like a
        read. Never touches logins. Raises ValueError when neither is given; CanvasError (400) for an e-mail
        Canvas refuses."""
        params = []
        if name is not None:
            params.append(("user[name]", name))
        if email is not None:
            params.append(("user[email]", email))
        if not params:
            raise ValueError("update_user needs a name or an e-mail address")
        data = self._call("update a user", lambda: self._json("PUT", f"users/{user_id}", params))
        return _user(data)

    def create_section(self, course_id: int | str, name: str, sis_section_id: str | None = None) -> CanvasSection:
        """Create a section, or return the one that already has `sis_section_id` (look before create).

        The POST is not retried: a timeout or dropped connection raises CanvasOutcomeUnknown, a 5xx
        CanvasUnavailable. With a SIS id the caller (the outbox) simply calls again, which looks first; without
        one it must list `sections()` before trying again."""
        params = [("course_section[name]", name)]
        if sis_section_id:
            params.append(("course_section[sis_section_id]", sis_section_id))
            for section in self.sections(course_id):
                if section.sis_section_id == sis_section_id:
                    return section
        data = self._call(
            "create a section",
            lambda: self._json("POST", f"courses/{course_id}/sections", params),
            idempotent=False,
        )
        return _section(data)

    def enrol(
        self, section_id: int | str, user_id: int | str, type: str, limit_to_section: bool = True
    ) -> CanvasEnrollment:
        """Enrol a user in a section, active at once. Safe to repeat: Canvas re-uses a user's enrolment of the
        same type in the same section, so this POST is retried like a read."""
        if type not in ENROLLMENT_TYPES:
            raise ValueError(f"unknown enrollment type {type!r}")
        params = [
            ("enrollment[user_id]", str(user_id)),
            ("enrollment[type]", type),
            ("enrollment[enrollment_state]", "active"),
            ("enrollment[limit_privileges_to_course_section]", "true" if limit_to_section else "false"),
            ("enrollment[notify]", "false"),
        ]
        data = self._call("enrol a user", lambda: self._json("POST", f"sections/{section_id}/enrollments", params))
        return _enrollment(data)

    def conclude(self, course_id: int | str, enrollment_id: int | str) -> CanvasEnrollment:
        """Conclude an enrolment (task=conclude). Safe to repeat, so retried like a read."""
        data = self._call(
            "conclude an enrolment",
            lambda: self._json("DELETE", f"courses/{course_id}/enrollments/{enrollment_id}", [("task", "conclude")]),
        )
        return _enrollment(data)

    # ------------------------------------------------------- group sets and groups
    def group_categories(self, course_id: int | str) -> list[CanvasGroupCategory]:
        """The course's (active) group sets."""
        rows = self._call("list group sets", lambda: list(self._list(f"courses/{course_id}/group_categories")))
        return [_group_category(r) for r in rows]

    def group_category(self, category_id: int | str) -> CanvasGroupCategory:
        """One group set; CanvasNotFound when it is gone (deleted in Canvas)."""
        data = self._call("read a group set", lambda: self._json("GET", f"group_categories/{category_id}"))
        return _group_category(data)

    def create_group_category(self, course_id: int | str, name: str) -> CanvasGroupCategory:
        """Create the course's group set `name`, or return the one that already has it. Canvas keeps group set
        names unique in a course, so this is safe to repeat: a POST whose answer was lost (timeout, dropped
        connection, 5xx) is followed by a look for the name, and only when there is none is it tried again (within
        `max_tries`); Canvas's refusal of the name as in use (someone made it meanwhile) returns that set.
        Self sign-up stays off: the tool places people."""
        for tries_left in range(self.max_tries, 0, -1):
            try:
                data = self._call(
                    "create a group set",
                    lambda: self._json("POST", f"courses/{course_id}/group_categories", [("name", name)]),
                    idempotent=False,
                )
            except CanvasUnavailable:  # includes CanvasOutcomeUnknown: Canvas may have made it
                found = self._category_named(course_id, name)
                if found is not None:
                    return found
                if tries_left == 1:
                    raise
                self._sleep(self.retry_base)
                continue
            except CanvasError as exc:
                if _name_in_use(exc):
                    found = self._category_named(course_id, name)
                    if found is not None:
                        return found
                raise
            return _group_category(data)
        raise CanvasUnavailable("could not create the group set")  # pragma: no cover - the loop returns or raises

    def _category_named(self, course_id: int | str, name: str) -> CanvasGroupCategory | None:
        return next((c for c in self.group_categories(course_id) if c.name == name), None)

    def groups_in_category(self, category_id: int | str) -> list[CanvasGroup]:
        """The group set's (active) groups, without their members."""
        rows = self._call("list groups", lambda: list(self._list(f"group_categories/{category_id}/groups")))
        return [_group(r) for r in rows]

    def group(self, group_id: int | str) -> CanvasGroup:
        """One group (without its members); CanvasNotFound when it does not exist or was deleted."""
        return _group(self._call("read a group", lambda: self._json("GET", f"groups/{group_id}")))

    def create_group(self, category_id: int | str, name: str) -> CanvasGroup:
        """Create a group in the group set (joined by invitation only: the tool places people).

        Canvas does not keep group names unique, so the POST is not retried: a timeout or dropped connection
        raises CanvasOutcomeUnknown, a 5xx CanvasUnavailable, and the caller looks (`groups_in_category`) before it
        creates again. CanvasNotFound when the group set is gone."""
        params = [("name", name), ("join_level", "invitation_only")]
        data = self._call(
            "create a group",
            lambda: self._json("POST", f"group_categories/{category_id}/groups", params),
            idempotent=False,
        )
        return _group(data)

    def update_group(
        self, group_id: int | str, *, name: str | None = None, members: Iterable[int | str] | None = None
    ) -> CanvasGroup:
        """Rename the group and/or set its members (PUT groups/:id). `members` overwrites the membership: users not
        listed leave the group, and an empty list empties it. Canvas leaves out, without an error, ids of users who
        are not in the group's course, so compare the answer's `user_ids` with what was asked. Safe to repeat, so
        retried like a read. Raises ValueError when neither is given; CanvasNotFound when the group is gone."""
        params: list[tuple[str, Any]] = []
        if name is not None:
            params.append(("name", name))
        if members is not None:
            ids = list(dict.fromkeys(str(m) for m in members))
            # `members[]=` with nothing after it is how a form asks for an empty list.
            params += [("members[]", m) for m in ids] if ids else [("members[]", "")]
        if not params:
            raise ValueError("update_group needs a name or members")
        return _group(self._call("update a group", lambda: self._json("PUT", f"groups/{group_id}", params)))

    def delete_group(self, group_id: int | str) -> CanvasGroup:
        """Delete the group (its members leave it). Retried like a read; when a repeated DELETE finds the group
        already gone Canvas answers 404: CanvasNotFound, which callers take as done."""
        return _group(self._call("delete a group", lambda: self._json("DELETE", f"groups/{group_id}")))

    def group_members(self, group_id: int | str) -> list[CanvasUser]:
        """The group's members (GET groups/:id/users)."""
        rows = self._call("list group members", lambda: list(self._list(f"groups/{group_id}/users")))
        return [_user(r) for r in rows]

    # ------------------------------------------------------------ calendar events
    @staticmethod
    def _event_params(
        title: str | None,
        start_at: datetime | None,
        end_at: datetime | None,
        location_name: str | None,
        description: str | None,
    ) -> list[tuple[str, Any]]:
        start_text = _iso(start_at, "start_at") if start_at is not None else None  # ValueError when naive
        end_text = _iso(end_at, "end_at") if end_at is not None else None
        if start_at is not None and end_at is not None and end_at < start_at:
            raise ValueError("a calendar event cannot end before it starts")
        params: list[tuple[str, Any]] = []
        if title is not None:
            params.append(("calendar_event[title]", title))
        if start_text is not None:
            params.append(("calendar_event[start_at]", start_text))
        if end_text is not None:
            params.append(("calendar_event[end_at]", end_text))
        if location_name is not None:
            params.append(("calendar_event[location_name]", location_name))
        if description is not None:
            params.append(("calendar_event[description]", description))
        return params

    def create_calendar_event(
        self,
        context_code: str,
        title: str,
        start_at: datetime,
        end_at: datetime,
        location_name: str | None = None,
        description: str | None = None,
    ) -> CanvasCalendarEvent:
        """Create an event in a course's or group's calendar (`context_code` course_N / group_N; description is
        HTML). Not retried: Canvas would make a second event, so a timeout or dropped connection raises
        CanvasOutcomeUnknown (the caller looks with `calendar_events` before creating again). CanvasNotFound when
        the context does not exist; ValueError for naive times or an end before the start."""
        params = [("calendar_event[context_code]", context_code)]
        params += self._event_params(title, start_at, end_at, location_name, description)
        data = self._call(
            "create a calendar event",
            lambda: self._json("POST", "calendar_events", params),
            idempotent=False,
        )
        return _calendar_event(data)

    def update_calendar_event(
        self,
        event_id: int | str,
        *,
        title: str | None = None,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        location_name: str | None = None,
        description: str | None = None,
    ) -> CanvasCalendarEvent:
        """Change the fields given (an empty string clears a text). Safe to repeat, so retried like a read.
        CanvasNotFound when the event was deleted."""
        params = self._event_params(title, start_at, end_at, location_name, description)
        if not params:
            raise ValueError("update_calendar_event needs something to change")
        data = self._call("update a calendar event", lambda: self._json("PUT", f"calendar_events/{event_id}", params))
        return _calendar_event(data)

    def delete_calendar_event(self, event_id: int | str) -> CanvasCalendarEvent:
        """Delete the event. Retried like a read; an event already deleted is CanvasNotFound (callers: done)."""
        data = self._call("delete a calendar event", lambda: self._json("DELETE", f"calendar_events/{event_id}"))
        return _calendar_event(data)

    def _event_rows(self, params: list[tuple[str, Any]]) -> list[Any]:
        return self._call("list calendar events", lambda: list(self._list("calendar_events", params)))

    def calendar_events(
        self, context_codes: Iterable[str], start: datetime | None = None, end: datetime | None = None
    ) -> list[CanvasCalendarEvent]:
        """The (active) events of the contexts. Without `start` and `end`, all of them (`all_events=true`); else
        those between the two (`start_date`/`end_date`; either may be left out). Canvas takes a limited number of
        context codes per call, so they are asked MAX_CONTEXT_CODES at a time. Contexts that do not exist are left
        out by Canvas, not refused."""
        codes = list(dict.fromkeys(context_codes))
        window: list[tuple[str, Any]] = [("type", "event")]
        if start is None and end is None:
            window.append(("all_events", "true"))
        if start is not None:
            window.append(("start_date", _iso(start, "start")))
        if end is not None:
            window.append(("end_date", _iso(end, "end")))
        events: list[CanvasCalendarEvent] = []
        for i in range(0, len(codes), MAX_CONTEXT_CODES):
            params = [("context_codes[]", c) for c in codes[i : i + MAX_CONTEXT_CODES]] + window
            events += [_calendar_event(r) for r in self._event_rows(params)]
        return events


__all__ = [
    "MAX_CONTEXT_CODES",
    "MAX_STUDENT_IDS",
    "CanvasAccount",
    "CanvasAssignment",
    "CanvasCalendarEvent",
    "CanvasClient",
    "CanvasEnrollment",
    "CanvasGroup",
    "CanvasGroupCategory",
    "CanvasProfile",
    "CanvasSection",
    "CanvasSubmission",
    "CanvasUser",
]
