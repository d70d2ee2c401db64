"""Training and processing jobs: created through moto, run for real, their status kept in moto's objects.

``CreateTrainingJob`` / ``CreateProcessingJob`` return at once (the patches hand the new job here); a
worker thread downloads the inputs, runs the script (``scriptmode.py`` for training, the container entry
point for processing) and uploads the outputs, updating the moto job's status fields as SageMaker would,
so Describe* calls, the saved state and the Step Functions polls see the real progress. Stop requests
and ``MaxRuntimeInSeconds`` end a job Stopped; training status changes also go to EventBridge, where the
watchdog listens.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reviewsense.localcloud.sagemaker import containers, scriptmode
from reviewsense.localcloud.sagemaker.common import (
    FAILURE_REASON_MAX,
    HOST,
    PROCESSING_LOG_GROUP,
    PROCESSING_ROOT,
    TRAINING_LOG_GROUP,
    JobError,
    Workspace,
    has_files,
    pack_dir,
    text_tail,
    utcnow,
)
from reviewsense.localcloud.sagemaker.process import Outcome, Run, run_process, signal_group
from reviewsense.localcloud.sagemaker.telemetry import Telemetry

log = logging.getLogger(__name__)

_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")


class Jobs:
    """The running training and processing jobs of one local cloud."""

    def __init__(self, ws: Workspace, stop_grace_s: float) -> None:
        self.ws = ws
        self.stop_grace_s = stop_grace_s
        self._runs: dict[tuple[str, str, str, str], Run] = {}
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------------------

    def fail_interrupted(self, backend: Any) -> None:
        """After a restart: jobs the saved state shows running become Failed (their process is gone)."""
        reason = "the local cloud stopped while this job was running; start it again"
        for job in list(backend.training_jobs.values()):
            if job.training_job_status in ("InProgress", "Stopping"):
                self._finish_training(job, "Failed", "Failed", reason, failure_reason=reason)
        for pjob in list(backend.processing_jobs.values()):
            if pjob.processing_job_status in ("InProgress", "Stopping"):
                self._finish_processing(pjob, "Failed", failure_reason=reason)

    def stop_all(self, reason: str, deadline: float) -> None:
        """Ask every running job to stop, wait for their workers until ``deadline``, kill what is left."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.request_stop(reason)
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for run in runs:
            if run.proc is not None and run.proc.poll() is None:
                signal_group(run.proc, signal.SIGKILL)

    def _launch(self, kind: str, backend: Any, name: str, target: Callable[..., None], job: Any) -> None:
        """Track the job's run and start its worker thread."""
        run = Run(kind, name)
        with self._lock:
            self._runs[(kind, backend.account_id, backend.region_name, name)] = run
        run.thread = self.ws.spawn(target, run, job, name=f"{kind}-{name}")

    # -- training jobs ---------------------------------------------------------------------------------

    def submit_training_job(self, backend: Any, job: Any) -> None:
        now = utcnow()
        job.training_job_status = "InProgress"
        job.secondary_status = "Starting"
        job.secondary_status_transitions = [
            {"Status": "Starting", "StartTime": now, "StatusMessage": "Preparing the instances for training"}
        ]
        job.final_metric_data_list = None
        job.model_artifacts = None
        job.training_start_time = None
        job.training_end_time = None
        job.failure_reason = None
        job.last_modified_time = now
        self._launch("training", backend, job.training_job_name, self._run_training, job)

    def stop_training_job(self, backend: Any, job: Any) -> None:
        run = self._runs.get(("training", backend.account_id, backend.region_name, job.training_job_name))
        self._transition(job, "Stopping", "Stopping the training job")
        job.training_job_status = "Stopping"
        if run is None or run.thread is None or not run.thread.is_alive():
            self._finish_training(job, "Stopped", "Stopped", "Training job stopped")
            return
        run.request_stop("StopTrainingJob")

    def _transition(self, job: Any, status: str, message: str) -> None:
        now = utcnow()
        transitions = list(job.secondary_status_transitions or [])
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1] = {**transitions[-1], "EndTime": now}
        transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
        job.secondary_status_transitions = transitions
        job.secondary_status = status
        job.last_modified_time = now
        self.ws.on_change()
        self._emit_state_change(job)

    def _emit_state_change(self, job: Any) -> None:
        """EventBridge "SageMaker Training Job State Change", as SageMaker sends (the watchdog listens)."""
        if not hasattr(job, "training_job_name"):
            return
        detail = {
            "TrainingJobName": job.training_job_name,
            "TrainingJobStatus": job.training_job_status,
            "SecondaryStatus": job.secondary_status,
        }
        try:
            self.ws.clients.get("events").put_events(
                Entries=[
                    {
                        "Source": "aws.sagemaker",
                        "DetailType": "SageMaker Training Job State Change",
                        "Detail": json.dumps(detail),
                    }
                ]
            )
        except Exception:  # an event is best effort, as on AWS; the watchdog also runs on a schedule
            log.debug("could not publish the state change of %s", job.training_job_name, exc_info=True)

    def _finish_training(
        self, job: Any, status: str, secondary: str, message: str, failure_reason: str | None = None
    ) -> None:
        self._transition(job, secondary, message)
        now = utcnow()
        transitions = list(job.secondary_status_transitions)
        transitions[-1] = {**transitions[-1], "EndTime": now}
        job.secondary_status_transitions = transitions
        job.training_end_time = now
        started = job.training_start_time or job.creation_time
        seconds = max(1, int((now - started).total_seconds()))
        job.training_time_in_seconds = seconds
        job.billable_time_in_seconds = seconds
        job.failure_reason = failure_reason[-FAILURE_REASON_MAX:] if failure_reason else None
        job.training_job_status = status
        self.ws.on_change()
        self._emit_state_change(job)

    def _run_training(self, run: Run, job: Any) -> None:
        name = job.training_job_name
        work = self.ws.work_dir / "training" / name
        shutil.rmtree(work, ignore_errors=True)
        log_path = self.ws.log_dir / f"{name}.log"
        log_path.unlink(missing_ok=True)
        telemetry = Telemetry(self.ws.clients, TRAINING_LOG_GROUP, f"{name}/{HOST}", host=f"{name}/{HOST}")
        try:
            outcome, model_dir, output_dir = self._train(run, job, work, log_path, telemetry)
        except JobError as exc:
            self._finish_training(job, "Failed", "Failed", "Training job failed", failure_reason=str(exc))
            return
        except Exception as exc:
            log.exception("training job %s", name)
            reason = f"InternalServerError: {type(exc).__name__}: {exc}"
            self._finish_training(job, "Failed", "Failed", "Training job failed", failure_reason=reason)
            return
        if outcome is None:  # stopped before the process started
            self._finish_training(job, "Stopped", "Stopped", f"Training job stopped: {run.stop_reason}")
            return
        if not outcome.stopped and outcome.returncode != 0:
            reason = (
                f"AlgorithmError: ExecuteUserScriptError:\nExitCode {outcome.returncode}\n"
                f'ErrorMessage "{text_tail(outcome.stderr_tail, FAILURE_REASON_MAX - 80)}"'
            )
            self._finish_training(job, "Failed", "Failed", "Training job failed", failure_reason=reason)
            return
        # ran to the end, or was stopped: SageMaker uploads what the script saved in both cases
        try:
            if has_files(model_dir) or not outcome.stopped:
                self._transition(job, "Uploading", "Uploading generated training model")
                prefix = f"{str(job.output_data_config['S3OutputPath']).rstrip('/')}/{name}/output"
                self.ws.clients.put(f"{prefix}/model.tar.gz", pack_dir(model_dir))
                if has_files(output_dir):
                    self.ws.clients.put(f"{prefix}/output.tar.gz", pack_dir(output_dir))
                job.model_artifacts = {"S3ModelArtifacts": f"{prefix}/model.tar.gz"}
        except Exception as exc:
            reason = f"ClientError: could not upload the model artifacts: {exc}"
            self._finish_training(job, "Failed", "Failed", "Training job failed", failure_reason=reason)
            return
        if outcome.stopped == "MaxRuntimeExceeded":
            self._finish_training(
                job, "Stopped", "MaxRuntimeExceeded", "Job stopped because it exceeded MaxRuntimeInSeconds"
            )
        elif outcome.stopped:
            self._finish_training(job, "Stopped", "Stopped", f"Training job stopped: {outcome.stopped}")
        else:
            self._finish_training(job, "Completed", "Completed", "Training job completed")

    def _train(
        self, run: Run, job: Any, work: Path, log_path: Path, telemetry: Telemetry
    ) -> tuple[Outcome | None, Path, Path]:
        job.training_start_time = utcnow()
        self._transition(job, "Downloading", "Downloading input data")
        script = scriptmode.prepare(job, work, self.ws.clients, run.stop_requested.is_set, self.ws.job_env())
        container = containers.container_for((job.algorithm_specification or {}).get("TrainingImage"))
        if container is not None:  # the image's packages, plus requirements.txt as script mode installs it
            installed: list[str] = []
            requirements = script.code_dir / containers.REQUIREMENTS
            if requirements.is_file():
                errors = containers.unsatisfied(requirements)
                if errors:
                    raise JobError(containers.install_error(containers.pip_command(), errors))
                installed = containers.installed_by_container(requirements)
            script.env = containers.guarded_env(
                container, work / "container", [script.code_dir], installed, script.env
            )
        if run.stop_requested.is_set():
            return None, script.model_dir, script.output_dir
        on_line = scriptmode.metric_reader(job, telemetry)
        self._transition(job, "Training", "Training image download completed. Training in progress.")
        max_runtime = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
        outcome = run_process(
            run,
            script.command,
            cwd=script.code_dir,
            env=script.env,
            log_path=log_path,
            telemetry=telemetry,
            on_line=on_line,
            max_runtime_s=float(max_runtime) if max_runtime else None,
            stop_grace_s=self.stop_grace_s,
        )
        return outcome, script.model_dir, script.output_dir

    # -- processing jobs ------------------------------------------------------------------------------

    def submit_processing_job(self, backend: Any, job: Any) -> None:
        now = utcnow()
        job.processing_job_status = "InProgress"
        job.processing_start_time = now
        job.processing_end_time = None
        job.failure_reason = None
        job.exit_message = None
        job.last_modified_time = now
        self._launch("processing", backend, job.processing_job_name, self._run_processing, job)

    def stop_processing_job(self, backend: Any, job: Any) -> None:
        run = self._runs.get(("processing", backend.account_id, backend.region_name, job.processing_job_name))
        job.processing_job_status = "Stopping"
        if run is None or run.thread is None or not run.thread.is_alive():
            self._finish_processing(job, "Stopped")
            return
        run.request_stop("StopProcessingJob")

    def _finish_processing(
        self, job: Any, status: str, failure_reason: str | None = None, exit_message: str | None = None
    ) -> None:
        now = utcnow()
        job.processing_end_time = now
        job.last_modified_time = now
        job.failure_reason = failure_reason[-FAILURE_REASON_MAX:] if failure_reason else None
        job.exit_message = exit_message
        job.processing_job_status = status
        self.ws.on_change()

    def _run_processing(self, run: Run, job: Any) -> None:
        name = job.processing_job_name
        work = self.ws.work_dir / "processing" / name
        shutil.rmtree(work, ignore_errors=True)
        log_path = self.ws.log_dir / f"{name}.log"
        log_path.unlink(missing_ok=True)
        telemetry = Telemetry(self.ws.clients, PROCESSING_LOG_GROUP, f"{name}/{HOST}")
        try:
            outcome = self._process(run, job, work, log_path, telemetry)
        except JobError as exc:
            self._finish_processing(job, "Failed", failure_reason=str(exc))
            return
        except Exception as exc:
            log.exception("processing job %s", name)
            self._finish_processing(
                job, "Failed", failure_reason=f"InternalServerError: {type(exc).__name__}: {exc}"
            )
            return
        if outcome is None:
            self._finish_processing(job, "Stopped")
        elif outcome.stopped:
            self._finish_processing(job, "Stopped", exit_message=outcome.stopped)
        elif outcome.returncode != 0:
            tail = text_tail(outcome.stderr_tail, FAILURE_REASON_MAX - 40)
            reason = f"AlgorithmError: ExitCode {outcome.returncode}\n{tail}"
            self._finish_processing(job, "Failed", failure_reason=reason)
        else:
            try:
                for output in (job.processing_output_config or {}).get("Outputs") or []:
                    target = output.get("S3Output")
                    if target:
                        self.ws.clients.upload_dir(
                            self._map_processing_path(work, target["LocalPath"]), target["S3Uri"]
                        )
            except Exception as exc:
                self._finish_processing(
                    job, "Failed", failure_reason=f"ClientError: uploading outputs failed: {exc}"
                )
                return
            self._finish_processing(job, "Completed")

    @staticmethod
    def _map_processing_path(work: Path, local_path: str) -> Path:
        return work / local_path.lstrip("/")

    def _process(
        self, run: Run, job: Any, work: Path, log_path: Path, telemetry: Telemetry
    ) -> Outcome | None:
        root = work / PROCESSING_ROOT.lstrip("/")
        root.mkdir(parents=True, exist_ok=True)

        def rewrite(value: str) -> str:
            return value.replace(PROCESSING_ROOT, str(root))

        for item in job.processing_inputs or []:
            source = item.get("S3Input")
            if not source:
                raise JobError(f"ClientError: input {item.get('InputName')}: only S3Input inputs run locally")
            self.ws.clients.download(
                str(source["S3Uri"]),
                self._map_processing_path(work, str(source["LocalPath"])),
                run.stop_requested.is_set,
            )
        for output in (job.processing_output_config or {}).get("Outputs") or []:
            if output.get("S3Output"):
                self._map_processing_path(work, str(output["S3Output"]["LocalPath"])).mkdir(
                    parents=True, exist_ok=True
                )
        app = job.app_specification or {}
        cmd = [
            rewrite(str(x))
            for x in [*(app.get("ContainerEntrypoint") or []), *(app.get("ContainerArguments") or [])]
        ]
        if not app.get("ContainerEntrypoint"):
            raise JobError(
                "ClientError: AppSpecification.ContainerEntrypoint is required locally "
                "(an image's own entry point cannot run without its container)"
            )
        if _PYTHON.match(Path(cmd[0]).name):
            cmd[0] = sys.executable
        env = self.ws.job_env()
        env.update({str(k): rewrite(str(v)) for k, v in (getattr(job, "environment", None) or {}).items()})
        container = containers.container_for(str(app.get("ImageUri") or ""))
        if container is not None:  # the image's packages only: processing containers install nothing
            env = containers.guarded_env(container, work / "container", [root], [], env)
        if run.stop_requested.is_set():
            return None
        max_runtime = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
        return run_process(
            run,
            cmd,
            cwd=work,
            env=env,
            log_path=log_path,
            telemetry=telemetry,
            on_line=lambda _text: None,
            max_runtime_s=float(max_runtime) if max_runtime else None,
            stop_grace_s=self.stop_grace_s,
        )
