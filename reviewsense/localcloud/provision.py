"""Creates this app's resources in an AWS API (the local cloud's moto server), idempotently.

What Chalice and the CloudFormation merge template create on AWS, created here with plain boto3:
the lake bucket (S3 → EventBridge notifications on), the idempotency, pipeline and feedback tables,
the fan-in's human-review queue, the Glue database, the alerts topic, one dead-letter queue per
asynchronously invoked function, one Lambda function per Chalice handler, one EventBridge rule per
``@app.on_cw_event``/``@app.schedule``, one queue (with a ``<queue>-dlq`` redrive target) and one
event source mapping per ``@app.on_sqs_message``, the REST API's handler function when the app has
routes, and one state machine per ``statemachines/*.asl.json`` with
its ``${...}`` placeholders substituted.

SQS mappings are made as the template makes them: the queue's visibility timeout is six times the
function timeout (AWS's advice for Lambda event sources), ``maxReceiveCount`` is
``Settings.queue_max_receive_count``, and a handler listed in the app module's
``SQS_FUNCTION_RESPONSE_TYPES`` (handler name -> ``["ReportBatchItemFailures"]``; Chalice's decorator
has no such argument, so the template reads the same dictionary) gets those response types.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code
from chalicelib.config import APP_NAME, Settings

ACCOUNT_ID = "123456789012"
FUNCTION_TIMEOUT_S = 300  # every function's Timeout (``lambda_timeout`` in .chalice/config.json)
#: AWS: "set the source queue's visibility timeout to at least six times the function timeout".
VISIBILITY_TIMEOUT_FACTOR = 6
DLQ_RETENTION_S = 1_209_600
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


@dataclass
class Provisioned:
    functions: dict[str, str] = field(default_factory=dict)  # handler name -> function ARN
    dead_letter_queues: dict[str, str] = field(default_factory=dict)  # function name -> queue URL
    rules: list[str] = field(default_factory=list)
    state_machines: dict[str, str] = field(default_factory=dict)  # file stem -> ARN
    topics: dict[str, str] = field(default_factory=dict)
    schedules: dict[str, str] = field(default_factory=dict)  # function name -> expression
    queues: dict[str, str] = field(default_factory=dict)  # SQS event source queue name -> URL
    event_source_mappings: dict[str, str] = field(default_factory=dict)  # handler name -> mapping UUID
    api_function: str | None = None  # ARN of the REST API's handler function, when the app has routes


def substitute(definition: str, values: dict[str, str]) -> str:
    """Replace every ``${Name}``; an unknown placeholder is an error, not a silent empty string."""
    missing = sorted({m for m in _PLACEHOLDER.findall(definition) if m not in values})
    if missing:
        raise KeyError(f"no value for placeholders: {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], definition)


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("README.txt", "Runs in-process on the ReviewSense local cloud.\n")
    return buffer.getvalue()


class Provisioner:
    def __init__(
        self,
        session: Any,
        settings: Settings,
        endpoint_url: str,
        *,
        queue_visibility_timeout_s: int | None = None,
    ) -> None:
        """``queue_visibility_timeout_s`` overrides the SQS event sources' visibility timeout (tests)."""
        self._session = session
        self._s = settings
        self._endpoint = endpoint_url
        self._visibility_s = queue_visibility_timeout_s or VISIBILITY_TIMEOUT_FACTOR * FUNCTION_TIMEOUT_S

    def _client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self._endpoint, region_name=self._s.region)

    def function_name(self, handler_name: str) -> str:
        return f"{APP_NAME}-{self._s.stage}-{handler_name}"

    def api_function_name(self) -> str:
        """Chalice names the REST API's Lambda ``<app>-<stage>``."""
        return f"{APP_NAME}-{self._s.stage}"

    def provision(
        self,
        app: Any,
        statemachines_dir: Path | None,
        function_response_types: dict[str, list[str]] | None = None,
    ) -> Provisioned:
        out = Provisioned()
        self._bucket()
        self._tables()
        self._queue(self._s.review_queue)  # the fan-in's human-review queue (the template's ReviewQueue)
        self._catalog()
        out.topics["alerts"] = self._client("sns").create_topic(Name=f"{APP_NAME}-{self._s.stage}-alerts")[
            "TopicArn"
        ]
        role_arn = self._role()
        for name in app.handler_map:
            fn = self.function_name(name)
            out.dead_letter_queues[fn] = self._queue(f"{fn}-dlq")
            out.functions[name] = self._function(fn, role_arn, out.dead_letter_queues[fn])
        for source in app.event_sources:
            kind = type(source).__name__
            if kind == "CloudWatchEventConfig":
                out.rules.append(
                    self._rule(source.name, out.functions[source.name], pattern=source.event_pattern)
                )
            elif kind == "ScheduledEventConfig":
                expression = source.schedule_expression
                expression = expression if isinstance(expression, str) else expression.to_string()
                out.rules.append(self._rule(source.name, out.functions[source.name], schedule=expression))
                out.schedules[self.function_name(source.name)] = expression
            elif kind == "SQSEventConfig":
                queue = source.queue or str(source.queue_arn).rsplit(":", maxsplit=1)[-1]
                out.queues[queue], queue_arn = self._event_source_queue(queue)
                out.event_source_mappings[source.name] = self._event_source_mapping(
                    self.function_name(source.name),
                    queue_arn,
                    batch_size=source.batch_size,
                    window_s=source.maximum_batching_window_in_seconds,
                    response_types=(function_response_types or {}).get(source.name, []),
                    max_concurrency=source.maximum_concurrency,
                )
        if getattr(app, "routes", None):
            out.api_function = self._function(self.api_function_name(), role_arn, None)
        if statemachines_dir is not None and statemachines_dir.is_dir():
            values = self.placeholder_values(out, role_arn)
            for path in sorted(statemachines_dir.glob("*.asl.json")):
                stem = path.name.removesuffix(".asl.json")
                out.state_machines[stem] = self._state_machine(stem, substitute(path.read_text(), values))
        return out

    def placeholder_values(self, out: Provisioned, role_arn: str) -> dict[str, str]:
        values = {
            "Stage": self._s.stage,
            "Region": self._s.region,
            "AccountId": ACCOUNT_ID,
            "LakeBucket": self._s.lake_bucket,
            "GlueDatabase": self._s.glue_database,
            "AlertsTopicArn": out.topics["alerts"],
            "ExecutionRoleArn": role_arn,
            "SageMakerRoleArn": self._s.sagemaker_role_arn,
        }
        for name, arn in out.functions.items():
            camel = "".join(part.capitalize() for part in re.split(r"[_-]", name))
            values[f"{camel}FunctionArn"] = arn
        return values

    # -- individual resources ----------------------------------------------------------------------

    def _bucket(self) -> None:
        s3 = self._client("s3")
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if self._s.lake_bucket not in existing:  # in us-east-1 a repeated CreateBucket would empty it
            s3.create_bucket(Bucket=self._s.lake_bucket)
        s3.put_bucket_notification_configuration(
            Bucket=self._s.lake_bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )

    def _tables(self) -> None:
        ddb = self._client("dynamodb")
        for table in (self._s.idempotency_table, self._s.pipeline_table, self._s.feedback_table):
            try:
                ddb.create_table(
                    TableName=table,
                    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as exc:
                if error_code(exc) != "ResourceInUseException":
                    raise

    def publish_code(self, project_root: Path) -> dict[str, Any]:
        """Upload the training code where the pipeline's SageMaker jobs read it."""
        from reviewsense.codepublish import publish_code

        return publish_code(self._client("s3"), self._s.lake_bucket, self._s.code_prefix, project_root)

    def _catalog(self) -> None:
        try:
            self._client("glue").create_database(
                DatabaseInput={"Name": self._s.glue_database, "Description": "ReviewSense data lake"}
            )
        except ClientError as exc:
            if error_code(exc) != "AlreadyExistsException":
                raise

    def _queue(self, name: str) -> str:
        return str(
            self._client("sqs").create_queue(
                QueueName=name, Attributes={"MessageRetentionPeriod": "1209600"}
            )["QueueUrl"]
        )

    def _role(self) -> str:
        iam = self._client("iam")
        name = f"{APP_NAME}-{self._s.stage}-execution"
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {
                        "Service": ["lambda.amazonaws.com", "states.amazonaws.com", "sagemaker.amazonaws.com"]
                    },
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        try:
            return str(iam.get_role(RoleName=name)["Role"]["Arn"])
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])

    def _queue_arn(self, url: str) -> str:
        attributes = self._client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def _event_source_queue(self, name: str) -> tuple[str, str]:
        """The queue an ``on_sqs_message`` handler reads, with its redrive policy: (URL, ARN)."""
        sqs = self._client("sqs")
        fifo = name.endswith(".fifo")
        fifo_attributes = {"FifoQueue": "true"} if fifo else {}
        dlq_name = f"{name.removesuffix('.fifo')}-dlq" + (".fifo" if fifo else "")
        dlq_url = sqs.create_queue(QueueName=dlq_name, Attributes=fifo_attributes)["QueueUrl"]
        sqs.set_queue_attributes(
            QueueUrl=dlq_url, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)}
        )
        url = str(sqs.create_queue(QueueName=name, Attributes=fifo_attributes)["QueueUrl"])
        redrive = {
            "deadLetterTargetArn": self._queue_arn(dlq_url),
            "maxReceiveCount": str(self._s.queue_max_receive_count),
        }
        sqs.set_queue_attributes(
            QueueUrl=url,
            Attributes={"VisibilityTimeout": str(self._visibility_s), "RedrivePolicy": json.dumps(redrive)},
        )
        return url, self._queue_arn(url)

    def _event_source_mapping(
        self,
        function: str,
        queue_arn: str,
        *,
        batch_size: int,
        window_s: int,
        response_types: list[str],
        max_concurrency: int | None,
    ) -> str:
        lam = self._client("lambda")
        config: dict[str, Any] = {
            "BatchSize": batch_size,
            "MaximumBatchingWindowInSeconds": window_s,
            "FunctionResponseTypes": response_types,
        }
        if max_concurrency:
            config["ScalingConfig"] = {"MaximumConcurrency": max_concurrency}
        existing = lam.list_event_source_mappings(EventSourceArn=queue_arn, FunctionName=function)
        for mapping in existing["EventSourceMappings"]:
            lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True, **config)
            return str(mapping["UUID"])
        created = lam.create_event_source_mapping(
            EventSourceArn=queue_arn, FunctionName=function, Enabled=True, **config
        )
        return str(created["UUID"])

    def _function(self, name: str, role_arn: str, dlq_url: str | None) -> str:
        lam = self._client("lambda")
        try:
            return str(lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"])
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        handler = name.removeprefix(f"{APP_NAME}-{self._s.stage}").removeprefix("-") or "app"
        response = lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role_arn,
            Handler=f"app.{handler}",
            Code={"ZipFile": _placeholder_zip()},
            Timeout=FUNCTION_TIMEOUT_S,
            MemorySize=2048,
            **({"DeadLetterConfig": {"TargetArn": self._queue_arn(dlq_url)}} if dlq_url else {}),
        )
        return str(response["FunctionArn"])

    def _rule(
        self,
        name: str,
        function_arn: str,
        pattern: dict[str, Any] | None = None,
        schedule: str | None = None,
    ) -> str:
        events = self._client("events")
        rule_name = f"{APP_NAME}-{self._s.stage}-{name}"
        kwargs: dict[str, Any] = {"Name": rule_name, "State": "ENABLED"}
        if pattern is not None:
            kwargs["EventPattern"] = json.dumps(pattern)
        if schedule is not None:
            kwargs["ScheduleExpression"] = schedule
        events.put_rule(**kwargs)
        events.put_targets(Rule=rule_name, Targets=[{"Id": "handler", "Arn": function_arn}])
        return rule_name

    def _state_machine(self, stem: str, definition: str) -> str:
        sfn = self._client("stepfunctions")
        name = f"{APP_NAME}-{self._s.stage}-{stem.replace('_', '-')}"
        role = f"arn:aws:iam::{ACCOUNT_ID}:role/{APP_NAME}-{self._s.stage}-execution"
        for machine in sfn.list_state_machines()["stateMachines"]:
            if machine["name"] == name:
                sfn.update_state_machine(stateMachineArn=machine["stateMachineArn"], definition=definition)
                return str(machine["stateMachineArn"])
        return str(
            sfn.create_state_machine(name=name, definition=definition, roleArn=role)["stateMachineArn"]
        )
