from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kurspakke.certificates.badge import (
    ACHIEVEMENT_TYPE,
    REGISTERED_CLAIMS,
    BadgeError,
    BadgeFacts,
    build_credential,
    email_identity_hash,
    sign_credential,
    verify_credential,
)
from kurspakke.certificates.codes import new_code
from kurspakke.services.keys import public_jwk

# The repository's copy (CI checks out this repository alone); see tests/data/openbadges/README.md.
SCHEMA_PATH = Path(__file__).parents[2] / "data" / "openbadges" / "ob_v3p0_achievementcredential_schema.json"
BASE = "https://kurs.example.no"
PROGRAMME_ID = "lindrende-behandling"
EMAIL = "Kari.Nordmann@Example.NO"
NAME = "Kari Ærlig Østby-Åsen"
ISSUED = datetime(2026, 11, 2, 9, 15, 42, 123456, tzinfo=UTC)  # in the past: verified "now"


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return _rsa_key()  # RSA key generation is slow: once per module


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return _rsa_key()


@pytest.fixture(scope="module")
def jwk(private_key) -> dict[str, str]:
    return public_jwk(private_key.public_key())


@pytest.fixture(scope="module")
def jwks(jwk) -> dict[str, Any]:
    return {"keys": [jwk]}  # exactly what /lti/jwks serves


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft201909Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft201909Validator.check_schema(schema)
    # jsonschema checks "date-time" only with the optional rfc3339-validator installed; check it here without it,
    # the RFC 3339 way (a time zone is required).
    formats = jsonschema.FormatChecker()

    @formats.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        return not isinstance(value, str) or (
            "T" in value and datetime.fromisoformat(value.replace("z", "Z")).tzinfo is not None
        )

    return jsonschema.Draft201909Validator(schema, format_checker=formats)


def _facts(**changes: Any) -> BadgeFacts:
    facts = BadgeFacts(
        base_url=BASE,
        code=new_code(),
        holder_name=NAME,
        holder_email=EMAIL,
        programme_id=PROGRAMME_ID,
        programme_title="Lindrende behandling i kommunehelsetjenesten",
        achievement_description="har gjennomført opplæringsprogrammet Lindrende behandling i kommunehelsetjenesten",
        criteria="Alle sju moduler fullført, og deltatt på minst fire av fem refleksjonsmøter.",
        learning_goals=("Kjenne til prinsippene for lindrende behandling", "Kunne bruke ESAS-r"),
        module_titles=("Hva er lindrende behandling?", "Smerte og symptomlindring", "Døden og de pårørende"),
        issuer_name="Høgskolen i Innlandet",
        issuer_url="https://www.inn.no",
        issuer_email="kurs@inn.no",
        valid_from=ISSUED,
    )
    return dataclasses.replace(facts, **changes)


def _mentor_facts(**changes: Any) -> BadgeFacts:
    return _facts(
        role="mentor",
        achievement_name="Kursbevis for veiledere",
        achievement_description="har veiledet en gruppe gjennom Lindrende behandling i kommunehelsetjenesten",
        **changes,
    )


def _with_jwt_proof(credential: dict[str, Any], token: str, kid: str) -> dict[str, Any]:
    # A VC-JWT (OB 3.0 §8.2) has no `proof` property: the compact JWS around the payload is the proof. The schema
    # checks `proof` when present (in this copy as an array of Proof objects; Proof needs only `type`), so we
    # validate the credential as a consumer that unpacks a VC-JWT into the data model sees it: with one Proof object
    # that stands for the external JWT, the "JwtProof2020" form (type + the token itself) that VC libraries such as
    # Veramo use for exactly this, naming the key by its JWKS URL and kid.
    iat = jwt.decode(token, options={"verify_signature": False})["iat"]
    proof = {
        "type": "JwtProof2020",
        "jwt": token,
        "created": datetime.fromtimestamp(iat, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "proofPurpose": "assertionMethod",
        "verificationMethod": f"{BASE}/lti/jwks#{kid}",
    }
    return {**credential, "proof": [proof]}


def _errors(validator: jsonschema.Draft201909Validator, instance: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


def _segments(token: str) -> tuple[dict[str, Any], bytes, str]:
    header, payload, signature = token.split(".")
    pad = "=" * (-len(payload) % 4)
    return (
        json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))),
        base64.urlsafe_b64decode(payload + pad),
        signature,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- the credential ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [_facts, _mentor_facts], ids=["participant", "mentor"])
