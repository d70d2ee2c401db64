"""The strict local cloud: AWS's constraints (Java-syntax patterns, lengths, enums, limits), task error names.

Fast, in-process tests: the validator and the pattern translation directly, then moto through ``mock_aws``
(tests/conftest.py installs the strict hook for the whole session), so the same hook that guards
``reviewsense local up`` answers here. The HTTP end-to-end check is in ``test_strict_cloud.py``.

Why one module of about 500 lines: it is a table of AWS's constraints, one short test per constraint
kind and service, read top to bottom like the validator it checks (``reviewsense/localcloud/validation.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.domain.gate import GateConfig, decide
from chalicelib.domain.pipeline import (
    endpoint_config_name,
    model_name,
    promoted_config_name,
    registry_metadata,
    run_id_for,
)
from reviewsense.localcloud import strict
from reviewsense.localcloud.javaregex import UntranslatablePatternError, compile_java, java_matches, translate
from reviewsense.localcloud.sfnerrors import java_service_name, sfn_error_name
from reviewsense.localcloud.validation import RequestValidationError, service_model, validate

#: Every service the app, the local cloud and the state machine call.
APP_SERVICES = [
    *["sagemaker", "sagemaker-runtime", "stepfunctions", "dynamodb", "sqs", "sns", "events", "glue"],
    *["logs", "cloudwatch", "s3", "lambda", "iam", "sts"],
]
METADATA_PATTERN = service_model("sagemaker").shape_for("CustomerMetadataValue").metadata["pattern"]
CLI_DEFAULT_RUN = "manual-20261129-093816"  # reviewsense pipeline start's default: manual-<timestamp>
AT = datetime(2026, 11, 29, 9, 38, 16, tzinfo=UTC)

# What main's Register step sent: the gate reasons, joined with '; ', as a metadata value.
TODAYS_GATE_REASONS = "passes the floors (no champion); macro_f1 0.7200 is worse than the champion's 0.7400"


# -- Java patterns ----------------------------------------------------------------------------------


def patterns(service: str) -> list[tuple[str, str]]:
    model = service_model(service)
    found = []
    for name in model.shape_names:
        pattern = model.shape_for(name).metadata.get("pattern")
        if pattern:
            found.append((name, pattern))
    return found


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_pattern_of_the_apps_services_translates(service: str) -> None:
    found = patterns(service)
    for name, pattern in found:
        try:
            compile_java(pattern)
        except UntranslatablePatternError as err:  # fail loudly, naming the shape
            pytest.fail(f"{service}.{name}: {err}")


def test_the_apps_services_declare_hundreds_of_patterns() -> None:
    assert sum(len(patterns(s)) for s in APP_SERVICES) > 500


@pytest.mark.parametrize(
    "pattern",
    [r"[\p{Print}&&[^|:/]]+", r"(?i)abc", r"[a[bc]]", r"\p{NoSuchProperty}", r"a{"],
)
def test_constructs_without_a_faithful_translation_fail_loudly(pattern: str) -> None:
    with pytest.raises(UntranslatablePatternError):
        compile_java(pattern)


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        # The whole value must match (Matcher.matches()), even without a trailing '$'.
        (r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "my_model", False),
        (r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "my--model", True),
        # \w \d \s and POSIX classes are ASCII in Java; \p{L} is Unicode.
        (r"\w+", "é", False),
        (r"\d", "٣", False),
        (r"\s", "\u00a0", False),
        (r"\p{Alpha}", "é", False),
        (r"\p{L}+", "éß", True),
        (r"\p{Punct}", "§", False),
        # '.' stops at every Java line terminator; '$' may precede a final one only for find().
        (r".", "\u2028", False),
        (r"(?s).+", "a\nb", True),
        (r"a$", "a\n", False),
        (r"\Aab\z", "ab", True),
        # Escapes Python spells differently.
        (r"\Qa.b\E", "a.b", True),
        (r"\Qa.b\E", "axb", False),
        (r"\x{41}\u0042\0103", "ABC", True),
        (r"[\uD800\uDC00-\uDBFF\uDFFF]", "\U0001f600", True),  # a surrogate pair is one code point
        (r"[\u0020-\uD7FF]", "\U0001f600", False),
        (r"[^\s]+", "ab", True),
        (r"[\S]+", "a b", False),
        (r"\bword\b", "word", True),
        (r"a*+a", "aaa", False),  # possessive
        # A quantified anchor, as in SageMaker's own CustomerMetadataValue.
        (METADATA_PATTERN, "Approved", True),
    ],
)
def test_java_semantics(pattern: str, value: str, matches: bool) -> None:
    assert java_matches(pattern, value) is matches, translate(pattern)


@pytest.mark.parametrize("bad", ["(", ")", ";", "'", "#", "\n"])
def test_the_sagemaker_metadata_pattern_rejects_what_aws_rejects(bad: str) -> None:
    assert METADATA_PATTERN == r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,256}"
    assert java_matches(METADATA_PATTERN, "s3://lake/pipeline/run 1/lineage.json=+-@_é")
    assert not java_matches(METADATA_PATTERN, f"gate{bad}reason")


def test_real_name_patterns_from_the_sagemaker_model() -> None:
    model = service_model("sagemaker")
    config = model.shape_for("EndpointConfigName").metadata["pattern"]
    description = model.shape_for("EntityDescription").metadata["pattern"]
    assert java_matches(config, "rs-20261129-093816-manual-cfg")
    assert not java_matches(config, "rs_cfg") and not java_matches(config, "-rs")
    assert java_matches(description, "run 1: passes the floors (no champion); it's fine")
    assert not java_matches(description, "two\nlines")


# -- the validator ----------------------------------------------------------------------------------


def todays_model_package(metadata_value: str) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": "reviewsense-sentiment",
        "ModelApprovalStatus": "Approved",
        "CustomerMetadataProperties": {"run_id": "20261129-093816-manual", "gate_reasons": metadata_value},
    }


def test_todays_model_package_metadata_is_rejected_as_aws_words_it() -> None:
    (violation,) = validate("sagemaker", "CreateModelPackage", todays_model_package(TODAYS_GATE_REASONS))
    assert violation.path == "customerMetadataProperties"
    assert violation.render() == (
        "Value '{run_id=20261129-093816-manual, gate_reasons=" + TODAYS_GATE_REASONS + "}' at "
        "'customerMetadataProperties' failed to satisfy constraint: Map value must satisfy constraint: "
        "[Member must have length less than or equal to 256, Member must have length greater than or equal "
        r"to 1, Member must satisfy regular expression pattern: ([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,256}]"
    )


def test_the_fixed_model_package_metadata_is_accepted() -> None:
    gate = decide({"macro_f1": 0.72, "per_class": {"negative": {"recall": 0.7}}}, None, GateConfig())
    assert "(no champion)" in gate.reasons[0]
    metadata = registry_metadata({"gate": gate.status, "gate_reasons": "+".join(gate.codes), "odd": "a(b);'"})
    assert metadata == {"gate": "Approved", "gate_reasons": "passed_no_champion", "odd": "a_b___"}
    params = {**todays_model_package(""), "CustomerMetadataProperties": metadata}
    assert validate("sagemaker", "CreateModelPackage", params) == []


def test_metadata_limits_entries_and_lengths() -> None:
    too_many = {f"k{i}": "v" for i in range(51)}
    (violation,) = validate(
        "sagemaker", "CreateModelPackage", todays_model_package("") | {"CustomerMetadataProperties": too_many}
    )
    assert violation.constraint == "Member must have length less than or equal to 50"
    bounded = registry_metadata({**too_many, "long": "x" * 300, "": ""})
    assert len(bounded) == 50 and all(1 <= len(v) <= 256 for v in bounded.values())
    assert (
        validate(
            "sagemaker",
            "CreateModelPackage",
            todays_model_package("") | {"CustomerMetadataProperties": bounded},
        )
        == []
    )


def test_todays_promote_endpoint_config_name_is_rejected_and_the_bounded_one_accepted() -> None:
    model = f"rs-{run_id_for(CLI_DEFAULT_RUN, AT)}"
    todays = f"{model}-promoted-{AT:%Y%m%d%H%M%S}"  # what main's promote built
    assert len(todays) == 65
    request = {
        "EndpointConfigName": todays,
        "ProductionVariants": [
            {"VariantName": "champion", "ModelName": model, "InstanceType": "ml.m5.large"}
        ],
    }
    violations = validate("sagemaker", "CreateEndpointConfig", request)
    assert violations[0].constraint == "Member must have length less than or equal to 63"
    fixed = promoted_config_name(model_name(run_id_for(CLI_DEFAULT_RUN, AT)), AT)
    assert len(fixed) <= 63
    assert validate("sagemaker", "CreateEndpointConfig", {**request, "EndpointConfigName": fixed}) == []


@pytest.mark.parametrize(
    "run_name", [CLI_DEFAULT_RUN, "r" * 80, "Ünïcode run: 5/5 (retry) #2", "-", "a" * 200]
)
def test_every_generated_name_fits_whatever_the_run_name(run_name: str) -> None:
    pattern = service_model("sagemaker").shape_for("EndpointConfigName").metadata["pattern"]
    for run_id in (run_id_for(run_name, AT), run_name):  # prepare also accepts an explicit run_id
        model = model_name(run_id)
        names = [model, endpoint_config_name(run_id), promoted_config_name(model, AT)]
        from chalicelib.domain.pipeline import job_name

        names += [
            job_name(run_id, step) for step in ("featurize", "train", "eval-candidate", "eval-champion")
        ]
        for name in names:
            assert len(name) <= 63 and name.split("-")[0] == "rs" and java_matches(pattern, name), name
    long_a, long_b = "x" * 70 + "a", "x" * 70 + "b"
    assert endpoint_config_name(long_a) != endpoint_config_name(long_b)  # the hash keeps them apart


@pytest.mark.parametrize(
    ("service", "operation", "params", "constraint"),
    [
        (
            "sagemaker",
            "CreateModelPackage",
            {"ModelApprovalStatus": "Maybe"},
            "Member must satisfy enum value set",
        ),
        (
            "sagemaker",
            "ListTrainingJobs",
            {"MaxResults": 101},
            "Member must have value less than or equal to 100",
        ),
        ("sagemaker", "DescribeTrainingJob", {}, "Member must not be null"),
        (
            "sagemaker",
            "CreateEndpointConfig",
            {
                "EndpointConfigName": "c",
                "ProductionVariants": [{"VariantName": f"v{i}", "ModelName": "m"} for i in range(11)],
            },
            "Member must have length less than or equal to 10",
        ),
        ("sns", "Publish", {"Message": "m", "MessageAttributes": {"a": {}}}, "Member must not be null"),
        ("stepfunctions", "StartExecution", {"stateMachineArn": "a" * 257}, "less than or equal to 256"),
        ("dynamodb", "PutItem", {"TableName": "t", "Item": None}, "Member must not be null"),
        ("events", "PutEvents", {"Entries": []}, "Member must have length greater than or equal to 1"),
    ],
)
def test_constraints(service: str, operation: str, params: dict[str, Any], constraint: str) -> None:
    rendered = [v.render() for v in validate(service, operation, params)]
    assert any(constraint in r for r in rendered), rendered


def test_a_wrong_json_type_is_a_serialization_exception() -> None:
    with pytest.raises(RequestValidationError) as err:
        validate("sagemaker", "ListTrainingJobs", {"MaxResults": "ten"})
    assert err.value.code == "SerializationException"


# -- moto, strict (mock_aws goes through the same hook as the local cloud's server) -------------------


@pytest.fixture
def aws() -> Iterator[boto3.session.Session]:
    assert strict.installed()
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def test_moto_rejects_todays_model_package_and_accepts_the_fixed_one(aws: boto3.session.Session) -> None:
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="reviewsense-sentiment")
    with pytest.raises(ClientError) as err:
        sm.create_model_package(**todays_model_package(TODAYS_GATE_REASONS))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (
        "at 'customerMetadataProperties' failed to satisfy constraint"
        in err.value.response["Error"]["Message"]
    )
    fixed = todays_model_package("") | {"CustomerMetadataProperties": {"gate_reasons": "passed_no_champion"}}
    assert sm.create_model_package(**fixed)["ModelPackageArn"].endswith("/1")


def test_moto_rejects_todays_promote_config_name(aws: boto3.session.Session) -> None:
    sm = aws.client("sagemaker")
    role = "arn:aws:iam::123456789012:role/sm"
    sm.create_model(ModelName="m", ExecutionRoleArn=role, PrimaryContainer={"Image": "i"})
    name = f"rs-{run_id_for(CLI_DEFAULT_RUN, AT)}-promoted-{AT:%Y%m%d%H%M%S}"
    variants = [
        {
            "VariantName": "champion",
            "ModelName": "m",
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
        }
    ]
    with pytest.raises(ClientError) as err:
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "at 'endpointConfigName' failed to satisfy constraint" in err.value.response["Error"]["Message"]
    fixed = promoted_config_name(model_name(run_id_for(CLI_DEFAULT_RUN, AT)), AT)
    assert sm.create_endpoint_config(EndpointConfigName=fixed, ProductionVariants=variants)[
        "EndpointConfigArn"
    ]


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        (
            "iam",
            lambda c: c.create_role(RoleName="bad name!", AssumeRolePolicyDocument="{}"),
            "ValidationError",
        ),
        ("lambda", lambda c: c.get_function(FunctionName="bad name!"), "ValidationException"),
        ("s3", lambda c: c.create_bucket(Bucket="Bad_Bucket"), "InvalidBucketName"),
        (
            "stepfunctions",
            lambda c: c.list_executions(stateMachineArn="arn:x", maxResults=5000),
            "ValidationException",
        ),
    ],
)
def test_each_protocol_answers_with_its_own_error_form(
    aws: boto3.session.Session, service: str, call: Any, code: str
) -> None:
    with pytest.raises(ClientError) as err:
        call(aws.client(service))
    assert err.value.response["Error"]["Code"] == code


def test_s3_keys_longer_than_1024_bytes_are_rejected(aws: boto3.session.Session) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="strict-bucket")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket="strict-bucket", Key="é" * 513, Body=b"x")
    assert err.value.response["Error"]["Code"] == "KeyTooLongError"
    s3.put_object(Bucket="strict-bucket", Key="raw/reviews/a b+c.csv", Body=b"x")


# -- Step Functions task errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "code", "integration", "name"),
    [
        ("sagemaker", "ThrottlingException", "aws-sdk", "SageMaker.SageMakerException"),
        ("sagemaker", "ValidationException", "aws-sdk", "SageMaker.SageMakerException"),
        ("sagemaker", "InternalFailure", "aws-sdk", "SageMaker.SageMakerException"),
        ("sagemaker", "ResourceNotFound", "aws-sdk", "SageMaker.ResourceNotFoundException"),
        ("sagemaker", "ResourceLimitExceeded", "aws-sdk", "SageMaker.ResourceLimitExceededException"),
        ("sagemaker", "ResourceInUse", "aws-sdk", "SageMaker.ResourceInUseException"),
        ("sagemaker", "ConflictException", "aws-sdk", "SageMaker.ConflictException"),
        ("s3", "NoSuchKey", "aws-sdk", "S3.NoSuchKeyException"),
        ("s3", "NoSuchBucket", "aws-sdk", "S3.NoSuchBucketException"),
        ("dynamodb", "ValidationException", "aws-sdk", "DynamoDb.DynamoDbException"),
        (
            "dynamodb",
            "ConditionalCheckFailedException",
            "aws-sdk",
            "DynamoDb.ConditionalCheckFailedException",
        ),
        ("stepfunctions", "InvalidArn", "aws-sdk", "Sfn.InvalidArnException"),
        ("sns", "NotFound", "aws-sdk", "Sns.NotFoundException"),
        ("sns", "Throttled", "optimized", "SNS.ThrottledException"),
        ("sns", "InternalError", "optimized", "SNS.InternalErrorException"),
        ("lambda", "ServiceException", "optimized", "Lambda.ServiceException"),
        ("lambda", "TooManyRequestsException", "optimized", "Lambda.TooManyRequestsException"),
    ],
)
def test_sfn_error_names(service: str, code: str, integration: str, name: str) -> None:
    assert sfn_error_name(service, code, integration) == name


@pytest.mark.parametrize(
    ("service", "java"),
    [
        ("sagemaker", "SageMaker"),
        ("dynamodb", "DynamoDb"),
        ("stepfunctions", "Sfn"),
        ("logs", "CloudWatchLogs"),
        ("rds", "Rds"),
        ("elbv2", "ElasticLoadBalancingV2"),
        ("dms", "DatabaseMigration"),
        ("ec2", "Ec2"),
    ],
)
def test_java_service_names(service: str, java: str) -> None:
    assert java_service_name(service) == java


def run_task(aws: boto3.session.Session, resource: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """One Task state, caught, so the error name shows up in the execution's output."""
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": resource,
                "Parameters": parameters,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sfn = aws.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="strict", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="strict-1", input="{}")["executionArn"]
    for _ in range(200):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return dict(json.loads(described.get("output", "{}")))
        time.sleep(0.05)
    raise AssertionError("execution did not finish")


