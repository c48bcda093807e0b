"""The fixed words of datasets and queries, one ``StrEnum`` each.

A member is its word: ``Classification.OPEN == "open"``, ``str()`` and JSON give the
plain word, and stored rows, policies and manifests keep it as they always have.
docs/vocabulary.md lists every vocabulary of dp-sandbox with the meaning of each
word; ``tests/test_vocabulary.py`` checks that each word is documented there, has
an English and a Chinese label on the pages, and is accepted by the API where the
API takes it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

_E = TypeVar("_E", bound=StrEnum)


class Classification(StrEnum):
    """How a dataset is supplied to the public and to operators (``dataset.classification``)."""

    OPEN = "open"                   # raw download from the catalog
    CONDITIONAL = "conditional"     # differentially private queries under a licence
    RESTRICTED = "restricted"       # a catalog entry only


class ColumnClass(StrEnum):
    """What a column tells about a person (``columns.<name>.class`` in a policy)."""

    IDENTIFIER = "identifier"       # names a privacy unit: counted and joined on, never output
    QUASI = "quasi"                 # identifies in combination (age, postcode)
    SENSITIVE = "sensitive"         # the private facts themselves
    PUBLIC = "public"               # known to anyone; may carry a public domain


class Engine(StrEnum):
    """Where a dataset's bounded SQL runs (``engine`` in a policy; the instance's default otherwise)."""

    DUCKDB = "duckdb"               # the embedded, isolated DuckDB worker
    SPARK = "spark"                 # Apache Spark through PySpark (DPS_SPARK_MASTER)


class ColumnType(StrEnum):
    """The type of a column's values (``columns.<name>.type``; read from the data when absent)."""

    INTEGER = "integer"
    FLOAT = "float"
    STRING = "string"
    DATE = "date"
    TIMESTAMP = "timestamp"
    BOOLEAN = "boolean"


class AggregateKind(StrEnum):
    """The private aggregates the privacy layer knows how to release."""

    COUNT = "count"                 # rows (COUNT(*) / COUNT(col)): columns {"count"}
    COUNT_UNITS = "count_units"     # COUNT(DISTINCT <privacy unit>): columns {"count"}
    SUM = "sum"                     # columns {"sum"}; bounds of each (clamped) value
    AVG = "avg"                     # columns {"sum", "count"}
    VAR_POP = "var_pop"             # the variances and standard deviations:
    VAR_SAMP = "var_samp"           #   columns {"sum", "sumsq", "count"}
    STDDEV_POP = "stddev_pop"
    STDDEV_SAMP = "stddev_samp"
    QUANTILE = "quantile"           # columns {"lt", "gt"}: LIST of counts of values < / > each candidate


COUNT_KINDS = frozenset({AggregateKind.COUNT, AggregateKind.COUNT_UNITS})
VARIANCE_KINDS = frozenset({AggregateKind.VAR_POP, AggregateKind.VAR_SAMP,
                            AggregateKind.STDDEV_POP, AggregateKind.STDDEV_SAMP})


def member_of(vocabulary: type[_E], value: object) -> _E | None:
    """``value`` as a word of ``vocabulary``, or None when it is none of its words (any
    type: a policy's TOML may hold a number or a list where a word belongs)."""
    if not isinstance(value, str):
        return None
    try:
        return vocabulary(value)
    except (ValueError, TypeError):
        return None
