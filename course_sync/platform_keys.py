"""A cached JWKS client per key-set URL.

Keys are parsed once and kept per URL; an unknown kid triggers one refetch (at most every
``min_refetch_seconds`` per URL, so a stream of forged kids cannot turn us into a load generator against Canvas).
Once warm, verifying a launch makes no HTTP call at all.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from jwt.algorithms import RSAAlgorithm

Fetcher = Callable[[str, float], dict[str, Any]]
MAX_JWKS_BYTES = 256 * 1024


class PlatformKeyError(Exception):
    """The platform's key set cannot be fetched or holds no usable key for the token."""


class UnknownKid(PlatformKeyError):
    """The key set was read, but it has no usable key with this kid."""


def http_fetch(url: str, timeout: float) -> dict[str, Any]:
    try:
        resp = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
        resp.raise_for_status()
    except requests.RequestException as exc:
        raise PlatformKeyError(f"cannot fetch key set {url}: {exc.__class__.__name__}") from exc
    if len(resp.content) > MAX_JWKS_BYTES:
        raise PlatformKeyError(f"key set {url} is too large")
    try:
        data = resp.json()
    except ValueError as exc:
        raise PlatformKeyError(f"key set {url} is not JSON") from exc
    if not isinstance(data, dict):
        raise PlatformKeyError(f"key set {url} is not a JSON object")
    return data


@dataclass
class _Entry:
    keys: dict[str, Any] = field(default_factory=dict)
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")


class JWKSCache:
    def __init__(
        self,
        *,
        ttl_seconds: float = 3600,
        min_refetch_seconds: float = 10,
        timeout: float = 10,
        fetcher: Fetcher = http_fetch,
    ) -> None:
        self.ttl = ttl_seconds
        self.min_refetch = min_refetch_seconds
        self.timeout = timeout
        self.fetcher = fetcher
        self.fetches = 0  # observable for tests and benchmarks
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get_key(self, url: str, kid: str) -> Any:
        """The RSA public key with ``kid`` from the key set at ``url``. Raises PlatformKeyError."""
        now = time.monotonic()
        entry = self._entries.get(url)
        if entry is not None and kid in entry.keys and now - entry.fetched_at < self.ttl:
            return entry.keys[kid]
        with self._lock:
            entry = self._entries.setdefault(url, _Entry())
            stale = now - entry.fetched_at >= self.ttl
            if (kid not in entry.keys or stale) and now - entry.attempted_at >= self.min_refetch:
                entry.attempted_at = now
                self._refresh(url, entry)
            if kid not in entry.keys:
                raise UnknownKid("no key with this kid in the platform's key set")
            return entry.keys[kid]

    def _refresh(self, url: str, entry: _Entry) -> None:
        self.fetches += 1
        data = self.fetcher(url, self.timeout)
        keys: dict[str, Any] = {}
        for jwk in data.get("keys", []) if isinstance(data.get("keys"), list) else []:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not isinstance(jwk.get("kid"), str):
                continue
            if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
                continue
            try:
                keys[jwk["kid"]] = RSAAlgorithm.from_jwk(json.dumps(jwk))
            except (ValueError, KeyError, TypeError):
                continue
        entry.keys = keys
        entry.fetched_at = time.monotonic()
