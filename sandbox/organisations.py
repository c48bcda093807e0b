"""Organisations: the departments and companies users belong to.

Only users of a ``department`` can hold sharing grants; a ``company`` reaches
sensitive data only through authorized operation (licences, differential privacy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queries.errors import Conflict, Forbidden, InvalidInput, NotFound
from sandbox import audit
from sandbox.audit import Actor
from sandbox.instance import Instance
from sandbox.persistence.models import Organisation, User
from sandbox.vocabulary import SYSTEM, OrganisationKind, Role


@dataclass(frozen=True)
class OrganisationView:
    name: str
    kind: OrganisationKind
    users: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind.value, "users": self.users}


def add_organisation(inst: Instance, actor: Actor, name: str, kind: str) -> OrganisationView:
    """Register an organisation (admins only)."""
    if actor.role not in (Role.ADMIN, SYSTEM):
        raise Forbidden("only an admin can add organisations", code="wrong_role")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("an organisation needs a name of 1 to 200 characters", code="invalid_organisation_name")
    try:
        org_kind = OrganisationKind(kind)
    except ValueError:
        raise InvalidInput("kind must be department or company", code="invalid_organisation_kind") from None
    with inst.store.transaction() as s:
        if s.execute(select(Organisation).where(Organisation.name == name)).scalar_one_or_none():
            raise Conflict(f"organisation '{name}' already exists", code="organisation_exists")
        org = Organisation(name=name, kind=org_kind.value)
        s.add(org)
        s.flush()
        audit.append(s, inst.signer, actor, "org.add", "organisation", org.id, {"name": name, "kind": org_kind.value})
    return OrganisationView(name, org_kind, 0)


def get_organisation(s: Session, name: str) -> Organisation:
    org = s.execute(select(Organisation).where(Organisation.name == name)).scalar_one_or_none()
    if org is None:
        raise NotFound(f"no organisation named '{name}'", code="unknown_organisation")
    return org


def organisation_of(s: Session, user: User) -> Organisation | None:
    return s.get(Organisation, user.org_id) if user.org_id is not None else None


def list_organisations(inst: Instance) -> list[OrganisationView]:
    with inst.store.read() as s:
        counts = dict(s.execute(select(User.org_id, func.count()).group_by(User.org_id)).all())
        return [OrganisationView(o.name, OrganisationKind(o.kind), int(counts.get(o.id, 0)))
                for o in s.execute(select(Organisation).order_by(Organisation.name)).scalars()]
