"""The licence administrator's pages (seats, people, CSV import, orders and receipts, other administrators) under
``/admin/<organisation id>/<programme id>/…``.

Who may open them is decided on every request from the database (``admin_request``), for both ways in: a
magic-link session (lti_tool/views/signin.py, ``kind: licence_admin``) and a Canvas launch of someone who also
administers licences. The token comes as launch.js sends it (``X-Launch-Token`` or the ``lt`` field), never from
an address; a GET without one (a reload) gets the page that posts the kept token back. Every change is a POST that
carries the token (which another site cannot know: no CSRF) and an ``action`` field, so opening a page (launch.js
posts only the token) never changes anything. A refusal answers with the page, its message in a ``role="alert"``
region and a 4xx; the request boundary then rolls back, so nothing is written.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal
from flask import Blueprint, Response, g, render_template, request, url_for
from flask.typing import ResponseReturnValue

from kurspakke.licences import admins, csv_import, queries
from kurspakke.licences.models import CanvasStatus, Seat
from kurspakke.licences.seating import PersonInput, assign_person, edit_person, reassign, revoke_person
from kurspakke.licences.services import LicenceError, audit, seat_pool
from kurspakke.models import Organisation
from kurspakke.outbox.services import retry
from kurspakke.programmes import Programme
from kurspakke.services.magic_links import AdministeredProgramme, administered
from lti_tool.i18n import current_locale, gettext
from lti_tool.i18n_marker import N_
from lti_tool.lti.errors import LtiRefusal
from lti_tool.services import commit, db, read_launch_token, services, state_store
from lti_tool.views.context import TOKEN_FIELD, launch_token_of_request, open_launch
from lti_tool.views.signin import SESSION_KIND, session_of

bp = Blueprint("licence_admin", __name__, url_prefix="/admin")

# --- texts --------------------------------------------------------------------------------------------------------

# LicenceError keys (kurspakke.licences) -> (English msgid, HTTP status). Params fill the %(name)s placeholders.
LICENCE_MESSAGES: dict[str, tuple[str, int]] = {
    "no_free_seats": (
        N_("No free licences: every seat the organisation bought is assigned. Order more, or revoke a seat first."),
        409,
    ),
    "already_assigned": (N_("This person already holds a licence of the organisation in this programme."), 409),
    "name_missing": (N_("Enter the person's name."), 422),
    "name_too_long": (N_("The name is too long (at most %(maximum)s characters)."), 422),
    "email_invalid": (N_("“%(email)s” is not a valid e-mail address."), 422),
    "email_taken": (N_("Another person in the tool already has the e-mail address %(email)s."), 409),
    "workplace_too_long": (N_("The workplace is too long (at most %(maximum)s characters)."), 422),
    "text_too_long": (N_("A field is too long (at most %(maximum)s characters)."), 422),
    "sis_id_invalid": (N_("The SIS id may not contain spaces (at most 255 characters)."), 422),
    "login_id_invalid": (N_("The Canvas login may not contain spaces (at most 255 characters)."), 422),
    "seat_already_revoked": (N_("This licence has already been revoked."), 409),
    "csv_encoding": (
        N_("The file is not text in UTF-8 or Windows-1252. In Excel, save it as “CSV UTF-8 (comma delimited)”."),
        422,
    ),
    "csv_header": (
        N_(
            "The first row must name the columns: %(expected)s (sis_id and login_id are optional). "
            "Missing: %(missing)s. Unknown: %(unknown)s. Repeated: %(duplicate)s."
        ),
        422,
    ),
    "csv_empty": (N_("The file has no rows of people."), 422),
    "csv_too_large": (N_("The file is too large: at most %(maximum_mb)s MB and %(maximum_rows)s rows."), 413),
    "csv_malformed": (N_("Row %(row)s cannot be read as CSV (check the quotation marks)."), 422),
    "csv_duplicate": (N_("%(email)s is already on row %(first_row)s."), 422),
    "csv_row_extra_cells": (N_("The row has more cells than the %(expected)s columns of the first row."), 422),
    "seats_missing": (
        N_(
            "%(missing)s licences are missing: %(needed)s new people need a licence and %(free)s are free. "
            "Nothing was imported."
        ),
        409,
    ),
    "admin_already": (N_("%(email)s is already a licence administrator of the organisation."), 409),
    "admin_not_found": (N_("That person is not a licence administrator of the organisation."), 404),
    "last_admin": (
        N_("The organisation's last licence administrator cannot be removed. Add another administrator first."),
        409,
    ),
}
UNKNOWN_REFUSAL = N_("The change was refused.")

# seating.status_of -> label (the licence administrator's "venter", "aktiv i Canvas", "feilet: …").
STATUS_LABELS = {
    "pending": N_("waiting"),
    "active": N_("active in Canvas"),
    "never_signed_in": N_("never signed in"),
    "failed": N_("failed: %(error)s"),
    "concluded": N_("concluded"),
    "expired": N_("expired"),
    "revoked": N_("revoked"),
}

ORDER_STATUS = {
    "pending": N_("waiting for confirmation"),
    "confirmed": N_("confirmed"),
    "cancelled": N_("cancelled"),
    "credited": N_("credited"),
}

EXPORT_HEADER = {
    "name": N_("name"),
    "email": N_("e-mail"),
    "workplace": N_("workplace"),
    "status": N_("status"),
    "canvas_error": N_("Canvas error"),
    "last_activity": N_("last active in Canvas"),
    "assigned": N_("assigned"),
    "valid_until": N_("valid until"),
}


class _Params(dict[str, Any]):
    """A refusal's params for its message; one the message names but the error did not carry reads as "?"."""

    def __missing__(self, key: str) -> str:
        return "?"


