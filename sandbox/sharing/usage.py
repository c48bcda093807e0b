"""Usage figures of sharing: pulls, queries, rows delivered and grants, per
dataset, provider, recipient department and month.

Pulls, queries and rows are sums over the delivery records, each written in the
same transaction as its audit record (``share.pull`` / ``share.query``), so the
figures and the audit log agree; grants count requests granted in the month.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from sandbox.instance import Instance
from sandbox.persistence.models import Dataset, Organisation, ShareDelivery, ShareRequest
from sandbox.sharing.grants import as_utc, provider_name
from sandbox.users import get_user
from sandbox.vocabulary import Role


@dataclass(frozen=True)
class SharingUsage:
    month: str            # YYYY-MM
    dataset: str
    provider: str
    recipient: str        # the recipient department
    pulls: int
    queries: int
    rows: int
    grants: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sharing_usage(inst: Instance, *, year: int | None = None, user: str | None = None) -> list[SharingUsage]:
    """All figures (the register's view); with ``user``, an owner sees only their
    datasets' figures and an admin or reviewer all of them."""
    with inst.store.read() as s:
        owner_id = None
        if user is not None:
            who = get_user(s, user)
            if who.role not in (Role.ADMIN, Role.REVIEWER):
                owner_id = who.id
        datasets = {d.id: d for d in s.execute(select(Dataset)).scalars()}
        orgs = {o.id: o.name for o in s.execute(select(Organisation)).scalars()}
        providers = {i: provider_name(s, d) for i, d in datasets.items()}
        counts: dict[tuple[str, int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for d in s.execute(select(ShareDelivery)).scalars():
            key = (as_utc(d.created_at).strftime("%Y-%m"), d.dataset_id, d.recipient_org_id)
            c = counts[key]
            c[0 if d.kind == "pull" else 1] += 1
            c[2] += int(d.rows)
        # a grant is a request that was decided and not refused (revoked grants were grants)
        for r in s.execute(select(ShareRequest).where(ShareRequest.decided_at.is_not(None),
                                                      ShareRequest.status.in_(("granted", "revoked")))).scalars():
            assert r.decided_at is not None   # the query selects decided requests only
            counts[(as_utc(r.decided_at).strftime("%Y-%m"), r.dataset_id, r.org_id)][3] += 1
        out = []
        for (month, ds_id, org_id), (pulls, queries, rows, grants) in sorted(counts.items()):
            if year is not None and not month.startswith(f"{year:04d}-"):
                continue
            if owner_id is not None and datasets[ds_id].owner_id != owner_id:
                continue
            out.append(SharingUsage(month, datasets[ds_id].name, providers[ds_id], orgs.get(org_id, ""),
                                    pulls, queries, rows, grants))
        return sorted(out, key=lambda u: (u.month, u.dataset, u.recipient))


def usage_totals(rows: list[SharingUsage]) -> dict[str, int]:
    return {"pulls": sum(r.pulls for r in rows), "queries": sum(r.queries for r in rows),
            "rows": sum(r.rows for r in rows), "grants": sum(r.grants for r in rows)}


def may_see_usage(inst: Instance, user: str) -> bool:
    with inst.store.read() as s:
        return get_user(s, user).role in (Role.OWNER, Role.ADMIN, Role.REVIEWER)

