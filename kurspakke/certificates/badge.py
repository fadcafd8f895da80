"""The Open Badges 3.0 credential for a certificate, signed as a VC-JWT.

``build_credential`` makes an ``OpenBadgeCredential`` in the Verifiable Credentials Data Model 2.0 shape of the
1EdTech AchievementCredential JSON Schema; ``sign_credential`` signs it in the JSON Web Token proof format of OB 3.0
§8.2: a compact JWS (RS256) whose payload is the credential object itself plus the registered claims that mirror it
(``iss`` = issuer.id, ``jti`` = id, ``sub`` = credentialSubject.id when there is one, ``nbf`` = validFrom, ``exp`` =
validUntil when there is one, ``iat``). The JWS is the proof: the payload carries no ``proof`` property.

The header's ``kid`` names a key in the tool's JWKS at ``<base>/lti/jwks``, the only place a verifier can find our
public keys; ``verify_credential`` checks a token against such a JWKS and never against keys named by the token
(``jku``/``jwk``/``x5u`` headers are ignored).

Shape decisions (see the OB 3.0 spec, https://www.imsglobal.org/spec/ob/v3p0/):

* The credential ``id`` is ``<base>/verify/<code>``: a URL a person can open to check the certificate, and the
  page that knows whether it has been revoked (so no ``credentialStatus``).
* The holder has no DID, so ``credentialSubject`` has no ``id`` (and the JWT no ``sub``); OB 3.0 allows that when
  ``identifier`` is present. A made-up URN would look like an identifier the holder could prove control of, and a
  stable one would link one person's credentials together.
* ``identifier`` holds the printed name in clear (``identityType`` "name", ``hashed`` false, as the OB 3.0 examples
  do; AchievementSubject has no ``name`` property) and, when known, the e-mail address as a salted SHA-256
  ``identityHash``: the holder can show that the badge is theirs by giving the address, which never appears in clear.
* ``achievementType`` is "CertificateOfCompletion" ("acknowledges completion of an assignment, training or other
  activity"), which is what a kursbevis is; "Certificate" in the OB 3.0 vocabulary means a credential designating
  the knowledge and skills of an occupation or academic programme.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from kurspakke.certificates.codes import is_well_formed, normalise

CONTEXT = ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]
CREDENTIAL_TYPE = ["VerifiableCredential", "OpenBadgeCredential"]
CREDENTIAL_SCHEMA = {
    "id": "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json",
    "type": "1EdTechJsonSchemaValidator2019",
}
ACHIEVEMENT_TYPE = "CertificateOfCompletion"
ROLES = ("participant", "mentor")
ALGORITHM = "RS256"
# The claims sign_credential adds next to the credential's own properties; verify_credential strips them again.
REGISTERED_CLAIMS = ("iss", "jti", "sub", "nbf", "exp", "iat")
LEEWAY_SECONDS = 60  # clock skew between our hosts and a verifier's
# A credential with a long module and goal list is a few kilobytes; anything far larger is refused unparsed.
MAX_TOKEN_LENGTH = 128 * 1024
MIN_RSA_BITS = 2048

# BCP 47 as the schema's LanguageCode pattern has it.
_LANGUAGE = re.compile(r"^[a-z]{2,4}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$")
# Headings of the criteria narrative's lists, in the credential's language (bokmål when the language is unknown).
_HEADINGS = {
    "nb": ("Moduler", "Læringsmål"),
    "nn": ("Modular", "Læringsmål"),
    "en": ("Modules", "Learning goals"),
}


class BadgeError(Exception):
    """A credential token that does not verify; ``reason`` says why, in words fit for a log line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class BadgeFacts:
    base_url: str  # "https://kurs.example.no" (no trailing slash)
    code: str  # canonical verification code
    holder_name: str  # name as printed
    holder_email: str | None  # hashed into an IdentityObject (salted sha256) when given; never in clear
    programme_id: str  # "lindrende-behandling"
    programme_title: str
    achievement_description: str  # e.g. the certificate's statement + programme title
    criteria: str  # the programme file's certificate requirements (narrative, Markdown-free text)
    learning_goals: tuple[str, ...]
    module_titles: tuple[str, ...]
    issuer_name: str  # "Høgskolen i Innlandet"
    issuer_url: str | None  # optional homepage
    issuer_email: str | None
    valid_from: datetime  # tz-aware UTC
    valid_until: datetime | None = None
    role: str = "participant"  # or "mentor": a different achievement (id, and the name/description passed in)
    achievement_name: str = "Kursbevis"
    language: str = "nb"


