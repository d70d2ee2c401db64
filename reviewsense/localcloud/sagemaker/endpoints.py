"""Real-time endpoints: variant servers started per endpoint config, weighted routing and invocation.

``CreateEndpoint`` / ``UpdateEndpoint`` return at once (the patches hand the endpoint here); a worker
starts every production variant's server (``variants.py``) and only then switches the endpoint to the
new deployment, so an update keeps serving the old config until the switch, and on failure.
``InvokeEndpoint`` picks a variant by its current weight (or the target variant), forwards the request,
returns errors in sagemaker-runtime's shapes and hands the exchange to data capture.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import shutil
import threading
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewsense.localcloud.sagemaker import containers
from reviewsense.localcloud.sagemaker.capture import CaptureWriter
from reviewsense.localcloud.sagemaker.common import (
    ENDPOINT_LOG_GROUP_PREFIX,
    FAILURE_REASON_MAX,
    Workspace,
    extract,
    runtime_error,
    split_s3_uri,
    utcnow,
)
from reviewsense.localcloud.sagemaker.variants import Deployment, Variant, VariantServer

ACTIVE_ENDPOINT_STATUSES = ("InService", "Creating", "Updating", "SystemUpdating")


@dataclass
class _EndpointState:
    account: str
    region: str
    name: str
    generation: int = 0
    active: Deployment | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)


@dataclass
class InvokeResult:
    body: bytes
    content_type: str
    variant: str


class Endpoints:
    """The endpoints of one local cloud and the variant servers that serve them."""

    def __init__(
        self, ws: Workspace, capture: CaptureWriter, server_start_timeout_s: float, invoke_timeout_s: float
    ) -> None:
        self.ws = ws
        self._capture = capture
        self.server_start_timeout_s = server_start_timeout_s
        self.invoke_timeout_s = invoke_timeout_s
        self._endpoints: dict[tuple[str, str, str], _EndpointState] = {}
        self._lock = threading.Lock()
        self._model_locks: dict[str, threading.Lock] = {}
        self._servers: list[VariantServer] = []  # every server started, so none outlives the local cloud
        self._closed = False

    def resume(self, backend: Any) -> None:
        """After a restart: endpoints the saved state shows serving are served again."""
        for endpoint in list(backend.endpoints.values()):
            if endpoint.endpoint_status in ACTIVE_ENDPOINT_STATUSES:
                self.deploy(backend, endpoint, endpoint.endpoint_config_name, mode="resume")

    def close(self) -> None:
        """From now on a deployment that finishes starting is stopped instead of switched in."""
        self._closed = True

    def shutdown(self) -> None:
        """Every endpoint stops serving and every variant server exits."""
        with self._lock:
            states = list(self._endpoints.values())
        for state in states:
            with state.changed:
                state.active = None
                state.generation += 1
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            server.stop()

    def _state(self, account: str, region: str, name: str) -> _EndpointState:
        with self._lock:
            key = (account, region, name)
            if key not in self._endpoints:
                self._endpoints[key] = _EndpointState(account, region, name)
            return self._endpoints[key]

    def deploy(self, backend: Any, endpoint: Any, config_name: str, mode: str, retain: bool = False) -> None:
        """Start the variant servers of ``config_name`` in the background, then switch the endpoint to them.

        ``mode`` is ``create`` (Creating → InService | Failed), ``update`` (Updating → InService; the
        old servers keep serving until the switch, and on failure) or ``resume`` (after a restart).
        """
        state = self._state(backend.account_id, backend.region_name, endpoint.endpoint_name)
        with state.changed:
            state.generation += 1
            generation = state.generation
        if mode == "create":
            endpoint.endpoint_status = "Creating"
        elif mode == "update":
            endpoint.endpoint_status = "Updating"
            endpoint.pending_deployment_summary = {"EndpointConfigName": config_name, "StartTime": utcnow()}
        spec = self._deployment_spec(backend, endpoint.endpoint_name, config_name, saved_ok=mode == "resume")
        self.ws.spawn(
            self._deploy,
            state,
            generation,
            backend,
            endpoint,
            spec,
            mode,
            retain,
            name=f"endpoint-{endpoint.endpoint_name}",
        )

    def undeploy(self, account: str, region: str, name: str) -> None:
        state = self._state(account, region, name)
        with state.changed:
            state.generation += 1
            deployment, state.active = state.active, None
            state.changed.notify_all()
        if deployment is not None:
            self.ws.spawn(self._retire, deployment, name=f"endpoint-{name}-delete")

    def variant_urls(
        self, name: str, account: str | None = None, region: str | None = None
    ) -> dict[str, str]:
        """Where each variant of an endpoint is served now (for tests)."""
        for (acc, reg, ep), state in list(self._endpoints.items()):
            if (
                ep == name
                and (account in (None, acc))
                and (region in (None, reg))
                and state.active is not None
            ):
                return {v.name: v.server.url for v in state.active.variants}
        return {}

    def _spec_path(self, backend: Any, endpoint_name: str) -> Path:
        folder: Path = self.ws.work_dir / "endpoints" / str(backend.account_id) / str(backend.region_name)
        return folder / f"{endpoint_name}.json"

    def _deployment_spec(
        self, backend: Any, endpoint_name: str, config_name: str, saved_ok: bool
    ) -> dict[str, Any]:
        """The variants (model data, environment) and capture config of an endpoint config, read now."""
        saved = self._spec_path(backend, endpoint_name)
        config = backend.endpoint_configs.get(config_name)
        if config is None:
            if saved_ok and saved.exists():
                data: dict[str, Any] = json.loads(saved.read_text())
                return data
            return {"config": config_name, "error": f"endpoint configuration {config_name} no longer exists"}
        variants = []
        for variant in config.production_variants:
            model = backend._models.get(variant["ModelName"])
            container: dict[str, Any] = {}
            if model is not None:
                container = model.primary_container or (model.containers[0] if model.containers else {})
            variants.append(
                {
                    "VariantName": variant["VariantName"],
                    "ModelName": variant["ModelName"],
                    "InitialVariantWeight": float(variant.get("InitialVariantWeight", 1.0)),
                    "ModelDataUrl": container.get("ModelDataUrl"),
                    "Image": container.get("Image"),
                    "Environment": dict(container.get("Environment") or {}),
                    "Exists": model is not None,
                }
            )
        return {
            "config": config_name,
            "variants": variants,
            "production_variants": copy.deepcopy(config.production_variants),
            "capture": copy.deepcopy(config.data_capture_config or {}),
        }

    def _deploy(
        self,
        state: _EndpointState,
        generation: int,
        backend: Any,
        endpoint: Any,
        spec: dict[str, Any],
        mode: str,
        retain: bool,
    ) -> None:
        try:
            started = self._start_variants(state.name, backend, spec)
        except Exception as exc:
            self._deploy_failed(state, generation, endpoint, mode, str(exc))
            return
        deployment = Deployment(spec["config"], started, spec["capture"])
        with state.changed:
            if state.generation != generation or self._closed:
                deployment.stop()
                return
            old, state.active = state.active, deployment
            if mode != "resume":
                _switch_config(endpoint, spec, retain)
            endpoint.endpoint_status = "InService"
            endpoint.failure_reason = None
            endpoint.pending_deployment_summary = None
            endpoint.last_modified_time = utcnow()
            state.changed.notify_all()
        path = self._spec_path(backend, state.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(spec))
        self.ws.on_change()
        if old is not None:
            self._retire(old)

    def _start_variants(self, endpoint_name: str, backend: Any, spec: dict[str, Any]) -> list[Variant]:
        """Start every variant's server in parallel, in the spec's order; on any failure, stop them all."""
        started: list[Variant] = []
        try:
            if "error" in spec:
                raise RuntimeError(spec["error"])
            for variant in spec["variants"]:
                if not variant["Exists"]:
                    raise RuntimeError(f"model {variant['ModelName']} does not exist")
                if not variant["ModelDataUrl"]:
                    raise RuntimeError(f"model {variant['ModelName']} has no ModelDataUrl")
            errors: list[str] = []

            def launch(variant: dict[str, Any]) -> None:
                try:
                    started.append(self._start_variant(endpoint_name, backend, variant))
                except Exception as exc:
                    errors.append(str(exc))

            threads = [threading.Thread(target=launch, args=(v,), daemon=True) for v in spec["variants"]]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise RuntimeError("; ".join(errors))
        except Exception:
            for variant_ in started:
                variant_.server.stop()
            raise
        order = {v["VariantName"]: i for i, v in enumerate(spec["variants"])}
        started.sort(key=lambda v: order[v.name])
        return started

    def _start_variant(self, endpoint_name: str, backend: Any, variant: dict[str, Any]) -> Variant:
        model_dir = self._fetch_model(str(variant["ModelDataUrl"]))
        env = self.ws.job_env()
        env.update({str(k): str(v) for k, v in variant["Environment"].items()})
        env.setdefault("SAGEMAKER_PROGRAM", "inference.py")
        env["SAGEMAKER_REGION"] = backend.region_name
        log_path = self._variant_log(endpoint_name, variant["VariantName"])
        env = self._container_env(endpoint_name, variant, model_dir, env)
        server = VariantServer(variant["VariantName"], model_dir, env, log_path)
        with self._lock:
            self._servers = [s for s in self._servers if s.proc is None or s.proc.poll() is None]
            self._servers.append(server)
        server.start(self.server_start_timeout_s)
        return Variant(variant["VariantName"], variant["ModelName"], server)

    def _deploy_failed(
        self, state: _EndpointState, generation: int, endpoint: Any, mode: str, error: str
    ) -> None:
        """An update keeps serving the current configuration; a create (or resume) leaves it Failed."""
        with state.changed:
            if state.generation != generation:
                return
            reason = error[-FAILURE_REASON_MAX:]
            if mode == "update":  # the endpoint keeps serving its current config
                endpoint.endpoint_status = "InService"
                endpoint.failure_reason = f"Update failed, the endpoint kept its configuration: {reason}"[
                    -FAILURE_REASON_MAX:
                ]
                endpoint.pending_deployment_summary = None
            else:
                endpoint.endpoint_status = "Failed"
                endpoint.failure_reason = reason
            endpoint.last_modified_time = utcnow()
            state.changed.notify_all()
        self.ws.on_change()

    def _container_env(
        self, endpoint: str, variant: dict[str, Any], model_dir: Path, env: dict[str, str]
    ) -> dict[str, str]:
        """The serving container's packages, plus ``code/requirements.txt`` as its toolkit installs it."""
        container = containers.container_for(variant.get("Image"))
        if container is None:
            return env
        installed: list[str] = []
        requirements = model_dir / "code" / containers.REQUIREMENTS
        if requirements.is_file():
            errors = containers.unsatisfied(requirements)
            if errors:  # the toolkit logs "failed to install required packages" and the server exits
                raise RuntimeError(
                    f"variant {variant['VariantName']}: failed to install required packages from "
                    f"code/requirements.txt: {'; '.join(errors)}"
                )
            installed = containers.installed_by_container(requirements)
        folder = self.ws.work_dir / "containers" / endpoint / str(variant["VariantName"])
        return containers.guarded_env(container, folder, [model_dir / "code"], installed, env)

    def fetch_model(self, url: str) -> Path:
        """A model.tar.gz extracted once per (URL, ETag): shared with the transform jobs."""
        return self._fetch_model(url)

    def container_env(
        self, name: str, variant: dict[str, Any], model_dir: Path, env: dict[str, str]
    ) -> dict[str, str]:
        """The serving container's environment for a model server (endpoint variant or transform job)."""
        return self._container_env(name, variant, model_dir, env)

    def _retire(self, deployment: Deployment, drain_s: float = 30.0) -> None:
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            with deployment.lock:
                if deployment.inflight == 0:
                    break
            time.sleep(0.05)
        deployment.stop()

    def _fetch_model(self, url: str) -> Path:
        """Download and extract model.tar.gz once per (URL, ETag)."""
        bucket, key = split_s3_uri(url)
        if not key.endswith((".tar.gz", ".tgz")):
            raise RuntimeError(f"ModelDataUrl {url} is not a model.tar.gz")
        s3 = self.ws.clients.get("s3")
        try:
            etag = str(s3.head_object(Bucket=bucket, Key=key)["ETag"])
        except Exception as exc:
            raise RuntimeError(f"cannot read {url}: {exc}") from exc
        digest = hashlib.sha256(f"{url}\n{etag}".encode()).hexdigest()[:16]
        target = self.ws.work_dir / "models" / digest
        with self._lock:
            lock = self._model_locks.setdefault(digest, threading.Lock())
        with lock:
            if (target / ".complete").exists():
                return target
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            archive = target.with_suffix(".tar.gz")
            s3.download_file(bucket, key, str(archive))
            try:
                extract(archive, target)
            finally:
                archive.unlink(missing_ok=True)
            (target / ".complete").touch()
        return target

    def invoke(
        self,
        backend: Any,
        name: str,
        body: bytes,
        content_type: str,
        accept: str | None,
        target_variant: str | None = None,
        custom_attributes: str | None = None,
        inference_id: str | None = None,
    ) -> InvokeResult:
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise runtime_error(
                "ValidationError", f"Endpoint {name} of account {backend.account_id} not found."
            )
        state = self._state(backend.account_id, backend.region_name, name)
        with state.changed:
            if state.active is None and endpoint.endpoint_status in ("InService", "Updating"):
                state.changed.wait_for(lambda: state.active is not None, timeout=self.server_start_timeout_s)
            deployment = state.active
            if deployment is None:
                raise runtime_error(
                    "ValidationError",
                    f"Endpoint {name} is not in service (status {endpoint.endpoint_status}).",
                )
            with deployment.lock:
                deployment.inflight += 1
        try:
            variant = self._pick_variant(endpoint, deployment, target_variant)
            headers = {"Content-Type": content_type}
            if accept:
                headers["Accept"] = accept
            if custom_attributes:
                headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
            try:
                status, out, out_type = variant.server.invoke(body, headers, self.invoke_timeout_s)
            except (OSError, urllib.error.URLError) as exc:
                raise runtime_error(
                    "ModelError",
                    f"Received server error (500) from {variant.name}: {exc}",
                    OriginalStatusCode=500,
                    OriginalMessage=str(exc),
                ) from exc
            if status != 200:
                message = out.decode("utf-8", errors="replace")
                raise runtime_error(
                    "ModelError",
                    f"Received {'client' if status < 500 else 'server'} error ({status}) from {variant.name} "
                    f'with message "{message}". '
                    f"See {self._variant_log(name, variant.name)} for more information.",
                    OriginalStatusCode=status,
                    OriginalMessage=message,
                    LogStreamArn=f"arn:aws:logs:{backend.region_name}:{backend.account_id}:log-group:"
                    f"{ENDPOINT_LOG_GROUP_PREFIX}/{name}",
                )
            out_type = out_type or accept or "application/json"
            self._capture.record(
                deployment.capture, name, variant.name, (body, content_type), (out, out_type), inference_id
            )
            return InvokeResult(out, out_type, variant.name)
        finally:
            with deployment.lock:
                deployment.inflight -= 1

    def _variant_log(self, endpoint: str, variant: str) -> Path:
        return self.ws.log_dir / "endpoints" / endpoint / f"{variant}.log"

    @staticmethod
    def _pick_variant(endpoint: Any, deployment: Deployment, target: str | None) -> Variant:
        if target:
            for variant in deployment.variants:
                if variant.name == target:
                    return variant
            raise runtime_error(
                "ValidationError", f"Variant {target} not found for endpoint {endpoint.endpoint_name}."
            )
        weights_by_name = {
            v["VariantName"]: float(v.get("CurrentWeight", 1.0)) for v in endpoint.production_variants or []
        }
        weights = [max(0.0, weights_by_name.get(v.name, 1.0)) for v in deployment.variants]
        if sum(weights) <= 0:
            weights = [1.0] * len(weights)
        return random.choices(deployment.variants, weights=weights)[0]


def _switch_config(endpoint: Any, spec: dict[str, Any], retain: bool) -> None:
    """Point moto's endpoint at the deployed configuration; ``retain`` keeps the current variant weights."""
    previous = {v["VariantName"]: v for v in endpoint.production_variants or []}
    variants = endpoint._process_production_variants(spec["production_variants"])
    if retain:
        for v in variants:
            if v["VariantName"] in previous and "CurrentWeight" in previous[v["VariantName"]]:
                v["CurrentWeight"] = v["DesiredWeight"] = previous[v["VariantName"]]["CurrentWeight"]
    endpoint.production_variants = variants
    endpoint.endpoint_config_name = spec["config"]
    endpoint.data_capture_config = spec["capture"]
