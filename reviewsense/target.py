"""Where a ``reviewsense`` command sends its AWS calls: the local cloud (default) or an AWS stage.

The local cloud advertises itself in ``<home>/endpoint.json``; ``--stage``/``--profile`` select a
real AWS deployment: its names and ARNs are those the deployed functions were given by the stack
(``make deploy``), read from one function's configuration, over the stage's ``.chalice/config.json``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code
from chalicelib.config import Settings
from reviewsense.errors import LocalCloudNotRunningError, StageNotDeployedError
from reviewsense.stageconfig import stage_environment

if TYPE_CHECKING:
    from chalicelib.container import Container

DEFAULT_PORT = 4566


def project_root() -> Path:
    """The checkout this package was installed from (editable installs), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / ".chalice" / "config.json").exists() else Path.cwd()


def local_home() -> Path:
    return Path(os.environ.get("REVIEWSENSE_HOME") or project_root() / ".localcloud")


def read_endpoint_file(home: Path | None = None) -> dict[str, Any] | None:
    path = (home or local_home()) / "endpoint.json"
    if not path.exists():
        return None
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except ValueError:
        return None
    return info


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def local_client(endpoint: str, service: str, region: str = "us-east-1") -> Any:
    """A plain boto3 client for the local cloud at ``endpoint`` (fixed local credentials)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def is_alive(endpoint: str, timeout_s: float = 10.0) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def running_local_cloud(home: Path | None = None) -> dict[str, Any] | None:
    """The advertised endpoint file of the local cloud if that cloud answers, else None."""
    info = read_endpoint_file(home)
    return info if info and is_alive(str(info["endpoint"])) else None


@dataclass(frozen=True)
class Target:
    settings: Settings
    session: Any
    endpoint_url: str | None
    stage: str

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def container(self) -> Container:
        """The services the Lambdas use (``chalicelib``), wired to this target."""
        from chalicelib.container import Container

        return Container(self.settings, self.session)


def deployed_environment(session: Any, stage: str) -> dict[str, str]:
    """The environment the stack gave the stage's functions (bucket, tables, ARNs, images)."""
    name = f"reviewsense-{stage}-pipeline_prepare"
    try:
        config = session.client("lambda").get_function_configuration(FunctionName=name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise StageNotDeployedError(
                f"{name} does not exist in {session.region_name}: deploy with `make deploy STAGE={stage}`"
            ) from exc
        raise
    return {k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()}


def stage_settings(
    stage: str, endpoint_url: str | None, region: str, deployed: dict[str, str] | None = None
) -> Settings:
    env = {**stage_environment(project_root(), stage), **(deployed or {})}
    env["AWS_REGION"] = region
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    return Settings.from_env(env)


def resolve(stage: str = "local", profile: str | None = None, home: Path | None = None) -> Target:
    """Build the boto3 session and settings for a command."""
    import boto3

    if stage == "local" and profile is None:
        info = running_local_cloud(home)
        if info is None:
            raise LocalCloudNotRunningError(
                "the local cloud is not running: start it with `reviewsense local up` (or `make demo`)"
            )
        endpoint = str(info["endpoint"])
        region = str(info.get("region", "us-east-1"))
        # botocore reads AWS_ENDPOINT_URL too: awswrangler's internal clients then reach the local cloud.
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
        )
        return Target(stage_settings(stage, endpoint, region), session, endpoint, stage)
    session = boto3.session.Session(profile_name=profile)
    region = session.region_name or "us-east-1"
    return Target(
        stage_settings(stage, None, region, deployed_environment(session, stage)), session, None, stage
    )
