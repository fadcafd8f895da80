"""The course owner's business pages (orders, organisations, parked Canvas steps, sales) and the public order form.

Owner pages live inside Canvas like the role views: every request carries the launch token (posted by launch.js,
never in the address), a GET without it gets the resume page, and every change is a POST. Who may open them is
decided on every request by kurspakke.licences.visibility: a fresh course owner of the programme's course on a
Canvas the seller registered for provisioning — an Instructor on any other Canvas gets a 403 and sees nothing.

The order form (``/order``) is public: no session, no token. It refuses posts another site made (Sec-Fetch-Site,
Origin) and writes nothing on any refusal (the request boundary rolls back every answer >= 400).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from kurspakke.licences.admins import AdminError, add_administrator, administrators, remove_administrator
from kurspakke.licences.models import Order, OrderSource, OrderStatus, SeatPool
from kurspakke.licences.order_form import (
    MAX_PENDING_FORM_ORDERS,
    NameUnchanged,
    OrderFormInvalid,
    TooManyPendingOrders,
    confirm,
    parse_order,
    place_order,
    rename_organisation,
)
from kurspakke.licences.organisations import OrganisationError, set_details
from kurspakke.licences.sales import format_kr, monthly_sales, sales_csv, sales_totals
from kurspakke.licences.services import (
    MAX_QUANTITY,
    MIN_QUANTITY,
    InvalidOrder,
    LicenceError,
    OrderStateError,
    SeatsInUse,
    audit,
    cancel_order,
    credit_order,
)
from kurspakke.licences.visibility import NotSellersCanvas, may_see_business
from kurspakke.models import (
    CanvasInstance,
    CourseLink,
    Organisation,
    OrganisationKind,
    ProgrammeRole,
    ProgrammeRoleKind,
)
from kurspakke.outbox import services as outbox
from kurspakke.programmes import Programme
from kurspakke.services.platforms import origin_of
from lti_tool import logs
from lti_tool.i18n import current_locale, gettext
from lti_tool.i18n_marker import N_
from lti_tool.services import db, services
from lti_tool.views import _resume
from lti_tool.views.context import LaunchContext, current_launch, require_owner

bp = Blueprint("owner_pages", __name__, url_prefix="/owner")
order_bp = Blueprint("order_form", __name__, url_prefix="/order")

VIEW = "owner"  # the role view these pages belong to (the tabs, app_base.html)

STATUS_LABELS = {
    OrderStatus.PENDING: N_("Waiting for confirmation"),
    OrderStatus.CONFIRMED: N_("Confirmed"),
    OrderStatus.CANCELLED: N_("Cancelled"),
    OrderStatus.CREDITED: N_("Credited"),
}
SOURCE_LABELS = {
    OrderSource.FORM: N_("Order form"),
    OrderSource.MANUAL: N_("Entered by the course owner"),
    OrderSource.WEBHOOK: N_("Web shop"),
}
KIND_LABELS = {
    OrganisationKind.KOMMUNE: N_("Municipality"),
    OrganisationKind.BYDEL: N_("City district"),
    OrganisationKind.HELSEFORETAK: N_("Health trust"),
    OrganisationKind.OTHER: N_("Other"),
}
FIELD_LABELS = {
    "organisation_name": N_("Name of the organisation"),
    "orgnr": N_("Organisation number"),
    "kind": N_("Kind of organisation"),
    "programme": N_("Programme"),
    "quantity": N_("Number of licences"),
    "invoice_reference": N_("Invoice reference"),
    "contact_name": N_("Contact person"),
    "contact_email": N_("Contact's e-mail address"),
}
PROBLEM_MESSAGES = {
    "required": N_("This field is required."),
    "too_long": N_("This field is too long (at most %(maximum)s characters)."),
    "control_characters": N_("This field contains characters that are not allowed."),
    "orgnr_format": N_("The organisation number has 9 digits, for example 958935420."),
    "orgnr_check": N_(
        "This is not a valid organisation number: the check digit does not match. Check the number in the "
        "Brønnøysund Register Centre."
    ),
    "kind_unknown": N_("Choose a kind of organisation from the list."),
    "programme_unknown": N_("Choose a programme from the list."),
    "quantity_not_a_number": N_("Write the number of licences as a whole number, for example 25."),
    "quantity_out_of_range": N_("The number of licences must be between %(minimum)s and %(maximum)s."),
    "email_invalid": N_("Enter an e-mail address, for example kari.nordmann@kommune.no."),
}
REFUSAL_MESSAGES = {
    "organisation_kind_unknown": N_("Choose one of the kinds of organisation."),
    "parent_not_found": N_("The network area was not found: choose one from the list."),
    "parent_is_itself": N_("An organisation cannot be its own network area."),
    "parent_cycle": N_("That organisation already belongs to this one's network area; choose another."),
    "not_sellers_canvas": N_(
        "Orders, organisations and sales are shown only to the course owners of the programme's course on a Canvas "
        "the seller has registered for provisioning. This course is not on such a Canvas."
    ),
    "registration_closed": N_(
        "Registration for %(programme)s closed at the end of %(deadline)s. The registration is binding and cannot be "
        "made after the deadline; contact the organiser."
    ),
    "order_not_found": N_("The order was not found."),
    "organisation_not_found": N_("The organisation was not found."),
    "order_not_pending": N_("This order is not waiting for confirmation any more."),
    "order_not_cancellable": N_("This order is already cancelled or credited."),
    "order_not_creditable": N_("Only a confirmed order can be credited."),
    "seats_in_use": N_(
        "Refused: this would cut into seats in use. The order has %(requested)s licences, but only %(free)s of the "
        "organisation's licences are free (%(in_use)s are in use). Revoke seats first."
    ),
    "admin_already": N_("%(email)s is already a licence administrator of this organisation."),
    "admin_not_found": N_("This person is not a licence administrator of this organisation."),
    "last_admin": N_("The organisation's last licence administrator cannot be removed. Add another one first."),
    "name_missing": N_("Write the person's name."),
    "name_too_long": N_("The name is too long (at most %(maximum)s characters)."),
    "step_not_parked": N_("This step is not parked any more."),
    "name_unchanged": N_("The organisation already has the name this order gives."),
    "order_cross_site": N_("The order was sent from another website and has been stopped."),
    "too_many_pending": N_(
        "This organisation already has %(count)s orders waiting for confirmation. Wait until the seller has "
        "handled them, or contact the seller."
    ),
}
REFUSAL_STATUS = {
    "order_not_found": 404,
    "organisation_not_found": 404,
    "order_not_pending": 409,
    "order_not_cancellable": 409,
    "order_not_creditable": 409,
    "seats_in_use": 409,
    "admin_already": 409,
    "admin_not_found": 404,
    "last_admin": 409,
    "step_not_parked": 409,
    "name_unchanged": 409,
}


def money(ore: int) -> str:
    return format_kr(ore)


@bp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {"owner_sees_business": _sees_business, "money": money}


def _sees_business() -> bool:
    """For owner.html: whether to show the links to these pages (the pages check again themselves)."""
    ctx: LaunchContext | None = g.get("launch")
    if ctx is None or ctx.course_link is None or ctx.owner_stale:
        return False
    return may_see_business(
        db(), course_owner=ctx.course_owner, course_platform_instance=ctx.course_link.platform_instance
    )


def _actor(ctx: LaunchContext) -> str:
    return f"course-owner:{ctx.data.get('issuer', '')}|{ctx.data.get('sub', '')}"


def business_launch() -> tuple[LaunchContext, Programme]:
    """The launch of this request, when it may see the seller's business. Raises LtiRefusal (401 stale or no
    launch, 403 not an owner) or NotSellersCanvas (403)."""
    ctx = current_launch()
    require_owner(ctx)
    link = ctx.course_link
    if (
        link is None
        or ctx.programme is None
        or not may_see_business(db(), course_owner=ctx.course_owner, course_platform_instance=link.platform_instance)
    ):
        raise NotSellersCanvas()
    return ctx, ctx.programme


@bp.errorhandler(NotSellersCanvas)
def _not_sellers_canvas(_exc: NotSellersCanvas) -> ResponseReturnValue:
    logs.log_event("refused", code="not_sellers_canvas", path=request.path)
    message = _refusal_text("not_sellers_canvas", {})
    return render_template("error.html", message=message, code="not_sellers_canvas", status=403), 403


def _refusal_text(key: str, params: dict[str, Any]) -> str:
    return gettext(REFUSAL_MESSAGES.get(key, N_("The request was not understood.")), **params)


def _page(template: str, ctx: LaunchContext, programme: Programme, canonical: str, **extra: Any) -> str:
    from lti_tool.views.context import VIEW_TITLES

    return render_template(
        template, ctx=ctx, view=VIEW, titles=VIEW_TITLES, programme=programme, canonical=canonical, **extra
    )


def _problem_text(code: str, params: dict[str, Any]) -> str:
    return gettext(PROBLEM_MESSAGES[code], **params)


def _problems_by_field(exc: OrderFormInvalid) -> dict[str, str]:
    return {p.field: _problem_text(p.code, p.params) for p in exc.problems}


# --- orders ------------------------------------------------------------------------------------------------------


def _orders_page(
    ctx: LaunchContext,
    programme: Programme,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    values: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
) -> ResponseReturnValue:
    session = db()
    rows = session.execute(
        select(Order, Organisation)
        .join(Organisation, Organisation.id == Order.organisation_id)
        .where(Order.programme_id == programme.id)
        .order_by(Order.created_at.desc(), Order.id.desc())
    ).all()
    pending = [(o, org) for o, org in rows if o.status is OrderStatus.PENDING]
    others = [(o, org) for o, org in rows if o.status is not OrderStatus.PENDING]
    html = _page(
        "owner/orders.html",
        ctx,
        programme,
        url_for("owner_pages.orders"),
        pending=pending,
        others=others,
        notice=notice,
        error=error,
        values=values or {},
        problems=problems or {},
        status_labels=STATUS_LABELS,
        source_labels=SOURCE_LABELS,
        kind_labels=KIND_LABELS,
        field_labels=FIELD_LABELS,
        min_quantity=MIN_QUANTITY,
        max_quantity=MAX_QUANTITY,
    )
    return html, status


@bp.route("/orders", methods=["GET", "POST"])
def orders() -> ResponseReturnValue:
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme = business_launch()
    return _orders_page(ctx, programme)


@bp.post("/orders/new")
def new_order() -> ResponseReturnValue:
    """The course owner enters an order (source manual); confirmed at once when they tick the box."""
    ctx, programme = business_launch()
    form = {name: request.form.get(name, "") for name in FIELD_LABELS}
    form["programme"] = programme.id
    try:
        req = parse_order(form, {programme.id: programme}, contact_required=False)
        placed = place_order(db(), req, source=OrderSource.MANUAL, actor=_actor(ctx), locale=current_locale())
        if request.form.get("confirm_now") == "yes":
            confirm(db(), placed.order, programme, actor=_actor(ctx), locale=current_locale())
    except OrderFormInvalid as exc:
        return _orders_page(
            ctx,
            programme,
            status=422,
            error=gettext("The order was not saved. Correct the fields marked below."),
            values=exc.values,
            problems=_problems_by_field(exc),
        )
    except InvalidOrder as exc:
        return _orders_page(ctx, programme, status=422, error=_refusal_text(exc.key, exc.params), values=form)
    order = placed.order
    notice = gettext("Order %(number)s is saved.", number=order.id)
    if order.status is OrderStatus.CONFIRMED:
        notice = gettext("Order %(number)s is saved and confirmed.", number=order.id)
    return _orders_page(ctx, programme, notice=notice)


def _order_of(programme: Programme, order_id: int) -> Order | None:
    return db().scalars(select(Order).where(Order.id == order_id, Order.programme_id == programme.id)).one_or_none()


@bp.post("/orders/<int:order_id>/<any(confirm, cancel, credit):action>")
def change_order(order_id: int, action: str) -> ResponseReturnValue:
    ctx, programme = business_launch()
    order = _order_of(programme, order_id)
    if order is None:
        return _orders_page(ctx, programme, status=404, error=_refusal_text("order_not_found", {}))
    actor = _actor(ctx)
    try:
        if action == "confirm":
            appointed = confirm(db(), order, programme, actor=actor, locale=current_locale())
            notice = gettext("Order %(number)s is confirmed.", number=order_id)
            if appointed:
                notice += " " + gettext("The order's contact is now the organisation's licence administrator.")
        elif action == "cancel":
            cancel_order(db(), order, actor=actor)
            notice = gettext("Order %(number)s is cancelled.", number=order_id)
        else:
            credit_order(db(), order, actor=actor)
            notice = gettext("Order %(number)s is credited.", number=order_id)
    except (OrderStateError, SeatsInUse) as exc:
        return _orders_page(ctx, programme, status=REFUSAL_STATUS[exc.key], error=_refusal_text(exc.key, _params(exc)))
    return _orders_page(ctx, programme, notice=notice)


@bp.post("/orders/<int:order_id>/use-name")
def use_order_name(order_id: int) -> ResponseReturnValue:
    """The owner decides that the name a later order gave is the organisation's right name (never applied
    silently: only this button renames)."""
    ctx, programme = business_launch()
    order = _order_of(programme, order_id)
    if order is None:
        return _orders_page(ctx, programme, status=404, error=_refusal_text("order_not_found", {}))
    try:
        org = rename_organisation(db(), order, actor=_actor(ctx))
    except NameUnchanged:
        return _orders_page(ctx, programme, status=409, error=_refusal_text("name_unchanged", {}))
    notice = gettext("The organisation is now called %(name)s.", name=org.name)
    return _orders_page(ctx, programme, notice=notice)


def _params(exc: LicenceError) -> dict[str, Any]:
    return {k: v for k, v in exc.params.items() if k != "status"}


# --- organisations -----------------------------------------------------------------------------------------------


@bp.route("/organisations", methods=["GET", "POST"])
def organisations() -> ResponseReturnValue:
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme = business_launch()
    session = db()
    admins = (
        select(ProgrammeRole.organisation_id, func.count(ProgrammeRole.id).label("admins"))
        .where(ProgrammeRole.programme_id == programme.id, ProgrammeRole.role == ProgrammeRoleKind.LICENCE_ADMIN)
        .group_by(ProgrammeRole.organisation_id)
        .subquery()
    )
    pending = (
        select(Order.organisation_id, func.count(Order.id).label("pending"))
        .where(Order.programme_id == programme.id, Order.status == OrderStatus.PENDING)
        .group_by(Order.organisation_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Organisation.id,
            Organisation.name,
            Organisation.orgnr,
            Organisation.kind,
            SeatPool.bought,
            SeatPool.assigned,
            func.coalesce(admins.c.admins, 0),
            func.coalesce(pending.c.pending, 0),
        )
        .outerjoin(SeatPool, (SeatPool.organisation_id == Organisation.id) & (SeatPool.programme_id == programme.id))
        .outerjoin(admins, admins.c.organisation_id == Organisation.id)
        .outerjoin(pending, pending.c.organisation_id == Organisation.id)
        .order_by(Organisation.name, Organisation.id)
    ).all()
    return _page(
        "owner/organisations.html",
        ctx,
        programme,
        url_for("owner_pages.organisations"),
        rows=rows,
        kind_labels=KIND_LABELS,
    )


def _organisation_page(
    ctx: LaunchContext,
    programme: Programme,
    org: Organisation,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> ResponseReturnValue:
    session = db()
    pool = session.scalars(
        select(SeatPool).where(SeatPool.organisation_id == org.id, SeatPool.programme_id == programme.id)
    ).one_or_none()
    org_orders = session.scalars(
        select(Order)
        .where(Order.organisation_id == org.id, Order.programme_id == programme.id)
        .order_by(Order.created_at.desc(), Order.id.desc())
    ).all()
    url = url_for("owner_pages.organisation", organisation_id=org.id)
    html = _page(
        "owner/organisation.html",
        ctx,
        programme,
        url,
        org=org,
        pool=pool,
        admins=administrators(session, org.id, programme.id),
        orders=org_orders,
        others=session.scalars(
            select(Organisation).where(Organisation.id != org.id).order_by(Organisation.name, Organisation.id)
        ).all(),
        notice=notice,
        error=error,
        values=values or {},
        status_labels=STATUS_LABELS,
        source_labels=SOURCE_LABELS,
        kind_labels=KIND_LABELS,
    )
    return html, status


def _organisation_of(organisation_id: int) -> Organisation | None:
    return db().get(Organisation, organisation_id)


@bp.route("/organisations/<int:organisation_id>", methods=["GET", "POST"])
def organisation(organisation_id: int) -> ResponseReturnValue:
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme = business_launch()
    org = _organisation_of(organisation_id)
    if org is None:
        return _orders_page(ctx, programme, status=404, error=_refusal_text("organisation_not_found", {}))
    return _organisation_page(ctx, programme, org)


@bp.post("/organisations/<int:organisation_id>/details")
def organisation_details(organisation_id: int) -> ResponseReturnValue:
    """The organisation's kind and the network area it belongs to."""
    ctx, programme = business_launch()
    org = _organisation_of(organisation_id)
    if org is None:
        return _orders_page(ctx, programme, status=404, error=_refusal_text("organisation_not_found", {}))
    raw_parent = request.form.get("parent", "").strip()
    if raw_parent and not raw_parent.isdigit():
        return _organisation_page(ctx, programme, org, status=422, error=_refusal_text("parent_not_found", {}))
    try:
        set_details(
            db(),
            org,
            kind=request.form.get("kind", "")[:32],
            parent_id=int(raw_parent) if raw_parent else None,
            actor=_actor(ctx),
        )
    except OrganisationError as exc:  # raised before anything changed
        return _organisation_page(ctx, programme, org, status=422, error=_refusal_text(exc.key, exc.params))
    return _organisation_page(ctx, programme, org, notice=gettext("The organisation's details are saved."))


