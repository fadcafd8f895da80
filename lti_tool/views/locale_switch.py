"""Choosing the page's language (Bokmål, Nynorsk, English) on the page itself.

Inside Canvas the launch says the language (its ``locale`` claim); a person who picks another keeps it for the rest
of that launch: the choice is written on the launch record, and the page is opened again through the resume page
(a small page whose script posts the token to the page's address). Outside Canvas (the order form, the certificate
check, the start page) the choice is a first-party cookie."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request
from flask.typing import ResponseReturnValue

from lti_tool.i18n import LANGUAGE_COOKIE, LOCALES
from lti_tool.lti.errors import LtiRefusal
from lti_tool.services import commit, read_launch_token, state_store
from lti_tool.views.context import launch_token_of_request

bp = Blueprint("locale", __name__)

COOKIE_SECONDS = 365 * 24 * 3600
MAX_NEXT = 512


def _same_site_path(value: str) -> str:
    """Where to go after switching: a path of this site only (never another host: no open redirect)."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > MAX_NEXT:
        return "/"
    return value


@bp.post("/locale")
def switch_in_launch() -> ResponseReturnValue:
    """Raises LtiRefusal: bad_request (not one of our languages), launch_token_invalid (no or an ended launch)."""
    locale = request.form.get("locale", "")
    if locale not in LOCALES:
        raise LtiRefusal("bad_request", detail="unknown locale")
    launch_id = read_launch_token(launch_token_of_request())
    if launch_id is None or not state_store().set_locale(launch_id, locale):
        raise LtiRefusal("launch_token_invalid", status=401)
    commit()
    # The page again, in the new language: a small page posts the token to its address (launch.js). Not a redirect:
    # a GET would have to find the token in the frame's storage, which a browser blocking third-party storage
    # does not keep.
    return render_template(
        "locale_switched.html", token=launch_token_of_request(), next=_same_site_path(request.form.get("next", ""))
    )


@bp.get("/locale/<locale>")
def switch_public(locale: str) -> ResponseReturnValue:
    if locale not in LOCALES:
        abort(404)
    response = redirect(_same_site_path(request.args.get("next", "/")), code=303)
    response.set_cookie(
        LANGUAGE_COOKIE, locale, max_age=COOKIE_SECONDS, samesite="Lax", secure=request.is_secure, httponly=True
    )
    return response


__all__ = ["bp"]
