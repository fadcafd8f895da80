"""The domain's tables. Import from here; Alembic's env.py reads ``Base.metadata``."""

from kurspakke.models.base import Base, utcnow
from kurspakke.models.lti import (
    CanvasInstance,
    Deployment,
    ExpiringValue,
    LaunchRecord,
    Registration,
    ToolKey,
)
from kurspakke.models.people import (
    CourseLink,
    IdentityKind,
    Organisation,
    Person,
    PersonIdentity,
    ProgrammeRole,
    ProgrammeRoleKind,
    UnlicensedLaunch,
)

__all__ = [
    "Base",
    "CanvasInstance",
    "CourseLink",
    "Deployment",
    "ExpiringValue",
    "IdentityKind",
    "LaunchRecord",
    "Organisation",
    "Person",
    "PersonIdentity",
    "ProgrammeRole",
    "ProgrammeRoleKind",
    "Registration",
    "ToolKey",
    "UnlicensedLaunch",
    "utcnow",
]
