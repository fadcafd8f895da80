"""LTI Advantage Assignment and Grade Services (AGS 2.0) for the course certificate: a "Kursbevis" line item in the
Canvas course and a completion score per participant, posted by a worker without a live launch.

The line-items URL comes from a launch's `https://purl.imsglobal.org/spec/lti-ags/claim/endpoint` claim
(`lineitems`, stored on the course link); the token comes from the client-credentials grant with the tool's key
through `ToolServiceConnector` (cached per issuer, client id and scopes in the shared cache).

Why not pylti1p3's `ServiceConnector.make_service_request` / `AssignmentsGradesService`: they raise one opaque
`LtiServiceException` for every non-2xx answer, parse bodies as JSON unconditionally and cannot retry a request
with a fresh token. A worker must tell "try again later" from "Canvas will never accept this", so the calls here
use the connector's token and its requests session directly (the session carries the configured timeout).

Canvas specifics relied on (Canvas LMS source and API docs, "Line Items", "Score", "Assignment and Grade Services":
Common Error Codes):
- GET line items: filters `tag`, `resource_id`, `resource_link_id`; `limit` is taken as the page size; Link-header
  pagination (rel="next" among current/prev/first/last), absolute URLs on the host that was called.
- POST line item: 201 with the line item; its `id` is its URL. Without resourceLinkId Canvas creates a placeholder
  assignment named by `label` (what students see).
- POST score: 200 `{"resultUrl": ...}`. Canvas sets the result's updated_at to the score's `timestamp` and answers
  400 "Provided timestamp of X before last updated timestamp of Y" only when the new timestamp is *earlier*; a repeat
  with the same timestamp is applied again (same score), so both count as "the completion is there".
  422 "User not found in course or is not a student"; 404 "The specified resource does not exist." for a line item
  that is gone; 401 for an expired or unknown token (and for a missing scope: "Insufficient permissions").
- Error bodies: `{"errors": {"type": ..., "message": ...}}` from the LTI services, `{"errors": [{"message": ...}]}`
  from Canvas's generic API error handling (404s), plain text or HTML from the throttle and proxies.
- A repeated completion carrying a `comment` adds the comment to the submission again (Canvas appends a submission
  comment per score with a comment); callers that must avoid that should not send a comment on retries.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from pylti1p3.exception import LtiServiceException

from course_sync.lti_services import LtiServiceError, TimeoutSession, ToolServiceConnector

log = logging.getLogger("kurspakke.ags")

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
MT_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MT_LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MT_SCORE = "application/vnd.ims.lis.v1.score+json"

# One token for both calls: the worker creates the line item and posts scores in the same run, so asking for both
# scopes every time keeps it at one cached token (one token request) instead of two.
AGS_SCOPES = (SCOPE_LINEITEM, SCOPE_SCORE)
# Canvas's largest page (Api::MAX_PER_PAGE); Canvas takes AGS's `limit` as per_page for line items.
PAGE_SIZE = 100
# A container that keeps answering rel="next" must not keep a worker busy for ever.
MAX_PAGES = 200
# Only used when the connector's session is not a TimeoutSession (which already applies its own timeout).
DEFAULT_TIMEOUT_SECONDS = 10.0
ERROR_TEXT_LIMIT = 300
_STALE_TIMESTAMP = re.compile(r"before last updated timestamp", re.IGNORECASE)
_LINK = re.compile(r"<([^>]*)>\s*((?:;[^,<]*)*)")
_REL_NEXT = re.compile(r';\s*rel\s*=\s*"?([^";]*)"?', re.IGNORECASE)


class AgsRetryable(Exception):
    """Canvas did not answer usefully now (5xx, throttled, timeout, dropped connection): try again later."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AgsRefused(Exception):
    """Canvas refused, and will refuse the same request again (4xx, or an answer that is not what AGS promises).

    `status` is Canvas's HTTP status (None when the answer itself was unusable); 404 on a score means the line item
    is gone, so the caller may create it again."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def ags_available(scopes: Iterable[str]) -> bool:
    """True when the launch's AGS claim granted both scopes this module needs."""
    granted = set(scopes)
    return SCOPE_LINEITEM in granted and SCOPE_SCORE in granted