def test_credential_is_schema_valid(make, validator, private_key, jwk):
    credential = build_credential(make())
    token = sign_credential(credential, private_key, jwk["kid"])
    assert _errors(validator, _with_jwt_proof(credential, token, jwk["kid"])) == []
    # In this copy `proof` is not required, so the bare credential (the JWT payload's shape) is valid too.
    assert _errors(validator, credential) == []
    # The decoded JWT payload without the registered claims is the credential, and valid the same way.
    payload = jwt.decode(token, options={"verify_signature": False})
    unpacked = {k: v for k, v in payload.items() if k not in REGISTERED_CLAIMS}
    assert unpacked == credential
    assert _errors(validator, _with_jwt_proof(unpacked, token, jwk["kid"])) == []


def test_validator_is_not_a_rubber_stamp(validator):
    # The checks above mean something only if the validator rejects what the schema forbids.
    credential = build_credential(_facts())
    broken = json.loads(json.dumps(credential))
    broken["credentialSubject"]["achievement"]["achievementType"] = "Kursbevis"
    assert _errors(validator, broken)
    broken = json.loads(json.dumps(credential))
    broken["credentialSubject"]["identifier"][0]["note"] = "IdentityObject allows no extra properties"
    assert _errors(validator, broken)
    assert _errors(validator, {**credential, "proof": {"type": "JwtProof2020"}})  # not an array
    assert _errors(validator, {**credential, "validFrom": "2026-11-30T09:15:42"})  # no time zone
    assert _errors(validator, {k: v for k, v in credential.items() if k != "issuer"})


def test_participant_credential_content():
    facts = _facts()
    credential = build_credential(facts)
    assert credential["@context"] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ]
    assert credential["id"] == f"{BASE}/verify/{facts.code}"
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["issuer"] == {
        "id": f"{BASE}/badges/issuers/{PROGRAMME_ID}",
        "type": ["Profile"],
        "name": "Høgskolen i Innlandet",
        "url": "https://www.inn.no",
        "email": "kurs@inn.no",
    }
    assert credential["validFrom"] == "2026-11-02T09:15:42Z"
    assert "validUntil" not in credential
    assert credential["credentialSchema"] == [
        {
            "id": "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json",
            "type": "1EdTechJsonSchemaValidator2019",
        }
    ]
    subject = credential["credentialSubject"]
    assert "id" not in subject  # no DID for the holder: identified by `identifier` instead
    assert subject["type"] == ["AchievementSubject"]
    name, email = subject["identifier"]
    assert name == {"type": "IdentityObject", "identityHash": NAME, "identityType": "name", "hashed": False}
    assert email["identityType"] == "emailAddress" and email["hashed"] is True and email["salt"]
    expected = "sha256$" + hashlib.sha256(("kari.nordmann@example.no" + email["salt"]).encode()).hexdigest()
    assert email["identityHash"] == expected == email_identity_hash(" kari.nordmann@example.no ", email["salt"])
    achievement = subject["achievement"]
    assert achievement["id"] == f"{BASE}/badges/achievements/lindrende-behandling/participant"
    assert achievement["type"] == ["Achievement"]
    assert achievement["achievementType"] == ACHIEVEMENT_TYPE == "CertificateOfCompletion"
    assert achievement["name"] == "Kursbevis: Lindrende behandling i kommunehelsetjenesten"
    assert achievement["description"] == facts.achievement_description
    assert achievement["inLanguage"] == "nb"
    narrative = achievement["criteria"]["narrative"]
    assert narrative.startswith(facts.criteria)
    assert "Moduler:\n- Hva er lindrende behandling?\n- Smerte og symptomlindring" in narrative
    assert "Læringsmål:\n- Kjenne til prinsippene for lindrende behandling\n- Kunne bruke ESAS-r" in narrative