def licence_message(key: str, params: dict[str, Any]) -> tuple[str, int]:
    """A refusal's message in the user's language, and its HTTP status."""
    message, status = LICENCE_MESSAGES.get(key, (UNKNOWN_REFUSAL, 400))
    text = gettext(message)
    if "%(" in text:
        values = {k: ", ".join(map(str, v)) or "–" if isinstance(v, list | tuple) else v for k, v in params.items()}
        text = text % _Params(values)
    return text, status


def status_label(status: str, error: str | None = None) -> str:
    label = STATUS_LABELS.get(status, status)
    if status == "failed":
        return gettext(label, error=error or "?")
    return gettext(label)


@bp.app_template_filter("money")
def money(ore: int) -> str:
    """Integer øre as kroner with two decimals: "375,00 kr" (nb), "375.00 kr" (en)."""
    return format_decimal(Decimal(ore) / 100, format="#,##0.00", locale=current_locale()) + " kr"


PAGE = "/<int:org_id>/<programme_id>"
# The CSV import may carry a file of up to csv_import.MAX_BYTES (and, on apply, that file again in base64).
IMPORT_REQUEST_BYTES = csv_import.MAX_BYTES * 2 + 64 * 1024


@dataclass
class AdminRequest:
    """Who this request is and which (organisation, programme) pairs they administer, as the database says now.
    ``token`` is what base.html hands to launch.js."""

    launch_id: str
    token: str
    person_id: int
    name: str
    email: str
    via_canvas: bool
    pairs: list[AdministeredProgramme] = field(default_factory=list)

    @property
    def actor(self) -> str:
        return f"licence_admin:{self.person_id}:{self.email}"

    @property
    def home_url(self) -> str:
        return url_for("app.page", view="licences") if self.via_canvas else url_for("signin.home")

    def may(self, organisation_id: int, programme_id: str) -> bool:
        return any(p.organisation_id == organisation_id and p.programme_id == programme_id for p in self.pairs)


def admin_request() -> AdminRequest:
    """The licence administrator making this request, from a magic-link session or a Canvas launch, with the pairs
    they administer read from the database now (never from the client). For a Canvas launch only the launched
    course's programme counts. Raises LtiRefusal: 401 without a valid token, 403 when the person administers
    nothing."""
    if "licence_admin" in g:
        who: AdminRequest = g.licence_admin
        return who
    token = launch_token_of_request()
    launch_id = read_launch_token(token)
    data = state_store().get_launch(launch_id) if launch_id is not None else None
    if launch_id is None or data is None:
        raise LtiRefusal("launch_token_invalid", status=401)
    if data.get("kind") == SESSION_KIND:
        signed_in = session_of(launch_id, token, data)
        if signed_in is None:
            raise LtiRefusal("launch_token_invalid", status=401)
        person = signed_in.person
        who = AdminRequest(launch_id, token, person.id, person.name, person.email, via_canvas=False)
        who.pairs = administered(db(), person.id)
    else:
        ctx = open_launch(launch_id, token)
        if ctx.person is None or ctx.course_link is None:
            raise LtiRefusal("forbidden", status=403)
        who = AdminRequest(launch_id, token, ctx.person.id, ctx.person.name, ctx.person.email, via_canvas=True)
        programme_id = ctx.course_link.programme_id
        who.pairs = [p for p in administered(db(), ctx.person.id) if p.programme_id == programme_id]
    if not who.pairs:
        raise LtiRefusal("forbidden", status=403)
    g.licence_admin = who
    return who


