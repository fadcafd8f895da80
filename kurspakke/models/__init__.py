"""The domain's tables. Import from here; Alembic's env.py reads ``Base.metadata``."""

# Domain packages with their own models.py are re-exported here so Alembic sees every table.
from kurspakke.licences.models import AuditEntry, Order, OrderSource, OrderStatus, Seat, SeatPool
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
    OrganisationKind,
    Person,
    PersonIdentity,
    ProgrammeRole,
    ProgrammeRoleKind,
    UnlicensedLaunch,
)

__all__ = [
    "AuditEntry",
    "Base",
    "CanvasInstance",
    "CourseLink",
    "Deployment",
    "ExpiringValue",
    "IdentityKind",
    "LaunchRecord",
    "Order",
    "OrderSource",
    "OrderStatus",
    "Organisation",
    "OrganisationKind",
    "Person",
    "PersonIdentity",
    "ProgrammeRole",
    "ProgrammeRoleKind",
    "Registration",
    "Seat",
    "SeatPool",
    "ToolKey",
    "UnlicensedLaunch",
    "utcnow",
]
