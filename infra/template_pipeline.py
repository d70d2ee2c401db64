"""The state machine and its role, from ``statemachines/*.asl.json``.

Every ``${Placeholder}`` of the definition gets a ``DefinitionSubstitutions`` entry (a placeholder with no
known value is an error), and the role allows exactly what the definition uses: the ``aws-sdk:sagemaker:*``
task actions on this stack's resources, invoking the pipeline functions, publishing alerts, passing the
SageMaker execution role, and the vended-log delivery of its execution logs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from infra.template_base import (
    JOB_PREFIX,
    Json,
    Stage,
    arn_of,
    assume_role,
    document,
    logical_id,
    ref,
    statement,
    sub,
)
from infra.template_iam import pass_sagemaker_role

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")

#: ``aws-sdk:sagemaker:<operation>`` -> the resource (name pattern) that operation acts on.
SAGEMAKER_TASK_RESOURCES = {
    "ProcessingJob": ("processing-job", f"{JOB_PREFIX}*"),
    "TrainingJob": ("training-job", f"{JOB_PREFIX}*"),
    "EndpointConfig": ("endpoint-config", f"{JOB_PREFIX}*"),
    "Endpoint": ("endpoint", None),
    "Model": ("model", f"{JOB_PREFIX}*"),
}


def sagemaker_task_actions(definition: Any) -> dict[str, tuple[str, str]]:
    """IAM action -> (resource type, name pattern) for every ``aws-sdk:sagemaker:*`` task."""
    found: dict[str, tuple[str, str]] = {}
    stack = [definition]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            resource = node.get("Resource")
            if node.get("Type") == "Task" and isinstance(resource, str) and ":aws-sdk:sagemaker:" in resource:
                operation = resource.rsplit(":", 1)[1]
                action = operation[:1].upper() + operation[1:]
                for suffix, kind in sorted(SAGEMAKER_TASK_RESOURCES.items(), key=lambda kv: -len(kv[0])):
                    if action.endswith(suffix):
                        found[f"sagemaker:{action}"] = kind  # type: ignore[assignment]
                        break
                else:
                    raise ValueError(f"no IAM resource known for the state machine task {resource}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def state_machine_resources(stage: Stage, definition: Json, handlers: tuple[str, ...]) -> Json:
    placeholders = sorted(set(PLACEHOLDER.findall(json.dumps(definition))))
    substitutions: Json = {}
    lambda_targets: list[Json] = []
    by_placeholder = {f"{logical_id(h)}FunctionArn": h for h in handlers}
    for name in placeholders:
        if name in by_placeholder:
            substitutions[name] = arn_of(logical_id(by_placeholder[name]))
            lambda_targets += [
                arn_of(logical_id(by_placeholder[name])),
                sub(f"${{{logical_id(by_placeholder[name])}.Arn}}:*"),
            ]
        elif name == "SageMakerRoleArn":
            substitutions[name] = arn_of("SageMakerExecutionRole")
        elif name == "AlertsTopicArn":
            substitutions[name] = ref("AlertsTopic")
        elif name == "LakeBucket":
            substitutions[name] = ref("LakeBucket")
        elif name == "EndpointName":
            substitutions[name] = stage.endpoint_name
        else:
            raise KeyError(f"no template value for the state machine placeholder ${{{name}}}")
    by_kind: dict[tuple[str, str], list[str]] = {}
    for action, (kind, pattern) in sagemaker_task_actions(definition).items():
        by_kind.setdefault((kind, pattern or stage.endpoint_name), []).append(action)
    statements = [
        statement(
            f"SageMaker{''.join(part.capitalize() for part in kind.split('-'))}",
            sorted(actions),
            stage.sagemaker_arn(kind, pattern),
        )
        for (kind, pattern), actions in sorted(by_kind.items())
    ]
    if lambda_targets:
        statements.append(statement("InvokePipelineSteps", ["lambda:InvokeFunction"], lambda_targets))
    if "arn:aws:states:::sns:publish" in json.dumps(definition):
        statements.append(statement("Notify", ["sns:Publish"], ref("AlertsTopic")))
    if "SageMakerRoleArn" in placeholders:
        statements.append(pass_sagemaker_role())
    statements.append(
        statement(
            "ExecutionLogs",
            [
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
            ],
            "*",  # CloudWatch Logs vended-log delivery actions support no resource-level permissions
        )
    )
    return {
        "TrainingPipelineRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": f"Assumed by the {stage.state_machine_name} state machine",
                "AssumeRolePolicyDocument": assume_role("states.amazonaws.com"),
                "Policies": [{"PolicyName": "pipeline-steps", "PolicyDocument": document(statements)}],
            },
        },
        "TrainingPipeline": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": stage.state_machine_name,
                "StateMachineType": "STANDARD",
                "RoleArn": arn_of("TrainingPipelineRole"),
                "Definition": definition,
                "DefinitionSubstitutions": substitutions,
                "LoggingConfiguration": {
                    "Level": "ERROR",
                    "IncludeExecutionData": False,
                    "Destinations": [
                        {"CloudWatchLogsLogGroup": {"LogGroupArn": arn_of("TrainingPipelineLogGroup")}}
                    ],
                },
            },
        },
    }