@bp.post("/organisations/<int:organisation_id>/admins/add")
def add_admin(organisation_id: int) -> ResponseReturnValue:
    ctx, programme = business_launch()
    org = _organisation_of(organisation_id)
    if org is None:
        return _orders_page(ctx, programme, status=404, error=_refusal_text("organisation_not_found", {}))
    name, email = request.form.get("name", "")[:400], request.form.get("email", "")[:400]
    try:
        person = add_administrator(db(), org, programme.id, name=name, email=email, actor=_actor(ctx))
    except LicenceError as exc:
        status = REFUSAL_STATUS.get(exc.key, 422)
        text = _refusal_text(exc.key, exc.params)
        if exc.key == "email_invalid":
            text = _problem_text("email_invalid", {})
        return _organisation_page(ctx, programme, org, status=status, error=text, values={"name": name, "email": email})
    notice = gettext(
        "%(name)s is now a licence administrator of %(organisation)s.", name=person.name, organisation=org.name
    )
    return _organisation_page(ctx, programme, org, notice=notice)


@bp.post("/organisations/<int:organisation_id>/admins/<int:person_id>/remove")
def remove_admin(organisation_id: int, person_id: int) -> ResponseReturnValue:
    ctx, programme = business_launch()
    org = _organisation_of(organisation_id)
    if org is None:
        return _orders_page(ctx, programme, status=404, error=_refusal_text("organisation_not_found", {}))
    try:
        remove_administrator(db(), org, programme.id, person_id, actor=_actor(ctx))
    except AdminError as exc:
        return _organisation_page(
            ctx, programme, org, status=REFUSAL_STATUS.get(exc.key, 409), error=_refusal_text(exc.key, exc.params)
        )
    return _organisation_page(ctx, programme, org, notice=gettext("The licence administrator is removed."))


