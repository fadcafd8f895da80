"""SimPlatform: Canvas's LTI 1.3 platform behaviour without HTTP.

Everything the Flask layer does goes through here so tests can drive the
platform directly (craft tokens, inspect what the tool sent back).
"""

from __future__ import annotations

import enum
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from canvas_sim import claims as c
from canvas_sim.config import SimConfig, origin_of
from canvas_sim.errors import SimAuthError
from canvas_sim.keys import load_or_generate, public_jwk
from canvas_sim.users import SimUser

# Internal audiences for the platform's own opaque tokens, so an id_token can
# never be replayed as a message hint or deep-linking `data` and vice versa.
_HINT_AUD = "canvas_sim:lti_message_hint"
_DL_DATA_AUD = "canvas_sim:deep_linking_data"
_HINT_TTL = 600
_LEEWAY = 60
ACCESS_TOKEN_TTL = 3600
DEFAULT_RESOURCE_LINK_ID = "sim-link-1"
# A BCP 47 language tag as Canvas's locales look (nb, nn, en, en-GB, nb-x-k12).
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


class _Default(enum.Enum):
    KID = enum.auto()


PLATFORM_KID = _Default.KID


@dataclass(frozen=True)
class PlacedLink:
    """An ltiResourceLink the tool returned by deep linking, placed in the course as Canvas places it (a module
    item): launching it is a resource-link launch with its own resource_link id, title, target URL and custom."""

    id: str  # the resource_link id its launches carry (Canvas: the resource link's uuid)
    title: str
    url: str
    custom: dict[str, str] = field(default_factory=dict)
    text: str = ""  # the item's text: the resource_link claim's description


class AccessToken:
    __slots__ = ("client_id", "expires_at", "scopes", "token")

    def __init__(self, token: str, client_id: str, scopes: frozenset[str], expires_at: float) -> None:
        self.token = token
        self.client_id = client_id
        self.scopes = scopes
        self.expires_at = expires_at


