"""`python -m canvas_sim` – run the simulator for the local demo (dev server, never production)."""

from __future__ import annotations

import argparse

from canvas_sim.app import create_sim_app
from canvas_sim.config import SimConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Canvas-simulator (LTI 1.3-plattform for test og demo)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--tool-url", default="http://127.0.0.1:5000", help="the tool's base URL")
    args = parser.parse_args(argv)
    tool = args.tool_url.rstrip("/")
    config = SimConfig(
        base_url=f"http://{args.host}:{args.port}",
        tool_login_url=f"{tool}/lti/login",
        tool_launch_url=f"{tool}/lti/launch",
        tool_jwks_url=f"{tool}/lti/jwks",
    )
    # threaded: the tool calls back (token/NRPS) while a browser request may be in flight.
    create_sim_app(config).run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