def ensure_line_item(
    connector: ToolServiceConnector,
    lineitems_url: str,
    *,
    label: str,
    tag: str,
    resource_id: str,
    score_maximum: float = 1.0,
) -> str:
    """The URL (`id`) of the course's line item with this resourceId and tag, created if there is none.

    Looks before it creates, so a worker retried after a crash (or after a POST whose answer was lost) finds the
    line item it made instead of making a second one. Raises AgsRetryable or AgsRefused."""
    _check_url(lineitems_url, what="line items URL")
    url: str | None = _with_query(lineitems_url, {"resource_id": resource_id, "tag": tag, "limit": str(PAGE_SIZE)})
    seen: set[str] = set()
    while url is not None:
        if url in seen or len(seen) >= MAX_PAGES:
            raise AgsRefused(f"Canvas's line item pages do not end (at {url})")
        seen.add(url)
        resp = _call(connector, "GET", url, accept=MT_LINEITEM_CONTAINER)
        _raise_for_status(resp, "listing line items")
        items = _json(resp, "line item container")
        if not isinstance(items, list):
            raise AgsRefused(f"Canvas answered the line item list with {type(items).__name__}, not a JSON array")
        for item in items:
            # Match on our own keys too: a platform (or an older Canvas) may ignore the filters.
            if isinstance(item, dict) and item.get("resourceId") == resource_id and item.get("tag") == tag:
                return _line_item_id(item, lineitems_url)
        url = _next_link(resp, lineitems_url)

    body = {"label": label, "scoreMaximum": score_maximum, "resourceId": resource_id, "tag": tag}
    resp = _call(connector, "POST", lineitems_url, accept=MT_LINEITEM, content_type=MT_LINEITEM, body=body)
    _raise_for_status(resp, "creating the line item")
    created = _json(resp, "line item")
    item_id = _line_item_id(created, lineitems_url)
    log.info("created AGS line item %s (resourceId=%s, tag=%s)", item_id, resource_id, tag)
    return item_id


def post_completion(
    connector: ToolServiceConnector,
    lineitem_url: str,
    *,
    user_id: str,
    timestamp: datetime,
    comment: str | None = None,
) -> None:
    """Record that the user (their LTI `sub`) completed: full score on the line item, FullyGraded.

    `timestamp` is when the completion happened (the certificate's issue time), not "now": a retry then sends the
    same score with the same timestamp, which Canvas applies again (same result), and a completion older than a
    score Canvas already holds is answered 400 "before last updated timestamp" — also taken as done, since a newer
    score for this line item is already there. Raises AgsRetryable or AgsRefused."""
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    _check_url(lineitem_url, what="line item URL")
    body: dict[str, Any] = {
        "userId": user_id,
        "scoreGiven": 1,
        "scoreMaximum": 1,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": _iso_millis(timestamp),
    }
    if comment:
        body["comment"] = comment
    url = _scores_url(lineitem_url)
    resp = _call(connector, "POST", url, accept="application/json", content_type=MT_SCORE, body=body)
    if resp.status_code == 400 and _STALE_TIMESTAMP.search(_error_text(resp)):
        log.info("AGS completion for %s on %s already superseded: %s", user_id, lineitem_url, _error_text(resp))
        return
    _raise_for_status(resp, "posting the completion")


# ------------------------------------------------------------------ HTTP
def _call(
    connector: ToolServiceConnector,
    method: str,
    url: str,
    *,
    accept: str,
    content_type: str | None = None,
    body: Mapping[str, Any] | None = None,
) -> requests.Response:
    """One AGS request; on 401 the cached token is dropped and the request sent once more with a fresh one (Canvas
    tokens live an hour and our cache may hold one Canvas already forgot). A second 401 is returned as is."""
    session: requests.Session = connector._requests_session
    # TimeoutSession applies the configured timeout itself; any other session gets ours, so no call can hang.
    extra: dict[str, Any] = {} if isinstance(session, TimeoutSession) else {"timeout": DEFAULT_TIMEOUT_SECONDS}
    data = json.dumps(body) if body is not None else None
    resp: requests.Response | None = None
    for attempt in (1, 2):
        headers = {"Authorization": f"Bearer {_token(connector)}", "Accept": accept}
        if content_type is not None:
            headers["Content-Type"] = content_type
        try:
            resp = session.request(method, url, headers=headers, data=data, allow_redirects=False, **extra)
        except (requests.Timeout, requests.ConnectionError) as exc:
            # For a POST the outcome is unknown; retrying is safe: line items are looked up before they are created
            # and a completion score is the same score again.
            raise AgsRetryable(f"{method} {url}: no answer from Canvas ({exc.__class__.__name__}: {exc})") from exc
        except requests.RequestException as exc:
            raise AgsRefused(f"{method} {url}: request failed ({exc.__class__.__name__}: {exc})") from exc
        if resp.status_code != 401 or attempt == 2:
            break
        log.info("AGS %s %s answered 401 (%s); fetching a new token", method, url, _error_text(resp))
        _forget_token(connector)
    assert resp is not None
    return resp