@dataclass
class Pool:
    """The page's organisation and programme, checked against the administrator's pairs."""

    who: AdminRequest
    organisation: Organisation
    programme: Programme

    def url(self, endpoint: str, **values: Any) -> str:
        return url_for(
            f"licence_admin.{endpoint}", org_id=self.organisation.id, programme_id=self.programme.id, **values
        )


def _pool(org_id: int, programme_id: str) -> Pool:
    """Raises LtiRefusal(403) for an organisation or programme this person does not administer — also one that
    does not exist, so a guessed id tells nothing."""
    who = admin_request()
    programme = services().programmes.get(programme_id)
    organisation = db().get(Organisation, org_id)
    if programme is None or organisation is None or not who.may(org_id, programme_id):
        raise LtiRefusal("forbidden", status=403)
    return Pool(who, organisation, programme)


@bp.before_request
def _before() -> ResponseReturnValue | None:
    """Tokens never travel in addresses: one that does is ended and refused. A GET without a token (a reload, a
    copied address) gets the page that posts the token this tab kept."""
    if request.endpoint == "licence_admin.csv_import":
        request.max_content_length = IMPORT_REQUEST_BYTES
        request.max_form_memory_size = IMPORT_REQUEST_BYTES
    if TOKEN_FIELD in request.args:
        launch_id = read_launch_token(request.args.get(TOKEN_FIELD, ""))
        if launch_id is not None and state_store().end_launch(launch_id):
            commit()
        raise LtiRefusal("launch_token_in_address", detail="launch token in the address")
    if request.method == "GET" and not launch_token_of_request():
        return render_template("licence_admin/resume.html")
    return None


