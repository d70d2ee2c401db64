"""Parquet writer port over awswrangler.

awswrangler (and pandas under it) come from the managed "AWS SDK for pandas" Lambda layer on AWS
and from requirements-dev.txt locally; they are imported on first use, never when ``app.py`` loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.domain.tables import TableSchema


class WranglerParquetWriter:
    def __init__(self, boto3_session: Any) -> None:
        self._session = boto3_session

    def write(self, uri: str, schema: TableSchema, rows: Sequence[dict[str, Any]]) -> None:
        """Write ``rows`` as one Parquet object at ``uri`` with exactly the table's columns and types."""
        import awswrangler as wr
        import pandas as pd

        frame = pd.DataFrame.from_records(list(rows), columns=schema.column_names)
        wr.s3.to_parquet(
            df=frame,
            path=uri,
            index=False,
            dtype=schema.dtypes,
            compression="snappy",
            boto3_session=self._session,
        )
