"""The Canvas simulator served over real HTTP (a thread), registered in the tool as a Canvas instance with the
programme's course linked, and a worker wired to it — what provisioning tests and benchmarks run against."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from canvas_sim import SimConfig, SimPlatform, create_sim_app
from canvas_sim.rest import CanvasRest
from course_sync.provisioning import client_factory
from course_sync.steps import step_kinds
from course_sync.worker import Worker, WorkerOptions
from kurspakke.crypto import Encryptor
from kurspakke.models import CanvasInstance, CourseLink
from kurspakke.services.platforms import platform_instance

TOKEN = "sim-canvas-api-token"
FAST = WorkerOptions(lease_seconds=30.0, max_attempts=8, retry_base=0.01, retry_cap=0.05, poll_seconds=0.02)


@dataclass
class LiveCanvas:
    url: str
    rest: CanvasRest
    config: SimConfig

    @property
    def scope(self) -> str:
        return platform_instance(self.config.effective_issuer, self.config.platform_guid)


@contextmanager
def live_canvas(private_key_pem: bytes, **config: Any) -> Iterator[LiveCanvas]:
    sim_config = SimConfig(private_key_pem=private_key_pem, **config)
    rest = CanvasRest(sim_config)
    server = make_server("127.0.0.1", 0, create_sim_app(sim_config, SimPlatform(sim_config), rest=rest), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveCanvas(f"http://127.0.0.1:{server.server_port}", rest, sim_config)
    finally:
        rest.close()
        server.shutdown()
        server.server_close()
        thread.join()


def register(
    session: Session, canvas: LiveCanvas, encryptor: Encryptor, *, programme_id: str = "lindrende-behandling", **kw: Any
) -> CanvasInstance:
    """Store the simulator as `kurspakke canvas add` would and link the programme's course on it."""
    instance = CanvasInstance(
        api_url=canvas.url,
        account_id=1,
        token_encrypted=encryptor.encrypt(TOKEN.encode()),
        platform_instance=canvas.scope,
        **kw,
    )
    session.add(instance)
    session.add(
        CourseLink(
            programme_id=programme_id,
            platform_instance=canvas.scope,
            context_id=canvas.config.context_id,
            canvas_course_id=str(canvas.config.course_id),
            title=canvas.config.course_title,
        )
    )
    session.flush()
    return instance


def worker(
    sessions: sessionmaker[Session], encryptor: Encryptor, options: WorkerOptions = FAST, **client: float
) -> Worker:
    settings = {"timeout": 2.0, "max_tries": 3, "retry_base": 0.01, "retry_max": 0.05} | client
    return Worker(sessions, client_factory(encryptor, **settings), step_kinds(), options)
