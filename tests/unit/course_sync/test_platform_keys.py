from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

from course_sync.platform_keys import MAX_JWKS_BYTES, JWKSCache, PlatformKeyError, UnknownKid, http_fetch


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


# --- http_fetch against real misbehaving servers -----------------------------------------------------------------

JWKS_BODY = json.dumps({"keys": [jwk("a")]}).encode()


class Server:
    """A real HTTP server on 127.0.0.1 whose answer each test writes byte by byte, to play a misbehaving platform.

    Connections are served one after another on one thread; ``paths`` lists every request line's path, ``sent`` counts
    the bytes the handler got into the socket before the client hung up, and ``finished`` is set once a handler is done.
    """

    def __init__(self, handler: Callable[[Server, socket.socket, str], None], tls: ssl.SSLContext | None) -> None:
        self.handler = handler
        self.tls = tls
        self.paths: list[str] = []
        self.sent = 0
        self.stop = threading.Event()
        self.finished = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # lets the accept loop notice stop
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/jwks", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            try:
                conn.settimeout(5)
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                request = b""
                while b"\r\n\r\n" not in request and (data := conn.recv(4096)):
                    request += data
                if request:
                    self.paths.append(request.split(b" ")[1].decode())
                    self.handler(self, conn, self.paths[-1])
            except OSError:
                pass  # the client hung up or refused our certificate, which several tests provoke on purpose
            finally:
                conn.close()
                self.finished.set()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5)
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(handler: Callable[[Server, socket.socket, str], None], tls: ssl.SSLContext | None = None) -> Server:
        servers.append(Server(handler, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def head(status: str = "200 OK", **headers: str | int) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Connection: close", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer_jwks(server: Server, conn: socket.socket, path: str) -> None:
    server.send(conn, head(Content_Type="application/json", Content_Length=len(JWKS_BODY)) + JWKS_BODY)


def drip(server: Server, conn: socket.socket, first: bytes, byte: bytes) -> None:
    """Send ``first``, then one byte every 0.2 s: each gap is well inside any read timeout, for up to 5 s."""
    server.send(conn, first)
    for _ in range(25):
        if server.stop.wait(0.2):
            return
        server.send(conn, byte)


def test_http_fetch_reads_a_well_behaved_key_set(serve):
    server = serve(answer_jwks)
    assert http_fetch(server.url(), timeout=2) == json.loads(JWKS_BODY)


def test_http_fetch_reads_a_chunked_key_set(serve):
    def chunked(server: Server, conn: socket.socket, path: str) -> None:
        halves = (JWKS_BODY[:100], JWKS_BODY[100:])
        body = b"".join(b"%x\r\n%s\r\n" % (len(half), half) for half in halves) + b"0\r\n\r\n"
        server.send(conn, head(Transfer_Encoding="chunked") + body)

    assert http_fetch(serve(chunked).url(), timeout=2) == json.loads(JWKS_BODY)


def test_a_body_dripped_a_byte_at_a_time_cannot_outlast_the_total_timeout(serve):
    """requests' timeout is per read: a byte every 0.2 s never trips a 0.5 s read timeout, but must trip the budget."""
    server = serve(lambda s, conn, path: drip(s, conn, head(Content_Type="application/json") + b"{", b" "))
    started = time.monotonic()
    with pytest.raises(PlatformKeyError) as refused:
        http_fetch(server.url(), timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert "cannot fetch" in str(refused.value)


def test_headers_dripped_a_byte_at_a_time_cannot_outlast_the_total_timeout(serve):
    server = serve(lambda s, conn, path: drip(s, conn, b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a"))
    started = time.monotonic()
    with pytest.raises(PlatformKeyError) as refused:
        http_fetch(server.url(), timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert "cannot fetch" in str(refused.value)


OFFERED = 16 * 1024 * 1024


@pytest.mark.parametrize("framing", ["connection-close", "chunked"])
def test_a_body_over_the_cap_is_refused_while_reading_not_after(serve, framing):
    """The server offers 16 MB without a Content-Length; the client must hang up soon after the first 256 KiB."""

    def flood(server: Server, conn: socket.socket, path: str) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)  # keep what the kernel buffers for us small
        piece = b" " * (64 * 1024)
        if framing == "chunked":
            server.send(conn, head(Transfer_Encoding="chunked"))
            piece = b"%x\r\n%s\r\n" % (len(piece), piece)
        else:
            server.send(conn, head())
        for _ in range(OFFERED // (64 * 1024)):
            server.send(conn, piece)
        if framing == "chunked":
            server.send(conn, b"0\r\n\r\n")  # a well-formed body: only its size may be held against it

    server = serve(flood)
    with pytest.raises(PlatformKeyError) as refused:
        http_fetch(server.url(), timeout=5)
    assert server.finished.wait(2), "the server was still sending: the client did not hang up"
    assert server.sent < 4 * 1024 * 1024
    assert "too large" in str(refused.value)


def test_a_declared_content_length_over_the_cap_is_refused_before_reading_the_body(serve):
    """The server declares a body over the cap and then sends nothing: only the header can have caused the refusal."""

    def declare(server: Server, conn: socket.socket, path: str) -> None:
        server.send(conn, head(Content_Type="application/json", Content_Length=MAX_JWKS_BYTES + 1))
        server.stop.wait(5)

    server = serve(declare)
    started = time.monotonic()
    with pytest.raises(PlatformKeyError) as refused:
        http_fetch(server.url(), timeout=3)
    assert time.monotonic() - started < 1
    assert "too large" in str(refused.value)


@pytest.mark.parametrize("status", ["301 Moved Permanently", "302 Found", "307 Temporary Redirect", "308 Permanent"])
def test_a_redirect_is_refused_and_not_followed(serve, status):
    def redirect(server: Server, conn: socket.socket, path: str) -> None:
        if path == "/jwks":
            server.send(conn, head(status, Location=server.url("/elsewhere"), Content_Length=0))
        else:
            answer_jwks(server, conn, path)

    server = serve(redirect)
    with pytest.raises(PlatformKeyError, match="redirects"):
        http_fetch(server.url(), timeout=2)
    assert server.paths == ["/jwks"]


def test_a_deeply_nested_body_is_refused_as_not_json(serve):
    body = b"[" * 100_000  # well inside the byte cap, but deeper than the JSON parser recurses

    def nested(server: Server, conn: socket.socket, path: str) -> None:
        server.send(conn, head(Content_Length=len(body)) + body)

    with pytest.raises(PlatformKeyError, match="not JSON"):
        http_fetch(serve(nested).url(), timeout=2)


# --- the same over TLS: production key sets are https ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as (certificate, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def server_tls(tls_cert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_cert)
    return context


@pytest.fixture
def trusting(monkeypatch, tls_cert) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_cert[0]))


def test_http_fetch_reads_a_key_set_over_tls_from_a_trusted_server(serve, server_tls, trusting):
    server = serve(answer_jwks, tls=server_tls)
    assert http_fetch(server.url(scheme="https"), timeout=2) == json.loads(JWKS_BODY)


def test_http_fetch_still_refuses_a_certificate_it_does_not_trust(serve, server_tls, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    server = serve(answer_jwks, tls=server_tls)
    with pytest.raises(PlatformKeyError, match="SSLError"):
        http_fetch(server.url(scheme="https"), timeout=2)


def test_a_body_dripped_over_tls_cannot_outlast_the_total_timeout(serve, server_tls, trusting):
    server = serve(lambda s, conn, path: drip(s, conn, head(Content_Type="application/json") + b"{", b" "), server_tls)
    started = time.monotonic()
    with pytest.raises(PlatformKeyError) as refused:
        http_fetch(server.url(scheme="https"), timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert "cannot fetch" in str(refused.value)


# --- one fetch in flight per URL ------------------------------------------------------------------------------------


class ObservedLock:
    """A lock that tells, through an Event, when a thread has found it taken and is about to wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.contended = threading.Event()

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            self.contended.set()
            self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()


class BlockingPlatform(Platform):
    """A platform whose first fetch of ``slow_url`` hangs until ``release`` is set."""

    def __init__(self, slow_url: str, *kids: str, fail: bool = False) -> None:
        super().__init__(*kids)
        self.slow_url = slow_url
        self.fail = fail
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, url: str, timeout: float) -> dict:
        result = super().__call__(url, timeout)
        if url == self.slow_url and not self.started.is_set():
            self.started.set()
            assert self.release.wait(5)
            if self.fail:
                raise PlatformKeyError("cannot fetch key set: the platform is down")
        return result


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``fn`` on a new thread; the list receives its return value or the exception it raised."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(fn())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_slow_platform_does_not_hold_up_key_lookups_for_other_platforms():
    platform = BlockingPlatform("https://slow/jwks", "a")
    cache = JWKSCache(fetcher=platform)
    slow, _ = in_thread(lambda: cache.get_key("https://slow/jwks", "a"))
    try:
        assert platform.started.wait(2)
        other, outcome = in_thread(lambda: cache.get_key("https://other/jwks", "a"))
        other.join(1)
        assert not other.is_alive(), "a fetch for another platform waited for the slow one"
        assert outcome and not isinstance(outcome[0], Exception)
    finally:
        platform.release.set()
        slow.join(2)


def test_threads_asking_for_the_same_unknown_kid_share_one_fetch():
    url = "https://p/jwks"
    platform = BlockingPlatform(url, "a")
    cache = JWKSCache(fetcher=platform, min_refetch_seconds=0)  # no rate limit: only sharing can save the fetch
    lock = ObservedLock()
    cache._new_url_lock = lambda: lock
    first, first_outcome = in_thread(lambda: cache.get_key(url, "forged"))
    try:
        assert platform.started.wait(2)
        second, second_outcome = in_thread(lambda: cache.get_key(url, "forged"))
        waited = lock.contended.wait(2)  # the second thread asked while the first one's fetch was in flight
    finally:
        platform.release.set()
    first.join(2)
    second.join(2)
    assert platform.calls == 1 and cache.fetches == 1
    assert isinstance(first_outcome[0], UnknownKid) and isinstance(second_outcome[0], UnknownKid)
    assert waited, "the second thread never waited for the first one's fetch"


def test_threads_waiting_on_a_failed_fetch_get_its_error_without_fetching_again():
    url = "https://p/jwks"
    platform = BlockingPlatform(url, "a", fail=True)
    cache = JWKSCache(fetcher=platform, min_refetch_seconds=0)
    lock = ObservedLock()
    cache._new_url_lock = lambda: lock
    first, first_outcome = in_thread(lambda: cache.get_key(url, "a"))
    try:
        assert platform.started.wait(2)
        second, second_outcome = in_thread(lambda: cache.get_key(url, "a"))
        waited = lock.contended.wait(2)
    finally:
        platform.release.set()
    first.join(2)
    second.join(2)
    assert platform.calls == 1
    for outcome in (first_outcome, second_outcome):
        assert isinstance(outcome[0], PlatformKeyError) and not isinstance(outcome[0], UnknownKid)
        assert "the platform is down" in str(outcome[0])
    assert waited, "the second thread never waited for the first one's fetch"


class FlakyPlatform(Platform):
    """A platform whose key-set host can be switched off (answers an error) or made to hang."""

    def __init__(self, *kids: str) -> None:
        super().__init__(*kids)
        self.down = False
        self.hang = threading.Event()
        self.hanging = threading.Event()
        self.release = threading.Event()

    def __call__(self, url: str, timeout: float) -> dict:
        if self.hang.is_set():
            self.hanging.set()
            self.release.wait(5)
        if self.down:
            self.calls += 1
            raise PlatformKeyError("cannot fetch key set: HTTP 503")
        return super().__call__(url, timeout)


def test_a_known_key_survives_a_failed_periodic_refresh():
    """An hour on, the key set is refreshed; when the platform's key-set host is down at that moment, the key
    the platform published stays usable (before, that launch was refused)."""
    platform = FlakyPlatform("a")
    cache = JWKSCache(fetcher=platform, ttl_seconds=0.05, min_refetch_seconds=0)
    key = cache.get_key("https://p/jwks", "a")
    time.sleep(0.06)
    platform.down = True
    assert cache.get_key("https://p/jwks", "a") is key
    assert platform.calls == 2  # it did try to refresh


def test_a_withdrawn_key_is_refused_after_the_periodic_refresh():
    platform = Platform("a", "b")
    cache = JWKSCache(fetcher=platform, ttl_seconds=0.05, min_refetch_seconds=0)
    cache.get_key("https://p/jwks", "a")
    platform.keys = [k for k in platform.keys if k["kid"] != "a"]
    time.sleep(0.06)
    with pytest.raises(UnknownKid):
        cache.get_key("https://p/jwks", "a")
    assert cache.get_key("https://p/jwks", "b") is not None


def test_a_known_key_does_not_wait_for_another_threads_periodic_refresh():
    platform = FlakyPlatform("a")
    cache = JWKSCache(fetcher=platform, ttl_seconds=0.05, min_refetch_seconds=0)
    key = cache.get_key("https://p/jwks", "a")
    time.sleep(0.06)
    platform.hang.set()
    refreshing, _ = in_thread(lambda: cache.get_key("https://p/jwks", "a"))
    try:
        assert platform.hanging.wait(2)
        started = time.monotonic()
        assert cache.get_key("https://p/jwks", "a") is key
        assert time.monotonic() - started < 0.5
    finally:
        platform.release.set()
        refreshing.join(6)