# --- parked Canvas steps -----------------------------------------------------------------------------------------


def _steps_page(
    ctx: LaunchContext, programme: Programme, *, status: int = 200, notice: str | None = None, error: str | None = None
) -> ResponseReturnValue:
    html = _page(
        "owner/steps.html",
        ctx,
        programme,
        url_for("owner_pages.steps"),
        steps=outbox.parked_steps(db()),
        notice=notice,
        error=error,
    )
    return html, status


@bp.route("/steps", methods=["GET", "POST"])
def steps() -> ResponseReturnValue:
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme = business_launch()
    return _steps_page(ctx, programme)


@bp.post("/steps/<int:step_id>/retry")
def retry_step(step_id: int) -> ResponseReturnValue:
    ctx, programme = business_launch()
    session = db()
    step = outbox.retry(session, step_id)
    if step is None:
        return _steps_page(ctx, programme, status=409, error=_refusal_text("step_not_parked", {}))
    audit(
        session,
        actor=_actor(ctx),
        action="outbox.retry",
        entity_type="outbox_step",
        entity_id=step.id,
        before={"status": "parked"},
        after={"status": step.status.value, "kind": step.kind, "subject": step.subject},
    )
    return _steps_page(ctx, programme, notice=gettext("The step will be tried again shortly."))


