"""Functions run in child processes by the concurrency tests (importable by
multiprocessing's spawn start method)."""

from __future__ import annotations

import uuid


def reserve_and_charge(url: str, key_pem: bytes, dataset_id: int, licence_id: int, attempts: int,
                       epsilon: float, start) -> tuple[int, int]:
    from cryptography.hazmat.primitives import serialization

    from privacy.model import PrivacyLoss
    from queries.errors import BudgetExceeded
    from sandbox import audit, ledger
    from sandbox.audit import Actor
    from sandbox.keys import SigningKey
    from sandbox.store import Store

    signer = SigningKey(serialization.load_pem_private_key(key_pem, password=None))
    store = Store(url)
    ok = refused = 0
    start.wait()
    try:
        for _ in range(attempts):
            run_id = str(uuid.uuid4())
            loss = PrivacyLoss(epsilon, 0.0)
            try:
                with store.transaction() as s:
                    ledger.reserve(s, dataset_id, licence_id, run_id, loss)
                    audit.append(s, signer, Actor("op", "operator"), "query.reserve", "query_run", run_id,
                                 {"epsilon": epsilon})
            except BudgetExceeded:
                refused += 1
                continue
            with store.transaction() as s:
                ledger.charge(s, dataset_id, licence_id, run_id, loss, loss)
                audit.append(s, signer, Actor("op", "operator"), "query.run", "query_run", run_id,
                             {"epsilon": epsilon})
            ok += 1
    finally:
        store.dispose()
    return ok, refused
