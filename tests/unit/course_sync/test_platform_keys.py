from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from course_sync.platform_keys import JWKSCache, PlatformKeyError


def jwk(kid: str) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return {**json.loads(RSAAlgorithm.to_jwk(key)), "kid": kid, "alg": "RS256", "use": "sig"}


class Platform:
    def __init__(self, *kids: str) -> None:
        self.keys = [jwk(k) for k in kids]
        self.calls = 0

    def __call__(self, url: str, timeout: float) -> dict:
        assert timeout > 0
        self.calls += 1
        return {"keys": list(self.keys)}


def test_keys_are_parsed_once_and_served_from_cache():
    platform = Platform("a")
    cache = JWKSCache(fetcher=platform)
    first = cache.get_key("https://p/jwks", "a")
    assert cache.get_key("https://p/jwks", "a") is first
    assert platform.calls == 1 and cache.fetches == 1


def test_unknown_kid_refetches_so_a_rotated_key_is_found():
    platform = Platform("a")
    cache = JWKSCache(fetcher=platform, min_refetch_seconds=0)
    cache.get_key("https://p/jwks", "a")
    platform.keys.append(jwk("b"))
    assert cache.get_key("https://p/jwks", "b") is not None
    assert platform.calls == 2


def test_refetches_are_rate_limited_per_url():
    platform = Platform("a")
    cache = JWKSCache(fetcher=platform, min_refetch_seconds=60)
    cache.get_key("https://p/jwks", "a")
    for kid in ("x", "y", "z"):
        with pytest.raises(PlatformKeyError):
            cache.get_key("https://p/jwks", kid)
    assert platform.calls == 1


def test_cache_is_per_url():
    one, two = Platform("a"), Platform("a")
    cache = JWKSCache(fetcher=lambda url, t: (one if "one" in url else two)(url, t))
    assert cache.get_key("https://one/jwks", "a") is not cache.get_key("https://two/jwks", "a")


def test_unusable_keys_are_ignored():
    platform = Platform("good")
    platform.keys += [
        {"kty": "EC", "kid": "ec"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "x", "e": "AQAB"},
        {"kty": "RSA", "kid": "hs", "alg": "HS256"},
        {"kty": "RSA", "kid": "broken", "n": "!", "e": "!"},
        "not-a-dict",
    ]
    cache = JWKSCache(fetcher=platform, min_refetch_seconds=0)
    assert cache.get_key("https://p/jwks", "good") is not None
    for kid in ("ec", "enc", "hs", "broken"):
        with pytest.raises(PlatformKeyError):
            cache.get_key("https://p/jwks", kid)


def test_http_fetch_reports_a_refused_connection():
    from course_sync.platform_keys import http_fetch

    with pytest.raises(PlatformKeyError, match="cannot fetch"):
        http_fetch("http://127.0.0.1:9/jwks", timeout=0.5)  # discard port: connection refused


def test_http_fetch_gives_up_on_a_platform_that_never_answers():
    """A server that accepts the connection and then says nothing must not hold a launch for ever."""
    import socket
    import time

    from course_sync.platform_keys import http_fetch

    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(PlatformKeyError, match="cannot fetch"):
            http_fetch(f"http://127.0.0.1:{port}/jwks", timeout=0.3)
        assert time.monotonic() - started < 3