def _token(connector: ToolServiceConnector) -> str:
    try:
        return connector.get_access_token(list(AGS_SCOPES))
    except LtiServiceError as exc:
        cause = exc.__cause__
        status: int | None = None
        if isinstance(cause, LtiServiceException):
            status = cause.response.status_code
        if isinstance(cause, requests.RequestException) or status is None or _retryable_status(status, ""):
            raise AgsRetryable(f"no AGS access token: {exc}", status=status) from exc
        # 400/401 from the token endpoint: the developer key is off, lacks the AGS scopes, or does not know our key.
        raise AgsRefused(f"no AGS access token: {exc}", status=status) from exc


def _forget_token(connector: ToolServiceConnector) -> None:
    # The shared cache has get/set only; an empty value reads as "no token" (pylti1p3 fetches when the cached token
    # is falsy) and is replaced by the fresh token the next call caches.
    connector._cache.set(connector._scope_key(sorted(AGS_SCOPES)), "", 1)


def _retryable_status(status: int, text: str) -> bool:
    # Canvas's throttle has long answered 403 "Rate Limit Exceeded" (newer: 429); a 403 for anything else is final.
    return status in (408, 425, 429) or status >= 500 or (status == 403 and "rate limit exceeded" in text.lower())


def _raise_for_status(resp: requests.Response, doing: str) -> None:
    if 200 <= resp.status_code < 300:
        return
    text = _error_text(resp)
    message = f"Canvas answered {resp.status_code} {doing} ({resp.request.method} {resp.url}): {text}"
    if _retryable_status(resp.status_code, text):
        raise AgsRetryable(message, status=resp.status_code)
    raise AgsRefused(message, status=resp.status_code)


def _error_text(resp: requests.Response) -> str:
    """Canvas's error message(s): `{"errors": {"type", "message"}}`, `{"errors": [{"message"}]}`, `{"error": ...}`,
    else the start of the body."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    messages: list[str] = []
    if isinstance(data, dict):
        errors = data.get("errors")
        entries = errors if isinstance(errors, list) else [errors]
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("message"), str):
                messages.append(entry["message"])
            elif isinstance(entry, str):
                messages.append(entry)
        if not messages and isinstance(data.get("error"), str):
            messages.append(data["error"])
    if messages:
        return "; ".join(messages)[:ERROR_TEXT_LIMIT]
    text = " ".join(resp.text.split())
    return text[:ERROR_TEXT_LIMIT] or "(empty body)"


def _json(resp: requests.Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError as exc:
        raise AgsRefused(f"Canvas's {what} is not JSON ({resp.url}): {resp.text[:ERROR_TEXT_LIMIT]!r}") from exc


# ------------------------------------------------------------------ URLs
def _check_url(url: str, *, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise AgsRefused(f"{what} is not an absolute http(s) URL: {url!r}")


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def _line_item_id(item: Any, lineitems_url: str) -> str:
    if not isinstance(item, dict):
        raise AgsRefused(f"Canvas's line item is {type(item).__name__}, not a JSON object")
    item_id = item.get("id")
    if not isinstance(item_id, str):
        raise AgsRefused(f"Canvas's line item has no id URL: {item_id!r}")
    _check_url(item_id, what="Canvas's line item id")
    # We send the course's bearer token to this URL later: it must be Canvas's own host, as Canvas makes it.
    if not _same_origin(item_id, lineitems_url):
        raise AgsRefused(f"Canvas's line item id {item_id!r} is not on the line items URL's host")
    return item_id


def _with_query(url: str, params: Mapping[str, str]) -> str:
    """`url` with `params` set in its query string; its other parameters are kept in order."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*kept, *params.items()])))


def _scores_url(lineitem_url: str) -> str:
    """`<lineitem>/scores`, before any query string (AGS 2.0: the score service is the line item URL + /scores)."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def _next_link(resp: requests.Response, lineitems_url: str) -> str | None:
    header = resp.headers.get("Link", "")
    for match in _LINK.finditer(header):
        rels = {rel.lower() for m in _REL_NEXT.finditer(match.group(2)) for rel in m.group(1).split()}
        if "next" in rels:
            url = match.group(1).strip()
            # The bearer token goes with it: follow only Canvas's own host.
            if not _same_origin(url, lineitems_url):
                raise AgsRefused(f"Canvas's next-page link {url!r} is not on the line items URL's host")
            return url
    return None


def _iso_millis(ts: datetime) -> str:
    # AGS asks for sub-second precision; Canvas compares it with the stored result's timestamp, so the same
    # completion must always render the same string.
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
