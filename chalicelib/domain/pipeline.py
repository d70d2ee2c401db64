"""Plans one run of the training pipeline: names, S3 locations and the exact SageMaker requests.

The Prepare step of the state machine returns this plan, and the later states pass its parts to
SageMaker unchanged (``"AppSpecification.$": "$.run.featurize.AppSpecification"`` ...), so what a
run will do is visible, testable and recorded before anything starts. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.training_health import METRIC_DEFINITIONS

PROCESSING_ROOT = "/opt/ml/processing"
BOOTSTRAP_MODULE = "training.bootstrap"
ENCODER_CHANNEL = "encoder"
#: Every SageMaker job, model and endpoint configuration this app creates starts with it; the watchdog's
#: event rule, its ListTrainingJobs and the IAM policies select this app's resources by it.
RESOURCE_PREFIX = "rs-"
_NAME = re.compile(r"[^a-zA-Z0-9-]+")
#: SageMaker job, model and endpoint-config names: ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``.
SAGEMAKER_NAME_MAX = 63
_DIGEST = 8
#: CreateModelPackage ``CustomerMetadataProperties``: at most 50 entries, keys 1-128 and values
#: 1-256 characters of ``[\p{L}\p{Z}\p{N}_.:/=+\-@]``.
METADATA_MAX_ENTRIES = 50
METADATA_KEY_MAX = 128
METADATA_VALUE_MAX = 256
_METADATA_PUNCTUATION = frozenset("_.:/=+-@")


@dataclass(frozen=True)
class PlanInputs:
    run_id: str
    bucket: str
    role_arn: str
    training_image: str
    processing_image: str
    training_instance_type: str
    processing_instance_type: str
    max_training_seconds: int
    poll_seconds: int
    hyperparameters: dict[str, str]
    featurize_args: dict[str, str]
    champion_model_data: str | None
    code_prefix: str = "code/"
    pipeline_prefix: str = "pipeline/"
    curated_prefix: str = "curated/reviews/"


def run_id_for(execution_name: str, started_at: datetime) -> str:
    """A short id usable in SageMaker job names (63 characters at most, letters, digits and '-')."""
    slug = _NAME.sub("-", execution_name).strip("-").lower()[-24:].strip("-") or "run"
    return f"{started_at:%Y%m%d-%H%M%S}-{slug}"


def sagemaker_name(*parts: str, max_length: int = SAGEMAKER_NAME_MAX) -> str:
    """A valid SageMaker resource name from ``parts``, whatever their length or characters.

    Characters outside ``[a-zA-Z0-9-]`` become ``-``. A name longer than ``max_length`` keeps its
    first part (the ``rs`` prefix the watchdog and the IAM policies scope to) and its last part (the
    step or suffix) whole, shortens the middle and adds 8 hex digits of a hash of the full name, so
    the same parts always give the same name and different parts (almost surely) different names.
    """
    cleaned = [c for c in (_NAME.sub("-", part).strip("-") for part in parts) if c]
    full = "-".join(cleaned) or "rs"
    if len(full) <= max_length:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_DIGEST]
    first, last = cleaned[0], cleaned[-1] if len(cleaned) > 1 else ""
    room = max_length - len(first) - len(last) - _DIGEST - 3
    if room < 1 or not last:
        return f"{full[: max_length - _DIGEST - 1].rstrip('-')}-{digest}"
    middle = "-".join(cleaned[1:-1])[:room].strip("-")
    return "-".join(p for p in (first, middle, digest, last) if p)


def job_name(run_id: str, step: str) -> str:
    return sagemaker_name("rs", run_id, step)


def model_name(run_id: str) -> str:
    """The SageMaker model a run deploys."""
    return sagemaker_name("rs", run_id)


def endpoint_config_name(run_id: str) -> str:
    """The endpoint configuration a run's Deploy step creates (and Cleanup deletes)."""
    return sagemaker_name("rs", run_id, "cfg")


def promoted_config_name(model: str, at: datetime) -> str:
    """The endpoint configuration that makes ``model`` the only variant (``models promote``)."""
    return sagemaker_name("rs", model.removeprefix("rs-"), f"promoted-{at:%Y%m%d%H%M%S}")


def _metadata_text(text: str, limit: int) -> str:
    """``text`` within the metadata pattern and length: other characters become ``_``."""
    allowed = "".join(
        ch if ch in _METADATA_PUNCTUATION or unicodedata.category(ch)[0] in "LZN" else "_" for ch in text
    )
    out = ""
    for ch in allowed:  # lengths count UTF-16 code units, as AWS's do
        if len((out + ch).encode("utf-16-le")) // 2 > limit:
            break
        out += ch
    return out or "none"


def registry_metadata(values: Mapping[str, object]) -> dict[str, str]:
    """``CustomerMetadataProperties`` that SageMaker accepts, from any values (first 50 kept).

    The full text (gate reasons and all) belongs in ``lineage.json``; these are its searchable
    summary.
    """
    out: dict[str, str] = {}
    for key, value in list(values.items())[:METADATA_MAX_ENTRIES]:
        out[_metadata_text(str(key), METADATA_KEY_MAX)] = _metadata_text(str(value), METADATA_VALUE_MAX)
    return out


