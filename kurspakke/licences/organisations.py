"""An organisation's kind and network area (læringsnettverk, seeds/003), set by the course owner."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kurspakke.licences.services import LicenceError, audit
from kurspakke.models import Organisation, OrganisationKind

MAX_DEPTH = 10


class OrganisationError(LicenceError):
    """Refused: organisation_kind_unknown, parent_not_found, parent_is_itself, parent_cycle."""


def _state(org: Organisation) -> dict[str, object]:
    return {"name": org.name, "orgnr": org.orgnr, "kind": org.kind.value, "parent_id": org.parent_id}


def set_details(session: Session, org: Organisation, *, kind: str, parent_id: int | None, actor: str) -> Organisation:
    """Set the kind (kommune, bydel, helseforetak, other) and the network area the organisation belongs to (another
    organisation, or None). A network area can't be the organisation itself or one of its own members, at any depth.
    Raises OrganisationError; nothing is written when it raises."""
    try:
        new_kind = OrganisationKind(kind)
    except ValueError:
        raise OrganisationError("organisation_kind_unknown") from None
    parent = None
    if parent_id is not None:
        if parent_id == org.id:
            raise OrganisationError("parent_is_itself")
        parent = session.get(Organisation, parent_id)
        if parent is None:
            raise OrganisationError("parent_not_found")
        ancestor: Organisation | None = parent
        depth = 0
        while ancestor is not None and depth <= MAX_DEPTH:
            if ancestor.id == org.id:
                raise OrganisationError("parent_cycle")
            ancestor, depth = ancestor.parent, depth + 1
    before = _state(org)
    org.kind, org.parent_id = new_kind, parent.id if parent else None
    session.flush()
    after = _state(org)
    if after != before:
        audit(
            session,
            actor=actor,
            action="organisation.update",
            entity_type="organisation",
            entity_id=org.id,
            before=before,
            after=after,
        )
    session.flush()
    return org


__all__ = ["OrganisationError", "set_details"]
