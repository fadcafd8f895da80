"""The Canvas simulator served over real HTTP for the provisioning tests (tests/support/canvas_live.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from canvas_sim.keys import private_pem
from tests.support.canvas_live import LiveCanvas, live_canvas


@pytest.fixture(scope="session")
def platform_pem() -> bytes:
    return private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def canvas(platform_pem: bytes) -> Iterator[LiveCanvas]:
    with live_canvas(platform_pem) as live:
        yield live