def _timestamp(value: datetime, what: str) -> str:
    # VC 2.0 wants dateTimeStamp with a time zone; UTC with "Z" and whole seconds keeps nbf/exp exactly equal.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_timestamp(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise BadgeError(f"{what} missing or not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadgeError(f"{what} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise BadgeError(f"{what} has no time zone")
    return parsed


def email_identity_hash(email: str, salt: str) -> str:
    """The OB ``identityHash`` of an e-mail address: ``sha256$`` + hex SHA-256 of address + salt (UTF-8).

    The address is trimmed and lower-cased first, so a verifier who types it with different capitals gets the same
    hash; a verifier has to do the same.
    """
    return "sha256$" + hashlib.sha256((email.strip().lower() + salt).encode()).hexdigest()


def _salt(code: str) -> str:
    # Derived from the certificate's own random code, so every credential has a different salt (one person's badges
    # cannot be linked by their e-mail hash) and building the same facts twice gives the same credential. The salt
    # is published in the credential either way; it does not make a guessed address harder to confirm.
    return hashlib.sha256(b"kurspakke/badge/identity-salt\x00" + code.encode()).hexdigest()[:32]


def _criteria_narrative(facts: BadgeFacts) -> str:
    # The narrative may hold Markdown (OB 3.0 Criteria); the module titles and learning goals go there as lists
    # because the Achievement has no better-fitting property that every wallet shows.
    modules_heading, goals_heading = _HEADINGS.get(facts.language.split("-")[0], _HEADINGS["nb"])
    parts = [facts.criteria.strip()]
    if facts.module_titles:
        parts.append(f"{modules_heading}:\n" + "\n".join(f"- {title}" for title in facts.module_titles))
    if facts.learning_goals:
        parts.append(f"{goals_heading}:\n" + "\n".join(f"- {goal}" for goal in facts.learning_goals))
    return "\n\n".join(part for part in parts if part)