# --- sales -------------------------------------------------------------------------------------------------------


@bp.route("/sales", methods=["GET", "POST"])
def sales() -> ResponseReturnValue:
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme = business_launch()
    lines = monthly_sales(db(), programme.id)
    return _page(
        "owner/sales.html",
        ctx,
        programme,
        url_for("owner_pages.sales"),
        lines=lines,
        totals=sales_totals(lines),
    )


@bp.post("/sales.csv")
def sales_download() -> ResponseReturnValue:
    _ctx, programme = business_launch()
    body = sales_csv(monthly_sales(db(), programme.id))
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="salg-{programme.id}.csv"',
            "Content-Type": "text/csv; charset=utf-8",
        },
    )


# --- the public order form ---------------------------------------------------------------------------------------


def _cross_site() -> bool:
    """A POST another site made (the browser sets Sec-Fetch-Site and Origin; scripts cannot). As on the sign-in
    form (lti_tool/views/signin.py): a request with neither still has to pass every check of the form."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return True
    sender = request.headers.get("Origin")
    return sender is not None and sender != origin_of(services().settings.base_url)


def _programmes() -> list[Programme]:
    return sorted(services().programmes.values(), key=lambda p: p.title)


def _form_page(values: dict[str, str], problems: dict[str, str], status: int = 200) -> ResponseReturnValue:
    html = render_template(
        "order/form.html",
        values=values,
        problems=problems,
        programmes=_programmes(),
        field_labels=FIELD_LABELS,
        kind_labels=KIND_LABELS,
        min_quantity=MIN_QUANTITY,
        max_quantity=MAX_QUANTITY,
    )
    return html, status


def _owner_course_url(programme_id: str) -> str:
    """Where the seller confirms: the programme's course on a Canvas registered for provisioning, if any."""
    row = (
        db()
        .execute(
            select(CanvasInstance.api_url, CourseLink.canvas_course_id)
            .join(CourseLink, CourseLink.platform_instance == CanvasInstance.platform_instance)
            .where(CourseLink.programme_id == programme_id, CourseLink.canvas_course_id.is_not(None))
            .order_by(CourseLink.id)
            .limit(1)
        )
        .first()
    )
    return f"{row[0].rstrip('/')}/courses/{row[1]}" if row else ""


