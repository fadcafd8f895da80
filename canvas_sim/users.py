"""Demo users the simulator can launch as.

The subs are fixed (not generated) so demo data and fixtures elsewhere in the
project can refer to the same people across runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
# Canvas sends a TA the Instructor principal role *and* its TeachingAssistant sub-role (as the LTI spec's best
# practice asks); tools must not treat them as course owners.
TEACHING_ASSISTANT = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
INSTITUTION_INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"


@dataclass
class SimUser:
    key: str
    canvas_user_id: int
    sub: str
    name: str
    given_name: str
    family_name: str
    email: str
    roles: list[str] = field(default_factory=list)
    label_nb: str = ""

    @property
    def context_roles(self) -> list[str]:
        """Membership (course) roles only; NRPS reports these, not institution roles."""
        return [r for r in self.roles if "/vocab/lis/v2/membership" in r]

    @property
    def lti11_legacy_user_id(self) -> str:
        # Stable, opaque, and different from `sub` – like Canvas's legacy id.
        return f"sim-legacy-{self.canvas_user_id:08d}"


_DEMO_USERS: tuple[SimUser, ...] = (
    SimUser(
        key="deltaker",
        canvas_user_id=101,
        sub="5b0f8a3e-1c2d-4e5f-8a9b-000000000101",
        name="Kari Nordmann",
        given_name="Kari",
        family_name="Nordmann",
        email="kari.nordmann@example.no",
        roles=[LEARNER],
        label_nb="Start som deltaker",
    ),
    SimUser(
        key="mentor",
        canvas_user_id=102,
        sub="5b0f8a3e-1c2d-4e5f-8a9b-000000000102",
        name="Ola Hansen",
        given_name="Ola",
        family_name="Hansen",
        email="ola.hansen@example.no",
        roles=[INSTRUCTOR, TEACHING_ASSISTANT],
        label_nb="Start som mentor",
    ),
    SimUser(
        key="lisensadministrator",
        canvas_user_id=103,
        sub="5b0f8a3e-1c2d-4e5f-8a9b-000000000103",
        name="Ingrid Johansen",
        given_name="Ingrid",
        family_name="Johansen",
        email="ingrid.johansen@example.no",
        roles=[LEARNER],
        label_nb="Start som lisensadministrator",
    ),
    SimUser(
        key="kurseier",
        canvas_user_id=104,
        sub="5b0f8a3e-1c2d-4e5f-8a9b-000000000104",
        name="Per Olsen",
        given_name="Per",
        family_name="Olsen",
        email="per.olsen@example.no",
        roles=[INSTRUCTOR, INSTITUTION_INSTRUCTOR],
        label_nb="Start som kurseier",
    ),
)

# A module-level list for convenience; configs take deep copies so one test
# mutating its users cannot leak into another.
DEMO_USERS: list[SimUser] = list(_DEMO_USERS)


def demo_users_copy() -> list[SimUser]:
    return [copy.deepcopy(u) for u in _DEMO_USERS]
