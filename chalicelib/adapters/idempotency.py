"""Run-once guard for event handlers, on Powertools Idempotency with DynamoDB persistence.

S3 and EventBridge deliver at least once; this keeps a redelivered event from redoing the work.
Correctness does not rest on it alone: ingestion outputs are keyed deterministically, so even an
expired idempotency record only rewrites the same files.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any


class DynamoDBRunOnce:
    def __init__(self, client: Any, table_name: str, expires_after_seconds: int = 7 * 24 * 3600) -> None:
        self._client = client
        self._table = table_name
        self._expires = expires_after_seconds

    def __call__(self, key: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        persistence = DynamoDBPersistenceLayer(table_name=self._table, boto3_client=self._client)
        config = IdempotencyConfig(expires_after_seconds=self._expires)

        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="key", persistence_store=persistence, config=config
        )
        def run(key: str) -> dict[str, Any]:
            return work()

        with warnings.catch_warnings():
            # Outside a Lambda context Powertools cannot compute the remaining time; that is expected.
            warnings.filterwarnings("ignore", message="Couldn't determine the remaining time")
            result: dict[str, Any] = run(key=key)
        return result
