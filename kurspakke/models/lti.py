"""LTI platform registrations, the tool's own signing keys, and short-lived login and launch records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kurspakke.models.base import Base, utcnow


class Registration(Base):
    """One LTI client (a Canvas developer key) of one issuer.

    All hosted Canvas shares the issuer https://canvas.instructure.com, so an issuer has many client ids.
    """

    __tablename__ = "lti_registration"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_login_url: Mapped[str] = mapped_column(String(1024))
    auth_token_url: Mapped[str] = mapped_column(String(1024))
    auth_audience: Mapped[str | None] = mapped_column(String(1024))
    key_set_url: Mapped[str] = mapped_column(String(1024))
    # Where users see the platform (e.g. https://hinn.instructure.com); these go into CSP frame-ancestors.
    frame_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="registration", cascade="all, delete-orphan", order_by="Deployment.id"
    )


class Deployment(Base):
    __tablename__ = "lti_deployment"
    __table_args__ = (UniqueConstraint("registration_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("lti_registration.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    registration: Mapped[Registration] = relationship(back_populates="deployments")


KEY_PURPOSE_LTI = "lti"
KEY_PURPOSE_BADGE = "badge"


class ToolKey(Base):
    """An RSA signing key of the tool. The private half is stored encrypted; retired keys stay in the JWKS for a
    grace period so platforms holding a cached copy still verify what was signed just before a rotation.

    ``purpose`` "lti" signs client assertions and deep-linking responses and rotates; "badge" signs Open Badges
    credentials, which employers check years later, so its public half stays published while any valid certificate
    names it (kurspakke.services.keys), whatever happens to the LTI keys."""

    __tablename__ = "tool_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16), default=KEY_PURPOSE_LTI, server_default=KEY_PURPOSE_LTI)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)


class LaunchRecord(Base):
    """What the tool keeps of one launch for later requests: context, roles and service endpoints — no name,
    no e-mail (those live on Person only)."""

    __tablename__ = "lti_launch"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The id_token nonce this launch consumed; unique, so a replay cannot record a second launch.
    nonce: Mapped[str] = mapped_column(String(255), unique=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExpiringValue(Base):
    """Generic short-lived key/value store used where Redis is not configured (e.g. access-token cache)."""

    __tablename__ = "expiring_value"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class CanvasInstance(Base):
    """A Canvas whose REST API the tool calls, with its API token encrypted at rest."""

    __tablename__ = "canvas_instance"

    id: Mapped[int] = mapped_column(primary_key=True)
    api_url: Mapped[str] = mapped_column(String(1024), unique=True)
    account_id: Mapped[int]
    token_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    auth_provider_id: Mapped[int | None] = mapped_column(default=None)
    # The same Canvas as an LTI platform instance ("<issuer>|<root account lti_guid>",
    # kurspakke.services.platforms.platform_instance): how launches from it are recognised. None until tied.
    platform_instance: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = [
    "KEY_PURPOSE_BADGE",
    "KEY_PURPOSE_LTI",
    "CanvasInstance",
    "Deployment",
    "ExpiringValue",
    "LaunchRecord",
    "Registration",
    "ToolKey",
]