def _render(pool: Pool, template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    html = render_template(
        f"licence_admin/{template}",
        ctx=pool.who,
        pool=pool,
        programme=pool.programme,
        organisation=pool.organisation,
        order_status=ORDER_STATUS,
        status=lambda row: status_label(row.status, row.canvas_error),
        reason=_reason,
        **context,
    )
    return html, status


def _action() -> str:
    return request.form.get("action", "") if request.method == "POST" else ""


def _person_input() -> PersonInput:
    form = request.form
    return PersonInput(
        name=form.get("name", "")[:1000],
        email=form.get("email", "")[:1000],
        workplace=form.get("workplace", "")[:1000],
        sis_user_id=form.get("sis_id", "")[:1000] or None,
        login_id=form.get("login_id", "")[:1000] or None,
    )


def _error(exc: LicenceError) -> tuple[dict[str, str], int]:
    message, status = licence_message(exc.key, exc.params)
    return {"message": message, "field": _FIELD_OF.get(exc.key, "")}, status


_FIELD_OF = {
    "name_missing": "name",
    "name_too_long": "name",
    "email_invalid": "email",
    "email_taken": "email",
    "already_assigned": "email",
    "admin_already": "email",
    "workplace_too_long": "workplace",
    "text_too_long": "workplace",
    "sis_id_invalid": "sis_id",
    "login_id_invalid": "login_id",
}


# --- overview -----------------------------------------------------------------------------------------------------


@bp.route(PAGE + "/", methods=["GET", "POST"])
def overview(org_id: int, programme_id: str) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    session = db()
    notice = error = None
    status = 200
    if _action() == "retry":
        step = queries.parked_step_of(session, _int(request.form.get("step")), org_id, programme_id)
        if step is None:
            error, status = gettext("That Canvas step is not waiting for a retry (any more)."), 404
        else:
            seat_id = int(step.subject.split(":", 1)[1])
            retry(session, step.id)
            seat = session.get(Seat, seat_id)
            if seat is not None and seat.canvas_status is CanvasStatus.FAILED:
                # "feilet: …" becomes "venter" while the step runs again; the worker sets the outcome.
                seat.canvas_status, seat.canvas_error = CanvasStatus.PENDING, None
            audit(
                session,
                actor=pool.who.actor,
                action="seat.retry",
                entity_type="seat",
                entity_id=seat_id,
                before={"step": step.id, "error": step.last_error},
                after={"step": step.id, "status": "pending"},
            )
            notice = gettext("The Canvas step is queued again.")
    return _render(
        pool,
        "overview.html",
        status,
        seats=seat_pool(session, pool.organisation, programme_id),
        orders=queries.orders(session, org_id, programme_id),
        parked=queries.parked_seat_steps(session, org_id, programme_id),
        notice=notice,
        error=error,
    )


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 19 else 0


@bp.route(PAGE + "/orders/<int:order_id>", methods=["GET", "POST"])
def receipt(org_id: int, programme_id: str, order_id: int) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    order = queries.order_of(db(), order_id, org_id, programme_id)
    if order is None:
        raise LtiRefusal("not_found", status=404)
    return _render(pool, "receipt.html", order=order)


# --- people -------------------------------------------------------------------------------------------------------


@bp.route(PAGE + "/people", methods=["GET", "POST"])
def people(org_id: int, programme_id: str) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    rows = queries.people(db(), org_id, programme_id, include_revoked=True)
    return _render(pool, "people.html", rows=rows, never_signed_in=False)


@bp.route(PAGE + "/people/never-signed-in", methods=["GET", "POST"])
def never_signed_in(org_id: int, programme_id: str) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    rows = queries.people(db(), org_id, programme_id, never_signed_in=True)
    return _render(pool, "people.html", rows=rows, never_signed_in=True)


@bp.post(PAGE + "/people/export")
def export(org_id: int, programme_id: str) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    rows = queries.people(db(), org_id, programme_id, include_revoked=True)
    header = [gettext(EXPORT_HEADER[column]) for column in queries.EXPORT_COLUMNS]
    body = queries.people_csv(rows, header, lambda row: status_label(row.status, row.canvas_error))
    stem = gettext("people")
    filename = f"{stem}-{pool.organisation.orgnr}-{programme_id}.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@bp.route(PAGE + "/assign", methods=["GET", "POST"])
def assign(org_id: int, programme_id: str) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    session = db()
    values: dict[str, str] = {}
    if _action() == "assign":
        raw = _person_input()
        values = {k: request.form.get(k, "")[:1000] for k in ("name", "email", "workplace", "sis_id", "login_id")}
        try:
            seat = assign_person(session, pool.organisation, pool.programme, raw, actor=pool.who.actor)
        except LicenceError as exc:
            error, status = _error(exc)
            free = seat_pool(session, pool.organisation, programme_id)
            return _render(pool, "assign.html", status, values=values, error=error, seats=free)
        notice = gettext("%(name)s has a licence. The Canvas enrolment is on its way.", name=seat.person.name)
        return _render(
            pool, "assign.html", values={}, notice=notice, seats=seat_pool(session, pool.organisation, programme_id)
        )
    return _render(pool, "assign.html", values=values, seats=seat_pool(session, pool.organisation, programme_id))


def _seat(pool: Pool, seat_id: int) -> Seat:
    """Raises LtiRefusal(404) for a seat of another pool (a guessed id) or one that does not exist."""
    seat = queries.seat_of(db(), seat_id, pool.organisation.id, pool.programme.id)
    if seat is None:
        raise LtiRefusal("not_found", status=404)
    return seat


@bp.route(PAGE + "/seats/<int:seat_id>/edit", methods=["GET", "POST"])
def edit(org_id: int, programme_id: str, seat_id: int) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    seat = _seat(pool, seat_id)
    values = {"name": seat.person.name, "email": seat.person.email, "workplace": seat.workplace}
    if _action() == "edit":
        values = {k: request.form.get(k, "")[:1000] for k in ("name", "email", "workplace")}
        try:
            edit_person(db(), seat, actor=pool.who.actor, **values)
        except LicenceError as exc:
            error, status = _error(exc)
            return _render(pool, "seat_edit.html", status, seat=seat, values=values, error=error)
        return _render(pool, "seat_edit.html", seat=seat, values=values, notice=gettext("The changes are saved."))
    return _render(pool, "seat_edit.html", seat=seat, values=values)


@bp.route(PAGE + "/seats/<int:seat_id>/revoke", methods=["GET", "POST"])
def revoke(org_id: int, programme_id: str, seat_id: int) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    seat = _seat(pool, seat_id)
    if _action() == "revoke":
        try:
            revoke_person(db(), seat, actor=pool.who.actor)
        except LicenceError as exc:
            error, status = _error(exc)
            return _render(pool, "seat_revoke.html", status, seat=seat, error=error)
        return _render(pool, "seat_revoke.html", seat=seat, done=True)
    return _render(pool, "seat_revoke.html", seat=seat)


@bp.route(PAGE + "/seats/<int:seat_id>/reassign", methods=["GET", "POST"])
def reassign_seat(org_id: int, programme_id: str, seat_id: int) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    seat = _seat(pool, seat_id)
    values: dict[str, str] = {}
    if _action() == "reassign":
        values = {k: request.form.get(k, "")[:1000] for k in ("name", "email", "workplace", "sis_id", "login_id")}
        try:
            new = reassign(db(), seat, pool.programme, _person_input(), actor=pool.who.actor)
        except LicenceError as exc:
            error, status = _error(exc)
            return _render(pool, "seat_reassign.html", status, seat=seat, values=values, error=error)
        return _render(pool, "seat_reassign.html", seat=seat, values={}, new=new)
    return _render(pool, "seat_reassign.html", seat=seat, values=values)


# --- CSV import ---------------------------------------------------------------------------------------------------


@bp.route(PAGE + "/import", methods=["GET", "POST"], endpoint="csv_import")
def import_csv(org_id: int, programme_id: str) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    session = db()
    action = _action()
    if action not in ("preview", "apply"):
        return _render(pool, "import.html")
    if action == "preview":
        upload = request.files.get("file")
        data = upload.read(csv_import.MAX_BYTES + 1) if upload is not None else b""
        if not data:
            return _render(pool, "import.html", 422, error=gettext("Choose a CSV file to import."))
    else:
        try:
            data = base64.b64decode(request.form.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            data = b""
        if not data:
            return _render(pool, "import.html", 422, error=gettext("Choose a CSV file to import."))
    try:
        parsed = csv_import.read_csv(data)
        if action == "preview":
            shown = csv_import.preview(session, pool.organisation, pool.programme, parsed)
            encoded = base64.b64encode(data).decode("ascii")
            return _render(pool, "import.html", preview=shown, data=encoded)
        result = csv_import.apply(session, pool.organisation, pool.programme, parsed, actor=pool.who.actor)
    except LicenceError as exc:
        message, status = licence_message(exc.key, exc.params)
        return _render(pool, "import.html", status, error=message)
    return _render(pool, "import.html", result=result)


def _reason(outcome: csv_import.RowOutcome) -> str:
    if outcome.reason is None:
        return ""
    return licence_message(outcome.reason.key, outcome.reason.params)[0]


# --- other administrators -----------------------------------------------------------------------------------------


@bp.route(PAGE + "/administrators", methods=["GET", "POST"])
def administrators(org_id: int, programme_id: str) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    session = db()
    action, values = _action(), {}
    notice: str | None = None
    error: dict[str, str] | None = None
    status = 200
    try:
        if action == "add":
            values = {k: request.form.get(k, "")[:1000] for k in ("name", "email")}
            person = admins.add_administrator(session, pool.organisation, programme_id, actor=pool.who.actor, **values)
            notice, values = gettext("%(name)s is now a licence administrator.", name=person.name), {}
        elif action == "remove":
            person_id = _int(request.form.get("person"))
            admins.remove_administrator(session, pool.organisation, programme_id, person_id, actor=pool.who.actor)
            if person_id == pool.who.person_id:
                # Their own role is gone: this session administers the organisation no longer.
                return _removed_self(pool)
            notice = gettext("The licence administrator is removed.")
    except LicenceError as exc:
        error, status = _error(exc)
    rows = admins.administrators(session, org_id, programme_id)
    return _render(pool, "administrators.html", status, rows=rows, values=values, notice=notice, error=error)


def _removed_self(pool: Pool) -> ResponseReturnValue:
    return render_template(
        "licence_admin/removed_self.html", ctx=pool.who, programme=pool.programme, organisation=pool.organisation
    )


# Further pages of this blueprint live in their own modules; importing them registers their routes.
from lti_tool.views import licence_admin_certificates, licence_admin_groups, licence_admin_progress  # noqa: E402, F401
