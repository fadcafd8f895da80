#!/usr/bin/env python
"""Full LTI 1.3 launches per second and latency: the tool under gunicorn against a purpose-built baseline.

One launch = GET /lti/login (302 to the platform's authorize URL, state cookie) + POST /lti/launch with an
id_token RS256-signed by the platform key for the nonce the login chose (200 with the landing page, which the
tool renders in the launch response itself). Each launch uses a fresh cookie jar and a fresh TCP connection
(keep-alive between its two requests). The platform's authorize hop is done in the client (claims from
``SimPlatform.claims_for``, signed with the platform key loaded once); nothing that depends on the login is
pre-signed.

For each backend (SQLite file, PostgreSQL database created and dropped by this script) the script migrates
(``kurspakke db upgrade``), creates a signing key (``kurspakke keys rotate``), loads the demo data for the
simulator (``kurspakke.services.demo.load_demo``, as ``kurspakke demo`` does: platform, linked course, a known
participant), starts the Canvas simulator (one gunicorn worker, for its JWKS and a bench-only counter route), the
tool (gunicorn, ``-c config/gunicorn.conf.py``, WEB_CONCURRENCY=2) and the baseline (``bench/baseline_app.py``,
same gunicorn config, 2 workers), warms both up, then measures each concurrency level a few times, alternating
tool and baseline. Clients are separate processes (one per concurrent client, forked from this script).

    .venv/bin/python bench/launch.py                 # full run, both backends (~6 minutes)
    .venv/bin/python bench/launch.py --quick         # smoke run (< 1 minute)
    .venv/bin/python bench/launch.py --backends postgresql --concurrency 8 --duration 20

Everything listens on 127.0.0.1 only. All child processes are stopped at the end, on error, on Ctrl-C and when
the overall --timeout expires. Logs and a JSON copy of the results go to a temporary directory (kept with
--keep) and bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import multiprocessing as mp
import os
import platform as py_platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from bench.sim_app import sim_config  # noqa: E402
from canvas_sim import SimPlatform  # noqa: E402
from canvas_sim.keys import private_pem  # noqa: E402

HOST = "127.0.0.1"
USER = "deltaker"  # the demo participant: lands on "Min fremdrift"
TOOL_MARKER = b"Logget inn som Kari Nordmann"
BASELINE_MARKER = b"Logget inn som Kari Nordmann"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SERVERS = ("tool", "baseline")
# Inherited variables that would change what is measured.
_SCRUB = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PORT", "HOST", "WEB_CONCURRENCY")


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------- child processes
class Children:
    """Every server process this script starts, each in its own session so its workers go with it."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.clients: list[Any] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as fh:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append((name, proc, log))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # gunicorn: graceful stop of master and its workers
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # any worker left behind in the group
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        self.procs = [p for p in self.procs if p[1] is not proc]

    def stop_all(self) -> None:
        for client in list(self.clients):
            if client.is_alive():
                client.kill()
            client.join(2)
        self.clients.clear()
        for _name, proc, _log in reversed(list(self.procs)):
            self.stop(proc, grace=5.0)


CHILDREN = Children()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(name: str, proc: subprocess.Popen[bytes], port: int, path: str, log: Path, timeout: float = 40) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode} during start-up:\n{tail(log)}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_get(port, path, timeout=2)[0] == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"{name} not ready on port {port} after {timeout:.0f} s:\n{tail(log)}")