@order_bp.get("")
def order_form() -> ResponseReturnValue:
    values = {"quantity": "", "kind": "kommune"}
    wanted = request.args.get("programme", "")
    values["programme"] = wanted if wanted in services().programmes else ""
    return _form_page(values, {})


@order_bp.post("")
def submit_order() -> ResponseReturnValue:
    if _cross_site():
        logs.log_event("refused", code="order_cross_site", path=request.path)
        message = _refusal_text("order_cross_site", {})
        return render_template("error.html", message=message, code="order_cross_site", status=403), 403
    form = {name: request.form.get(name, "")[:2000] for name in FIELD_LABELS}
    try:
        req = parse_order(form, services().programmes)
        placed = place_order(
            db(),
            req,
            source=OrderSource.FORM,
            actor=f"order-form:{req.contact_email}",
            owner_url=_owner_course_url(req.programme.id),
            locale=current_locale(),
        )
    except OrderFormInvalid as exc:
        return _form_page(exc.values, _problems_by_field(exc), status=422)
    except TooManyPendingOrders:
        values = {name: " ".join(form[name].split()) for name in form}
        error = _refusal_text("too_many_pending", {"count": MAX_PENDING_FORM_ORDERS})
        return _form_page(values, {"orgnr": error}, status=429)
    except InvalidOrder as exc:
        values = {name: " ".join(form[name].split()) for name in form}
        field = "programme" if exc.key == "registration_closed" else "contact_email"
        return _form_page(values, {field: _refusal_text(exc.key, exc.params)}, status=422)
    order = placed.order
    return render_template("order/received.html", order=order, programme=req.programme)


__all__ = ["bp", "business_launch", "order_bp"]

# Further pages of this blueprint live in their own modules; importing them registers their routes.
from lti_tool.views import owner_certificates, owner_progress, owner_quizzes, owner_sessions  # noqa: E402, F401
