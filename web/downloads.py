"""Released tables as files: CSV, Parquet and JSON, each value with its interval."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from flask import Response

from queries.errors import InvalidInput

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json", "parquet": "application/vnd.apache.parquet",
           "zip": "application/zip"}


def result_table(result: dict[str, Any]) -> pa.Table:
    """Columns of a released result plus ``<col>__ci_lower``/``<col>__ci_upper``
    where a column has intervals: the layout of a product package's tables."""
    from products.package import arrow_table

    return arrow_table(list(result["columns"]), result["rows"], result.get("intervals") or [])


def table_bytes(table: pa.Table, fmt: str, extra: dict[str, Any] | None = None) -> bytes:
    if fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()
    if fmt == "csv":
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(table.column_names)
        for row in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            w.writerow(["" if v is None else v for v in row])
        return out.getvalue().encode("utf-8")
    if fmt == "json":
        body = {"columns": table.column_names, "rows": [list(r) for r in zip(*(table.column(c).to_pylist()
                                                                             for c in table.column_names))]}
        body.update(extra or {})
        return json.dumps(body, default=str, ensure_ascii=False).encode("utf-8")
    raise InvalidInput("format must be csv, parquet or json", code="bad_format")


def file_response(data: bytes, fmt: str, filename: str) -> Response:
    # content_type, not mimetype: Flask would add a second "; charset=utf-8" to text/csv
    resp = Response(data, content_type=FORMATS.get(fmt, "application/octet-stream"))
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


def result_file(result: dict[str, Any], fmt: str, stem: str) -> Response:
    extra = {"alpha": result.get("alpha"), "cost": result.get("cost") or
             {"epsilon": result.get("epsilon"), "delta": result.get("delta")}}
    return file_response(table_bytes(result_table(result), fmt, extra), fmt, f"{stem}.{fmt}")
