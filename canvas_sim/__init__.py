"""Canvas LMS simulator: the LTI 1.3 platform side, for tests, benchmarks and demos. Never production."""

from canvas_sim.app import create_sim_app
from canvas_sim.config import SimConfig
from canvas_sim.errors import SimAuthError
from canvas_sim.platform import SimPlatform
from canvas_sim.users import DEMO_USERS, SimUser

__all__ = ["DEMO_USERS", "SimAuthError", "SimConfig", "SimPlatform", "SimUser", "create_sim_app"]
