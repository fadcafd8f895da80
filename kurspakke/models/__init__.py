"""The domain's tables. Import from here; Alembic's env.py reads ``Base.metadata``."""

# Domain packages with their own models.py are re-exported here so Alembic sees every table.
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.groups.models import CanvasGroupSet, GroupMember, GroupMentor, MentorGroup
from kurspakke.licences.models import (
    AuditEntry,
    CanvasSection,
    CanvasStatus,
    Order,
    OrderSource,
    OrderStatus,
    Seat,
    SeatPool,
)
from kurspakke.meetings.models import Attendance, Meeting
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
from kurspakke.outbox.models import OutboxStep, PeriodicJob, StepStatus
from kurspakke.progress.models import ModuleCompletion, ProgressWatermark, QuizMapping
from kurspakke.reminders.models import MeetingNotice, MeetingReminder, Nudge, ReminderPreference, SeatExpiryNotice

__all__ = [
    "Attendance",
    "AuditEntry",
    "Base",
    "CanvasGroupSet",
    "CanvasInstance",
    "CanvasSection",
    "CanvasStatus",
    "Certificate",
    "CertificateRole",
    "CourseLink",
    "Deployment",
    "ExpiringValue",
    "GroupMember",
    "GroupMentor",
    "IdentityKind",
    "LaunchRecord",
    "Meeting",
    "MeetingNotice",
    "MeetingReminder",
    "MentorGroup",
    "ModuleCompletion",
    "Nudge",
    "Order",
    "OrderSource",
    "OrderStatus",
    "Organisation",
    "OrganisationKind",
    "OutboxStep",
    "PeriodicJob",
    "Person",
    "PersonIdentity",
    "ProgrammeRole",
    "ProgrammeRoleKind",
    "ProgressWatermark",
    "QuizMapping",
    "Registration",
    "ReminderPreference",
    "Seat",
    "SeatExpiryNotice",
    "SeatPool",
    "StepStatus",
    "ToolKey",
    "UnlicensedLaunch",
    "utcnow",
]