def test_mentor_credential_names_a_different_achievement():
    code = new_code()
    participant = build_credential(_facts(code=code))["credentialSubject"]["achievement"]
    mentor = build_credential(_mentor_facts(code=code))["credentialSubject"]["achievement"]
    assert mentor["id"] == f"{BASE}/badges/achievements/lindrende-behandling/mentor" != participant["id"]
    assert mentor["name"] == "Kursbevis for veiledere: Lindrende behandling i kommunehelsetjenesten"
    assert mentor["description"] != participant["description"]
    assert mentor["achievementType"] == participant["achievementType"]


def test_optional_facts_may_be_absent(validator):
    facts = _facts(holder_email=None, issuer_url=None, issuer_email=None, learning_goals=(), module_titles=())
    credential = build_credential(facts)
    assert credential["issuer"] == {
        "id": f"{BASE}/badges/issuers/{PROGRAMME_ID}",
        "type": ["Profile"],
        "name": facts.issuer_name,
    }
    assert [i["identityType"] for i in credential["credentialSubject"]["identifier"]] == ["name"]
    assert credential["credentialSubject"]["achievement"]["criteria"] == {"narrative": facts.criteria}
    assert _errors(validator, credential) == []


def test_valid_until_and_other_time_zones_are_written_in_utc():
    oslo = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Oslo"))
    credential = build_credential(_facts(valid_from=oslo, valid_until=oslo + timedelta(days=3 * 365)))
    assert credential["validFrom"] == "2026-12-01T10:00:00Z"
    assert credential["validUntil"] == "2029-11-30T10:00:00Z"


def test_building_is_deterministic():
    facts = _facts()
    assert build_credential(facts) == build_credential(facts)
    # ...but the e-mail salt differs between certificates, so one person's badges are not linked by the hash.
    other = build_credential(_facts())
    assert (
        build_credential(facts)["credentialSubject"]["identifier"][1]["identityHash"]
        != other["credentialSubject"]["identifier"][1]["identityHash"]
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"code": "not-a-code"},
        {"code": "ABCD-EFGH-JKMN-PQ"},  # printed, not canonical
        {"valid_from": datetime(2026, 11, 30, 9, 0)},  # naive
        {"valid_until": ISSUED - timedelta(days=1)},
        {"valid_until": ISSUED.replace(microsecond=999_999)},  # the same second once written
        {"valid_until": datetime(2030, 1, 1)},  # naive
        {"role": "teacher"},
        {"holder_name": "  "},
        {"language": "norsk"},
        {"base_url": "kurs.example.no"},
    ],
)
def test_facts_that_cannot_make_a_credential(changes):
    with pytest.raises(ValueError):
        build_credential(_facts(**changes))


def test_lowercase_code_is_refused_as_not_canonical():
    code = new_code()
    with pytest.raises(ValueError):
        build_credential(_facts(code=code.lower()))


# --- the VC-JWT --------------------------------------------------------------------------------------------------


def test_token_header_and_registered_claims(private_key, jwk):
    credential = build_credential(_facts(valid_until=ISSUED + timedelta(days=365)))
    before = int(datetime.now(UTC).timestamp())
    token = sign_credential(credential, private_key, jwk["kid"])
    header, _, _ = _segments(token)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": jwk["kid"]}
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["iss"] == credential["issuer"]["id"] == f"{BASE}/badges/issuers/{PROGRAMME_ID}"
    assert payload["jti"] == credential["id"]
    assert payload["nbf"] == int(datetime(2026, 11, 2, 9, 15, 42, tzinfo=UTC).timestamp())
    assert payload["exp"] == int((ISSUED + timedelta(days=365)).replace(microsecond=0).timestamp())
    assert before <= payload["iat"] <= before + 5
    assert "sub" not in payload  # the subject has no id to mirror
    assert "proof" not in payload