def build_credential(facts: BadgeFacts) -> dict[str, Any]:
    """The OpenBadgeCredential for ``facts``, without a proof. Raises ValueError on facts that cannot make one."""
    base = facts.base_url.rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise ValueError("base_url must be an absolute http(s) URL")
    if normalise(facts.code) != facts.code or not is_well_formed(facts.code):
        raise ValueError("code must be a well-formed verification code in canonical form")
    if facts.role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if not facts.holder_name.strip():
        raise ValueError("holder_name is empty")
    if not _LANGUAGE.match(facts.language):
        raise ValueError("language must be a BCP 47 code such as 'nb'")
    valid_from = _timestamp(facts.valid_from, "valid_from")
    valid_until = None if facts.valid_until is None else _timestamp(facts.valid_until, "valid_until")
    if valid_until is not None and valid_until <= valid_from:  # same fixed-width UTC format: text order is time order
        raise ValueError("valid_until must be after valid_from")

    issuer: dict[str, Any] = {
        "id": f"{base}/badges/issuers/{facts.programme_id}",
        "type": ["Profile"],
        "name": facts.issuer_name,
    }
    if facts.issuer_url:
        issuer["url"] = facts.issuer_url
    if facts.issuer_email:
        issuer["email"] = facts.issuer_email

    identifiers: list[dict[str, Any]] = [
        {"type": "IdentityObject", "identityHash": facts.holder_name, "identityType": "name", "hashed": False}
    ]
    if facts.holder_email and facts.holder_email.strip():
        salt = _salt(facts.code)
        identifiers.append(
            {
                "type": "IdentityObject",
                "identityHash": email_identity_hash(facts.holder_email, salt),
                "identityType": "emailAddress",
                "hashed": True,
                "salt": salt,
            }
        )

    achievement = {
        "id": f"{base}/badges/achievements/{facts.programme_id}/{facts.role}",
        "type": ["Achievement"],
        "achievementType": ACHIEVEMENT_TYPE,
        "name": f"{facts.achievement_name}: {facts.programme_title}",
        "description": facts.achievement_description,
        "criteria": {"narrative": _criteria_narrative(facts)},
        "inLanguage": facts.language,
    }

    credential: dict[str, Any] = {
        "@context": list(CONTEXT),
        "id": f"{base}/verify/{facts.code}",
        "type": list(CREDENTIAL_TYPE),
        "name": f"{facts.achievement_name}: {facts.programme_title}",
        "issuer": issuer,
        "validFrom": valid_from,
        # One certificate is one award (a re-issue gets a new code and id), so awarded and valid-from coincide.
        "awardedDate": valid_from,
        "credentialSubject": {"type": ["AchievementSubject"], "identifier": identifiers, "achievement": achievement},
        "credentialSchema": [dict(CREDENTIAL_SCHEMA)],
    }
    if valid_until is not None:
        credential["validUntil"] = valid_until
    return credential


def _issuer_id(credential: dict[str, Any]) -> Any:
    issuer = credential.get("issuer")
    return issuer.get("id") if isinstance(issuer, dict) else issuer


def _subject_id(credential: dict[str, Any]) -> Any:
    subject = credential.get("credentialSubject")
    return subject.get("id") if isinstance(subject, dict) else None


def sign_credential(credential: dict[str, Any], private_key: RSAPrivateKey, kid: str) -> str:
    """The credential as a VC-JWT: compact JWS, RS256, header ``{"alg", "typ": "JWT", "kid"}``.

    ``kid`` must be a key the tool publishes at ``<base>/lti/jwks``, or nobody can verify the result.
    """
    if not kid:
        raise ValueError("kid is required: verifiers find the key by it")
    if "proof" in credential:
        raise ValueError("a VC-JWT carries no embedded proof; the JWS is the proof")
    clash = set(REGISTERED_CLAIMS) & credential.keys()
    if clash:
        raise ValueError(f"credential has properties named like JWT claims: {sorted(clash)}")
    issuer_id, credential_id = _issuer_id(credential), credential.get("id")
    if not isinstance(issuer_id, str) or not isinstance(credential_id, str):
        raise ValueError("credential needs an id and an issuer id")
    claims: dict[str, Any] = {
        "iss": issuer_id,
        "jti": credential_id,
        "nbf": int(_parse_timestamp(credential.get("validFrom"), "validFrom").timestamp()),
        "iat": int(time.time()),
    }
    subject_id = _subject_id(credential)
    if subject_id is not None:
        claims["sub"] = subject_id
    if "validUntil" in credential:
        claims["exp"] = int(_parse_timestamp(credential["validUntil"], "validUntil").timestamp())
    return jwt.encode({**credential, **claims}, private_key, algorithm=ALGORITHM, headers={"kid": kid, "typ": "JWT"})


