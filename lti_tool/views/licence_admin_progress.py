"""The licence administrator's progress page (``/admin/<organisation id>/<programme id>/progress``) and its CSV, and
the completion funnel as a server-rendered SVG bar chart, which the course owner's progress page
(lti_tool/views/owner_progress.py) draws too.

The page reads kurspakke.progress.overview: a fixed number of statements whatever the number of participants. The
chart needs no script: bars are drawn here, each with its label and its number as text (never colour alone), and the
page shows the same numbers in a table beside it (its text alternative, WCAG 2.1 1.1.1)."""

from __future__ import annotations

from dataclasses import dataclass

from babel.numbers import format_percent
from flask import Response, current_app
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from kurspakke.certificates.archive import valid_participant_certificates
from kurspakke.programmes import Programme
from kurspakke.progress.export import export_csv
from kurspakke.progress.overview import Funnel, group_summaries
from kurspakke.progress.summary import summarise
from lti_tool.i18n import current_locale, gettext
from lti_tool.i18n_marker import N_
from lti_tool.services import db
from lti_tool.views.licence_admin import PAGE, _pool, _render, bp

STEP_LABELS = {
    "assigned": N_("Assigned"),
    "started": N_("Started"),
    "complete": N_("Completed"),
}
MODULE_LABEL = N_("Module %(number)s")
# The downloaded file's name starts with it: "fremdrift-<programme>-<orgnr>.csv".
CSV_STEM = N_("progress")

# The chart's geometry in SVG user units; the SVG scales to its box (chart.css). Bars use the pages' accent colour,
# 7.6:1 on white (1.4.11 asks 3:1 of graphics); the text is the pages' text colour (17:1).
CHART_WIDTH = 560
LABEL_WIDTH = 100
VALUE_WIDTH = 110
BAR_AREA = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
ROW_HEIGHT = 34
BAR_HEIGHT = 22
PADDING = 8
BAR_COLOUR = "#0b5394"
TEXT_COLOUR = "#1b1b1b"
AXIS_COLOUR = "#595959"


@dataclass(frozen=True)
class FunnelStep:
    """One bar: its label ("Emne 2"), what it stands for (the module's title), its people and share of assigned."""

    key: str
    label: str
    detail: str
    count: int
    share: str


def funnel_steps(programme: Programme, summary: Funnel) -> list[FunnelStep]:
    """The funnel's steps in the user's language: assigned → started → each module → completed."""
    numbers = {m.id: m.number for m in programme.modules}

    def share(count: int) -> str:
        if summary.assigned == 0:
            return "–"
        return format_percent(count / summary.assigned, locale=current_locale())

    def step(key: str, count: int) -> FunnelStep:
        return FunnelStep(key, gettext(STEP_LABELS[key]), "", count, share(count))

    steps = [step("assigned", summary.assigned), step("started", summary.started)]
    for position, (module_id, title, count) in enumerate(summary.modules, start=1):
        label = gettext(MODULE_LABEL, number=numbers.get(module_id, position))
        steps.append(FunnelStep(module_id, label, title, count, share(count)))
    steps.append(step("complete", summary.complete))
    return steps


def funnel_svg(steps: list[FunnelStep], *, chart_id: str, title: str) -> Markup:
    """The funnel as an SVG bar chart: role="img", named by its <title> and described by its <desc>, which reads
    every step's number. Every value is escaped (Markup.format)."""
    top = max((s.count for s in steps), default=0) or 1
    height = PADDING * 2 + ROW_HEIGHT * len(steps)
    desc = "; ".join(f"{s.label}: {s.count} ({s.share})" for s in steps)
    parts = [
        Markup(
            '<svg class="funnel-chart" role="img" aria-labelledby="{0}-title {0}-desc" viewBox="0 0 {1} {2}" '
            'width="{1}" height="{2}" xmlns="http://www.w3.org/2000/svg" focusable="false">'
            '<title id="{0}-title">{3}</title><desc id="{0}-desc">{4}</desc>'
        ).format(chart_id, CHART_WIDTH, height, title, desc)
    ]
    for row, step in enumerate(steps):
        y = PADDING + row * ROW_HEIGHT
        width = round(BAR_AREA * step.count / top, 1)
        middle = y + ROW_HEIGHT / 2
        parts.append(
            Markup(
                '<g data-step="{0}"><text x="{1}" y="{2}" text-anchor="end" dominant-baseline="middle" '
                'fill="{3}">{4}</text>'
                '<rect x="{5}" y="{6}" width="{7}" height="{8}" fill="{9}"></rect>'
                '<text x="{10}" y="{2}" dominant-baseline="middle" fill="{3}" data-count="{11}">{11} ({12})</text></g>'
            ).format(
                step.key,
                LABEL_WIDTH - 8,
                middle,
                TEXT_COLOUR,
                step.label,
                LABEL_WIDTH,
                y + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                width,
                BAR_HEIGHT,
                BAR_COLOUR,
                LABEL_WIDTH + width + 6,
                step.count,
                step.share,
            )
        )
    parts.append(
        Markup('<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="{3}" stroke-width="1"></line></svg>').format(
            LABEL_WIDTH, PADDING, height - PADDING, AXIS_COLOUR
        )
    )
    return Markup("").join(parts)


@bp.app_template_global("has_endpoint")
def has_endpoint(endpoint: str) -> bool:
    """For navigation to pages that may not be there yet (another module registers them): link only when they are."""
    return endpoint in current_app.view_functions


@bp.route(PAGE + "/progress", methods=["GET", "POST"])
def progress(org_id: int, programme_id: str) -> ResponseReturnValue:
    """The organisation's progress: counts, the completion funnel, groups and mentors, and who is behind schedule.
    Raises LtiRefusal(403) for an organisation or programme this person does not administer."""
    pool = _pool(org_id, programme_id)
    session = db()
    counted = summarise(session, pool.programme, organisation_ids=[org_id], with_behind=True)
    summary = counted.total(pool.programme)
    steps = funnel_steps(pool.programme, summary)
    chart = funnel_svg(steps, chart_id="funnel", title=gettext("Completion funnel"))
    return _render(
        pool,
        "progress.html",
        summary=summary,
        steps=steps,
        chart=chart,
        groups=group_summaries(session, pool.programme, [org_id]),
        behind=counted.behind,
        modules_total=len(pool.programme.modules),
        certified=valid_participant_certificates(session, org_id, pool.programme.id),
    )


@bp.post(PAGE + "/progress.csv")
def progress_csv(org_id: int, programme_id: str) -> ResponseReturnValue:
    """The progress matrix of the organisation's participants (DESIGN.md §6), as `kurspakke progress export
    --orgnr` writes it."""
    pool = _pool(org_id, programme_id)
    body = export_csv(db(), pool.programme, pool.organisation)
    stem = gettext(CSV_STEM)
    filename = f"{stem}-{programme_id}-{pool.organisation.orgnr}.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Type": "text/csv; charset=utf-8",
            "Cache-Control": "no-store",
        },
    )


__all__ = ["CSV_STEM", "FunnelStep", "funnel_steps", "funnel_svg", "has_endpoint"]
