"""A cached JWKS client per key-set URL.

Keys are parsed once and kept per URL; an unknown kid triggers one refetch (at most every
``min_refetch_seconds`` per URL, so a stream of forged kids cannot turn us into a load generator against Canvas).
Once warm, verifying a launch makes no HTTP call at all.

Anyone holding a login state can force a refetch, so the fetch itself is hardened: one total time budget for
everything after the connection is made (a platform host that drips a byte just inside each read timeout cannot
stretch it; the DNS lookup has no timeout of its own, and each address DNS gives gets the connect timeout), a byte
cap enforced while reading, no redirects, and one fetch in flight per URL so a slow host stalls only its own
platform's launches. A known key whose key set is due for its hourly refresh never waits for, or fails with, that
refresh.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
import urllib3.exceptions
from jwt.algorithms import RSAAlgorithm
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager
from urllib3.util.ssl_ import create_urllib3_context, resolve_cert_reqs

Fetcher = Callable[[str, float], dict[str, Any]]
MAX_JWKS_BYTES = 256 * 1024
_CHUNK_BYTES = 16 * 1024

# The monotonic instant the current thread's key-set fetch must be done by. A context variable rather than an
# argument because the sockets that enforce it are created deep inside urllib3, which has no way to pass it down.
_deadline: ContextVar[float | None] = ContextVar("jwks_fetch_deadline", default=None)


class PlatformKeyError(Exception):
    """The platform's key set cannot be fetched or holds no usable key for the token."""


class UnknownKid(PlatformKeyError):
    """The key set was read, but it has no usable key with this kid."""


def _bound_by_deadline(sock: socket.socket) -> None:
    """Shrink the socket's timeout to what is left of the fetch's budget. Raises TimeoutError once it is spent."""
    deadline = _deadline.get()
    if deadline is None:
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the key set fetch ran out of time")
    sock.settimeout(left)


