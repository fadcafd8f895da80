"""Launch and login refusals. Each carries a message key from the translation catalogue and an HTTP status."""

from __future__ import annotations

from lti_tool.i18n_marker import N_


class LtiRefusal(Exception):
    """A request the tool refuses with a clear 4xx page; nothing is written."""

    def __init__(self, code: str, status: int = 400, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.status = status
        self.detail = detail


# code -> (English msgid for the user; translated through the catalogue)
REFUSAL_MESSAGES: dict[str, str] = {
    "missing_parameter": N_("The request from the learning platform is missing a required value."),
    "unknown_platform": N_("This learning platform is not registered with the tool. Ask your administrator to add it."),
    "bad_target": N_("The link points to an address that does not belong to this tool."),
    "state_invalid": N_(
        "The sign-in could not be confirmed (state missing, expired or not from this browser). "
        "Start the tool again from the course."
    ),
    "cookies_blocked": N_("Your browser blocked the sign-in check. Open the tool in a new tab from the course."),
    "token_malformed": N_("The sign-in token from the learning platform is not a valid token."),
    "token_too_large": N_("The request is too large."),
    "signature_invalid": N_("The sign-in token could not be verified."),
    "key_unknown": N_("The sign-in token is signed with a key the learning platform does not publish."),
    "platform_keys_unavailable": N_("The learning platform's keys could not be fetched. Try again in a minute."),
    "claims_invalid": N_("The sign-in token is not valid for this tool."),
    "token_expired": N_("The sign-in token has expired. Start the tool again from the course."),
    "nonce_invalid": N_("This sign-in has already been used or is not known. Start the tool again from the course."),
    "deployment_unknown": N_("This installation of the tool in the learning platform is not registered."),
    "message_type_unknown": N_("The learning platform sent a kind of launch this tool does not support."),
    "launch_token_invalid": N_("Your session has expired or is not valid. Start the tool again from the course."),
    "launch_token_in_address": N_(
        "This address carried your sign-in, so that sign-in has been closed to keep it safe. Open the tool again "
        "from the course in Canvas."
    ),
    "owner_launch_stale": N_(
        "To work as course administrator, open the tool again from the course in Canvas: that access is confirmed "
        "for one hour at a time."
    ),
    "deep_link_one_only": N_("Canvas accepts one link at a time here. Choose one page."),
    "course_already_linked": N_("This course is already linked to a programme."),
    "programme_linked_elsewhere": N_("That programme is already linked to another course on this Canvas."),
    "forbidden": N_("You do not have access to this page."),
    "not_found": N_("The page was not found."),
    "bad_request": N_("The request was not understood."),
    "method_not_allowed": N_("This address does not accept that kind of request."),
}
