"""Magic-link sign-in for licence administrators, who work in the tool outside Canvas (DESIGN.md §1).

``/signin`` asks for an address and mails a link when it belongs to a licence administrator — the answer is the
same for every address, so the page tells nobody who has an account. Opening the link only shows a button (mail
scanners open links); the button's POST uses the link up and starts a session exactly like a launch: a launch
record (``kind: licence_admin``, the person's id, no LTI claims) and a launch token handed to launch.js in the
page, never in an address. The home page re-reads the person's roles from the database on every request.

Forms: the two POSTs that have no launch token yet refuse cross-site posts (Sec-Fetch-Site / Origin, as
/lti/storage-confirm does): a page elsewhere could otherwise sign a visitor in with the attacker's own link (login
CSRF). The home page's POST carries the launch token, which another site cannot know.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, g, render_template, request, url_for
from flask.typing import ResponseReturnValue

from kurspakke.mail import InvalidMail, MailError, send_mail, valid_address
from kurspakke.models import Person
from kurspakke.services.magic_links import (
    LINK_TTL,
    MagicLinkError,
    administered,
    check,
    normalise_email,
    redeem,
    request_link,
)
from kurspakke.services.platforms import origin_of
from lti_tool.i18n import current_locale, gettext
from lti_tool.i18n_marker import N_
from lti_tool.logs import log_event
from lti_tool.services import commit, db, make_launch_token, read_launch_token, services, state_store
from lti_tool.views.context import TOKEN_FIELD, launch_token_of_request

bp = Blueprint("signin", __name__, url_prefix="/signin")

SESSION_KIND = "licence_admin"
# catalogue key -> (English msgid, HTTP status)
REFUSALS: dict[str, tuple[str, int]] = {
    "magic_link_invalid": (N_("This sign-in link is not valid. Ask for a new link."), 400),
    "magic_link_expired": (
        N_("This sign-in link has expired: a link works for 15 minutes. Ask for a new link."),
        410,
    ),
    "magic_link_used": (
        N_("This sign-in link has already been used: each link signs in once. Ask for a new link."),
        410,
    ),
    "magic_link_cross_site": (N_("The sign-in was sent from another website and has been stopped."), 403),
    "licence_admin_session_invalid": (N_("Your session has expired or is not valid. Sign in again."), 401),
    "licence_admin_token_in_address": (
        N_("This address carried your sign-in, so that sign-in has been closed to keep it safe. Sign in again."),
        400,
    ),
    "licence_admin_none": (N_("You are no longer a licence administrator for any organisation."), 403),
    "mail_unavailable": (N_("The e-mail could not be sent just now. Try again in a few minutes."), 503),
}


@dataclass(frozen=True)
class AdminSession:
    """What base.html needs to hand the token to launch.js (``ctx.token``), and the person it signs in."""

    launch_id: str
    token: str
    person: Person


def _refusal(code: str, **detail: Any) -> tuple[str, int]:
    message, status = REFUSALS[code]
    log_event("refused", code=code, path=request.url_rule.rule if request.url_rule else "", **detail)
    return render_template("signin/refused.html", message=gettext(message), code=code, status=status), status


def _cross_site() -> bool:
    """True for a POST another site made (Sec-Fetch-Site and Origin come from the browser; scripts cannot set
    them). A request with neither (an old browser, no browser) still needs a link only its owner received."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return True
    sender = request.headers.get("Origin")
    return sender is not None and sender != origin_of(services().settings.base_url)


@bp.get("")
def ask() -> ResponseReturnValue:
    return render_template("signin/request.html", email="", error=None)