def test_sub_mirrors_a_subject_id_when_there_is_one(private_key, jwk, jwks):
    credential = build_credential(_facts())
    credential["credentialSubject"]["id"] = "did:example:ebfeb1f712ebc6f1c276e12ec21"
    token = sign_credential(credential, private_key, jwk["kid"])
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "did:example:ebfeb1f712ebc6f1c276e12ec21"
    assert verify_credential(token, jwks) == credential


def test_sign_refuses_an_embedded_proof_and_an_empty_kid(private_key, jwk):
    credential = build_credential(_facts())
    with pytest.raises(ValueError):
        sign_credential({**credential, "proof": [{"type": "DataIntegrityProof"}]}, private_key, jwk["kid"])
    with pytest.raises(ValueError):
        sign_credential(credential, private_key, "")
    with pytest.raises(ValueError):
        sign_credential({**credential, "iss": "https://evil.example"}, private_key, jwk["kid"])


def test_sign_and_verify_round_trip_keeps_the_name_exactly(private_key, jwk, jwks):
    credential = build_credential(_facts())
    token = sign_credential(credential, private_key, jwk["kid"])
    verified = verify_credential(token, jwks, expected_issuer=f"{BASE}/badges/issuers/{PROGRAMME_ID}")
    assert verified == credential
    assert verified["credentialSubject"]["identifier"][0]["identityHash"] == "Kari Ærlig Østby-Åsen"
    assert verified["issuer"]["name"] == "Høgskolen i Innlandet"


def test_verify_accepts_a_retired_key_still_in_the_jwks(private_key, other_key, jwk):
    # After a key rotation the JWKS lists the new key first; credentials signed with the old one still verify.
    newer = public_jwk(other_key.public_key())
    token = sign_credential(build_credential(_facts()), private_key, jwk["kid"])
    assert verify_credential(token, {"keys": [newer, jwk]})["type"] == ["VerifiableCredential", "OpenBadgeCredential"]


def test_email_never_appears_in_clear(private_key, jwk):
    token = sign_credential(build_credential(_facts()), private_key, jwk["kid"])
    _, payload_bytes, _ = _segments(token)
    decoded_text = json.dumps(jwt.decode(token, options={"verify_signature": False}), ensure_ascii=False)
    for haystack in (token, payload_bytes.decode(), decoded_text):
        for needle in (EMAIL, "kari.nordmann", "@example.no"):
            assert needle.lower() not in haystack.lower()


# --- refusals ----------------------------------------------------------------------------------------------------


