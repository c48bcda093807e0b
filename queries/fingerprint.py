"""Fingerprints: the same meaning gives the same fingerprint.

The fingerprint hashes what the plan computes, never the operator's text: the
bounded SQL (generated with canonical names, so aliases, case, whitespace and
comments are gone) and the post-processing written over canonical key names
(``g0``...) and aggregate names (``a0``...).
"""

from __future__ import annotations

import hashlib
import json


def plan_fingerprint(dataset: str, bounded_sql: str, outputs: list[str], post: list[str],
                     limit: int | None) -> str:
    payload = json.dumps({"dataset": dataset, "sql": bounded_sql, "outputs": outputs, "post": post,
                          "limit": limit}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
