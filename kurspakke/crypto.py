"""Encryption at rest for signing keys and API tokens (Fernet: AES-128-CBC + HMAC-SHA256).

The key is KURSPAKKE_ENCRYPTION_KEY when set (a Fernet key), else derived from SECRET_KEY with HKDF, so rotating
SECRET_KEY without setting KURSPAKKE_ENCRYPTION_KEY makes stored secrets unreadable: set it explicitly in production.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class DecryptionError(RuntimeError):
    """Stored ciphertext could not be decrypted with the configured key."""


def mac(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 of ``message``, URL-safe base64 without padding (43 characters): for tokens and cookies."""
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()


def derive_fernet_key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kurspakke-at-rest", info=b"fernet-v1")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


class Encryptor:
    def __init__(self, *, secret_key: str, encryption_key: str | None = None) -> None:
        key = encryption_key.encode() if encryption_key else derive_fernet_key(secret_key)
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Raises DecryptionError when the key is wrong or the data was tampered with."""
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken as exc:
            raise DecryptionError("stored secret cannot be decrypted with the configured key") from exc
