"""The reminder setting: the checkbox on "Min fremdrift" and on the mentor's page (a POST with the launch token),
and the one-click link in every reminder e-mail (``/app/reminders/off/<token>``, a token signed with SECRET_KEY).

Opening the link changes nothing (mail scanners open links): it shows a button, and only the button's POST turns
reminders off. A forged or altered token is refused (400) before anything is read; a form naming another person
than the launch's is refused (403). Either way nothing is written.
"""

from __future__ import annotations

from typing import Any

from flask import g, render_template, request
from flask.typing import ResponseReturnValue

from kurspakke.models import Person
from kurspakke.reminders.services import UNSUBSCRIBE_PATH, person_of_token, reminders_on, set_reminders
from kurspakke.services.platforms import origin_of
from lti_tool.i18n import current_locale, gettext
from lti_tool.i18n_marker import N_
from lti_tool.logs import log_event
from lti_tool.lti.errors import LtiRefusal
from lti_tool.services import commit, db, services
from lti_tool.views import bp
from lti_tool.views.context import current_launch

# Where the form may send the person back to: the pages that carry it.
FORM_VIEWS = ("participant", "mentor")
REFUSALS: dict[str, tuple[str, int]] = {
    "reminder_link_invalid": (N_("This link is not valid. Use the link in the newest reminder e-mail."), 400),
    "reminder_link_unknown": (N_("This link belongs to nobody the tool knows any longer."), 404),
    "reminder_link_cross_site": (N_("The request was sent from another website and has been stopped."), 403),
}
# The worker builds the e-mails' link from the domain's UNSUBSCRIBE_PATH (it knows no Flask): the route is made
# from the same constant, so the two cannot drift apart.
OFF_RULE = UNSUBSCRIBE_PATH.removeprefix(bp.url_prefix or "") + "<token>"


@bp.app_context_processor
def _reminder_setting() -> dict[str, Any]:
    """``reminders_enabled(person_id)`` for the form (templates/reminders/_form.html): the pages that show it are
    rendered by other modules and blueprints (a launch lands on them from /lti/launch), which need not know about
    reminders. App-wide, and read only when a page shows the form."""
    return {"reminders_enabled": lambda person_id: reminders_on(db(), int(person_id))}


@bp.post("/reminders")
def save_reminders() -> ResponseReturnValue:
    """Save the launch's person's reminder setting and show the page the form was on again, saying so."""
    ctx = current_launch()
    if ctx.person is None:
        raise LtiRefusal("forbidden", status=403)
    # The form names whose setting it shows; a form of someone else (another tab's launch, a forged post) is refused
    # rather than quietly applied to the person of this token.
    if request.form.get("person", "") != str(ctx.person.id):
        raise LtiRefusal("forbidden", status=403, detail="reminder form of another person")
    # Back to the page the form was on; only those pages carry it, so no other view is ever rendered from here.
    shown = [v for v in FORM_VIEWS if v in ctx.views]
    if not shown:
        raise LtiRefusal("forbidden", status=403)
    view = request.form.get("view", "")
    if view not in shown:
        view = shown[0]
    on = request.form.get("reminders") == "on"
    set_reminders(db(), ctx.person.id, on, locale=current_locale())
    commit()
    g.reminders_saved = on
    from lti_tool.views.pages import render_view  # pages imports this package's blueprint

    return render_view(ctx, view)


def _refusal(code: str) -> tuple[str, int]:
    message, status = REFUSALS[code]
    log_event("refused", code=code, path=request.url_rule.rule if request.url_rule else "")
    page = render_template("reminders/refused.html", message=gettext(message), code=code, status=status)
    return page, status


def _person(token: str) -> Person | str:
    """The person the link names, or the refusal's code."""
    person_id = person_of_token(services().settings.secret_key, token)
    if person_id is None:
        return "reminder_link_invalid"
    person = db().get(Person, person_id)
    return person if person is not None else "reminder_link_unknown"


def _cross_site() -> bool:
    """A POST another site made (the browser sets Sec-Fetch-Site and Origin; scripts cannot)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return True
    sender = request.headers.get("Origin")
    return sender is not None and sender != origin_of(services().settings.base_url)


@bp.get(OFF_RULE)
def reminders_off_form(token: str) -> ResponseReturnValue:
    """The link in a reminder: a page with the button that turns reminders off. Changes nothing."""
    person = _person(token)
    if isinstance(person, str):
        return _refusal(person)
    return render_template("reminders/off.html", token=token, done=False, already=not reminders_on(db(), person.id))


@bp.post(OFF_RULE)
def reminders_off(token: str) -> ResponseReturnValue:
    if _cross_site():
        return _refusal("reminder_link_cross_site")
    person = _person(token)
    if isinstance(person, str):
        return _refusal(person)
    set_reminders(db(), person.id, False)
    commit()
    log_event("reminders turned off by link", person_id=person.id)
    return render_template("reminders/off.html", token=token, done=True, already=False)


__all__ = ["reminders_off", "reminders_off_form", "save_reminders"]
