"""Registering a Canvas REST connection (`kurspakke canvas add`, or the default one from CANVAS_API_URL,
CANVAS_API_TOKEN and CANVAS_ACCOUNT_ID): the token stored encrypted, the instance tied to its LTI platform
instance through the root account's lti_guid (DESIGN.md §5)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from course_sync.canvas import CanvasClient, CanvasError
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.models import CanvasInstance
from kurspakke.services.platforms import RegistrationError, origin_of, platform_instance

HOSTED_ISSUER = "https://canvas.instructure.com"  # hosted Canvas (and Canvas's own default) signs launches so


class CanvasRegistrationError(Exception):
    """The connection cannot be stored; the message says why. Nothing was written."""


@dataclass(frozen=True)
class Registered:
    api_url: str
    account_id: int
    account_name: str
    scope: str


def register_canvas(
    sessions: sessionmaker[Session],
    settings: Settings,
    encryptor: Encryptor,
    *,
    api_url: str,
    account_id: int,
    token: str,
    auth_provider_id: int | None = None,
    issuer: str = HOSTED_ISSUER,
) -> Registered:
    """Read the root account's lti_guid with the token and store (or update) the connection. Raises
    CanvasRegistrationError when the URL is not acceptable, Canvas cannot be read with the token, or this Canvas is
    already stored under another address."""
    api_url = api_url.rstrip("/")
    try:
        origin_of(api_url)
        origin_of(issuer)
    except RegistrationError as exc:
        raise CanvasRegistrationError(str(exc)) from exc
    if settings.is_production and not api_url.startswith("https://"):
        raise CanvasRegistrationError("--api-url must use https in production")
    client = CanvasClient(
        api_url,
        token,
        timeout=settings.canvas_timeout_seconds,
        max_tries=settings.retry_max_tries,
        retry_base=settings.retry_base_seconds,
    )
    try:
        account = client.account(account_id, with_lti_guid=True)
    except CanvasError as exc:
        raise CanvasRegistrationError(f"could not read account {account_id} at {api_url}: {exc}") from exc
    scope = platform_instance(issuer, account.lti_guid)
    with transaction(sessions) as session:
        row = session.scalars(select(CanvasInstance).where(CanvasInstance.api_url == api_url)).one_or_none()
        twin = session.scalars(
            select(CanvasInstance.api_url).where(
                CanvasInstance.platform_instance == scope, CanvasInstance.api_url != api_url
            )
        ).first()
        if twin is not None:
            # One Canvas, one REST connection: two would provision the same people twice.
            raise CanvasRegistrationError(
                f"this Canvas (lti_guid {account.lti_guid}) is already stored as {twin}; use that API URL"
            )
        if row is None:
            row = CanvasInstance(api_url=api_url, account_id=account_id, token_encrypted=b"")
            session.add(row)
        row.account_id = account_id
        row.auth_provider_id = auth_provider_id
        row.token_encrypted = encryptor.encrypt(token.encode())
        row.platform_instance = scope
    return Registered(api_url, account_id, account.name, scope)


def ensure_default_canvas(sessions: sessionmaker[Session], settings: Settings, encryptor: Encryptor) -> str | None:
    """The one-instance case: when CANVAS_API_URL, CANVAS_API_TOKEN and CANVAS_ACCOUNT_ID are all set and that
    Canvas is not stored yet, store it as `kurspakke canvas add` would. Returns what it did, for the log."""
    url, token, account = settings.canvas_api_url, settings.canvas_api_token, settings.canvas_account_id
    if not (url and token and account):
        return None
    if not account.strip().isdigit():
        raise CanvasRegistrationError("CANVAS_ACCOUNT_ID must be a number")
    with sessions() as session:
        known = session.scalar(select(CanvasInstance.id).where(CanvasInstance.api_url == url.rstrip("/")))
    if known is not None:
        return None
    done = register_canvas(sessions, settings, encryptor, api_url=url, account_id=int(account), token=token)
    return f"stored the default Canvas connection {done.api_url} (account {done.account_id}) as {done.scope}"


__all__ = ["CanvasRegistrationError", "Registered", "ensure_default_canvas", "register_canvas"]
