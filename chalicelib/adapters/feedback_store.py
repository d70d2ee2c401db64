"""The feedback table (DynamoDB): one item per feedback id, and the burst counters.

Every guarantee of the fan-in that survives a redelivered message rests on a conditional write here:

- ``put_prediction`` creates the feedback item only if none exists (``attribute_not_exists(id)``), so
  a record is scored and stored once; a second writer learns it lost and reads the stored prediction.
- ``claim`` sets one attribute only if it is not set yet (the alert, the review message): whatever
  the number of deliveries, one of them wins.
- ``count_negatives`` adds a group of feedback ids to the counter of one product and window with an
  atomic ``ADD`` (count and id set) under the condition that none of them was counted before, and
  sets ``expires_at`` (the table's TTL attribute) so counters disappear after their window.

Items are keyed by ``id``: the 32-hex feedback id, ``burst#<product id>#<window start>`` for a
counter, or ``error#<SQS message id>`` for the last error of a message the fan-in will retry.
Numbers are written as DynamoDB numbers and read back as ``float`` / ``int``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code, translate

CONDITION_FAILED = "ConditionalCheckFailedException"
#: BatchGetItem reads at most this many keys per call.
BATCH_GET_LIMIT = 100


def _first_write(write: Callable[[], object]) -> bool:
    """Run a conditional ``write``: True when it was made, False when its condition failed (another
    write came first); any other error is raised as the project's error."""
    try:
        write()
    except ClientError as exc:
        if error_code(exc) == CONDITION_FAILED:
            return False
        raise translate(exc) from exc
    return True


def burst_key(product_id: str, window: str) -> str:
    return f"burst#{product_id}#{window}"


def to_attribute(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value (low-level client shape)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    """The inverse of ``to_attribute`` (string sets become sorted lists)."""
    ((kind, value),) = attribute.items()
    if kind == "NULL":
        return None
    if kind == "N":
        number = float(value)
        return (
            int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
        )
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind == "SS":
        return sorted(value)
    return value  # S, BOOL


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_attribute(v) for k, v in item.items()}


class FeedbackStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._ddb = client
        self.table = table_name

    def get(self, feedback_id: str) -> dict[str, Any] | None:
        try:
            item = self._ddb.get_item(
                TableName=self.table, Key={"id": {"S": feedback_id}}, ConsistentRead=True
            ).get("Item")
        except ClientError as exc:
            raise translate(exc) from exc
        return from_item(item) if item else None

    def get_many(self, feedback_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored items of these ids (strongly consistent); ids without an item are absent."""
        wanted = sorted(set(feedback_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"id": {"S": i}} for i in wanted[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            while request:
                try:
                    response = self._ddb.batch_get_item(RequestItems=request)
                except ClientError as exc:
                    raise translate(exc) from exc
                for item in response.get("Responses", {}).get(self.table, []):
                    decoded = from_item(item)
                    found[str(decoded["id"])] = decoded
                request = response.get("UnprocessedKeys") or {}
        return found

    def put_prediction(self, item: Mapping[str, Any]) -> bool:
        """Create the feedback item; False when an item with this id exists already."""
        return _first_write(
            lambda: self._ddb.put_item(
                TableName=self.table,
                Item={k: to_attribute(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(id)",
            )
        )

    def update(self, feedback_id: str, values: Mapping[str, Any]) -> None:
        """Set attributes of an existing feedback item."""
        names = {f"#a{i}": k for i, k in enumerate(values)}
        self._update(
            feedback_id,
            "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            names,
            {f":v{i}": to_attribute(v) for i, v in enumerate(values.values())},
            condition="attribute_exists(id)",
        )

    def claim(self, feedback_id: str, attribute: str, value: Any) -> bool:
        """Set ``attribute`` only if the item does not have it yet; True when this call set it."""
        return _first_write(
            lambda: self._update(
                feedback_id,
                "SET #a = :v",
                {"#a": attribute},
                {":v": to_attribute(value)},
                condition="attribute_exists(id) AND attribute_not_exists(#a)",
            )
        )

    def release(self, feedback_id: str, attribute: str) -> None:
        """Undo a ``claim`` whose work failed, so the next delivery can do it."""
        self._update(feedback_id, "REMOVE #a", {"#a": attribute}, None, condition="attribute_exists(id)")

    def count_negatives(
        self, product_id: str, window: str, feedback_ids: Sequence[str], expires_at: int
    ) -> tuple[int, int] | None:
        """Add these ids to the product's counter for ``window``: the count (before, after).

        None when one of them was counted before (a redelivery): nothing is added then.
        """
        if not feedback_ids:
            raise ValueError("nothing to count")
        values: dict[str, Any] = {
            ":n": {"N": str(len(feedback_ids))},
            ":ids": {"SS": list(feedback_ids)},
            ":exp": {"N": str(expires_at)},
        }
        absent = []
        for i, fid in enumerate(feedback_ids):
            values[f":f{i}"] = {"S": fid}
            absent.append(f"NOT contains(#members, :f{i})")
        try:
            response = self._ddb.update_item(
                TableName=self.table,
                Key={"id": {"S": burst_key(product_id, window)}},
                UpdateExpression="ADD #count :n, #members :ids SET #exp = :exp",
                ConditionExpression="attribute_not_exists(#members) OR (" + " AND ".join(absent) + ")",
                ExpressionAttributeNames={"#count": "count", "#members": "members", "#exp": "expires_at"},
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return None
            raise translate(exc) from exc
        after = int(response["Attributes"]["count"]["N"])
        return after - len(feedback_ids), after

    def negatives_counted(self, product_id: str, window: str) -> int:
        item = self.get(burst_key(product_id, window))
        return int(item["count"]) if item else 0

    def record_failure(self, message_id: str, values: Mapping[str, Any], expires_at: int) -> None:
        """Keep the last error of a queue message under ``error#<message id>`` until ``expires_at``."""
        item = {"id": f"error#{message_id}", **values, "expires_at": expires_at}
        try:
            self._ddb.put_item(TableName=self.table, Item={k: to_attribute(v) for k, v in item.items()})
        except ClientError as exc:
            raise translate(exc) from exc

    def _update(
        self,
        feedback_id: str,
        expression: str,
        names: dict[str, str],
        values: dict[str, Any] | None,
        condition: str,
    ) -> None:
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"id": {"S": feedback_id}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self._ddb.update_item(**request)
        except ClientError as exc:
            raise translate(exc) from exc  # a failed condition stays a ClientError: claim() reads it
