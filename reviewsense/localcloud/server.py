"""The local cloud: moto's server on 127.0.0.1 plus local compute, in one process.

``reviewsense local up`` runs this. It starts moto's server (the AWS APIs, made as strict as AWS
about requests by ``strict.py``), restores the state saved by the previous run, applies the
``local`` stage of ``.chalice/config.json`` to the environment (exactly the variables the
deployed Lambdas get; ``reviewsense.stageconfig``), provisions the app's resources (``provision.py``),
registers every Chalice handler with the in-process Lambda runtime (``runtime.py``), installs the moto
extensions that make events reach them (``extensions.py``) and the local SageMaker compute
(``sagemaker/``), and starts the schedule rules (``scheduler.py``), Lambda's SQS poller for the
event source mappings (``sqspoller.py``) and API Gateway for the app's routes, IAM auth included, at
``<endpoint>/_api/<stage>/`` (``apigateway.py``). S3 writes go through the journal
(``journal.py``) and state is snapshotted (``state.py``). Clients find it through ``<home>/endpoint.json``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.config import Settings
from reviewsense.localcloud import extensions, sqspoller, strict
from reviewsense.localcloud import sagemaker as local_sagemaker
from reviewsense.localcloud.apigateway import ApiGateway
from reviewsense.localcloud.journal import S3Journal, S3WriteThrough
from reviewsense.localcloud.provision import ACCOUNT_ID, Provisioned, Provisioner
from reviewsense.localcloud.runtime import FunctionSpec, LocalLambdaRuntime
from reviewsense.localcloud.scheduler import LocalScheduler
from reviewsense.localcloud.state import Snapshotter, StateStore
from reviewsense.stageconfig import stage_environment
from reviewsense.target import local_client

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
_MUTATING = {"POST", "PUT", "DELETE", "PATCH"}


@dataclass(frozen=True)
class LocalCloudOptions:
    home: Path
    project_root: Path
    port: int = 4566
    stage: str = "local"
    region: str = "us-east-1"
    persist: bool = True
    retry_delays_s: tuple[float, ...] = (1.0, 2.0)
    #: The module whose ``app`` (a Chalice app) is provisioned and run (tests use small apps of their own).
    app_module: str = "app"
    #: Provision ``statemachines/*.asl.json`` (their placeholders name ``app.py``'s functions).
    state_machines: bool = True
    #: Visibility timeout of the SQS event source queues; None: six times the function timeout, as on
    #: AWS (``REVIEWSENSE_LOCAL_QUEUE_VISIBILITY_TIMEOUT_S`` sets it for ``reviewsense local up``).
    queue_visibility_timeout_s: int | None = None


class _DirtyTracking:
    """WSGI middleware: any mutating request schedules a state snapshot (SQS is not persisted)."""

    def __init__(self, app: Any, on_change: Any) -> None:
        self._app = app
        self._on_change = on_change

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") in _MUTATING and not str(
            environ.get("HTTP_X_AMZ_TARGET", "")
        ).startswith("AmazonSQS."):
            self._on_change()
        return self._app(environ, start_response)


class LocalCloud:
    def __init__(self, options: LocalCloudOptions) -> None:
        self.options = options
        self.endpoint = f"http://127.0.0.1:{options.port}"
        self.journal = S3Journal(options.home / "state" / "journal") if options.persist else None
        self.state = StateStore(options.home / "state", journal=self.journal)
        self.snapshotter = Snapshotter(
            self.state, interval_s=float(os.environ.get("REVIEWSENSE_LOCAL_SNAPSHOT_INTERVAL_S", "2"))
        )
        self.runtime = LocalLambdaRuntime(
            log_path=options.home / "logs" / "lambda.jsonl",
            retry_delays_s=options.retry_delays_s,
            send_to_dlq=self._send_to_dlq,
            after_invoke=self.snapshotter.mark_dirty,
        )
        self._starter = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sfn-start")
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.provisioned: Provisioned | None = None
        self.sagemaker: local_sagemaker.LocalSageMaker | None = None
        self.restored: list[str] = []
        self.code: dict[str, Any] = {}
        self.scheduler: LocalScheduler | None = None
        self._strict_installed = False
        self.gateway: ApiGateway | None = None
        self.poller: sqspoller.SqsPoller | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        o = self.options
        o.home.mkdir(parents=True, exist_ok=True)
        from reviewsense.codepublish import code_version

        # The stage's variables, unless this process was given its own value (tests, experiments).
        for key, value in stage_environment(o.project_root, o.stage).items():
            os.environ.setdefault(key, value)
        os.environ["REVIEWSENSE_CODE_VERSION"] = code_version(o.project_root)
        env = {
            **LOCAL_CREDENTIALS,
            "AWS_DEFAULT_REGION": o.region,
            "AWS_REGION": o.region,
            "AWS_ENDPOINT_URL": self.endpoint,
            "MOTO_PORT": str(o.port),  # moto's Step Functions interpreter calls back on this port
            "MOTO_ALLOW_NONEXISTENT_REGION": "true",
        }
        os.environ.update(env)
        os.environ.pop("AWS_PROFILE", None)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        if o.persist:
            self.restored = self.state.load()  # the last snapshot, then the S3 journal over it
        if self.journal is not None:
            self.journal.open()
        # AWS's request validation and task error names, before moto builds its routes.
        self._strict_installed = strict.install()
        self._serve()
        self._configure_moto()

        if str(o.project_root) not in sys.path:
            sys.path.insert(0, str(o.project_root))
        from chalicelib.config import get_settings
        from chalicelib.container import reset_container

        get_settings.cache_clear()
        reset_container()
        app_module = importlib.import_module(o.app_module)
        settings = Settings.from_env()

        import boto3

        session = boto3.session.Session(region_name=o.region)
        visibility = o.queue_visibility_timeout_s or int(
            os.environ.get("REVIEWSENSE_LOCAL_QUEUE_VISIBILITY_TIMEOUT_S", "0")
        )
        provisioner = Provisioner(
            session, settings, self.endpoint, queue_visibility_timeout_s=visibility or None
        )
        extensions.install(self.runtime, self._start_execution)
        sqspoller.install()  # moto's own SQS -> Lambda delivery off: the poller below delivers
        self.sagemaker = local_sagemaker.LocalSageMaker(
            self.endpoint, o.home, o.region, on_change=self.snapshotter.mark_dirty
        )
        local_sagemaker.install(self.sagemaker)  # also re-serves the endpoints restored from disk
        self.provisioned = provisioner.provision(
            app_module.app,
            o.project_root / "statemachines" if o.state_machines else None,
            function_response_types=getattr(app_module, "SQS_FUNCTION_RESPONSE_TYPES", None),
        )
        self.code = provisioner.publish_code(o.project_root)
        for name, arn in self.provisioned.functions.items():
            fn = provisioner.function_name(name)
            self.runtime.register(
                FunctionSpec(
                    name=fn,
                    handler=app_module.app.handler_map[name],
                    arn=arn,
                    dead_letter_queue_url=self.provisioned.dead_letter_queues.get(fn),
                )
            )
        if self.provisioned.api_function is not None and self.gateway is not None:
            api = provisioner.api_function_name()
            self.runtime.register(
                FunctionSpec(name=api, handler=app_module.app, arn=self.provisioned.api_function)
            )
            self.gateway.mount(app_module.app, self.runtime, api)
        self.poller = sqspoller.SqsPoller(
            o.region,
            self.runtime,
            lambda service: local_client(self.endpoint, service, o.region),
            wait_s=int(os.environ.get("REVIEWSENSE_LOCAL_SQS_WAIT_S", "1")),
        )
        self.poller.start()
        self.scheduler = LocalScheduler(
            self.provisioned.schedules,
            self.runtime.invoke_async,
            o.region,
            "123456789012",
            speedup=float(os.environ.get("REVIEWSENSE_LOCAL_SCHEDULE_SPEEDUP", "1")),
        )
        self.scheduler.start()
        if o.persist:
            self.snapshotter.start()
            self.state.save()
        self._write_endpoint_file()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.poller is not None:
            self.poller.stop()  # the batch in hand is delivered (or left for redelivery) first
        self.runtime.drain(timeout_s=60)
        self.runtime.shutdown()
        self._starter.shutdown(wait=True)
        if self.sagemaker is not None:
            self.sagemaker.shutdown()  # running jobs end Stopped, endpoint servers exit
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self.options.persist:
            self.snapshotter.stop()  # the last snapshot, after the last request: the journal goes
        if self.journal is not None:
            self.journal.close()
        extensions.uninstall()
        sqspoller.uninstall()
        local_sagemaker.uninstall()
        if self._strict_installed:
            strict.uninstall()
        endpoint_file = self.options.home / "endpoint.json"
        if endpoint_file.exists() and json.loads(endpoint_file.read_text()).get("pid") == os.getpid():
            endpoint_file.unlink()

    def serve_forever(self) -> None:
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass

    # -- internals ---------------------------------------------------------------------------------

    def _serve(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app: Any = DomainDispatcherApplication(create_backend_app)
        if self.journal is not None:
            app = S3WriteThrough(app, self.journal)  # acknowledged S3 writes are on disk first
        app = _DirtyTracking(app, self.snapshotter.mark_dirty)
        self.gateway = app = ApiGateway(
            app, stage=self.options.stage, region=self.options.region, account_id=ACCOUNT_ID
        )
        self._server = make_server(
            "127.0.0.1", self.options.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()

    def _configure_moto(self) -> None:
        body = json.dumps({"stepfunctions": {"execute_state_machine": True}})
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/config",
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def _write_endpoint_file(self) -> None:
        info = {
            "endpoint": self.endpoint,
            "port": self.options.port,
            "pid": os.getpid(),
            "stage": self.options.stage,
            "region": self.options.region,
            "api_url": f"{self.endpoint}{self.gateway.base_path}/" if self.gateway else None,
            "started_at": datetime.now(UTC).isoformat(),
            "functions": sorted(self.runtime.functions),
            "restored": self.restored,
        }
        tmp = self.options.home / ".endpoint.json.tmp"
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, self.options.home / "endpoint.json")

    def _send_to_dlq(self, queue_url: str, body: str) -> None:
        import boto3

        boto3.client("sqs", endpoint_url=self.endpoint, region_name=self.options.region).send_message(
            QueueUrl=queue_url, MessageBody=body
        )

    def _start_execution(self, state_machine_arn: str, role_arn: str, event: dict[str, Any]) -> None:
        """EventBridge → Step Functions target: start an execution named after the event id."""

        def start() -> None:
            import boto3

            sfn = boto3.client("stepfunctions", endpoint_url=self.endpoint, region_name=self.options.region)
            name = str(event.get("id") or f"event-{time.time_ns()}")[:80]
            try:
                sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(event))
            except Exception as exc:
                if "ExecutionAlreadyExists" not in str(exc):
                    logging.getLogger(__name__).exception("could not start %s", state_machine_arn)

        self._starter.submit(start)
