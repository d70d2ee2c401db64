"""Step Functions port: starting a pipeline execution under a deterministic name.

``ExecutionAlreadyExists`` (same name, different input, or a finished execution of that name)
becomes ``AlreadyExistsError``; Step Functions answers a repeated start with the *same* input while
the execution runs with its ARN instead, which the caller treats as started.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code, translate
from chalicelib.errors import AlreadyExistsError


class StepFunctionsGateway:
    def __init__(self, client: Any) -> None:
        self._sfn = client

    def start_execution(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
        """Start ``name``; returns the execution ARN. Raises ``AlreadyExistsError`` for a duplicate."""
        try:
            response = self._sfn.start_execution(
                stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
            )
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                raise AlreadyExistsError(f"execution {name} exists already") from exc
            raise translate(exc) from exc
        return str(response["executionArn"])