def gunicorn_workers(master: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == master:
            pids.append(int(entry))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# --------------------------------------------------------------------------------------------------- the client
@dataclass(frozen=True)
class Target:
    name: str
    port: int
    login_query: str
    marker: bytes


_SIM: SimPlatform | None = None  # the platform (key loaded once), set before the client processes are forked


def one_launch(target: Target, sim: SimPlatform, user: Any) -> tuple[str | None, float]:
    """Login + launch with a fresh cookie jar. Returns (error or None, seconds spent signing)."""
    jar: dict[str, str] = {}
    conn = http.client.HTTPConnection(HOST, target.port, timeout=15)
    try:
        conn.request("GET", "/lti/login?" + target.login_query, headers={"Accept": "text/html"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 302:
            return f"login {resp.status}", 0.0
        for header in resp.msg.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            jar[name.strip()] = value.strip()
        query = parse_qs(urlsplit(resp.getheader("Location", "")).query)
        if "state" not in query or "nonce" not in query:
            return "login redirect without state/nonce", 0.0
        state, nonce = query["state"][0], query["nonce"][0]
        t0 = time.perf_counter()
        id_token = sim.sign(sim.claims_for(user, nonce=nonce))
        signing = time.perf_counter() - t0
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
        if jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        conn.request("POST", "/lti/launch", body=urlencode({"id_token": id_token, "state": state}), headers=headers)
        resp = conn.getresponse()
        page = resp.read()
        if resp.status != 200:
            return f"launch {resp.status}: {page[:160]!r}", signing
        if target.marker not in page:
            return f"launch 200 without the expected page: {page[:160]!r}", signing
        return None, signing
    except (OSError, http.client.HTTPException) as exc:
        return f"{exc.__class__.__name__}: {exc}", 0.0
    finally:
        conn.close()


def _client_main(target: Target, share: int, ready: Any, start: Any, deadline: Any, out: Any) -> None:
    sim = _SIM
    assert sim is not None
    user = sim.user(USER)
    latencies: list[float] = []
    errors: list[str] = []
    failures = 0
    signing = 0.0
    ready.put(os.getpid())
    if not start.wait(60):
        out.put(
            {
                "latencies": [],
                "failures": 0,
                "errors": ["never started"],
                "cpu": 0.0,
                "signing": 0.0,
                "first": 0.0,
                "last": 0.0,
            }
        )
        return
    end = deadline.value
    cpu0 = time.process_time()
    first = time.monotonic()
    last = first
    done = 0
    while (done < share) if share else (time.monotonic() < end):
        t0 = time.perf_counter()
        error, signed = one_launch(target, sim, user)
        elapsed = time.perf_counter() - t0
        done += 1
        signing += signed
        if error is None:
            latencies.append(elapsed)
        else:
            failures += 1
            if len(errors) < 5:
                errors.append(error)
        last = time.monotonic()
    out.put(
        {
            "latencies": latencies,
            "failures": failures,
            "errors": errors,
            "cpu": time.process_time() - cpu0,
            "signing": signing,
            "first": first,
            "last": last,
        }
    )


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Cell:
    backend: str
    server: str
    concurrency: int
    rep: int
    launches: int
    failures: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    jwks_fetches: int
    client_cpu_ms: float  # per launch, all client processes
    signing_ms: float  # per launch, of which signing the id_token (the platform's work)
    server_cpu_ms: float  # per launch, the server's gunicorn workers
    machine_busy: float  # share of both cores busy (clients, servers, PostgreSQL, everything)
    errors: list[str] = field(default_factory=list)


def run_cell(
    backend: str,
    target: Target,
    concurrency: int,
    *,
    duration: float,
    launches: int,
    rep: int,
    server_master: int,
    sim_port: int,
) -> Cell:
    ctx = mp.get_context("fork")
    ready, out = ctx.Queue(), ctx.Queue()
    start, deadline = ctx.Event(), ctx.Value("d", 0.0)
    share = math.ceil(launches / concurrency) if launches else 0
    procs = [
        ctx.Process(target=_client_main, args=(target, share, ready, start, deadline, out), daemon=True)
        for _ in range(concurrency)
    ]
    CHILDREN.clients.extend(procs)
    try:
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=30)
        workers = gunicorn_workers(server_master)
        jwks0 = sim_jwks_requests(sim_port)
        cpu0, (busy0, total0) = cpu_seconds(workers), machine_ticks()
        t_start = time.monotonic()
        deadline.value = t_start + duration
        start.set()
        wait = (duration if not launches else 600) + 60
        results = [out.get(timeout=wait) for _ in procs]
        cpu1, (busy1, total1) = cpu_seconds(workers), machine_ticks()
        jwks1 = sim_jwks_requests(sim_port)
        for p in procs:
            p.join(5)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(2)
            with contextlib.suppress(ValueError):
                CHILDREN.clients.remove(p)
    latencies = sorted(x for r in results for x in r["latencies"])
    failures = sum(r["failures"] for r in results)
    errors = [e for r in results for e in r["errors"]][:5]
    attempts = len(latencies) + failures
    seconds = max(r["last"] for r in results) - t_start
    n = max(1, attempts)
    return Cell(
        backend=backend,
        server=target.name,
        concurrency=concurrency,
        rep=rep,
        launches=len(latencies),
        failures=failures,
        seconds=round(seconds, 3),
        per_second=len(latencies) / seconds if seconds > 0 else 0.0,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        mean_ms=statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        jwks_fetches=jwks1 - jwks0,
        client_cpu_ms=sum(r["cpu"] for r in results) / n * 1000,
        signing_ms=sum(r["signing"] for r in results) / n * 1000,
        server_cpu_ms=(cpu1 - cpu0) / n * 1000,
        machine_busy=(busy1 - busy0) / max(1, total1 - total0),
        errors=errors,
    )


def sim_jwks_requests(sim_port: int) -> int:
    status, body = http_get(sim_port, "/_bench/counters")
    if status != 200:
        raise BenchError(f"simulator counters: HTTP {status}")
    return int(json.loads(body)["jwks_requests"])


# ------------------------------------------------------------------------------------------------ the backends
@dataclass
class Stack:
    backend: str
    workdir: Path
    sim_port: int
    tool: Target
    baseline: Target
    masters: dict[str, int]
    logs: dict[str, Path]
    database: str | None = None  # PostgreSQL database to drop


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith(("KURSPAKKE_", "BENCH_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def pg_admin(admin_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/" + name).geturl()


def start_stack(backend: str, workdir: Path, key_file: Path, key_pem: bytes, pg_url: str, log_json: bool) -> Stack:
    from canvas_sim.demo import demo_platform, demo_users
    from kurspakke.db import make_engine, make_session_factory, transaction
    from kurspakke.services.demo import load_demo

    workdir.mkdir(parents=True)
    tool_port, sim_port, base_port = free_port(), free_port(), free_port()
    tool_url, sim_url = f"http://{HOST}:{tool_port}", f"http://{HOST}:{sim_port}"
    stack_db: str | None = None
    if backend == "sqlite":
        db_url = f"sqlite:///{workdir / 'kurspakke.sqlite3'}"
        baseline_db = f"sqlite:///{workdir / 'baseline.sqlite3'}"
    elif backend == "postgresql":
        stack_db = f"kp_bench_{os.getpid()}_{secrets.token_hex(3)}"
        pg_admin(pg_url, f'CREATE DATABASE "{stack_db}"')
        db_url = baseline_db = with_database(pg_url, stack_db)
    else:
        raise BenchError(f"unknown backend {backend!r}")
    stack = Stack(
        backend,
        workdir,
        sim_port,
        Target("tool", tool_port, "", TOOL_MARKER),
        Target("baseline", base_port, "", BASELINE_MARKER),
        {},
        {},
        stack_db,
    )
    cfg = sim_config(sim_url, tool_url, key_pem)
    env = base_env()
    tool_env = {
        **env,
        "DATABASE_URL": db_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "KURSPAKKE_BASE_URL": tool_url,
        "KURSPAKKE_ENV": "development",
        "KURSPAKKE_INSTANCE_PATH": str(workdir / "instance"),
        "KURSPAKKE_LOG_JSON": "1" if log_json else "0",
        "HOST": HOST,
        "PORT": str(tool_port),
        "WEB_CONCURRENCY": "2",
    }
    for cmd in (["db", "upgrade"], ["keys", "rotate"]):
        done = subprocess.run(
            [sys.executable, "-m", "kurspakke", *cmd],
            cwd=ROOT,
            env=tool_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"kurspakke {' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    demo = demo_platform(cfg)
    engine = make_engine(db_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            load_demo(session, demo, demo_users(cfg))
    finally:
        engine.dispose()

    gunicorn = [sys.executable, "-m", "gunicorn"]
    sim_env = {**env, "BENCH_SIM_BASE_URL": sim_url, "BENCH_TOOL_URL": tool_url, "BENCH_SIM_KEY_FILE": str(key_file)}
    log = workdir / "sim.log"
    proc = CHILDREN.start(
        "sim",
        [
            *gunicorn,
            "-w",
            "1",
            "-k",
            "gthread",
            "--threads",
            "4",
            "-b",
            f"{HOST}:{sim_port}",
            "bench.sim_app:create_app()",
        ],
        sim_env,
        log,
    )
    wait_ready("simulator", proc, sim_port, "/_bench/counters", log)
    stack.logs["sim"] = log

    log = workdir / "tool.log"
    proc = CHILDREN.start("tool", [*gunicorn, "-c", "config/gunicorn.conf.py", "lti_tool:create_app()"], tool_env, log)
    wait_ready("tool", proc, tool_port, "/healthz", log)
    stack.masters["tool"], stack.logs["tool"] = proc.pid, log

    base_env_ = {
        **env,
        "HOST": HOST,
        "PORT": str(base_port),
        "WEB_CONCURRENCY": "2",
        "BENCH_BASELINE_DATABASE_URL": baseline_db,
        "BENCH_SIM_KEY_FILE": str(key_file),
        "BENCH_ISSUER": cfg.effective_issuer,
        "BENCH_CLIENT_ID": cfg.client_id,
        "BENCH_AUTH_URL": cfg.base + "/api/lti/authorize_redirect",
        "BENCH_LAUNCH_URL": f"http://{HOST}:{base_port}/lti/launch",
    }
    log = workdir / "baseline.log"
    proc = CHILDREN.start(
        "baseline", [*gunicorn, "-c", "config/gunicorn.conf.py", "bench.baseline_app:create_app()"], base_env_, log
    )
    wait_ready("baseline", proc, base_port, "/healthz", log)
    stack.masters["baseline"], stack.logs["baseline"] = proc.pid, log

    # The login initiation Canvas would send (its lti_message_hint is signed once: it does not depend on the login).
    query = urlencode(_platform_for_clients(cfg).login_initiation_params(USER))
    stack.tool = Target("tool", tool_port, query, TOOL_MARKER)
    stack.baseline = Target("baseline", base_port, query, BASELINE_MARKER)
    return stack


def _platform_for_clients(cfg: Any) -> SimPlatform:
    global _SIM
    _SIM = SimPlatform(cfg)
    return _SIM


def stop_stack(stack: Stack, pg_url: str) -> None:
    for name, proc, _log in list(CHILDREN.procs):
        if name in ("sim", "tool", "baseline"):
            CHILDREN.stop(proc)
    if stack.database:
        pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{stack.database}" WITH (FORCE)')
        stack.database = None


def server_times(log: Path, offset: int) -> dict[str, dict[str, float]]:
    """Server-side ms per path from the tool's JSON request log, from ``offset`` on (the measured phase)."""
    by_path: dict[str, list[float]] = defaultdict(list)
    with log.open("rb") as fh:
        fh.seek(offset)
        for line in fh:
            if not line.startswith(b"{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == "request" and "ms" in entry:
                by_path[entry["path"]].append(float(entry["ms"]))
    out = {}
    for path, values in by_path.items():
        values.sort()
        out[path] = {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99)}
    return out


# ----------------------------------------------------------------------------------------------------- report
def summarise(cells: list[Cell]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, str], list[Cell]] = defaultdict(list)
    for c in cells:
        groups[(c.backend, c.concurrency, c.server)].append(c)
    rows = []
    for (backend, conc, server), group in groups.items():
        rows.append(
            {
                "backend": backend,
                "server": server,
                "concurrency": conc,
                "reps": len(group),
                "per_second": statistics.median(c.per_second for c in group),
                "p50_ms": statistics.median(c.p50_ms for c in group),
                "p99_ms": statistics.median(c.p99_ms for c in group),
                "launches": sum(c.launches for c in group),
                "failures": sum(c.failures for c in group),
                "jwks_fetches": sum(c.jwks_fetches for c in group),
                "server_cpu_ms": statistics.median(c.server_cpu_ms for c in group),
                "client_cpu_ms": statistics.median(c.client_cpu_ms for c in group),
                "machine_busy": statistics.median(c.machine_busy for c in group),
            }
        )
    for row in rows:
        if row["server"] == "tool":
            base = next(
                r
                for r in rows
                if r["server"] == "baseline"
                and r["backend"] == row["backend"]
                and r["concurrency"] == row["concurrency"]
            )
            row["ratio"] = row["per_second"] / base["per_second"] if base["per_second"] else float("nan")
    order = {"sqlite": 0, "postgresql": 1}
    rows.sort(key=lambda r: (order.get(r["backend"], 9), r["concurrency"], SERVERS.index(r["server"])))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| backend | server | clients | launches/s | p50 ms | p99 ms | tool/baseline | JWKS fetches | failures "
        "| launches | server CPU ms/launch | client CPU ms/launch | CPU busy |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
        lines.append(
            f"| {r['backend']} | {r['server']} | {r['concurrency']} | {r['per_second']:.1f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {ratio} | {r['jwks_fetches']} | {r['failures']} | {r['launches']} "
            f"| {r['server_cpu_ms']:.1f} | {r['client_cpu_ms']:.1f} | {r['machine_busy'] * 100:.0f}% |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        if r["server"] != "tool" or r["backend"] != "postgresql" or r["concurrency"] != 8:
            continue
        out.append(
            f"ratio tool/baseline at 8 clients on PostgreSQL: {r['ratio']:.2f} (target >= 0.6): "
            + ("MET" if r["ratio"] >= 0.6 else "NOT MET")
        )
        out.append(
            f"p99 of the whole launch at 8 clients on PostgreSQL: {r['p99_ms']:.1f} ms (target < 50 ms): "
            + ("MET" if r["p99_ms"] < 50 else "NOT MET")
        )
    fetches = sum(r["jwks_fetches"] for r in rows if r["server"] == "tool")
    out.append(
        f"platform JWKS fetches during measured launches: {fetches} (target 0): "
        + ("MET" if fetches == 0 else "NOT MET")
    )
    failures = sum(r["failures"] for r in rows)
    out.append(f"failed launches: {failures}")
    return out


# ------------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backends", default="sqlite,postgresql", help="comma list of sqlite, postgresql")
    p.add_argument("--concurrency", default="1,8,16", help="comma list of concurrent clients")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--duration", type=float, default=None, help="seconds per measured cell (default 8, quick 1.5)")
    g.add_argument("--launches", type=int, default=None, help="launches per measured cell instead of a duration")
    p.add_argument("--reps", type=int, default=None, help="repetitions per cell (default 3, quick 1)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds per server (default 3, quick 1)")
    p.add_argument("--quick", action="store_true", help="a short smoke run (< 1 minute)")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL server to create the benchmark database on (it is dropped at the end)",
    )
    p.add_argument("--no-log-json", action="store_true", help="KURSPAKKE_LOG_JSON=0 for the tool")
    p.add_argument("--timeout", type=float, default=None, help="hard limit for the whole run, seconds")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, SQLite files)")
    p.add_argument("--json", type=Path, default=None, help="write results here (default bench/results/...)")
    args = p.parse_args(argv)
    args.duration = args.duration if args.duration is not None else (1.5 if args.quick else 8.0)
    args.launches = args.launches or 0
    args.reps = args.reps or (1 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    args.backend_list = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.timeout is None:
        per_cell = (args.duration if not args.launches else 60) + 3
        cells = len(args.backend_list) * len(args.levels) * len(SERVERS) * args.reps
        args.timeout = 120 + len(args.backend_list) * (60 + 2 * args.warmup) + cells * per_cell
    return args


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    mem = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0"
    )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory_gib": f"{int(mem) / 1024 / 1024:.1f}",
        "python": py_platform.python_version(),
        "kernel": py_platform.release(),
    }


def _alarm(_signum: int, _frame: Any) -> None:
    raise TimeoutError("the benchmark ran past --timeout")


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def cleanup(workdir: Path, keep: bool) -> Iterator[None]:
    try:
        yield
    finally:
        signal.alarm(0)
        CHILDREN.stop_all()
        if not keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGTERM, _terminate)
    signal.alarm(int(args.timeout))
    workdir = Path(tempfile.mkdtemp(prefix="kp-bench-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = private_pem(key)
    key_file = workdir / "platform_key.pem"
    key_file.write_bytes(key_pem)
    key_file.chmod(0o600)
    print(
        f"kurspakke launch benchmark: backends={args.backend_list} clients={args.levels} "
        + (f"launches={args.launches}" if args.launches else f"duration={args.duration}s")
        + f" reps={args.reps} warmup={args.warmup}s timeout={args.timeout:.0f}s workdir={workdir}",
        flush=True,
    )
    cells: list[Cell] = []
    server_side: dict[str, Any] = {}
    warm_fetches: dict[str, int] = {}
    stacks: list[Stack] = []
    with cleanup(workdir, args.keep):
        try:
            for backend in args.backend_list:
                t0 = time.monotonic()
                stack = start_stack(backend, workdir / backend, key_file, key_pem, args.pg_url, not args.no_log_json)
                stacks.append(stack)
                print(
                    f"[{backend}] stack up in {time.monotonic() - t0:.1f} s "
                    f"(tool :{stack.tool.port}, baseline :{stack.baseline.port}, simulator :{stack.sim_port})",
                    flush=True,
                )
                targets = {"tool": stack.tool, "baseline": stack.baseline}
                for name, target in targets.items():
                    assert _SIM is not None
                    error, _ = one_launch(target, _SIM, _SIM.user(USER))
                    if error:
                        raise BenchError(f"[{backend}] first {name} launch failed: {error}\n{tail(stack.logs[name])}")
                    warm = run_cell(
                        backend,
                        target,
                        4,
                        duration=args.warmup,
                        launches=0,
                        rep=0,
                        server_master=stack.masters[name],
                        sim_port=stack.sim_port,
                    )
                    if warm.failures:
                        raise BenchError(f"[{backend}] {name} warm-up: {warm.failures} failed: {warm.errors}")
                warm_fetches[backend] = sim_jwks_requests(stack.sim_port)
                print(
                    f"[{backend}] warm; platform JWKS fetched {warm_fetches[backend]} time(s) so far "
                    "(one per tool worker expected)",
                    flush=True,
                )
                log_offset = stack.logs["tool"].stat().st_size
                for conc in args.levels:
                    for rep in range(1, args.reps + 1):
                        order = SERVERS if rep % 2 else tuple(reversed(SERVERS))
                        for name in order:
                            cell = run_cell(
                                backend,
                                targets[name],
                                conc,
                                duration=args.duration,
                                launches=args.launches,
                                rep=rep,
                                server_master=stack.masters[name],
                                sim_port=stack.sim_port,
                            )
                            cells.append(cell)
                            print(
                                f"[{backend}] {name:8} c={conc:<2} rep {rep}: {cell.per_second:7.1f}/s "
                                f"p50 {cell.p50_ms:6.1f} ms p99 {cell.p99_ms:6.1f} ms  n={cell.launches} "
                                f"fail={cell.failures} jwks={cell.jwks_fetches} "
                                f"srv {cell.server_cpu_ms:.1f} cli {cell.client_cpu_ms:.1f} ms/launch "
                                f"busy {cell.machine_busy * 100:.0f}%"
                                + (f"  errors: {cell.errors}" if cell.errors else ""),
                                flush=True,
                            )
                server_side[backend] = server_times(stack.logs["tool"], log_offset)
                stop_stack(stack, args.pg_url)
        finally:
            for stack in stacks:
                with contextlib.suppress(Exception):
                    stop_stack(stack, args.pg_url)

    rows = summarise(cells)
    print()
    print(
        f"Medians of {args.reps} repetition(s) per cell; launches/s = successful launches / wall time; "
        "latency = login + id_token signing + launch, per launch"
    )
    print(table(rows))
    print()
    for backend, paths in server_side.items():
        for path, s in sorted(paths.items()):
            print(f"[{backend}] tool server-side {path}: n={s['n']} p50 {s['p50']:.1f} ms p99 {s['p99']:.1f} ms")
    print()
    for line in verdict(rows):
        print(line)
    all_errors = [e for c in cells for e in c.errors]
    if all_errors:
        print("first errors:")
        for e in all_errors[:10]:
            print("  ", e)
    print(f"total {time.monotonic() - started:.0f} s")
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "machine": machine(),
        "gunicorn_threads": os.environ.get("GUNICORN_THREADS", "4"),
        "warm_jwks_fetches": warm_fetches,
        "rows": rows,
        "cells": [asdict(c) for c in cells],
        "tool_server_side_ms": server_side,
    }
    out = args.json or ROOT / "bench" / "results" / f"launch-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"results: {out}")
    return 1 if sum(c.failures for c in cells) else 0


if __name__ == "__main__":
    sys.exit(main())
