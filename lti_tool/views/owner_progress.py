"""The course owner's progress page (``/owner/progress``): the completion funnel across organisations and one row
per organisation (assigned, started, each module, completed, behind schedule), filtered by a part of the name or
organisation number (``q``) and by kind; and the progress matrix as CSV (``/owner/progress.csv``), of the whole
programme or of one organisation.

As every owner page it lives inside Canvas: the launch token comes in a POST, a GET without it gets the resume page,
and business_launch() decides on every request who may see it. The page reads kurspakke.progress.overview once for
all shown organisations: a fixed number of statements whatever the number of participants."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from kurspakke.licences.models import Seat, SeatPool
from kurspakke.models import Organisation, OrganisationKind
from kurspakke.programmes import Programme
from kurspakke.progress.export import export_csv
from kurspakke.progress.overview import Funnel, norwegian_key
from kurspakke.progress.summary import empty_funnel, summarise
from lti_tool.i18n import gettext
from lti_tool.services import db
from lti_tool.views import _resume
from lti_tool.views.context import LaunchContext
from lti_tool.views.licence_admin_progress import CSV_STEM, funnel_steps, funnel_svg
from lti_tool.views.owner_pages import KIND_LABELS, _page, _refusal_text, bp, business_launch

QUERY_MAX = 200


@dataclass(frozen=True)
class OrganisationProgress:
    id: int
    name: str
    orgnr: str
    kind: OrganisationKind
    funnel: Funnel


def _organisations(programme: Programme) -> list[tuple[int, str, str, OrganisationKind]]:
    """The organisations that bought licences in the programme (a seat pool) or hold seats in it, in Norwegian
    order. One statement."""
    pools = select(SeatPool.organisation_id).where(SeatPool.programme_id == programme.id)
    seats = select(Seat.organisation_id).where(Seat.programme_id == programme.id)
    rows = db().execute(
        select(Organisation.id, Organisation.name, Organisation.orgnr, Organisation.kind).where(
            Organisation.id.in_(pools) | Organisation.id.in_(seats)
        )
    )
    return sorted(((r[0], r[1], r[2], r[3]) for r in rows), key=lambda r: (norwegian_key(r[1]), r[0]))


def _matches(name: str, orgnr: str, kind: OrganisationKind, q: str, wanted_kind: str) -> bool:
    if wanted_kind and kind.value != wanted_kind:
        return False
    return not q or q.casefold() in name.casefold() or q in orgnr


def _progress_page(
    ctx: LaunchContext, programme: Programme, *, status: int = 200, error: str | None = None
) -> ResponseReturnValue:
    q = " ".join(request.form.get("q", "").split())[:QUERY_MAX]
    wanted_kind = request.form.get("kind", "")
    if wanted_kind not in {k.value for k in OrganisationKind}:
        wanted_kind = ""
    every = _organisations(programme)
    shown = [o for o in every if _matches(o[1], o[2], o[3], q, wanted_kind)]
    filtered = bool(q or wanted_kind)
    counted = summarise(db(), programme, organisation_ids=[o[0] for o in shown] if filtered else None)
    rows = [
        OrganisationProgress(id_, name, orgnr, kind, counted.by_organisation.get(id_) or empty_funnel(programme))
        for id_, name, orgnr, kind in shown
    ]
    summary = counted.total(programme, [o[0] for o in shown])
    steps = funnel_steps(programme, summary)
    title = gettext("Completion funnel")
    html = _page(
        "owner/progress.html",
        ctx,
        programme,
        url_for("owner_pages.progress"),
        summary=summary,
        steps=steps,
        chart=funnel_svg(steps, chart_id="funnel", title=title),
        rows=rows,
        organisations=every,
        q=q,
        kind=wanted_kind,
        filtered=filtered,
        kind_labels=KIND_LABELS,
        error=error,
    )
    return html, status


@bp.route("/progress", methods=["GET", "POST"])
def progress() -> ResponseReturnValue:
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme = business_launch()
    return _progress_page(ctx, programme)


@bp.post("/progress.csv")
def progress_csv() -> ResponseReturnValue:
    """The whole programme's progress matrix (DESIGN.md §6), or one organisation's (form field ``organisation``, an
    id); an unknown organisation answers the page with a 404 and its message."""
    ctx, programme = business_launch()
    raw = request.form.get("organisation", "").strip()
    organisation: Organisation | None = None
    if raw:
        found = db().get(Organisation, int(raw)) if raw.isdigit() and len(raw) < 19 else None
        if found is None:
            return _progress_page(ctx, programme, status=404, error=_refusal_text("organisation_not_found", {}))
        organisation = found
    body = export_csv(db(), programme, organisation)
    stem = f"{gettext(CSV_STEM)}-{programme.id}"
    filename = f"{stem}-{organisation.orgnr}.csv" if organisation is not None else f"{stem}.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Type": "text/csv; charset=utf-8",
            "Cache-Control": "no-store",
        },
    )


__all__ = ["OrganisationProgress"]
