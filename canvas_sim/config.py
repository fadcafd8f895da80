"""Configuration for one simulated Canvas instance (one course, one tool registration)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from canvas_sim.users import SimUser, demo_users_copy

JwksFetcher = Callable[[str], dict[str, Any]]


FORWARDING_FRAME = "post_message_forwarding"

# The launch languages the course page offers (Canvas locale codes → the name shown), in the page's order.
LAUNCH_LOCALES: dict[str, str] = {"nb": "Bokmål", "nn": "Nynorsk", "en": "English"}


@dataclass
class SimConfig:
    base_url: str = "http://127.0.0.1:5001"
    issuer: str | None = None  # None → base_url (Canvas uses its own host as issuer)
    client_id: str = "10000000000001"
    deployment_id: str = "1:kurspakke-sim"
    tool_login_url: str = "http://127.0.0.1:5000/lti/login"
    tool_launch_url: str = "http://127.0.0.1:5000/lti/launch"
    redirect_uris: list[str] | None = None  # None → [tool_launch_url]
    tool_jwks_url: str = "http://127.0.0.1:5000/lti/jwks"
    tool_jwks_fetcher: JwksFetcher | None = None  # None → requests.get(..., timeout=5)
    course_id: int = 1
    context_id: str = "sim-course-1"
    course_title: str = "Lindrende behandling og omsorg ved livets slutt"
    course_label: str = "LINDRENDE-101"
    course_sis_id: str = "SIM-LINDRENDE-2025"
    platform_guid: str = "simguid0000000000000000000000000000000:canvas-lms"
    users: list[SimUser] = field(default_factory=demo_users_copy)
    private_key_pem: bytes | None = None  # None → fresh RSA 2048 key per SimPlatform
    kid: str | None = None  # None → RFC 7638 thumbprint of the key
    storage_target: str | None = "_parent"  # sent as lti_storage_target; None → omitted
    # Where the platform authorizes launches and runs its postMessage forwarding frame — hosted Canvas: on
    # https://sso.canvaslms.com, another origin than the Canvas page. None → base_url. With
    # storage_target "post_message_forwarding" the course page embeds that frame beside the tool, as Canvas does.
    sso_url: str | None = None
    # False: the login still names lti_storage_target but no one answers the tool's postMessages, as in Canvas's
    # mobile apps, which send the parameter without implementing LTI Platform Storage.
    storage_answers: bool = True
    locale: str = "nb"
    token_ttl_seconds: int = 300
    # REST half (canvas_sim.rest): API tokens it accepts, its root account, throttle and default service time.
    rest_api_tokens: tuple[str, ...] = ("sim-canvas-api-token",)
    rest_account_id: int = 1
    rest_account_name: str = "Simulert Canvas"
    # Authentication providers logins may name (id → auth_type), e.g. {2: "saml"} for Feide.
    rest_auth_providers: dict[int, str] = field(default_factory=dict)
    rest_latency: float = 0.0  # seconds of simulated service time per request (also its X-Request-Cost)
    rest_throttle_enabled: bool = True
    rest_throttle_high_water: float = 700.0
    rest_throttle_leak_rate: float = 10.0
    rest_throttle_up_front: float = 50.0
    rest_throttle_status: int = 403  # 403 "Rate Limit Exceeded" as Canvas long did, or 429
    rest_seed: int = 0  # seeds fault injection with rate < 1

    @property
    def effective_issuer(self) -> str:
        return self.issuer or self.base_url.rstrip("/")

    @property
    def effective_redirect_uris(self) -> list[str]:
        return list(self.redirect_uris) if self.redirect_uris is not None else [self.tool_launch_url]

    @property
    def base(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def auth_base(self) -> str:
        return (self.sso_url or self.base_url).rstrip("/")

    @property
    def auth_login_url(self) -> str:
        return f"{self.auth_base}/api/lti/authorize_redirect"

    @property
    def forwarding_frame(self) -> bool:
        return self.storage_target == FORWARDING_FRAME

    @property
    def token_url(self) -> str:
        return f"{self.base}/login/oauth2/token"

    @property
    def tool_origin(self) -> str:
        return origin_of(self.tool_login_url)

    def tool_origins(self) -> list[str]:
        """Every origin the tool is reachable on (for CSP frame-src / form-action)."""
        urls = [self.tool_login_url, self.tool_launch_url, *self.effective_redirect_uris]
        seen: list[str] = []
        for url in urls:
            o = origin_of(url)
            if o and o not in seen:
                seen.append(o)
        return seen

    @property
    def launch_locales(self) -> dict[str, str]:
        """The languages a launch from the course page may carry: LAUNCH_LOCALES, and the configured default."""
        if self.locale in LAUNCH_LOCALES:
            return dict(LAUNCH_LOCALES)
        return {self.locale: self.locale, **LAUNCH_LOCALES}

    def user(self, key: str) -> SimUser | None:
        for u in self.users:
            if u.key == key:
                return u
        return None

    def user_by_sub(self, sub: str) -> SimUser | None:
        for u in self.users:
            if u.sub == sub:
                return u
        return None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"
