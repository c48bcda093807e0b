"""Service calls shared by the pages and the API, with the caller's view of them
applied (an owner sees the quality report of their own datasets, an operator
only their own licences). No business rule lives here: every decision is made
by the ``sandbox``/``products`` services these functions call."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Iterable

from flask import current_app
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from queries.errors import Forbidden, InvalidInput, Unauthorized
from queries.vocabulary import Classification
from sandbox.instance import Instance
from sandbox.vocabulary import Role
from web.auth import Principal, actor

if TYPE_CHECKING:
    from sandbox.datasets import DatasetListing, DatasetView
    from sandbox.licences import DatasetBudget, LicenceView
    from sandbox.users import UserView


def inst() -> Instance:
    return current_app.extensions["dps"]


def search_datasets(q: str | None = None, classification: str | None = None,
                    publisher: str | None = None) -> list[DatasetListing]:
    from sandbox.datasets import list_datasets

    words = [w.lower() for w in (q or "").split() if w]
    columns = schema_text() if words else {}
    out = []
    for d in list_datasets(inst()):
        text = " ".join(x or "" for x in (d.name, d.title, d.description, d.publisher)).lower()
        text += " " + columns.get(d.name, "")
        if words and not all(w in text for w in words):
            continue
        if classification and d.classification != classification:
            continue
        if publisher and d.publisher != publisher:
            continue
        out.append(d)
    return out


def schema_text() -> dict[str, str]:
    """Per dataset, the searchable words of its newest version's schema: table and
    column names and their descriptions (public metadata, like the dataset page)."""
    from sqlalchemy import func, select

    from sandbox.persistence.models import Dataset, DatasetVersion

    out: dict[str, str] = {}
    with inst().store.read() as s:
        newest = (select(DatasetVersion.dataset_id, func.max(DatasetVersion.number).label("n"))
                  .group_by(DatasetVersion.dataset_id).subquery())
        rows = s.execute(select(Dataset.name, DatasetVersion.policy).join(
            DatasetVersion, DatasetVersion.dataset_id == Dataset.id).join(
            newest, (newest.c.dataset_id == DatasetVersion.dataset_id) & (newest.c.n == DatasetVersion.number))).all()
    for name, policy in rows:
        words = []
        for t in (policy or {}).get("tables") or []:
            words += [str(t.get("name") or ""), str(t.get("description") or "")]
            for c in t.get("columns") or []:
                words += [str(c.get("name") or ""), str(c.get("description") or "")]
        out[name] = " ".join(w for w in words if w).lower()
    return out


def publishers() -> list[str]:
    from sandbox.datasets import list_datasets

    return sorted({d.publisher for d in list_datasets(inst()) if d.publisher})


def may_manage(p: Principal, owner: str | None) -> bool:
    return p.role == Role.ADMIN or (p.role == Role.OWNER and p.name == owner)


def dataset_detail(p: Principal, name: str) -> DatasetView:
    from sandbox.datasets import show_dataset

    d = show_dataset(inst(), name)
    if may_manage(p, d.owner):
        d = show_dataset(inst(), name, include_quality=True)
    return d


def dataset_budget(p: Principal, name: str) -> DatasetBudget:
    from sandbox.licences import dataset_budget as budget_of

    view = budget_of(inst(), name)
    if not may_manage(p, view.owner):
        raise Forbidden("only the dataset's owner or an admin sees its budget", code="not_owner")
    return view


def visible_licences(p: Principal, dataset: str | None = None, operator: str | None = None) -> list[LicenceView]:
    from sandbox.datasets import list_datasets
    from sandbox.licences import list_licences

    if p.role == Role.OPERATOR:
        return list_licences(inst(), dataset=dataset, operator=p.name)
    rows = list_licences(inst(), dataset=dataset, operator=operator)
    if p.role == Role.OWNER:
        mine = {d.name for d in list_datasets(inst()) if d.owner == p.name}
        rows = [r for r in rows if r.dataset in mine]
    return rows


def visible_licence(p: Principal, licence_id: int) -> LicenceView:
    """One licence, if the caller may see it (its operator, its dataset's owner, an
    admin); anyone else is told there is no such licence."""
    from queries.errors import NotFound
    from sandbox.datasets import list_datasets
    from sandbox.licences import get_licence

    view = get_licence(inst(), licence_id)
    if (p.role == Role.OPERATOR and view.operator != p.name) or (
            p.role == Role.OWNER and all(d.owner != p.name for d in list_datasets(inst()) if d.name == view.dataset)):
        raise NotFound(f"no licence {licence_id}", code="unknown_licence")
    return view


def owned_datasets(p: Principal) -> list[DatasetListing]:
    from sandbox.datasets import list_datasets

    return [d for d in list_datasets(inst()) if p.role == Role.ADMIN or d.owner == p.name]


def add_upload(policy: FileStorage | None, files: Iterable[FileStorage], *, version_of: str | None = None):
    """Save an uploaded policy and its data files side by side, register them,
    and remove the upload (whatever happens)."""
    from sandbox.datasets import add_dataset

    if policy is None or not policy.filename:
        raise InvalidInput("choose a policy file (TOML)", code="missing_policy")
    folder = inst().home / "uploads" / secrets.token_hex(8)
    folder.mkdir(parents=True, mode=0o700)
    try:
        policy_path = folder / "policy.toml"
        policy.save(policy_path)
        for f in files:
            if not f or not f.filename:
                continue
            name = secure_filename(f.filename)
            if not name or name == "policy.toml":
                raise InvalidInput(f"unusable file name '{f.filename}'", code="bad_file_name")
            f.save(folder / name)
        return add_dataset(inst(), actor(), policy_path, version_of=version_of)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def users_list() -> list[UserView]:
    from sandbox.users import list_users

    return list_users(inst())


def me(p: Principal) -> dict[str, Any]:
    from sandbox.users import find_user

    if p.name is None:
        raise Unauthorized("this needs a bearer token", code="not_signed_in")
    u = find_user(inst(), p.name)
    return {"name": u.name, "role": u.role, "display_name": u.display_name, "organisation": u.organisation}


def settings_overview() -> list[dict[str, Any]]:
    from sandbox.settings import SETTINGS

    values = inst().settings.values
    hidden = {"secret_key", "database_url", "notify_webhook_secret", "smtp_password"}
    return [{"name": s.name, "env": s.env, "help": s.help,
             "value": ("(set)" if values.get(s.name) else "") if s.name in hidden else values.get(s.name)}
            for s in SETTINGS]


def audit_report() -> dict[str, Any]:
    """The chain's report and, under ``state``, the store reconciled with the chain."""
    from sandbox.audit import verify_chain
    from sandbox.audit.reconcile import reconcile_state

    with inst().store.read() as s:
        report = verify_chain(s, inst().signer.public).to_dict()
    return {**report, "state": reconcile_state(inst()).to_dict()}