def _reason(token: str, jwks: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(BadgeError) as caught:
        verify_credential(token, jwks, **kwargs)
    assert caught.value.reason == str(caught.value)
    return caught.value.reason


def test_tampered_payload_is_refused(private_key, jwk, jwks):
    token = sign_credential(build_credential(_facts()), private_key, jwk["kid"])
    header, _, signature = token.split(".")
    payload = json.loads(_segments(token)[1])
    payload["credentialSubject"]["identifier"][0]["identityHash"] = "Ola Nordmann"
    forged = f"{header}.{_b64(json.dumps(payload).encode())}.{signature}"
    assert "signature" in _reason(forged, jwks)


def test_signature_by_another_key_with_the_same_kid_is_refused(other_key, jwk, jwks):
    token = sign_credential(build_credential(_facts()), other_key, jwk["kid"])
    assert "signature" in _reason(token, jwks)


def test_unknown_and_missing_kid_are_refused(private_key, jwk, jwks):
    credential = build_credential(_facts())
    assert "no key with kid" in _reason(sign_credential(credential, private_key, "some-other-kid"), jwks)
    payload = {**credential, "iss": credential["issuer"]["id"], "jti": credential["id"], "nbf": 0}
    no_kid = jwt.encode(payload, private_key, algorithm="RS256")
    assert "no kid" in _reason(no_kid, jwks)


def _unsigned_token(header: dict[str, Any], payload_segment: str) -> str:
    return f"{_b64(json.dumps(header).encode())}.{payload_segment}"


def test_alg_none_is_refused(private_key, jwk, jwks):
    token = sign_credential(build_credential(_facts()), private_key, jwk["kid"])
    payload_segment = token.split(".")[1]
    for alg in ("none", "None", "NONE"):
        unsigned = _unsigned_token({"alg": alg, "typ": "JWT", "kid": jwk["kid"]}, payload_segment) + "."
        assert "not accepted" in _reason(unsigned, jwks)


def test_hs256_signed_with_the_public_key_is_refused(private_key, jwk, jwks):
    # Algorithm confusion: an attacker HMACs with the public key (which anyone can fetch from /lti/jwks), hoping the
    # verifier hands the same key bytes to HS256.
    token = sign_credential(build_credential(_facts()), private_key, jwk["kid"])
    payload_segment = token.split(".")[1]
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (public_pem, json.dumps(jwk).encode()):
        signing_input = _unsigned_token({"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]}, payload_segment)
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert "not accepted" in _reason(f"{signing_input}.{_b64(mac)}", jwks)


def test_other_rsa_algorithms_are_refused(private_key, jwk, jwks):
    credential = build_credential(_facts())
    claims = {"iss": credential["issuer"]["id"], "jti": credential["id"], "nbf": 0}
    for alg in ("RS512", "PS256"):
        token = jwt.encode({**credential, **claims}, private_key, algorithm=alg, headers={"kid": jwk["kid"]})
        assert "not accepted" in _reason(token, jwks)


def test_expired_credential_is_refused(private_key, jwk, jwks):
    past = datetime.now(UTC) - timedelta(days=400)
    credential = build_credential(_facts(valid_from=past, valid_until=past + timedelta(days=365)))
    token = sign_credential(credential, private_key, jwk["kid"])
    assert "expired" in _reason(token, jwks)
    # Valid as of a day before it ran out; and within the leeway just after.
    assert verify_credential(token, jwks, now=past + timedelta(days=364)) == credential
    assert verify_credential(token, jwks, now=past + timedelta(days=365, seconds=30)) == credential
    assert "expired" in _reason(token, jwks, now=past + timedelta(days=365, seconds=61))


def test_not_yet_valid_credential_is_refused(private_key, jwk, jwks):
    future = datetime.now(UTC) + timedelta(days=2)
    token = sign_credential(build_credential(_facts(valid_from=future)), private_key, jwk["kid"])
    assert "not yet valid" in _reason(token, jwks)
    assert "not yet valid" in _reason(token, jwks, now=future.replace(microsecond=0) - timedelta(seconds=61))
    verify_credential(token, jwks, now=future.replace(microsecond=0) - timedelta(seconds=30))  # within the leeway


def test_claims_that_do_not_mirror_the_credential_are_refused(private_key, jwk, jwks):
    # Signed with our key, so only the cross-checks can catch these.
    credential = build_credential(_facts())
    good = {
        "iss": credential["issuer"]["id"],
        "jti": credential["id"],
        "nbf": int(datetime.fromisoformat(credential["validFrom"]).timestamp()),
        "iat": 0,
    }

    def signed(**claims: Any) -> str:
        payload = {**credential, **good, **claims}
        return jwt.encode(
            {k: v for k, v in payload.items() if v is not None},
            private_key,
            algorithm="RS256",
            headers={"kid": jwk["kid"]},
        )

    assert verify_credential(signed(), jwks) == credential  # the baseline passes
    assert "iss" in _reason(signed(iss="https://evil.example/badges/issuer"), jwks)
    assert "jti" in _reason(signed(jti=f"{BASE}/verify/OTHER"), jwks)
    assert "sub" in _reason(signed(sub="did:example:someone"), jwks)
    assert "nbf" in _reason(signed(nbf=good["nbf"] - 3600), jwks)
    assert "exp" in _reason(signed(exp=good["nbf"] + 3600), jwks)
    assert "proof" in _reason(signed(proof=[{"type": "DataIntegrityProof"}]), jwks)
    assert "OpenBadgeCredential" in _reason(signed(type=["VerifiableCredential"]), jwks)


def test_expected_issuer_is_enforced(private_key, jwk, jwks):
    token = sign_credential(build_credential(_facts()), private_key, jwk["kid"])
    assert "expected" in _reason(token, jwks, expected_issuer="https://annen.example.no/badges/issuer")


@pytest.mark.parametrize(
    "token", ["", "not a token", "a.b.c", "x" * 200_000, "eyJhbGciOiJSUzI1NiJ9.e30"], ids=lambda t: t[:12]
)
def test_garbage_tokens_are_refused(token, jwks):
    _reason(token, jwks)


def test_unusable_jwks_is_refused(private_key, jwk):
    token = sign_credential(build_credential(_facts()), private_key, jwk["kid"])
    assert "key list" in _reason(token, {})
    assert "no key" in _reason(token, {"keys": []})
    assert "not unique" in _reason(token, {"keys": [jwk, jwk]})
    assert "not an RS256" in _reason(token, {"keys": [{**jwk, "alg": "HS256"}]})
    assert "not an RS256" in _reason(token, {"keys": [{**jwk, "use": "enc"}]})
    assert "usable" in _reason(token, {"keys": [{k: v for k, v in jwk.items() if k != "n"}]})


def test_naive_now_is_a_programming_error(private_key, jwk, jwks):
    token = sign_credential(build_credential(_facts()), private_key, jwk["kid"])
    with pytest.raises(ValueError):
        verify_credential(token, jwks, now=datetime(2026, 12, 1))


def test_malformed_claims_and_dates_are_refused(private_key, jwk, jwks):
    # Signed with our key, so only the checks after the signature can catch these.
    credential = build_credential(_facts(valid_until=datetime.now(UTC) + timedelta(days=30)))
    claims = {
        "iss": credential["issuer"]["id"],
        "jti": credential["id"],
        "nbf": int(datetime.fromisoformat(credential["validFrom"]).timestamp()),
        "exp": int(datetime.fromisoformat(credential["validUntil"]).timestamp()),
    }

    def signed(payload: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(payload, private_key, algorithm="RS256", headers={"kid": jwk["kid"], **(headers or {})})

    assert verify_credential(signed({**credential, **claims}), jwks) == credential  # the baseline passes
    assert "exp does not match" in _reason(signed({**credential, **claims, "exp": claims["exp"] + 60}), jwks)
    without_nbf = {k: v for k, v in claims.items() if k != "nbf"}
    assert "invalid" in _reason(signed({**credential, **without_nbf}), jwks)  # required claim missing
    assert "invalid" in _reason(signed({**credential, **claims, "jti": 42}), jwks)
    assert "time zone" in _reason(signed({**credential, **claims, "validFrom": "2026-11-02T09:15:42"}), jwks)
    assert "ISO 8601" in _reason(signed({**credential, **claims, "validFrom": "den andre november"}), jwks)
    assert "missing" in _reason(signed({**{k: v for k, v in credential.items() if k != "validFrom"}, **claims}), jwks)
    # RFC 7515 §4.1.11: a "crit" extension the verifier does not understand makes the JWS invalid (PyJWT enforces it).
    _reason(signed({**credential, **claims}, {"crit": ["exp"]}), jwks)


def test_keys_below_2048_bits_are_refused(private_key):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - a weak key is the point
    small_jwk = public_jwk(small.public_key())
    # Refused on the key's size, before the signature is looked at.
    token = sign_credential(build_credential(_facts()), private_key, small_jwk["kid"])
    assert "2048" in _reason(token, {"keys": [small_jwk]})


def test_sign_needs_an_id_and_an_issuer(private_key, jwk):
    credential = build_credential(_facts())
    with pytest.raises(ValueError):
        sign_credential({k: v for k, v in credential.items() if k != "id"}, private_key, jwk["kid"])
    with pytest.raises(ValueError):
        sign_credential({**credential, "issuer": {"type": ["Profile"]}}, private_key, jwk["kid"])
