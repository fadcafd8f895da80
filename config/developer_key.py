"""The Canvas developer-key template (Developer Keys → + Developer Key → LTI Key → Method: Paste JSON).

Served filled in for this deployment at GET /lti/config.json. Privacy level public: the tool needs the name and
the e-mail of everyone who launches (DESIGN.md §4). Deep linking is the link_selection placement.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

TITLE = "Kurspakke"
DESCRIPTION = "Lisenser, mentorgrupper, fremdrift og kursbevis for opplæringspakker i Canvas."
SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
)
CUSTOM_FIELDS = {"canvas_user_id": "$Canvas.user.id", "canvas_course_id": "$Canvas.course.id"}


def developer_key(base_url: str) -> dict[str, Any]:
    """The developer-key JSON for a tool served at ``base_url`` (scheme://host[:port][/prefix], no trailing /)."""
    launch = base_url + "/lti/launch"
    return {
        "title": TITLE,
        "description": DESCRIPTION,
        "oidc_initiation_url": base_url + "/lti/login",
        "target_link_uri": launch,
        "public_jwk_url": base_url + "/lti/jwks",
        "scopes": list(SCOPES),
        "extensions": [
            {
                "domain": urlsplit(base_url).hostname or "",
                "tool_id": "kurspakke",
                "platform": "canvas.instructure.com",
                "privacy_level": "public",
                "settings": {
                    "text": TITLE,
                    "placements": [
                        {
                            "placement": "course_navigation",
                            "message_type": "LtiResourceLinkRequest",
                            "target_link_uri": launch,
                            "text": TITLE,
                            "default": "enabled",
                            "visibility": "public",
                        },
                        {
                            "placement": "link_selection",
                            "message_type": "LtiDeepLinkingRequest",
                            "target_link_uri": launch,
                            "text": TITLE,
                        },
                    ],
                },
            }
        ],
        "custom_fields": dict(CUSTOM_FIELDS),
    }
