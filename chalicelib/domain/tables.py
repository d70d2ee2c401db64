"""Schemas of the lake's catalogued tables (Athena/Glue types): the one definition of the review schema.

Writers, the catalog, the canonical ``Review`` record and the training jobs' frames (``training.data``,
shipped with this package) all take the table names and columns from here. ``channel`` and
``ingest_date`` are partition columns: they live in the object path, not in the files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSchema:
    name: str
    #: Folder under the zone's prefix that holds the table's partitions.
    folder: str
    columns: tuple[tuple[str, str], ...]
    partition_keys: tuple[tuple[str, str], ...] = (("channel", "string"), ("ingest_date", "string"))
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def dtypes(self) -> dict[str, str]:
        return dict(self.columns)


REVIEWS = TableSchema(
    name="reviews",
    folder="reviews",
    description="Curated customer feedback in the canonical review schema.",
    columns=(
        ("review_id", "string"),
        ("product_id", "string"),
        ("division", "string"),
        ("department", "string"),
        ("product_class", "string"),
        ("age", "int"),
        ("title", "string"),
        ("text", "string"),
        ("rating", "int"),
        ("recommended", "boolean"),
        ("sentiment", "int"),
        ("source_key", "string"),
        ("record_number", "int"),
        ("ingested_at", "timestamp"),
    ),
)

QUARANTINE = TableSchema(
    name="quarantine",
    folder="records",
    description="Records kept out of the curated zone, one row each, with a machine-readable reason.",
    columns=(
        ("source_key", "string"),
        ("record_number", "int"),
        ("reason", "string"),
        ("detail", "string"),
        ("raw_record", "string"),
        ("quarantined_at", "timestamp"),
    ),
)

PREDICTIONS = TableSchema(
    name="predictions",
    folder="predictions",
    description="Feedback scored on the real-time endpoint by the fan-in: one row per feedback id, "
    "PII masked; partitioned by channel and the date it was scored.",
    columns=(
        ("feedback_id", "string"),
        ("batch_id", "string"),
        ("received_at", "timestamp"),
        ("scored_at", "timestamp"),
        ("customer_ref", "string"),
        ("product_id", "string"),
        ("title", "string"),
        ("text", "string"),
        ("rating", "int"),
        ("label", "string"),
        ("score", "double"),
        ("p_negative", "double"),
        ("p_neutral", "double"),
        ("p_positive", "double"),
        ("variant", "string"),
        ("source", "string"),
    ),
)

#: Columns the lake adds to what a channel sent: the sentiment label and the lineage of each row.
REVIEW_DERIVED_COLUMNS: tuple[str, ...] = ("sentiment", "source_key", "record_number", "ingested_at")

#: Field order of one review record (``chalicelib.domain.reviews.Review``): the id, its channel (a
#: partition column in the table), then the table's columns.
REVIEW_RECORD_COLUMNS: tuple[str, ...] = (
    REVIEWS.column_names[0],
    "channel",
    *REVIEWS.column_names[1:],
)

#: The fields of a review as a channel sends it (no label, no lineage): what training reads as features.
REVIEW_INPUT_COLUMNS: tuple[str, ...] = tuple(
    c for c in REVIEW_RECORD_COLUMNS if c not in REVIEW_DERIVED_COLUMNS
)