def _verification_key(jwks: dict[str, Any], kid: str) -> RSAPublicKey:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise BadgeError("JWKS has no key list")
    matches = [k for k in keys if isinstance(k, dict) and k.get("kid") == kid]
    if not matches:
        raise BadgeError(f"no key with kid {kid!r} in the JWKS")
    if len(matches) > 1:
        raise BadgeError(f"kid {kid!r} is not unique in the JWKS")
    jwk = matches[0]
    if jwk.get("kty") != "RSA" or jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
        raise BadgeError(f"key {kid!r} is not an RS256 signing key")
    try:
        # Only the public members: a JWK that (wrongly) carries the private exponent must not become a private key.
        key = jwt.PyJWK({"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}, algorithm=ALGORITHM).key
    except (KeyError, jwt.PyJWTError) as exc:
        raise BadgeError(f"key {kid!r} is not a usable RSA public key: {exc}") from None
    if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise BadgeError(f"key {kid!r} is not an RSA public key of at least {MIN_RSA_BITS} bits")
    return key


def verify_credential(
    token: str,
    jwks: dict[str, Any],
    *,
    expected_issuer: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Verify a VC-JWT made by ``sign_credential`` against ``jwks``; return the credential (claims removed).

    Raises BadgeError with the reason when the token is not RS256 with a known kid, the signature fails, the claims
    do not mirror the credential, or the credential is not valid at ``now`` (default: the current time; with
    ``LEEWAY_SECONDS`` either side). Revocation is not checked here: that is the /verify page's database lookup.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise BadgeError("token is not a string of acceptable length")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise BadgeError("token is not a compact JWS") from None
    alg = header.get("alg")
    # Checked before any key is touched: "none" and HS256 (a verifier tricked into using the public key as an HMAC
    # secret) are refused by name, not left to the library's defaults.
    if alg != ALGORITHM:
        raise BadgeError(f"algorithm {alg!r} is not accepted; only {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise BadgeError("token header has no kid")
    key = _verification_key(jwks, kid)
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            # Times are checked below against `now` and against the credential's own validFrom/validUntil.
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "require": ["iss", "jti", "nbf"],
            },
        )
    except jwt.InvalidSignatureError:
        raise BadgeError("signature does not verify") from None
    except jwt.PyJWTError as exc:
        raise BadgeError(f"token is invalid: {exc}") from None

    credential = {k: v for k, v in payload.items() if k not in REGISTERED_CLAIMS}
    types = credential.get("type")
    if not isinstance(types, list) or not {"VerifiableCredential", "OpenBadgeCredential"} <= set(types):
        raise BadgeError("payload is not an OpenBadgeCredential")
    if "proof" in credential:
        raise BadgeError("a VC-JWT payload must not carry an embedded proof")

    issuer_id = _issuer_id(credential)
    if payload["iss"] != issuer_id:
        raise BadgeError("iss does not match the credential's issuer")
    if expected_issuer is not None and issuer_id != expected_issuer:
        raise BadgeError(f"issuer {issuer_id!r} is not the expected {expected_issuer!r}")
    if payload["jti"] != credential.get("id"):
        raise BadgeError("jti does not match the credential id")
    if payload.get("sub") != _subject_id(credential):
        raise BadgeError("sub does not match the credential subject's id")

    valid_from = _parse_timestamp(credential.get("validFrom"), "validFrom")
    if payload["nbf"] != int(valid_from.timestamp()):
        raise BadgeError("nbf does not match validFrom")
    valid_until = None
    if "validUntil" in credential:
        valid_until = _parse_timestamp(credential["validUntil"], "validUntil")
        if payload.get("exp") != int(valid_until.timestamp()):
            raise BadgeError("exp does not match validUntil")
    elif "exp" in payload:
        raise BadgeError("exp without validUntil")

    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    moment = now.timestamp()
    if moment + LEEWAY_SECONDS < valid_from.timestamp():
        raise BadgeError("credential is not yet valid")
    if valid_until is not None and moment - LEEWAY_SECONDS >= valid_until.timestamp():
        raise BadgeError("credential has expired")
    return credential


__all__ = [
    "ACHIEVEMENT_TYPE",
    "CREDENTIAL_SCHEMA",
    "REGISTERED_CLAIMS",
    "BadgeError",
    "BadgeFacts",
    "build_credential",
    "email_identity_hash",
    "sign_credential",
    "verify_credential",
]