@pytest.fixture
def sfn_aws() -> Iterator[boto3.session.Session]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.session.Session(region_name="us-east-1")


def test_an_invalid_aws_sdk_task_request_is_rejected_and_named_as_aws_names_it(
    sfn_aws: boto3.session.Session,
) -> None:
    output = run_task(
        sfn_aws,
        "arn:aws:states:::aws-sdk:sagemaker:createModelPackage",
        {"ModelPackageGroupName": "g", "CustomerMetadataProperties": {"gate_reasons": TODAYS_GATE_REASONS}},
    )
    assert output["error"]["Error"] == "SageMaker.SageMakerException"
    assert "failed to satisfy constraint" in output["error"]["Cause"]


def test_a_modelled_aws_sdk_error_keeps_its_name(sfn_aws: boto3.session.Session) -> None:
    output = run_task(
        sfn_aws,
        "arn:aws:states:::aws-sdk:sagemaker:associateTrialComponent",
        {"TrialName": "missing-trial", "TrialComponentName": "component"},
    )
    assert output["error"]["Error"] == "SageMaker.ResourceNotFoundException"


def test_every_request_is_checked(aws: boto3.session.Session) -> None:
    """The hook sees each request once (the overhead it measures is what the README reports)."""
    sm = aws.client("sagemaker")
    strict.stats.checked, strict.stats.seconds = 0, 0.0
    for i in range(20):
        sm.create_model_package_group(ModelPackageGroupName=f"group-{i}")
    assert strict.stats.checked == 20


