"""LTI Advantage services (NRPS, AGS) through pylti1p3's ServiceConnector, hardened:

- the access-token cache is keyed by issuer, client_id and scopes (the library keys by issuer and scopes only,
  so two developer keys of one hosted Canvas would share a token);
- tokens are cached in the shared cache (database or Redis), not per process;
- the client assertion is signed with the tool's key as parsed once by the key ring;
- every HTTP call has a timeout.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import requests
from pylti1p3.exception import LtiServiceException
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.registration import Registration as LibRegistration
from pylti1p3.service_connector import ServiceConnector

from kurspakke.models import Registration
from kurspakke.services.cache import SharedCache
from kurspakke.services.keys import KeyRing

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TOKEN_EXPIRY_MARGIN_SECONDS = 60


class LtiServiceError(Exception):
    """The platform refused or failed an LTI service call."""


class TimeoutSession(requests.Session):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout
        self.headers["User-Agent"] = "kurspakke"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class _KeyRingRegistration(LibRegistration):
    def __init__(self, row: Registration, keyring: KeyRing) -> None:
        super().__init__()
        self._keyring = keyring
        self.set_issuer(row.issuer).set_client_id(row.client_id).set_auth_token_url(row.auth_token_url)
        self.set_auth_login_url(row.auth_login_url).set_key_set_url(row.key_set_url)
        if row.auth_audience:
            self.set_auth_audience(row.auth_audience)

    def get_kid(self) -> str | None:
        return self._keyring.signing_key().kid

    def get_tool_private_key(self) -> Any:
        return self._keyring.signing_key().private_key


class ToolServiceConnector(ServiceConnector):
    def __init__(
        self,
        registration: Registration,
        *,
        keyring: KeyRing,
        cache: SharedCache,
        timeout: float,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(_KeyRingRegistration(registration, keyring), session or TimeoutSession(timeout))
        self._cache = cache

    def _scope_key(self, scopes: Any) -> str:
        reg = self._registration
        parts = [reg.get_issuer() or "", reg.get_client_id() or "", *sorted(scopes)]
        return "lti-token:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        return self._cache.get(scope_key)

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        ttl = int(expires_in) - TOKEN_EXPIRY_MARGIN_SECONDS
        if ttl > 0:
            self._cache.set(scope_key, access_token, ttl)

    def encode_jwt(self, message: dict[str, str | int], private_key: Any, headers: dict[str, str]) -> str:
        import jwt

        return jwt.encode(message, private_key, algorithm="RS256", headers=headers)

    def get_access_token(self, scopes: Sequence[str]) -> str:
        """Raises LtiServiceError when the platform refuses the client assertion or answers nonsense."""
        try:
            token = super().get_access_token(scopes)
        except (LtiServiceException, requests.RequestException, KeyError) as exc:
            raise LtiServiceError(f"access token refused: {exc}") from exc
        if not isinstance(token, str) or not token:
            raise LtiServiceError("access token missing in the platform's answer")
        return token


def course_members(connector: ToolServiceConnector, memberships_url: str) -> Iterator[dict[str, Any]]:
    """All members of a course from NRPS, page by page (Link rel=next). Raises LtiServiceError."""
    service = NamesRolesProvisioningService(connector, {"context_memberships_url": memberships_url})
    try:
        for member in service.get_members():
            yield dict(member)
    except (LtiServiceException, requests.RequestException) as exc:
        raise LtiServiceError(f"NRPS request failed: {exc}") from exc