def signing_key() -> dict[str, Any]:
    from sandbox.audit import signing_key_document

    return signing_key_document(inst())


def _latest_policy_and_path(name: str):
    from sandbox.datasets import get_dataset, latest_version, version_policy
    from sandbox.execution.storage import VersionFile

    with inst().store.read() as s:
        ds = get_dataset(s, name)
        v = latest_version(s, ds)
        return ds.classification, version_policy(v), VersionFile.of(v)


def _table_name(policy, table: str | None) -> str:
    names = [t.name for t in policy.tables]
    if table is None:
        return names[0]
    if table not in names:
        raise InvalidInput(f"the dataset has no table '{table}'", code="table_not_found", table=table)
    return table


def open_table(name: str, table: str | None):
    """One table of an open dataset, in clear, as Arrow. Conditional and
    restricted datasets are never downloadable."""
    import tempfile

    import pyarrow.parquet as pq

    from sandbox.execution.storage import export_clear
    from web.audit_reads import record_dataset_download

    classification, policy, path = _latest_policy_and_path(name)
    if classification != Classification.OPEN:
        raise Forbidden(f"dataset '{name}' is {classification}: only open datasets are downloadable",
                        code="not_open_data")
    work = Path(tempfile.mkdtemp(prefix="dps-open-"))
    try:
        chosen = _table_name(policy, table)
        out = export_clear(path, inst().master_key, chosen, "parquet", work / "t.parquet")
        data = pq.read_table(out)
        record_dataset_download(name, chosen)     # a read: audited before the bytes leave
        return data
    finally:
        shutil.rmtree(work, ignore_errors=True)


def mock_table(name: str, table: str | None, rows: int = 1000):
    """Synthetic data with the dataset's schema, built from its policy alone (no
    data read): for writing queries before spending budget."""
    from sandbox.execution.mock import mock_tables

    _, policy, _ = _latest_policy_and_path(name)
    return mock_tables(policy, rows)[_table_name(policy, table)]