def test_compressed_requests_are_read_and_still_reach_moto(aws: boto3.session.Session) -> None:
    """botocore gzips large PutMetricData bodies: the check decompresses them and moto still can."""
    cloudwatch = aws.client("cloudwatch")
    data = [{"MetricName": "scored", "Value": float(i)} for i in range(1000)]
    cloudwatch.put_metric_data(Namespace="ReviewSense", MetricData=data)
    with pytest.raises(ClientError) as err:
        cloudwatch.put_metric_data(Namespace="n" * 256, MetricData=data)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert cloudwatch.list_metrics(Namespace="ReviewSense")["Metrics"]


def test_a_malformed_json_body_is_a_serialization_exception() -> None:
    from moto.core.request import Request

    request = Request.from_values(
        method="POST",
        base_url="https://api.sagemaker.us-east-1.amazonaws.com",
        path="/",
        data=b"{not json",
        headers={"X-Amz-Target": "SageMaker.ListModels", "Content-Type": "application/x-amz-json-1.1"},
    )
    rejection = strict.check_request("sagemaker", request)
    assert rejection is not None and (rejection.status, rejection.code) == (400, "SerializationException")


def test_a_retry_on_the_generic_sagemaker_name_retries_and_states_taskfailed_catches(
    sfn_aws: boto3.session.Session,
) -> None:
    missing = {"TrainingJobName": "rs-missing"}  # SageMaker answers ValidationException: not modelled
    definition = {
        "StartAt": "Describe",
        "States": {
            "Describe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob",
                "Parameters": missing,
                "Retry": [
                    {"ErrorEquals": ["SageMaker.SageMakerException"], "IntervalSeconds": 1, "MaxAttempts": 1}
                ],
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sfn = sfn_aws.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="retry", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="retry-1", input="{}")["executionArn"]
    for _ in range(200):
        if sfn.describe_execution(executionArn=execution)["status"] != "RUNNING":
            break
        time.sleep(0.05)
    events = sfn.get_execution_history(executionArn=execution)["events"]
    failures = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    assert [f["error"] for f in failures] == ["SageMaker.SageMakerException"] * 2  # first try + one retry
    assert "(Service: SageMaker, Status Code: 400" in failures[0]["cause"]
    assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