class SimPlatform:
    def __init__(self, config: SimConfig | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config or SimConfig()
        self.clock = clock
        self.issuer = self.config.effective_issuer
        self.private_key: rsa.RSAPrivateKey = load_or_generate(self.config.private_key_pem)
        self._public_jwk = public_jwk(self.private_key, self.config.kid)
        self.kid: str = self._public_jwk["kid"]
        self._lock = threading.Lock()
        # Observable state for tests.
        self.jwks_requests = 0
        self.token_requests = 0
        self.tool_jwks_fetches = 0
        self.deep_link_responses: list[dict[str, Any]] = []
        # Links placed in the course by accepted deep-linking responses, oldest first (only in memory).
        self.placed_links: list[PlacedLink] = []
        self.access_tokens: dict[str, AccessToken] = {}
        self.seen_jtis: set[str] = set()
        # AGS state (see canvas_sim.services).
        self.line_items: dict[int, dict[str, Any]] = {}
        self.scores: dict[int, list[dict[str, Any]]] = {}
        self._next_line_item_id = 1

    # ------------------------------------------------------------------ keys
    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self._public_jwk)]}

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        headers: Mapping[str, Any] | None = None,
        key: Any = None,
        kid: str | Literal[_Default.KID] | None = PLATFORM_KID,
    ) -> str:
        hdr: dict[str, Any] = {}
        resolved_kid = self.kid if kid is PLATFORM_KID else kid
        if resolved_kid is not None:
            hdr["kid"] = resolved_kid
        if headers:
            hdr.update(headers)
        return jwt.encode(dict(claims), key if key is not None else self.private_key, "RS256", headers=hdr)

    def _verify_own(self, token: str, audience: str) -> dict[str, Any]:
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self.private_key.public_key(),
                algorithms=["RS256"],
                audience=audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise SimAuthError(f"ugyldig token: {exc}") from exc
        if payload["exp"] < self.clock():
            raise SimAuthError("token er utløpt")
        return payload

    # ---------------------------------------------------------------- users
    def user(self, user: SimUser | str) -> SimUser:
        if isinstance(user, SimUser):
            return user
        found = self.config.user(user)
        if found is None:
            raise SimAuthError(f"ukjent bruker (login_hint): {user!r}")
        return found

    # ----------------------------------------------------- login initiation
    def login_initiation_params(
        self,
        user_key: str,
        *,
        message_type: str = c.RESOURCE_LINK_REQUEST,
        target_link_uri: str | None = None,
        resource_link_id: str | None = None,
        custom: Mapping[str, str] | None = None,
        link: PlacedLink | None = None,
        locale: str | None = None,
    ) -> dict[str, str]:
        """The login initiation for a launch. `link` launches a placed link (its URL, id, title and custom;
        `custom` adds to its own); `locale` overrides the configured language for this launch only. Both travel
        in the signed lti_message_hint to the id_token."""
        user = self.user(user_key)
        if message_type not in c.MESSAGE_TYPES:
            raise SimAuthError(f"ukjent meldingstype: {message_type!r}")
        if locale is not None and not _LOCALE.match(locale):
            raise SimAuthError(f"ugyldig språkkode (locale): {locale!r}")
        title: str | None = None
        description: str | None = None
        if link is not None:
            if message_type != c.RESOURCE_LINK_REQUEST:
                raise SimAuthError("en lenke i emnet starter bare LtiResourceLinkRequest")
            target_link_uri = target_link_uri or link.url
            resource_link_id = resource_link_id or link.id
            custom = {**link.custom, **(custom or {})}
            title = link.title
            description = link.text or None
        target = target_link_uri or self.config.tool_launch_url
        now = int(self.clock())
        # Canvas's hint is a signed JWT too; signing keeps the sim stateless, so a
        # login started by one SimPlatform instance can finish on another with the same key.
        hint = self.sign(
            {
                "iss": self.issuer,
                "aud": _HINT_AUD,
                "iat": now,
                "exp": now + _HINT_TTL,
                "login_hint": user.key,
                "message_type": message_type,
                "target_link_uri": target,
                "resource_link_id": resource_link_id or DEFAULT_RESOURCE_LINK_ID,
                "custom": dict(custom or {}),
                "resource_link_title": title,
                "resource_link_description": description,
                "locale": locale,
            }
        )
        params = {
            "iss": self.issuer,
            "login_hint": user.key,
            "target_link_uri": target,
            "lti_message_hint": hint,
            "client_id": self.config.client_id,
            "lti_deployment_id": self.config.deployment_id,
            "canvas_region": "not_configured",
            "canvas_environment": "prod",
        }
        if self.config.storage_target is not None:
            params["lti_storage_target"] = self.config.storage_target
        return params

    # ------------------------------------------------------------ authorize
    def authorize(self, params: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        def expect(name: str, value: str) -> None:
            got = params.get(name)
            if got != value:
                raise SimAuthError(f"{name} må være {value!r}, fikk {got!r}")

        expect("scope", "openid")
        expect("response_type", "id_token")
        expect("response_mode", "form_post")
        expect("prompt", "none")
        if params.get("client_id") != self.config.client_id:
            raise SimAuthError(f"ukjent client_id: {params.get('client_id')!r}")
        redirect_uri = params.get("redirect_uri") or ""
        if redirect_uri not in self.config.effective_redirect_uris:
            raise SimAuthError(f"redirect_uri er ikke registrert: {redirect_uri!r}")
        login_hint = params.get("login_hint") or ""
        user = self.config.user(login_hint)
        if user is None:
            raise SimAuthError(f"ukjent login_hint: {login_hint!r}")
        nonce = params.get("nonce") or ""
        if not nonce:
            raise SimAuthError("nonce mangler")
        state = params.get("state") or ""
        if not state:
            raise SimAuthError("state mangler")
        raw_hint = params.get("lti_message_hint") or ""
        if not raw_hint:
            raise SimAuthError("lti_message_hint mangler")
        try:
            hint = self._verify_own(raw_hint, _HINT_AUD)
        except SimAuthError as exc:
            raise SimAuthError(f"ugyldig lti_message_hint: {exc.message}") from exc
        if hint.get("login_hint") != user.key:
            raise SimAuthError("lti_message_hint hører til en annen bruker enn login_hint")
        token = self.id_token_for(
            user,
            nonce=nonce,
            message_type=hint["message_type"],
            target_link_uri=hint["target_link_uri"],
            resource_link_id=hint["resource_link_id"],
            custom=hint.get("custom") or None,
            resource_link_title=hint.get("resource_link_title"),
            resource_link_description=hint.get("resource_link_description"),
            locale=hint.get("locale"),
        )
        return redirect_uri, {"id_token": token, "state": state}

    # --------------------------------------------------------------- claims
    def claims_for(
        self,
        user: SimUser | str,
        *,
        nonce: str,
        message_type: str = c.RESOURCE_LINK_REQUEST,
        target_link_uri: str | None = None,
        resource_link_id: str = DEFAULT_RESOURCE_LINK_ID,
        custom: Mapping[str, str] | None = None,
        resource_link_title: str | None = None,
        resource_link_description: str | None = None,
        locale: str | None = None,
    ) -> dict[str, Any]:
        u = self.user(user)
        cfg = self.config
        language = locale or cfg.locale
        base = cfg.base
        now = int(self.clock())
        course = f"{base}/api/lti/courses/{cfg.course_id}"
        merged_custom = {"canvas_user_id": str(u.canvas_user_id), "canvas_course_id": str(cfg.course_id)}
        merged_custom.update(custom or {})
        out: dict[str, Any] = {
            "iss": self.issuer,
            "aud": cfg.client_id,  # Canvas sends a plain string, not a list
            "azp": cfg.client_id,
            "sub": u.sub,
            "iat": now,
            "exp": now + cfg.token_ttl_seconds,
            "nonce": nonce,
            "name": u.name,
            "given_name": u.given_name,
            "family_name": u.family_name,
            "email": u.email,
            "locale": language,
            c.MESSAGE_TYPE: message_type,
            c.VERSION: "1.3.0",
            c.DEPLOYMENT_ID: cfg.deployment_id,
            c.TARGET_LINK_URI: target_link_uri or cfg.tool_launch_url,
            c.ROLES: list(u.roles),
            c.CONTEXT: {
                "id": cfg.context_id,
                "label": cfg.course_label,
                "title": cfg.course_title,
                "type": [c.COURSE_OFFERING],
            },
            c.TOOL_PLATFORM: {
                "guid": cfg.platform_guid,
                "name": "Canvas-simulator",
                "version": "cloud",
                "product_family_code": "canvas",
            },
            c.LAUNCH_PRESENTATION: {
                "document_target": "iframe",
                "return_url": f"{base}/courses/{cfg.course_id}/external_content/success/external_tool_redirect",
                "locale": language,
            },
            c.CUSTOM: merged_custom,
            c.LIS: {"course_offering_sourcedid": cfg.course_sis_id},
            c.LTI11_LEGACY_USER_ID: u.lti11_legacy_user_id,
            c.NRPS_CLAIM: {
                "context_memberships_url": f"{course}/names_and_roles",
                "service_versions": ["2.0"],
            },
            c.AGS_CLAIM: {
                "scope": [c.SCOPE_LINEITEM, c.SCOPE_RESULT_READONLY, c.SCOPE_SCORE],
                "lineitems": f"{course}/line_items",
            },
        }
        if message_type == c.RESOURCE_LINK_REQUEST:
            resource_link = {"id": resource_link_id, "title": resource_link_title or cfg.course_title}
            if resource_link_description:
                resource_link["description"] = resource_link_description
            out[c.RESOURCE_LINK] = resource_link
        elif message_type == c.DEEP_LINKING_REQUEST:
            out[c.DL_SETTINGS] = {
                "deep_link_return_url": f"{base}/courses/{cfg.course_id}/deep_linking_response",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": True,
                "auto_create": True,
                "data": self._deep_linking_data(u, now),
            }
        else:
            raise SimAuthError(f"ukjent meldingstype: {message_type!r}")
        return out

    def id_token_for(self, user_key: SimUser | str, *, nonce: str, **kw: Any) -> str:
        return self.sign(self.claims_for(user_key, nonce=nonce, **kw))

    def _deep_linking_data(self, user: SimUser, now: int) -> str:
        # Opaque to the tool; the tool must echo it, and we check our signature on it.
        return self.sign(
            {
                "iss": self.issuer,
                "aud": _DL_DATA_AUD,
                "iat": now,
                "exp": now + 3600,
                "sub": user.sub,
                "jti": secrets.token_urlsafe(12),
            }
        )

    # ------------------------------------------------------- tool's keys
    def fetch_tool_jwks(self) -> dict[str, Any]:
        self.tool_jwks_fetches += 1
        fetcher = self.config.tool_jwks_fetcher
        try:
            if fetcher is not None:
                return fetcher(self.config.tool_jwks_url)
            resp = requests.get(self.config.tool_jwks_url, timeout=5)
            resp.raise_for_status()
            data: dict[str, Any] = resp.json()
            return data
        except SimAuthError:
            raise
        except Exception as exc:  # any transport/parse failure means "cannot verify"
            raise SimAuthError(f"kunne ikke hente verktøyets JWKS: {exc}", error="invalid_grant") from exc

    def verify_tool_jwt(self, token: str, *, error: str = "invalid_grant") -> dict[str, Any]:
        """Check signature (RS256, key by kid from the tool's JWKS); claims are checked by callers."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise SimAuthError(f"ugyldig JWT: {exc}", error=error) from exc
        if header.get("alg") != "RS256":
            raise SimAuthError(f"kun RS256 godtas, fikk {header.get('alg')!r}", error=error)
        kid = header.get("kid")
        if not kid:
            raise SimAuthError("JWT-header mangler kid", error=error)
        jwks = self.fetch_tool_jwks()
        match = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
        if not match:
            raise SimAuthError(f"ukjent kid: {kid!r}", error=error)
        try:
            key = jwt.PyJWK(match[0], algorithm="RS256")
            payload: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "iat"],
                },
            )
        except jwt.PyJWTError as exc:
            raise SimAuthError(f"ugyldig JWT: {exc}", error=error) from exc
        now = self.clock()
        if payload["exp"] <= now:
            raise SimAuthError("JWT er utløpt", error=error)
        if payload["iat"] > now + _LEEWAY:
            raise SimAuthError("JWT er utstedt i fremtiden (iat)", error=error)
        if "nbf" in payload and payload["nbf"] > now + _LEEWAY:
            raise SimAuthError("JWT er ikke gyldig ennå (nbf)", error=error)
        return payload

    # ---------------------------------------------------- token endpoint
    def issue_access_token(self, form: Mapping[str, str]) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise SimAuthError(
                f"grant_type må være client_credentials, fikk {form.get('grant_type')!r}",
                error="unsupported_grant_type",
            )
        if form.get("client_assertion_type") != c.CLIENT_ASSERTION_TYPE:
            raise SimAuthError("client_assertion_type må være jwt-bearer", error="invalid_request")
        assertion = form.get("client_assertion") or ""
        if not assertion:
            raise SimAuthError("client_assertion mangler", error="invalid_request")
        requested = (form.get("scope") or "").split()
        if not requested:
            raise SimAuthError("scope mangler", error="invalid_scope")
        unknown = [s for s in requested if s not in c.ADVANTAGE_SCOPES]
        if unknown:
            raise SimAuthError(f"ukjente scopes: {' '.join(unknown)}", error="invalid_scope")

        payload = self.verify_tool_jwt(assertion)
        client_id = self.config.client_id
        if payload.get("iss") != client_id:
            raise SimAuthError(f"iss må være client_id, fikk {payload.get('iss')!r}", error="invalid_grant")
        if payload.get("sub") != client_id:
            raise SimAuthError(f"sub må være client_id, fikk {payload.get('sub')!r}", error="invalid_grant")
        aud = payload.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if self.config.token_url not in auds:
            raise SimAuthError(f"aud må være {self.config.token_url}, fikk {aud!r}", error="invalid_grant")
        jti = payload.get("jti")
        if not isinstance(jti, str) or not jti:
            raise SimAuthError("jti mangler", error="invalid_grant")
        with self._lock:
            if jti in self.seen_jtis:
                raise SimAuthError("jti er brukt før", error="invalid_grant")
            self.seen_jtis.add(jti)
            scopes = list(dict.fromkeys(requested))  # keep order, drop duplicates
            token = secrets.token_urlsafe(32)
            self.access_tokens[token] = AccessToken(
                token, client_id, frozenset(scopes), self.clock() + ACCESS_TOKEN_TTL
            )
            self.token_requests += 1
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL,
            "scope": " ".join(scopes),
        }

    def check_bearer(self, authorization: str | None, *accepted_scopes: str) -> AccessToken:
        """Resolve an `Authorization: Bearer` header to a live token holding one of the scopes."""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise SimAuthError("Bearer-token mangler", error="invalid_token", status=401)
        tok = self.access_tokens.get(value.strip())
        if tok is None:
            raise SimAuthError("ukjent access token", error="invalid_token", status=401)
        if tok.expires_at <= self.clock():
            raise SimAuthError("access token er utløpt", error="invalid_token", status=401)
        if not tok.scopes.intersection(accepted_scopes):
            raise SimAuthError("access token mangler nødvendig scope", error="insufficient_scope", status=401)
        return tok

    # ------------------------------------------------- deep linking
    def receive_deep_link_response(self, token: str) -> dict[str, Any]:
        if not token:
            raise SimAuthError("JWT mangler")
        payload = self.verify_tool_jwt(token, error="invalid_request")
        cfg = self.config
        if payload.get("iss") != cfg.client_id:
            raise SimAuthError(f"iss må være client_id, fikk {payload.get('iss')!r}")
        aud = payload.get("aud")
        if self.issuer not in (aud if isinstance(aud, list) else [aud]):
            raise SimAuthError(f"aud må være {self.issuer}, fikk {aud!r}")
        if payload.get(c.MESSAGE_TYPE) != c.DEEP_LINKING_RESPONSE:
            raise SimAuthError(f"message_type må være {c.DEEP_LINKING_RESPONSE}")
        if payload.get(c.VERSION) != "1.3.0":
            raise SimAuthError("version må være 1.3.0")
        if payload.get(c.DEPLOYMENT_ID) != cfg.deployment_id:
            raise SimAuthError(f"deployment_id må være {cfg.deployment_id}")
        if not payload.get("nonce"):
            raise SimAuthError("nonce mangler")
        data = payload.get(c.DL_DATA)
        if not isinstance(data, str) or not data:
            raise SimAuthError("data fra dyplenkingsforespørselen er ikke sendt tilbake")
        try:
            self._verify_own(data, _DL_DATA_AUD)
        except SimAuthError as exc:
            raise SimAuthError(f"ugyldig data-claim: {exc.message}") from exc
        items = payload.get(c.DL_CONTENT_ITEMS, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise SimAuthError("content_items må være en liste av objekter")
        # Canvas places each ltiResourceLink in the course; the settings accept no other type, so none is placed.
        links = [self._placed_link(i) for i in items if i.get("type") == "ltiResourceLink"]
        with self._lock:
            self.deep_link_responses.append(payload)
            self.placed_links.extend(links)
        return payload

    def _placed_link(self, item: Mapping[str, Any]) -> PlacedLink:
        cfg = self.config
        url = item.get("url")
        if url is None:
            url = cfg.tool_launch_url  # Canvas: a link without url launches the tool's own target_link_uri
        if not isinstance(url, str) or origin_of(url) not in cfg.tool_origins():
            # Canvas finds the tool to launch by the link's URL; one on another host matches no tool.
            raise SimAuthError(f"url i ltiResourceLink hører ikke til verktøyet: {url!r}")
        title = item.get("title")
        text = item.get("text")
        custom = item.get("custom")
        if custom is None:
            custom = {}
        if not isinstance(custom, dict):
            raise SimAuthError("custom i ltiResourceLink må være et objekt")
        return PlacedLink(
            id=str(uuid.uuid4()),
            title=title if isinstance(title, str) and title.strip() else url,
            url=url,
            custom={str(k): v if isinstance(v, str) else json.dumps(v) for k, v in custom.items()},
            text=text if isinstance(text, str) else "",
        )

    def course_links(self) -> list[PlacedLink]:
        """The links placed in the course so far, oldest first (a copy)."""
        with self._lock:
            return list(self.placed_links)

    def placed_link(self, link_id: str) -> PlacedLink | None:
        with self._lock:
            return next((link for link in self.placed_links if link.id == link_id), None)