class _DeadlineSocket(socket.socket):
    """A plain socket on which every receive and send may take only what is left of the fetch's budget.

    requests' timeout applies to each read on its own, so a peer sending a byte per second never trips it; bounding
    every read by the time left makes the whole exchange (status line, headers, chunk sizes, body) finite.
    """

    __slots__ = ()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        _bound_by_deadline(self)
        return super().recv(bufsize, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        _bound_by_deadline(self)
        return super().recv_into(buffer, nbytes, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        _bound_by_deadline(self)
        super().sendall(data, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    """The TLS counterpart of _DeadlineSocket: TLS reads bypass the plain socket's recv, so they are bounded here."""

    def do_handshake(self, block: bool = False) -> None:
        _bound_by_deadline(self)
        super().do_handshake(block)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        _bound_by_deadline(self)
        return super().read(len, buffer)

    def sendall(self, data: Any, flags: int = 0) -> None:
        _bound_by_deadline(self)
        super().sendall(data, flags)


def _rebind(sock: socket.socket) -> _DeadlineSocket:
    timeout = sock.gettimeout()
    rebound = _DeadlineSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    rebound.settimeout(timeout)
    return rebound


class _DeadlineHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _rebind(super()._new_conn())


class _DeadlineHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        # Also bounds a proxy's answer to CONNECT, which is read from this socket before TLS starts.
        return _rebind(super()._new_conn())

    def connect(self) -> None:
        if self.ssl_context is None:
            # What urllib3 would build by itself, except that it hands out bounded TLS sockets. urllib3 still sets
            # verify_mode and loads requests' CA bundle into it, so verification is unchanged.
            context = create_urllib3_context(cert_reqs=resolve_cert_reqs(self.cert_reqs))
            if not (self.ca_certs or self.ca_cert_dir or self.ca_cert_data):
                context.load_default_certs()
            context.sslsocket_class = _DeadlineSSLSocket
            self.ssl_context = context
        super().connect()


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_DEADLINE_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_DEADLINE_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # a SOCKS manager needs its own pool classes to work at all
            manager.pool_classes_by_scheme = dict(_DEADLINE_POOLS)
        return manager


def http_fetch(url: str, timeout: float) -> dict[str, Any]:
    """The JSON object at ``url``, fetched within ``timeout`` seconds in all (connect, headers and body together).

    Raises PlatformKeyError when the platform cannot be reached or does not finish in time, answers with an error
    status or a redirect (the configured key-set URL must be the final one), sends more than MAX_JWKS_BYTES, or sends
    anything but a JSON object.
    """
    deadline = time.monotonic() + timeout
    token = _deadline.set(deadline)
    try:
        # A session of our own per fetch: fetches are rare, and a shared requests.Session is not thread-safe.
        with requests.Session() as session:
            adapter = _DeadlineAdapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            body = _read_key_set(session, url, timeout, deadline)
    finally:
        _deadline.reset(token)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # a deeply nested array fits well inside the byte cap
        raise PlatformKeyError(f"key set {url} is not JSON") from exc
    if not isinstance(data, dict):
        raise PlatformKeyError(f"key set {url} is not a JSON object")
    return data


def _read_key_set(session: requests.Session, url: str, timeout: float, deadline: float) -> bytes:
    """The body at ``url``. Raises PlatformKeyError as http_fetch does for everything but the JSON checks."""
    try:
        resp = session.get(
            url,
            timeout=(timeout, timeout),
            stream=True,
            allow_redirects=False,
            # identity: the byte cap then bounds what crosses the wire as well as what we hold, with no inflating.
            headers={"Accept": "application/json", "Accept-Encoding": "identity"},
        )
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise PlatformKeyError(f"cannot fetch key set {url}: {exc.__class__.__name__}") from exc
    with resp:
        if 300 <= resp.status_code < 400:
            raise PlatformKeyError(
                f"key set {url} redirects (HTTP {resp.status_code}); register the URL it redirects to instead"
            )
        if resp.status_code != 200:
            raise PlatformKeyError(f"cannot fetch key set {url}: HTTP {resp.status_code}")
        try:
            declared = int(resp.headers.get("Content-Length", ""))
        except ValueError:
            declared = None  # absent or garbled: the cap while reading still holds
        if declared is not None and declared > MAX_JWKS_BYTES:
            raise PlatformKeyError(f"key set {url} is too large ({declared} bytes declared)")
        body = bytearray()
        try:
            for chunk in resp.iter_content(_CHUNK_BYTES):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise PlatformKeyError(f"key set {url} is too large (over {MAX_JWKS_BYTES} bytes)")
                if time.monotonic() >= deadline:
                    raise PlatformKeyError(f"cannot fetch key set {url}: not complete within {timeout:g} s")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise PlatformKeyError(f"cannot fetch key set {url}: {exc.__class__.__name__}") from exc
    return bytes(body)


class _Lock(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: Any) -> Any: ...


@dataclass
class _Entry:
    keys: dict[str, Any] = field(default_factory=dict)
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    # Held while this URL's key set is checked and fetched, so other URLs are never held up by this one.
    lock: _Lock = field(default_factory=threading.Lock)
    attempts: int = 0  # finished fetch attempts; a waiter that sees it move uses that attempt instead of its own
    failure: str | None = None  # why the last attempt failed, for the threads that waited on it


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
        self._lock = threading.Lock()  # guards _entries and fetches only; never held across a fetch
        self._new_url_lock: Callable[[], _Lock] = threading.Lock  # replaceable by tests

    def get_key(self, url: str, kid: str) -> Any:
        """The RSA public key with ``kid`` from the key set at ``url``.

        Raises UnknownKid when the key set has no usable key with ``kid``, and PlatformKeyError when the key set
        cannot be fetched (also for a thread that waited on another thread's failed fetch of the same URL).
        """
        entry = self._entries.get(url)
        if entry is not None and kid in entry.keys:
            if time.monotonic() - entry.fetched_at < self.ttl:
                return entry.keys[kid]
            return self._refresh_in_passing(url, kid, entry)
        with self._lock:
            entry = self._entries.get(url)
            if entry is None:
                entry = self._entries[url] = _Entry(lock=self._new_url_lock())
            attempts_seen = entry.attempts
        with entry.lock:
            if entry.attempts == attempts_seen:
                now = time.monotonic()
                stale = now - entry.fetched_at >= self.ttl
                if (kid not in entry.keys or stale) and now - entry.attempted_at >= self.min_refetch:
                    entry.attempted_at = now
                    self._refresh(url, entry)
            elif entry.failure is not None and kid not in entry.keys:
                # Someone fetched this URL while we waited and it failed: trying again at once would only queue
                # every waiter behind another full timeout against a host that is already failing.
                raise PlatformKeyError(entry.failure)
            if kid not in entry.keys:
                raise UnknownKid("no key with this kid in the platform's key set")
            return entry.keys[kid]

    def _refresh_in_passing(self, url: str, kid: str, entry: _Entry) -> Any:
        """A known kid whose key set is due for its periodic refresh: refresh it if no other thread is doing so,
        and otherwise (or when the platform's key-set host is slow or down) go on with the key already parsed — a
        failing refresh never refuses a key the platform published. Raises UnknownKid only when a successful
        refresh shows the platform has withdrawn the key."""
        if not entry.lock.acquire(blocking=False):
            return entry.keys.get(kid) or self.get_key(url, kid)
        try:
            now = time.monotonic()
            if now - entry.attempted_at >= self.min_refetch:
                entry.attempted_at = now
                # The key already held stays valid until a refresh that succeeds shows it withdrawn.
                with contextlib.suppress(Exception):
                    self._refresh(url, entry)
        finally:
            entry.lock.release()
        if kid not in entry.keys:
            raise UnknownKid("the platform no longer publishes a key with this kid")
        return entry.keys[kid]

    def _refresh(self, url: str, entry: _Entry) -> None:
        """Fetch and parse the key set into ``entry``; the caller holds ``entry.lock``. Raises the fetcher's errors."""
        with self._lock:
            self.fetches += 1
        try:
            data = self.fetcher(url, self.timeout)
            keys = _usable_keys(data)
        except Exception as exc:
            entry.failure = str(exc) if isinstance(exc, PlatformKeyError) else f"cannot fetch key set {url}"
            raise
        finally:
            entry.attempts += 1
        entry.keys = keys
        entry.fetched_at = time.monotonic()
        entry.failure = None


def _usable_keys(data: dict[str, Any]) -> dict[str, Any]:
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
    return keys
