"""Builds the merge template that turns Chalice's functions into one deployable stack.

``chalice package`` emits only the Lambda functions and one role per function. Everything else the app
needs (the lake bucket, both tables, the dead-letter queue, the alerts topic, the Glue database, the
state machine and its role, the SageMaker execution role) comes from the template built here, which
``chalice package --merge-template`` deep-merges into Chalice's SAM template (dictionaries merge, lists
are replaced whole). The same merge also

- replaces each function role's policy with that function's own least-privilege policy, scoped to this
  stack's resources (``POLICIES`` in ``infra.template_iam``: a handler without an entry is an error);
- gives every function its log group, its explicit name and the stack's resource names and ARNs as
  environment variables (so ``.chalice/config.json`` holds no ARN, region or account);
- wires every asynchronously invoked function (EventBridge patterns, schedules) to the dead-letter queue:
  Lambda's on-failure destination after its retries, and the rule target's own dead-letter config for
  events EventBridge could not deliver.

Region and account come from the stack (``AWS::Region``, ``AWS::AccountId``, ``AWS::Partition``,
``AWS::URLSuffix``); the few per-region AWS-owned account ids live in one Mapping (``infra.regions``).
The state machine definition is read from ``statemachines/*.asl.json`` and every ``${Placeholder}`` gets
a ``DefinitionSubstitutions`` entry; its role allows exactly the ``aws-sdk:sagemaker:*`` actions the
definition uses.

The template is built by one module per resource family, assembled here:

- ``infra.template_base``: names, intrinsic-function helpers, IAM statements and ``Stage``;
- ``infra.template_shared``: the bucket, tables, queue, topic, Glue database and SageMaker role;
- ``infra.template_iam``: each function's policy (``POLICIES``) and the SageMaker role's;
- ``infra.template_functions``: what each function gets (name, environment, log group, dead letters);
- ``infra.template_pipeline``: the state machine and its role;
- ``infra.template_feedback``: the feedback queues, the feedback table and the fan-in's policies.

Usage: ``python -m infra.template --stage dev --output build/package/dev/merge-template.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib.images import DLC_ACCOUNTS
from infra.regions import REGIONS
from infra.template_base import (
    API_HANDLER,
    APP_NAME,
    JOB_PREFIX,
    ROOT,
    Json,
    Stage,
    arn_of,
    logical_id,
    ref,
    role_id,
)
from infra.template_feedback import feedback_outputs, feedback_resources
from infra.template_functions import ASYNC_RETRIES, function_resources
from infra.template_iam import POLICIES, function_policy
from infra.template_pipeline import state_machine_resources
from infra.template_shared import shared_resources

#: The names other modules and the tests use through ``infra.template``.
__all__ = [
    "APP_NAME",
    "ASYNC_RETRIES",
    "JOB_PREFIX",
    "POLICIES",
    "ROOT",
    "Stage",
    "build",
    "function_policy",
    "load_stage",
    "logical_id",
    "main",
]


def outputs(stage: Stage) -> Json:
    out: Json = {
        "LakeBucketName": {"Description": "Upload reviews under raw/<channel>/", "Value": ref("LakeBucket")},
        "AlertsTopicArn": {"Description": "Subscribe to get alerts", "Value": ref("AlertsTopic")},
        "TrainingPipelineArn": {
            "Description": "The training state machine",
            "Value": ref("TrainingPipeline"),
        },
        "EndpointName": {
            "Description": "SageMaker endpoint the pipeline deploys to",
            "Value": stage.endpoint_name,
        },
        "SageMakerExecutionRoleArn": {"Value": arn_of("SageMakerExecutionRole")},
        "TrainingPipelineRoleArn": {"Value": arn_of("TrainingPipelineRole")},
        "DeadLetterQueueUrl": {"Description": "Failed asynchronous events", "Value": ref("DeadLetterQueue")},
        "DeadLetterQueueArn": {"Value": arn_of("DeadLetterQueue")},
        "IdempotencyTableName": {"Value": ref("IdempotencyTable")},
        "PipelineTableName": {"Value": ref("PipelineTable")},
        "GlueDatabaseName": {"Value": ref("GlueDatabase")},
        "ModelPackageGroupName": {"Value": stage.model_package_group},
    }
    for handler in stage.handlers:
        out[f"{logical_id(handler)}RoleArn"] = {"Value": arn_of(role_id(handler))}
    return {**out, **feedback_outputs()}


def mappings() -> Json:
    return {
        "Regional": {
            region: {
                "DlcAccount": DLC_ACCOUNTS[region],
                "LayerAccount": r.layer_account,
                "LayerVersion": str(r.layer_version),
            }
            for region, r in sorted(REGIONS.items())
        }
    }


def load_stage(stage_name: str, root: Path = ROOT) -> Stage:
    """The stage's environment from ``.chalice/config.json`` and the handlers of ``app.py``."""
    config = json.loads((root / ".chalice" / "config.json").read_text())
    if stage_name not in config.get("stages", {}):
        raise KeyError(f"stage {stage_name!r} is not in .chalice/config.json")
    env = {
        **config.get("environment_variables", {}),
        **config["stages"][stage_name].get("environment_variables", {}),
    }
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import app as chalice_app

    routes = {entry.view_name for methods in chalice_app.app.routes.values() for entry in methods.values()}
    handlers = tuple(h for h in chalice_app.app.handler_map if h not in routes)
    handlers += (API_HANDLER,) if routes else ()
    response_types: dict[str, list[str]] = getattr(chalice_app, "SQS_FUNCTION_RESPONSE_TYPES", {})
    sqs: dict[str, list[str]] = {}
    asynchronous: dict[str, str] = {}
    for source in chalice_app.app.event_sources:
        kind = type(source).__name__
        if kind == "CloudWatchEventConfig":
            pattern: dict[str, Any] = getattr(source, "event_pattern", {})
            from_s3 = "aws.s3" in pattern.get("source", [])
            asynchronous[source.name] = "s3" if from_s3 else "pattern"
        elif kind == "ScheduledEventConfig":
            asynchronous[source.name] = "schedule"
        elif kind == "SQSEventConfig":
            # Not asynchronous: failures stay in the queue and its redrive policy moves them to its DLQ.
            sqs[source.name] = list(response_types.get(source.name, []))
        else:
            raise ValueError(f"{source.name}: event source {kind} is not wired to the dead-letter queue")
    return Stage(stage_name, {k: str(v) for k, v in env.items()}, handlers, asynchronous, sqs)


def build(stage_name: str, root: Path = ROOT) -> Json:
    stage = load_stage(stage_name, root)
    definitions = sorted((root / "statemachines").glob("*.asl.json"))
    if [p.name for p in definitions] != ["training_pipeline.asl.json"]:
        raise ValueError(f"expected one state machine definition, found {[p.name for p in definitions]}")
    definition = json.loads(definitions[0].read_text())
    return {
        "Description": f"ReviewSense ({stage.name}): every resource of the app "
        f"(make package STAGE={stage.name})",
        "Mappings": mappings(),
        "Resources": {
            **shared_resources(stage),
            **feedback_resources(stage),
            **function_resources(stage),
            **state_machine_resources(stage, definition, stage.handlers),
        },
        "Outputs": outputs(stage),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(build(args.stage), indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
