from __future__ import annotations

import pytest
from sqlalchemy import select

from kurspakke.crypto import DecryptionError, Encryptor
from kurspakke.db import make_session_factory, transaction
from kurspakke.models import ToolKey
from kurspakke.services.keys import KeyRing, NoSigningKey, ensure_key, rotate


def test_private_keys_are_stored_encrypted(session_factory, encryptor):
    with transaction(session_factory) as s:
        key = ensure_key(s, encryptor)
        stored = s.scalars(select(ToolKey)).one().private_key_encrypted
    assert b"PRIVATE KEY" not in stored
    assert b"PRIVATE KEY" in encryptor.decrypt(stored)
    assert key.public_jwk["kid"] == key.kid and "d" not in key.public_jwk


def test_a_different_secret_cannot_decrypt():
    token = Encryptor(secret_key="one" * 20).encrypt(b"secret")
    with pytest.raises(DecryptionError):
        Encryptor(secret_key="two" * 20).decrypt(token)


def test_explicit_encryption_key_wins_over_secret_key():
    from cryptography.fernet import Fernet

    explicit = Fernet.generate_key().decode()
    token = Encryptor(secret_key="a" * 40, encryption_key=explicit).encrypt(b"x")
    assert Encryptor(secret_key="b" * 40, encryption_key=explicit).decrypt(token) == b"x"


def test_key_ring_parses_each_key_once(engine, session_factory, encryptor, monkeypatch):
    from cryptography.hazmat.primitives import serialization

    with transaction(session_factory) as s:
        ensure_key(s, encryptor)
    calls = []
    real = serialization.load_pem_private_key
    monkeypatch.setattr(serialization, "load_pem_private_key", lambda *a, **k: calls.append(1) or real(*a, **k))
    ring = KeyRing(make_session_factory(engine, readonly=True), encryptor, grace_seconds=60, refresh_seconds=0)
    first = ring.signing_key()
    for _ in range(5):
        assert ring.signing_key().private_key is first.private_key
    assert len(calls) == 1


def test_rotation_switches_the_signing_key(engine, session_factory, encryptor):
    ring = KeyRing(make_session_factory(engine, readonly=True), encryptor, grace_seconds=60, refresh_seconds=0)
    with pytest.raises(NoSigningKey):
        ring.signing_key()
    with transaction(session_factory) as s:
        old = ensure_key(s, encryptor).kid
    assert ring.signing_key().kid == old
    with transaction(session_factory) as s:
        new = rotate(s, encryptor, grace_seconds=60).kid
    assert ring.signing_key().kid == new
    assert {k["kid"] for k in ring.jwks()["keys"]} == {old, new}
