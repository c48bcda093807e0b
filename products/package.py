"""Writing a product's tables: Parquet, CSV and JSON, each cell with its interval.

A table's Parquet and CSV files hold, for every output column ``c`` that has
intervals, two more columns ``c__ci_lower`` and ``c__ci_upper``. The JSON file
holds ``{"columns": [...], "alpha": ..., "rows": [[{"value": v, "interval":
[lo, hi] | null}, ...], ...]}``. Suppressed cells are empty (null) in all three.
"""

from __future__ import annotations

import json
import math
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("parquet", "csv", "json")
LOWER, UPPER = "__ci_lower", "__ci_upper"
LIBRARIES = ("dp-sandbox", "opendp", "duckdb", "sqlglot", "pyarrow", "cryptography", "sqlalchemy")


def _column(values: list[Any]) -> pa.Array:
    clean = [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]
    try:
        return pa.array(clean)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in clean], type=pa.string())


def arrow_table(columns: list[str], rows: list[list[Any]], intervals: list[list[Any]]) -> pa.Table:
    names: list[str] = []
    arrays: list[pa.Array] = []
    for c, name in enumerate(columns):
        names.append(name)
        arrays.append(_column([row[c] for row in rows]))
        ivs = [r[c] if c < len(r) else None for r in intervals] if intervals else []
        if any(iv for iv in ivs):
            names += [name + LOWER, name + UPPER]
            arrays.append(pa.array([float(iv[0]) if iv else None for iv in ivs], type=pa.float64()))
            arrays.append(pa.array([float(iv[1]) if iv else None for iv in ivs], type=pa.float64()))
    return pa.Table.from_arrays(arrays, names=names)


def _json_cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_table(folder: Path, name: str, columns: list[str], rows: list[list[Any]], intervals: list[list[Any]],
                alpha: float) -> list[str]:
    """Write ``name``.parquet/.csv/.json under ``folder``; returns the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    table = arrow_table(columns, rows, intervals)
    pq.write_table(table, folder / f"{name}.parquet")
    pacsv.write_csv(table, folder / f"{name}.csv")
    cells = []
    for r, row in enumerate(rows):
        ivs = intervals[r] if r < len(intervals) else [None] * len(row)
        cells.append([{"value": _json_cell(v), "interval": [float(iv[0]), float(iv[1])] if iv else None}
                      for v, iv in zip(row, ivs)])
    doc = {"columns": list(columns), "alpha": alpha, "confidence": 1 - alpha, "rows": cells}
    (folder / f"{name}.json").write_text(json.dumps(doc, ensure_ascii=False, allow_nan=False, default=str),
                                         encoding="utf-8")
    return [f"{name}.{ext}" for ext in FORMATS]


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "unknown"
    return out
