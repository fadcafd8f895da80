"""What the tool keeps of a deep-linking request's settings, and what it refuses."""

from __future__ import annotations

import pytest

from lti_tool.lti.errors import LtiRefusal
from lti_tool.views.context import _deep_linking_settings

GOOD = {"deep_link_return_url": "https://canvas.example/courses/1/deep_linking_response", "accept_types": []}


def test_production_takes_only_https_return_urls():
    http = {**GOOD, "deep_link_return_url": "http://canvas.example/courses/1/deep_linking_response"}
    with pytest.raises(LtiRefusal) as refused:
        _deep_linking_settings(http, https_only=True)
    assert refused.value.code == "claims_invalid" and refused.value.detail == "deep_link_return_url"
    assert _deep_linking_settings(http, https_only=False)["deep_link_return_url"] == http["deep_link_return_url"]
    assert _deep_linking_settings(GOOD, https_only=True)["deep_link_return_url"] == GOOD["deep_link_return_url"]


@pytest.mark.parametrize(
    ("accept", "multiple"),
    [
        ({"accept_multiple": True}, True),
        ({}, False),  # not said: one at most
        ({"accept_multiple": "true"}, False),  # not a JSON true
    ],
)
def test_accept_multiple_is_kept(accept, multiple):
    kept = _deep_linking_settings({**GOOD, "accept_types": ["ltiResourceLink"], **accept}, https_only=True)
    assert kept["accept_multiple"] is multiple
