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
    from sandbox.persistence.store import Store

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


def run_queries(home: str, url: str, attempts: int, epsilon: float, start) -> tuple[int, int]:
    """Full pipeline from a separate process: plan, reserve, worker, noise, charge."""
    from queries.errors import BudgetExceeded
    from sandbox.instance import Instance
    from sandbox.service import run_query
    from sandbox.settings import load_settings

    # the ledger is under test here, not the per-operator limit or the response-time grid
    inst = Instance.open(load_settings(env={}, home=home, database_url=url, workers=1, max_concurrent_runs=1000,
                                       min_response_ms=0))
    ok = refused = 0
    start.wait()
    try:
        for i in range(attempts):
            try:
                run_query(inst, "operator1", "health",
                          "SELECT sex, COUNT(*) AS n FROM people GROUP BY sex" if i % 2 else
                          "SELECT AVG(income) AS avg_income FROM people", epsilon=epsilon)
                ok += 1
            except BudgetExceeded:
                refused += 1
    finally:
        inst.close()
    return ok, refused


def run_one_each(home: str, url: str, start) -> tuple[str, str | None]:
    """One run by operator1 from a separate process, with the default per-operator
    limit: returns (outcome, run id)."""
    from queries.errors import SandboxError
    from sandbox.instance import Instance
    from sandbox.service import run_query
    from sandbox.settings import load_settings

    inst = Instance.open(load_settings(env={}, home=home, database_url=url, workers=1, min_response_ms=0))
    start.wait()
    try:
        result = run_query(inst, "operator1", "health", "SELECT sex, AVG(income) AS m FROM people GROUP BY sex",
                           epsilon=0.1)
        return "ok", result.run_id
    except SandboxError as exc:
        return exc.code, None
    finally:
        inst.close()
