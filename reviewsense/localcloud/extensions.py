"""Local-cloud patches to moto's Lambda, EventBridge and Step Functions: what moto stores but does not run.

Three hooks, all pinned to moto 5.2.5 (``requirements-dev.txt``) and guarded by end-to-end tests:

* ``LambdaFunction.invoke``: functions known to the ``LocalLambdaRuntime`` run in-process
  (covers ``lambda.invoke`` from any client, Step Functions ``lambda:invoke`` tasks and S3 → Lambda).
* ``StateTaskServiceAwsSdk._eval_service_task``: ``aws-sdk:*`` task results carry timestamps as
  ISO-8601 strings, as on AWS (moto keeps boto3's ``datetime`` objects, which its own API then fails
  to serialise).
* ``Rule.send_to_targets``: EventBridge rules whose targets are Lambda functions or Step Functions
  state machines (moto raises ``NotImplementedError`` for both) invoke the function asynchronously
  or start an execution; every other target type keeps moto's own delivery.

These are not the only changes to moto: request validation (``strict.py``), the error names of failed
Step Functions tasks (``sfnerrors.py``) and SageMaker compute (``sagemaker/patches.py``) are patch sets of
their own; every set is applied and undone through ``patching.Patches``.

Handler code, adapters and state machine definitions stay exactly what runs on AWS.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from reviewsense.localcloud.patching import Patches
from reviewsense.localcloud.runtime import FunctionError, LocalLambdaRuntime

StartExecution = Callable[[str, str, dict[str, Any]], None]

_installed: dict[str, Any] = {}  # the runtime and the Step Functions starter the patches call
_lock = threading.Lock()
_patches = Patches()


def _iso_time(value: Any) -> str:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _event_for_target(target: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    if "Input" in target:
        loaded: dict[str, Any] = json.loads(target["Input"])
        return loaded
    delivered = copy.deepcopy(event)
    delivered["time"] = _iso_time(delivered.get("time"))
    if not delivered.get("id") or delivered["id"] == "17793124-05d4-b198-2fde-7ededc63b103":
        delivered["id"] = str(uuid.uuid4())  # moto reuses one constant id for every S3 event
    return delivered


def json_safe(value: Any) -> Any:
    """Timestamps as ISO-8601 strings (and bytes as text), recursively."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def install(runtime: LocalLambdaRuntime, start_execution: StartExecution) -> None:
    """Patch moto (idempotent); later calls replace the runtime and the Step Functions starter."""
    with _lock:
        _installed["runtime"] = runtime
        _installed["start_execution"] = start_execution
        _patches.install(_apply)


def _apply(patches: Patches) -> None:
    from moto.awslambda.models import LambdaFunction
    from moto.events.models import Rule
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    sdk_task = aws_sdk.StateTaskServiceAwsSdk
    original_invoke = LambdaFunction.invoke
    original_send = Rule.send_to_targets
    original_sdk = sdk_task._eval_service_task

    def eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original_sdk(self, env, *args, **kwargs)
        env.stack.append(json_safe(env.stack.pop()))

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        rt: LocalLambdaRuntime = _installed["runtime"]
        if not rt.knows(self.function_name):
            return original_invoke(self, body, request_headers, response_headers)
        event = json.loads(body) if body else {}
        if request_headers.get("x-amz-invocation-type", "RequestResponse") == "Event":
            rt.invoke_async(self.function_name, event)
            return ""
        try:
            result = rt.invoke(self.function_name, event)
        except FunctionError as err:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(err.payload, default=str).encode()
        return json.dumps(result, default=str).encode()

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if getattr(self, "scheduled_expression", None) and not self.event_pattern.get_pattern():
            return  # a schedule rule has no pattern: the local scheduler fires it, events never do
        if not self.event_pattern.matches_event(original_event):
            return
        rt: LocalLambdaRuntime = _installed["runtime"]
        start: StartExecution = _installed["start_execution"]
        others = []
        for target in self.targets:
            arn = str(target["Arn"])
            service = arn.split(":")[2]
            if service == "lambda" and rt.knows(arn):
                rt.invoke_async(arn, _event_for_target(target, original_event))
            elif service == "states":
                start(arn, str(target.get("RoleArn", "")), _event_for_target(target, original_event))
            else:
                others.append(target)
        if others:
            clone = copy.copy(self)
            clone.targets = others
            original_send(clone, original_event, transform_input)

    patches.replace(LambdaFunction, "invoke", invoke)
    patches.replace(sdk_task, "_eval_service_task", eval_service_task)
    patches.replace(Rule, "send_to_targets", send_to_targets)


def uninstall() -> None:
    """Restore moto's own behaviour (tests that install the extensions in-process call this)."""
    with _lock:
        _patches.uninstall()
        _installed.clear()