@bp.post("")
def send_link() -> ResponseReturnValue:
    if _cross_site():
        return _refusal("magic_link_cross_site")
    email = normalise_email(request.form.get("email", ""))[:400]
    if not valid_address(email):
        error = gettext("Enter an e-mail address, for example kari.nordmann@kommune.no.")
        return render_template("signin/request.html", email=email, error=error), 422
    settings = services().settings
    found = request_link(db(), email, secret_key=settings.secret_key)
    if found is not None:
        person, token = found
        link = f"{settings.base_url}{url_for('signin.link', token=token)}"
        minutes = int(LINK_TTL.total_seconds() // 60)
        try:
            send_mail(
                settings,
                to=person.email,
                subject=gettext("Your sign-in link to Kurspakke"),
                text=_mail_text(person.name, link, minutes),
                html=render_template("signin/link_mail.html", link=link, minutes=minutes, name=person.name),
            )
        except (MailError, InvalidMail) as exc:
            # Said, not hidden: the person would otherwise wait for a mail that never comes. (It tells an
            # onlooker an address is known only while the mail server is failing.)
            log_event("sign-in link not sent", logging.ERROR, error=str(exc), person_id=person.id)
            return _refusal("mail_unavailable")
        log_event("sign-in link sent", person_id=person.id)
    return render_template("signin/sent.html")


@bp.get("/link/<token>")
def link(token: str) -> ResponseReturnValue:
    """Shows the sign-in button; uses nothing up (a mail scanner opening the link signs nobody in)."""
    try:
        check(db(), token, secret_key=services().settings.secret_key)
    except MagicLinkError as exc:
        return _refusal(exc.code)
    return render_template("signin/link.html", token=token)


@bp.post("/link/<token>")
def use_link(token: str) -> ResponseReturnValue:
    if _cross_site():
        return _refusal("magic_link_cross_site")
    settings = services().settings
    try:
        person = redeem(db(), token, secret_key=settings.secret_key)
    except MagicLinkError as exc:
        return _refusal(exc.code)
    launch_id = secrets.token_urlsafe(24)
    data: dict[str, Any] = {
        "kind": SESSION_KIND,
        "person_id": person.id,
        "locale": current_locale(),
        "launched_at": int(time.time()),
        # What an LTI page (lti_tool/views/context.py open_launch) reads from every launch, empty: this token
        # opened there finds no course, so no role, instead of failing.
        "platform_instance": "",
        "context_id": None,
        "issuer": "",
        "sub": "",
        "roles": [],
    }
    # Its own nonce: a launch record's nonce is unique, and this session consumed no id_token.
    state_store().record_launch(launch_id, "magic-link:" + launch_id, data, settings.launch_token_ttl_seconds)
    commit()  # the link is used up and the session exists before the page says so
    log_event("licence administrator signed in", person_id=person.id)
    return _home(AdminSession(launch_id, make_launch_token(launch_id), person))


@bp.route("/home", methods=["GET", "POST"])
def home() -> ResponseReturnValue:
    """The licence administrator's home. A GET without a token (a reload) gets the page that posts the token this
    browser tab kept (launch.js); authority comes from the database on every request."""
    if TOKEN_FIELD in request.args:
        launch_id = read_launch_token(request.args.get(TOKEN_FIELD, ""))
        if launch_id is not None and state_store().end_launch(launch_id):
            commit()  # whoever saw the address cannot use the session either
        return _refusal("licence_admin_token_in_address")
    token = launch_token_of_request()
    if request.method == "GET" and not token:
        return render_template("signin/resume.html")
    session = _session(token)
    if session is None:
        return _refusal("licence_admin_session_invalid")
    return _home(session)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    launch_id = read_launch_token(launch_token_of_request())
    if launch_id is not None:
        data = state_store().get_launch(launch_id)
        if data is not None and data.get("kind") == SESSION_KIND:
            state_store().end_launch(launch_id)
    return render_template("signin/signed_out.html")


def _mail_text(name: str, link: str, minutes: int) -> str:
    """The plain-text part; the same sentences as signin/link_mail.html."""
    paragraphs = [
        gettext("Hello %(name)s,", name=name),
        gettext("Open this link to sign in to Kurspakke as licence administrator:"),
        link,
        gettext("The link works for %(num)d minutes and signs in once.", num=minutes),
        gettext("If you did not ask to sign in, you can ignore this e-mail."),
    ]
    return "\n\n".join(paragraphs) + "\n"


def _session(token: str) -> AdminSession | None:
    launch_id = read_launch_token(token)
    if launch_id is None:
        return None
    data = state_store().get_launch(launch_id)
    if data is None or data.get("kind") != SESSION_KIND:
        return None  # an LTI launch's token is not a licence administrator's session
    return session_of(launch_id, token, data)


def session_of(launch_id: str, token: str, data: dict[str, Any]) -> AdminSession | None:
    """The signed-in person of a magic-link session's record (``kind: licence_admin``), read from the database now;
    None when the person no longer exists. Sets the request's locale to the session's."""
    g.locale = data.get("locale") or "nb"
    person = db().get(Person, int(data["person_id"]))
    return None if person is None else AdminSession(launch_id, token, person)


def _home(session: AdminSession) -> ResponseReturnValue:
    rows = administered(db(), session.person.id)
    if not rows:
        return _refusal("licence_admin_none")
    programmes = services().programmes
    entries = [
        {
            "organisation": row.organisation_name,
            "orgnr": row.orgnr,
            "programme": programmes[row.programme_id].title if row.programme_id in programmes else row.programme_id,
            "url": url_for("licence_admin.overview", org_id=row.organisation_id, programme_id=row.programme_id),
        }
        for row in rows
    ]
    return render_template("views/licence_admin_home.html", ctx=session, person=session.person, entries=entries)
