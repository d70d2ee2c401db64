"""Glue Data Catalog port: databases, Parquet tables and their partitions.

Plain boto3 (no awswrangler) so the catalog calls stay cheap and idempotent: creating something
that already exists is not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


def _storage(location: str, columns: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {
        "Columns": [{"Name": n, "Type": t} for n, t in columns],
        "Location": location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
    }


class GlueCatalog:
    """Registers lake tables so Athena (and ``reviewsense query``) can find them."""

    def __init__(self, client: Any) -> None:
        self._glue = client
        self._known: set[tuple[str, ...]] = set()

    def ensure_database(self, database: str, description: str = "") -> None:
        if ("db", database) in self._known:
            return
        try:
            self._glue.create_database(DatabaseInput={"Name": database, "Description": description})
        except ClientError as exc:
            if error_code(exc) != "AlreadyExistsException":
                raise
        self._known.add(("db", database))

    def ensure_table(
        self,
        database: str,
        table: str,
        location: str,
        columns: Sequence[tuple[str, str]],
        partition_keys: Sequence[tuple[str, str]],
        description: str = "",
    ) -> None:
        """Create the table, or update its schema when the column list changed."""
        if ("table", database, table) in self._known:
            return
        self.ensure_database(database)
        table_input: dict[str, Any] = {
            "Name": table,
            "Description": description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
            "StorageDescriptor": _storage(location, columns),
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in partition_keys],
        }
        try:
            current = self._glue.get_table(DatabaseName=database, Name=table)["Table"]
        except ClientError as exc:
            if error_code(exc) != "EntityNotFoundException":
                raise
            current = None
        if current is None:
            try:
                self._glue.create_table(DatabaseName=database, TableInput=table_input)
            except ClientError as exc:
                if error_code(exc) != "AlreadyExistsException":
                    raise
        elif current["StorageDescriptor"].get("Columns") != table_input["StorageDescriptor"]["Columns"]:
            self._glue.update_table(DatabaseName=database, TableInput=table_input)
        self._known.add(("table", database, table))

    def ensure_partition(
        self,
        database: str,
        table: str,
        values: Sequence[str],
        location: str,
        columns: Sequence[tuple[str, str]],
    ) -> None:
        marker = ("part", database, table, *values)
        if marker in self._known:
            return
        try:
            self._glue.create_partition(
                DatabaseName=database,
                TableName=table,
                PartitionInput={"Values": list(values), "StorageDescriptor": _storage(location, columns)},
            )
        except ClientError as exc:
            if error_code(exc) != "AlreadyExistsException":
                raise
        self._known.add(marker)
