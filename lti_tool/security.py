"""Security headers on every response.

frame-ancestors names only the registered platforms' frame origins (where users see Canvas, which for hosted
Canvas is the institution's own domain, not the issuer). Scripts come from our own origin or carry the
per-response nonce; there is no inline script without one. Launch tokens may sit in URLs, so no Referer leaves.
"""

from __future__ import annotations

import functools
import secrets

from flask import Flask, Response, g

from lti_tool.services import services


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


@functools.lru_cache(maxsize=8)
def _policy_template(frame_origins: tuple[str, ...], form_origins: tuple[str, ...]) -> str:
    return content_security_policy("{nonce}", list(frame_origins), list(form_origins))


def content_security_policy(nonce: str, frame_origins: list[str], form_origins: list[str]) -> str:
    ancestors = " ".join(["'self'", *frame_origins])
    forms = " ".join(["'self'", *form_origins])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            f"form-action {forms}",
            f"frame-ancestors {ancestors}",
        ]
    )


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _headers(response: Response) -> Response:
        svc = services()
        frames, forms = svc.platform_origins()
        policy = _policy_template(tuple(frames), tuple(forms))
        response.headers["Content-Security-Policy"] = policy.replace("{nonce}", csp_nonce())
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin-allow-popups"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if svc.settings.is_production:
            response.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        response.headers.setdefault("Cache-Control", "no-store")
        return response
