"""The Canvas simulator as a WSGI factory for benchmarks, with one bench-only debug route.

``GET /_bench/counters`` returns the platform's request counters (how many times its JWKS was fetched), so the
benchmark can show that warm launches fetch no keys. Serve with ONE gunicorn worker: the counters are per process.

Environment: BENCH_SIM_BASE_URL, BENCH_TOOL_URL, BENCH_SIM_KEY_FILE (the platform's private key, PEM).
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, jsonify

from canvas_sim import SimConfig, SimPlatform, create_sim_app


def sim_config(base_url: str, tool_url: str, key_pem: bytes | None) -> SimConfig:
    """The simulator as the benchmark registers it. No lti_storage_target: the tool's login then answers with a
    302 and binds the browser by its state cookie (the path a Python client can follow without a script)."""
    tool = tool_url.rstrip("/")
    return SimConfig(
        base_url=base_url.rstrip("/"),
        tool_login_url=f"{tool}/lti/login",
        tool_launch_url=f"{tool}/lti/launch",
        tool_jwks_url=f"{tool}/lti/jwks",
        private_key_pem=key_pem,
        storage_target=None,
    )


def create_app() -> Flask:
    config = sim_config(
        os.environ["BENCH_SIM_BASE_URL"],
        os.environ["BENCH_TOOL_URL"],
        Path(os.environ["BENCH_SIM_KEY_FILE"]).read_bytes(),
    )
    platform = SimPlatform(config)
    app = create_sim_app(config, platform)

    @app.get("/_bench/counters")
    def counters():  # type: ignore[no-untyped-def]
        return jsonify(
            jwks_requests=platform.jwks_requests,
            token_requests=platform.token_requests,
            pid=os.getpid(),
        )

    return app
