"""Driving a launch end to end: tool login → simulator authorize → tool launch, with the real HTTP handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bs4 import BeautifulSoup
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from canvas_sim import SimPlatform

TOOL = "https://kurspakke.test"
SIM = "https://canvas.sim.test"


@dataclass
class Login:
    response: TestResponse
    auth_params: dict[str, str]

    @property
    def state(self) -> str:
        return self.auth_params["state"]

    @property
    def nonce(self) -> str:
        return self.auth_params["nonce"]


def form_fields(html: str, form_selector: str = "form:not([data-locale-switch])") -> tuple[str, dict[str, str]]:
    """The first form of a page (the header's language switcher aside) as (action, fields)."""
    soup = BeautifulSoup(html, "html.parser")
    form = soup.select_one(form_selector)
    assert form is not None, html[:500]
    fields = {i["name"]: i.get("value", "") for i in form.find_all("input") if i.get("name")}
    return str(form.get("action", "")), fields


class LtiDriver:
    def __init__(self, client: FlaskClient, sim: SimPlatform, sim_client: FlaskClient) -> None:
        self.client = client
        self.sim = sim
        self.sim_client = sim_client

    def login(self, user_key: str = "deltaker", **kwargs: Any) -> Login:
        params = self.sim.login_initiation_params(user_key, **kwargs)
        resp = self.client.get("/lti/login", query_string=params, base_url=TOOL)
        assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
        location = resp.headers["Location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        return Login(resp, query)

    def authorize(self, login: Login) -> dict[str, str]:
        """The platform's answer: the form fields (id_token, state) it posts to the tool."""
        location = login.response.headers["Location"]
        parts = urlsplit(location)
        resp = self.sim_client.get(parts.path, query_string=parts.query)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
        action, fields = form_fields(resp.get_data(as_text=True))
        assert action == TOOL + "/lti/launch"
        return fields

    def post_launch(self, fields: dict[str, str]) -> TestResponse:
        return self.client.post("/lti/launch", data=fields, base_url=TOOL)

    def launch(self, user_key: str = "deltaker", **kwargs: Any) -> TestResponse:
        login = self.login(user_key, **kwargs)
        return self.post_launch(self.authorize(login))

    def crafted(
        self,
        login: Login,
        user_key: str = "deltaker",
        *,
        claims: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **sign_kwargs: Any,
    ) -> dict[str, str]:
        """Fields for a launch whose id_token the test shapes itself (for bad-input tests)."""
        body = self.sim.claims_for(self.sim.user(user_key), nonce=login.nonce)
        body.update(claims or {})
        for key in drop:
            body.pop(key, None)
        return {"id_token": self.sim.sign(body, **sign_kwargs), "state": login.state}


def launch_token(html: str) -> str:
    """The launch token a page hands to launch.js (never in an address)."""
    soup = BeautifulSoup(html, "html.parser")
    token = soup.body.get("data-launch-token") if soup.body else None
    assert token, "page carries no launch token"
    return str(token)


def open_page(client: FlaskClient, path: str, token: str) -> TestResponse:
    """A page of the tool as launch.js opens it: the token posted, not in the address."""
    return client.post(path, data={"lt": token}, base_url=TOOL)
