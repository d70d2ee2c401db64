"""SQL over the lake's catalogued tables.

On AWS the query runs in Athena (through awswrangler). On the local cloud, where moto runs no
queries, the same SQL runs in DuckDB over the same Parquet files, read from S3 with awswrangler and
exposed under the Glue database's name (``reviews`` and ``reviewsense.reviews`` both work).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from reviewsense.target import Target


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def referenced_tables(sql: str, tables: list[str]) -> list[str]:
    return [
        t for t in tables if re.search(rf"(?<![\w.]){re.escape(t)}(?!\w)|\.{re.escape(t)}(?!\w)", sql, re.I)
    ]


def _load_table(target: Target, table: str) -> Any:
    import awswrangler as wr
    import pandas as pd

    glue = target.client("glue")
    meta = glue.get_table(DatabaseName=target.settings.glue_database, Name=table)["Table"]
    columns = [c["Name"] for c in meta["StorageDescriptor"]["Columns"]]
    partitions = [p["Name"] for p in meta.get("PartitionKeys", [])]
    try:
        frame = wr.s3.read_parquet(
            meta["StorageDescriptor"]["Location"],
            dataset=True,
            path_suffix=".parquet",
            boto3_session=target.session,
        )
    except wr.exceptions.NoFilesFound:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns + partitions})
    for name in partitions:
        if name in frame.columns:
            frame[name] = frame[name].astype("string")
    return frame[[c for c in columns + partitions if c in frame.columns]]


def run_duckdb(target: Target, sql: str) -> QueryResult:
    import duckdb

    database = target.settings.glue_database
    tables = [t["Name"] for t in target.client("glue").get_tables(DatabaseName=database).get("TableList", [])]
    con = duckdb.connect()
    con.execute(f'CREATE SCHEMA "{database}"')
    for table in referenced_tables(sql, tables):
        frame = _load_table(target, table)
        con.register(f"__{table}", frame)
        con.execute(f'CREATE VIEW "{database}"."{table}" AS SELECT * FROM "__{table}"')
    con.execute(f"SET search_path = '{database},main'")
    cursor = con.execute(sql)
    columns = [d[0] for d in cursor.description or []]
    return QueryResult(columns, [tuple(r) for r in cursor.fetchall()])


def run_athena(target: Target, sql: str) -> QueryResult:
    import awswrangler as wr

    frame = wr.athena.read_sql_query(
        sql,
        database=target.settings.glue_database,
        workgroup=target.settings.athena_workgroup,
        ctas_approach=False,
        boto3_session=target.session,
    )
    return QueryResult(list(frame.columns), [tuple(r) for r in frame.itertuples(index=False, name=None)])


def run_query(target: Target, sql: str) -> QueryResult:
    if target.settings.query_engine == "athena":
        return run_athena(target, sql)
    return run_duckdb(target, sql)