def package_description(run_id: str, gate: Mapping[str, object]) -> str:
    r"""``ModelPackageDescription`` (``[\p{L}\p{M}\p{Z}\p{S}\p{N}\p{P}]*``, 1024 at most)."""
    reasons = gate.get("reasons")
    listed = [str(r) for r in reasons] if isinstance(reasons, list) else []
    text = f"run {run_id}: {'; '.join(listed)}"
    printable = "".join(ch if unicodedata.category(ch)[0] in "LMZSNP" else " " for ch in text)
    out = ""
    for ch in printable:
        if len((out + ch).encode("utf-16-le")) // 2 > 1024:
            break
        out += ch
    return out


def encoder_channel(hyperparameters: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """An ``s3://`` encoder becomes the ``encoder`` input channel; train.py reads ``channel:encoder``.

    SageMaker downloads channels before the script starts, so a base model uploaded to the lake
    (``make deploy`` ``--base-model``) needs no hub access; any other value passes unchanged.
    """
    for key in ("model-name-or-path", "model_name_or_path"):
        value = str(hyperparameters.get(key, ""))
        if value.startswith("s3://"):
            return {**hyperparameters, key: f"channel:{ENCODER_CHANNEL}"}, value
    return hyperparameters, None


def _s3_input(name: str, uri: str, local: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def _s3_output(name: str, local: str, uri: str) -> dict[str, Any]:
    return {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}}


def _args(options: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, value in options.items():
        out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def _processing_request(
    p: PlanInputs,
    name: str,
    module: str,
    arguments: list[str],
    inputs: list[dict[str, Any]],
    outputs: list[Any],
) -> dict[str, Any]:
    code = _s3_input("code", f"s3://{p.bucket}/{p.code_prefix}src/", f"{PROCESSING_ROOT}/code")
    return {
        "ProcessingJobName": name,
        "RoleArn": p.role_arn,
        "AppSpecification": {
            "ImageUri": p.processing_image,
            # The image installs nothing for processing jobs: training.bootstrap installs the shipped
            # requirements.txt (as script mode does for training) and then runs the module.
            "ContainerEntrypoint": ["python3", "-m", BOOTSTRAP_MODULE, module],
            "ContainerArguments": arguments,
        },
        "Environment": {"PYTHONPATH": f"{PROCESSING_ROOT}/code"},
        "ProcessingInputs": [code, *inputs],
        "ProcessingOutputConfig": {"Outputs": outputs},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": p.processing_instance_type,
                "VolumeSizeInGB": 30,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": p.max_training_seconds},
    }


def _evaluation_request(p: PlanInputs, base: str, which: str, model_data: str) -> dict[str, Any]:
    root = PROCESSING_ROOT
    return _processing_request(
        p,
        job_name(p.run_id, f"eval-{which}"),
        "training.evaluate",
        [
            "--model",
            f"{root}/model/model.tar.gz",
            "--data",
            f"{root}/test",
            "--output",
            f"{root}/evaluation/evaluation.json",
            "--predictions",
            f"{root}/evaluation/predictions.parquet",
        ],
        [
            _s3_input("model", model_data, f"{root}/model"),
            _s3_input("test", f"{base}features/test/", f"{root}/test"),
        ],
        [_s3_output("evaluation", f"{root}/evaluation", f"{base}evaluation/{which}/")],
    )


def plan_run(p: PlanInputs) -> dict[str, Any]:
    """Everything the state machine needs for one run."""
    base = f"s3://{p.bucket}/{p.pipeline_prefix}{p.run_id}/"
    root = PROCESSING_ROOT
    featurize = _processing_request(
        p,
        job_name(p.run_id, "featurize"),
        "training.featurize",
        ["--input", f"{root}/input/reviews", "--output-dir", f"{root}/output", *_args(p.featurize_args)],
        [_s3_input("reviews", f"s3://{p.bucket}/{p.curated_prefix}", f"{root}/input/reviews")],
        [_s3_output("features", f"{root}/output", f"{base}features/")],
    )
    train_name = job_name(p.run_id, "train")
    sources = {channel: f"{base}features/{channel}/" for channel in ("train", "validation", "test")}
    hyperparameters, encoder = encoder_channel(p.hyperparameters)
    if encoder:
        sources[ENCODER_CHANNEL] = encoder
    channels = [
        {
            "ChannelName": channel,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": uri,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
        for channel, uri in sources.items()
    ]
    training = {
        "TrainingJobName": train_name,
        "RoleArn": p.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": p.training_image,
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
        },
        "HyperParameters": {
            **{k: str(v) for k, v in hyperparameters.items()},
            "sagemaker_program": "training/train.py",
            "sagemaker_submit_directory": f"s3://{p.bucket}/{p.code_prefix}sourcedir.tar.gz",
        },
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": f"{base}training/"},
        "ResourceConfig": {
            "InstanceType": p.training_instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": p.max_training_seconds},
    }
    model_data = f"{base}training/{train_name}/output/model.tar.gz"
    champion = p.champion_model_data
    return {
        "run_id": p.run_id,
        "base_uri": base,
        "poll_seconds": p.poll_seconds,
        "featurize": featurize,
        "training": training,
        "model_data": model_data,
        "has_champion": champion is not None,
        "champion_model_data": champion,
        "evaluate_candidate": _evaluation_request(p, base, "candidate", model_data),
        "evaluate_champion": _evaluation_request(p, base, "champion", champion) if champion else {},
        "candidate_evaluation_uri": f"{base}evaluation/candidate/evaluation.json",
        "champion_evaluation_uri": f"{base}evaluation/champion/evaluation.json" if champion else None,
    }
