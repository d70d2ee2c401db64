"""What a script-mode training container sees, laid out in a work directory instead of ``/opt/ml``.

SageMaker's training toolkit downloads the channels, unpacks ``sagemaker_submit_directory``, writes
``input/config/*.json``, sets the ``SM_*`` variables and passes hyperparameters as ``--key value``; the
training scripts rely on all of it. This module reproduces that contract for one job, and turns the
job's output lines into metrics with its ``MetricDefinitions`` as SageMaker does.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reviewsense.localcloud.sagemaker.common import (
    HOST,
    Clients,
    JobError,
    decode_hyperparameter,
    extract,
    hyperparameter_args,
    split_s3_uri,
    utcnow,
)
from reviewsense.localcloud.sagemaker.telemetry import Telemetry


@dataclass
class ScriptMode:
    """A training job ready to start: its command, environment and folders."""

    command: list[str]
    env: dict[str, str]
    code_dir: Path
    model_dir: Path
    output_dir: Path


def prepare(
    job: Any, work: Path, clients: Clients, should_stop: Callable[[], bool], env: dict[str, str]
) -> ScriptMode:
    """Download the channels and the source dir into ``work``; the command and environment to run.

    ``env`` is the base environment (``common.job_env``); raises ``JobError`` for what SageMaker would
    reject or fail the job with.
    """
    name = job.training_job_name
    input_dir, model_dir, output_dir = work / "input", work / "model", work / "output" / "data"
    code_dir = work / "code"
    for folder in (input_dir / "config", model_dir, output_dir, code_dir):
        folder.mkdir(parents=True, exist_ok=True)
    channels: dict[str, Path] = {}
    for channel in job.input_data_config or []:
        channel_name = str(channel["ChannelName"])
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source:
            raise JobError(f"ClientError: channel {channel_name}: only S3DataSource channels run locally")
        channels[channel_name] = input_dir / "data" / channel_name
        clients.download(str(source["S3Uri"]), channels[channel_name], should_stop)
    raw_hps = dict(job.hyper_parameters or {})
    decoded = {k: decode_hyperparameter(v) for k, v in raw_hps.items()}
    program = decoded.get("sagemaker_program")
    submit = decoded.get("sagemaker_submit_directory")
    if not program or not submit:
        raise JobError(
            "ClientError: the local cloud runs script mode only: hyperparameters sagemaker_program and "
            "sagemaker_submit_directory (s3://.../sourcedir.tar.gz) are required"
        )
    archive = work / "sourcedir.tar.gz"
    bucket, key = split_s3_uri(str(submit))
    try:
        clients.get("s3").download_file(bucket, key, str(archive))
    except Exception as exc:
        raise JobError(f"ClientError: cannot download {submit}: {exc}") from exc
    extract(archive, code_dir)
    if not (code_dir / str(program)).is_file():
        raise JobError(f"ClientError: {program} is not in {submit}")
    hps = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
    resource_config = {"current_host": HOST, "hosts": [HOST], "network_interface_name": "eth0"}
    input_data_config = {
        str(c["ChannelName"]): {k: v for k, v in c.items() if k in ("ContentType", "TrainingInputMode")}
        for c in job.input_data_config or []
    }
    (input_dir / "config" / "hyperparameters.json").write_text(json.dumps(raw_hps))
    (input_dir / "config" / "resourceconfig.json").write_text(json.dumps(resource_config))
    (input_dir / "config" / "inputdataconfig.json").write_text(json.dumps(input_data_config))
    training_env = {
        "additional_framework_parameters": {},
        "channel_input_dirs": {k: str(v) for k, v in channels.items()},
        "current_host": HOST,
        "hosts": [HOST],
        "hyperparameters": hps,
        "input_config_dir": str(input_dir / "config"),
        "input_data_config": input_data_config,
        "input_dir": str(input_dir),
        "is_master": True,
        "job_name": name,
        "log_level": 20,
        "master_hostname": HOST,
        "model_dir": str(model_dir),
        "module_dir": str(submit),
        "module_name": Path(str(program)).stem,
        "network_interface_name": "eth0",
        "num_cpus": os.cpu_count() or 1,
        "num_gpus": 0,
        "output_data_dir": str(output_dir),
        "output_dir": str(work / "output"),
        "resource_config": resource_config,
        "user_entry_point": str(program),
    }
    env = dict(env)
    env.update({str(k): str(v) for k, v in (getattr(job, "environment", None) or {}).items()})
    env.update(
        {
            "SM_MODEL_DIR": str(model_dir),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_OUTPUT_DATA_DIR": str(output_dir),
            "SM_OUTPUT_DIR": str(work / "output"),
            "SM_INPUT_DIR": str(input_dir),
            "SM_INPUT_CONFIG_DIR": str(input_dir / "config"),
            "SM_HPS": json.dumps(hps),
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_NUM_GPUS": "0",
            "SM_CURRENT_HOST": HOST,
            "SM_HOSTS": json.dumps([HOST]),
            "SM_USER_ENTRY_POINT": str(program),
            "SM_MODULE_DIR": str(submit),
            "SM_TRAINING_ENV": json.dumps(training_env),
            "TRAINING_JOB_NAME": name,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(code_dir), env.get("PYTHONPATH", "")])),
        }
    )
    for channel_name, path in channels.items():
        env[f"SM_CHANNEL_{channel_name.upper()}"] = str(path)
    for key_, value in hps.items():
        env[f"SM_HP_{key_.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    command = [sys.executable, str(program), *hyperparameter_args(decoded)]
    return ScriptMode(command, env, code_dir, model_dir, output_dir)


def metric_reader(job: Any, telemetry: Telemetry) -> Callable[[str], None]:
    """A line callback: matches the job's ``MetricDefinitions``, publishes and records the values."""
    definitions = [
        (str(d["Name"]), re.compile(str(d["Regex"])))
        for d in (job.algorithm_specification or {}).get("MetricDefinitions") or []
    ]
    latest: dict[str, tuple[float, datetime]] = {}

    def on_line(text: str) -> None:
        for metric, regex in definitions:
            match = regex.search(text)
            if match is None:
                continue
            try:
                value = float(match.group(1) if match.groups() else match.group(0))
            except ValueError:
                continue
            if not math.isfinite(value):  # CloudWatch rejects NaN / infinity, so SageMaker drops them
                continue
            telemetry.metric(metric, value, datetime.now(UTC))
            latest[metric] = (value, utcnow())
            job.final_metric_data_list = [
                {"MetricName": k, "Value": v, "Timestamp": t} for k, (v, t) in sorted(latest.items())
            ]

    return on_line
