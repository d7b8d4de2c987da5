"""The layers' DuckDB SQL compiled to Spark SQL: one definition of DWD and ADS, two engines.

SQLGlot transpiles the DuckDB text (types, casts, ``strftime`` patterns, window clauses, NULL
ordering); this dialect adds the three functions it leaves as they are, each with DuckDB's
exact semantics, NULLs included:

- ``isfinite(x)``: NULL for NULL, else neither NaN nor infinite (Spark's ``isnan(NULL)`` is
  false, so the NULL case is spelled out);
- ``regexp_full_match(s, p)``: ``s RLIKE '^(?:p)\\z'`` (Java's ``$`` would also match before a
  final line break; ``\\z`` is the true end of input);
- ``try_strptime(s, f)``: ``try_to_timestamp`` with ``f`` translated by SQLGlot's own format
  mapping; the layers then check the round trip through ``strftime``, so a lenient parse on
  either engine cannot let a malformed time through.

A DuckDB function this dialect does not know is refused when compiling (not at Spark's run
time), so a change to the layer SQL that Spark could not follow fails the parity tests loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark

# DuckDB functions the layers use that SQLGlot leaves untranslated (written out below).
_HANDLED = {"isfinite", "try_strptime"}


class LayerSpark(Spark):
    """Spark SQL with DuckDB's ``isfinite``, ``regexp_full_match`` and ``try_strptime``."""

    class Generator(Spark.Generator):
        TRANSFORMS: ClassVar[dict[type[exp.Expression], Callable[..., str]]] = {
            **Spark.Generator.TRANSFORMS,
            exp.RegexpFullMatch: lambda self, e: self._full_match(e),
        }

        def _full_match(self, e: exp.RegexpFullMatch) -> str:
            pattern = e.expression
            if not (isinstance(pattern, exp.Literal) and pattern.is_string):
                self.unsupported("regexp_full_match needs a literal pattern")
                return self.function_fallback_sql(e)
            anchored = exp.Literal.string(f"^(?:{pattern.this})\\z")
            return f"({self.sql(e.this)} RLIKE {self.sql(anchored)})"

        def anonymous_sql(self, e: exp.Anonymous) -> str:
            name = e.name.lower()
            if name == "isfinite":
                (value,) = e.expressions
                x = self.sql(value)
                return (
                    f"(CASE WHEN {x} IS NULL THEN NULL "
                    f"ELSE NOT isnan({x}) AND abs({x}) <> double('infinity') END)"
                )
            if name == "try_strptime":
                text, fmt = e.expressions
                parsed = self.sql(exp.StrToTime(this=text, format=fmt))
                if not parsed.upper().startswith("TO_TIMESTAMP("):
                    self.unsupported(f"try_strptime compiled to {parsed}")
                return "TRY_" + parsed
            return super().anonymous_sql(e)


class UntranslatableSql(ValueError):
    """Layer SQL using a DuckDB feature with no exact Spark translation here."""


def to_spark(duckdb_sql: str) -> str:
    """The Spark SQL of one DuckDB statement, or :class:`UntranslatableSql` naming what is not."""
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    unknown = sorted(
        {f.name.lower() for f in tree.find_all(exp.Anonymous) if f.name.lower() not in _HANDLED}
    )
    if unknown:
        raise UntranslatableSql(f"no Spark translation for DuckDB function(s) {unknown}")
    try:
        return LayerSpark().generate(tree, unsupported_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.UnsupportedError as error:
        raise UntranslatableSql(str(error)) from error
