"""The caller's view of licence approvals: which templates and query requests
they see (an operator: those of their licences; an owner: those on their
datasets; a reviewer: those on datasets whose owner delegated approvals to
them; an admin: all), and the form spellings the pages and the API share.
Every decision is made by ``sandbox.approvals``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar
from collections.abc import Iterable

from queries.errors import InvalidInput, NotFound
from sandbox.vocabulary import Role
from web import access
from web.auth import Principal

if TYPE_CHECKING:
    from sandbox.approvals import QueryRequestView, TemplateView

V = TypeVar("V", "TemplateView", "QueryRequestView")


def approver_datasets(p: Principal) -> set[str]:
    """Datasets whose templates and requests ``p`` may decide."""
    from sqlalchemy import select

    from sandbox.persistence.approval_models import ApprovalDelegate
    from sandbox.datasets import list_datasets
    from sandbox.persistence.models import Dataset, User

    rows = list_datasets(access.inst())
    if p.role == Role.ADMIN:
        return {d.name for d in rows}
    if p.role == Role.OWNER:
        return {d.name for d in rows if d.owner == p.name}
    if p.role != Role.REVIEWER:
        return set()
    # sandbox.approvals has no listing of delegates; this reads the table, as access.users_list does.
    with access.inst().store.read() as s:
        stmt = (select(Dataset.name).join(ApprovalDelegate, ApprovalDelegate.dataset_id == Dataset.id)
                .join(User, User.id == ApprovalDelegate.user_id).where(User.name == p.name))
        return set(s.execute(stmt).scalars())


def _visible(p: Principal, rows: Iterable[V]) -> list[V]:
    """The rows of licences ``p`` holds (an operator) or decides on (an approver)."""
    mine = approver_datasets(p)
    return [r for r in rows if (p.role == Role.OPERATOR and r.operator == p.name) or r.dataset in mine]


def visible_templates(p: Principal, dataset: str | None = None, licence_id: int | None = None,
                      status: str | None = None) -> list[TemplateView]:
    from sandbox.approvals import list_templates

    return _visible(p, list_templates(access.inst(), dataset=dataset, licence_id=licence_id, status=status))


def visible_requests(p: Principal, dataset: str | None = None, status: str | None = None) -> list[QueryRequestView]:
    from sandbox.approvals import list_requests

    return _visible(p, list_requests(access.inst(), dataset=dataset, status=status,
                                     operator=p.name if p.role == Role.OPERATOR else None))


def template_of(p: Principal, template_id: int) -> TemplateView:
    found = [t for t in visible_templates(p) if t.id == template_id]
    if not found:
        raise NotFound(f"no template {template_id} you may see", code="unknown_template")
    return found[0]


def request_of(p: Principal, request_id: int) -> QueryRequestView:
    found = [r for r in visible_requests(p) if r.id == request_id]
    if not found:
        raise NotFound(f"no query request {request_id} you may see", code="unknown_request")
    return found[0]


def parameter_specs(declarations: Iterable[Any]):
    """``ParameterSpec``s from declarations: ``name:type:a|b|c`` / ``name:type:lo..hi``
    strings, or mappings with name, type and allowed or min/max."""
    from sandbox.approvals import ParameterSpec, parse_parameter_spec

    specs = []
    for d in declarations:
        if isinstance(d, str):
            specs.append(parse_parameter_spec(d.strip()))
            continue
        d = dict(d)
        if d.get("allowed") is None and (d.get("min") is None or d.get("max") is None):
            raise InvalidInput(f"parameter '{d.get('name')}' needs an allowed set or both min and max",
                               code="invalid_parameter_spec")
        spec = ParameterSpec.from_dict(d)
        spec.validate()
        specs.append(spec)
    return specs


def declarations_from_text(text: str) -> list[str]:
    """One declaration a line (the form's spelling); blank lines ignored."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def epsilon_or_target(eps_text: str, output: str, width_text: str) -> tuple[float | None, tuple[str, float] | None]:
    """The form's ε, or its accuracy target (an output column and a half-width)."""
    try:
        if width_text.strip():
            if not output.strip():
                raise InvalidInput("name the output column the half-width is for", code="invalid_form")
            width = float(width_text)
            if not width > 0:
                raise ValueError
            return None, (output.strip(), width)
        return (float(eps_text) if eps_text.strip() else None), None
    except ValueError:
        raise InvalidInput("epsilon and the half-width must be positive numbers", code="invalid_form") from None
