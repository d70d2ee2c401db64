"""``reviewsense serve`` answers an unmodified boto3 ``sagemaker-runtime`` client as an endpoint does.

The server is started as the user starts it (``reviewsense serve --model ... --port 0``, a process of
its own) with the tiny linear model of ``reviewsense.localmodel`` around the project's
``training/inference.py``, given as the ``model.tar.gz`` a training job writes and as its extracted
directory. boto3 is pointed at it with ``endpoint_url`` and dummy credentials, nothing else.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from reviewsense import cli
from reviewsense.localcloud import endpoint_server
from reviewsense.localmodel import model_archive
from tests.helpers.paths import ROOT

URL_LINE = re.compile(r"listening on (http://127\.0\.0\.1:\d+) \(variant (\S+)\)")


@contextmanager
def served(model: Path, tmp: Path, *extra: str) -> Iterator[tuple[str, list[str]]]:
    """``reviewsense serve`` on a free port: (its URL, the lines it printed, filled in on exit)."""
    tmp.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "reviewsense.cli", "serve", "--model", str(model), "--port", "0", *extra],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    printed = [proc.stdout.readline()]
    match = URL_LINE.search(printed[0])
    try:
        assert match, printed[0] + proc.stdout.read()
        yield match.group(1), printed
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = proc.communicate(timeout=30)
        printed += rest.splitlines()
        printed.append(f"exit {proc.returncode}")


def runtime(url: str) -> Any:
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def labels(answer: dict[str, Any]) -> list[str]:
    return [p["label"] for p in json.loads(answer["Body"].read())["predictions"]]


def http(method: str, url: str, body: bytes | None = None, content_type: str = "") -> tuple[int, bytes]:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read()


def test_a_model_tar_gz_answers_boto3_like_an_endpoint(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(model_archive(ROOT))
    with served(archive, tmp_path / "tmp") as (url, printed):
        assert printed[0].strip() == f"ReviewSense model server listening on {url} (variant AllTraffic)"
        client = runtime(url)
        answer = client.invoke_endpoint(
            EndpointName="reviewsense",
            ContentType="application/json",
            Accept="application/json",
            InferenceId="req-1",
            Body=json.dumps({"instances": ["terrible", "great"]}),
        )
        assert answer["ContentType"] == "application/json"
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        assert labels(answer) == ["negative", "positive"]
        # Any endpoint name, and the variant it serves as the target, reach the same model.
        answer = client.invoke_endpoint(
            EndpointName="another-name",
            TargetVariant="AllTraffic",
            ContentType="application/json",
            Body='"great"',
        )
        assert labels(answer) == ["positive"]

        with pytest.raises(ClientError) as rejected:  # the handler rejects the content type
            client.invoke_endpoint(EndpointName="reviewsense", ContentType="application/x-foo", Body=b"great")
        error = rejected.value.response
        assert error["Error"]["Code"] == "ModelError"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
        assert error["OriginalStatusCode"] == 415  # a toolkit error: the container answers its status
        assert error["OriginalMessage"].startswith(
            "unsupported content type 'application/x-foo': send one of"
        )
        assert error["Error"]["Message"].startswith(
            "Received client error (415) from AllTraffic with message"
        )

        with pytest.raises(ClientError) as wrong_variant:
            client.invoke_endpoint(
                EndpointName="reviewsense",
                TargetVariant="challenger",
                ContentType="application/json",
                Body="[]",
            )
        assert wrong_variant.value.response["Error"]["Code"] == "ValidationError"
        assert wrong_variant.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

        assert http("GET", f"{url}/ping") == (200, b"")
        status, body = http("POST", f"{url}/invocations", b'["terrible"]', "application/json")
        assert status == 200 and [p["label"] for p in json.loads(body)["predictions"]] == ["negative"]
        assert http("POST", f"{url}/invocations", b"x", "application/x-foo")[0] == 415  # the container's own
        assert http("POST", f"{url}/endpoints/a/b/invocations", b"{}", "application/json")[0] == 404
        assert http("GET", f"{url}/endpoints", None)[0] == 404
    assert printed[-2:] == ["stopping the model server", "exit 0"]
    assert list((tmp_path / "tmp").iterdir()) == []  # the extracted archive is gone


def test_a_model_directory_is_served_under_the_variant_name_given(tmp_path: Path) -> None:
    model = tmp_path / "model"
    with tarfile.open(fileobj=io.BytesIO(model_archive(ROOT)), mode="r:gz") as tar:
        tar.extractall(model, filter="data")
    with served(model, tmp_path / "tmp", "--variant", "champion") as (url, _):
        answer = runtime(url).invoke_endpoint(
            EndpointName="x", ContentType="application/jsonlines", Body='"terrible"\n"great"\n'
        )
        assert answer["InvokedProductionVariant"] == "champion"
        assert labels(answer) == ["negative", "positive"]
    assert sorted(p.name for p in model.iterdir()) == [
        "code",
        "decision.json",
        "label_map.json",
        "linear_model.json",
    ]


STATUS_HANDLER = """
class BaseInferenceToolkitError(Exception):  # stands in for sagemaker_inference.errors' class
    def __init__(self, status_code, message, phrase):
        super().__init__(status_code, message, phrase)
        self.status_code, self.message, self.phrase = status_code, message, phrase


class Unsupported(BaseInferenceToolkitError):
    def __init__(self, message):
        super().__init__(415, message, message)


class CarriesAStatus(Exception):
    status_code = 400


def model_fn(model_dir):
    return None


def transform_fn(model, body, content_type, accept):
    if content_type == "application/x-status":
        raise CarriesAStatus("not a toolkit error")
    if content_type != "text/plain":
        raise Unsupported(f"cannot read {content_type}")
    return body.upper(), "text/plain"
"""


@contextmanager
def handler_server(tmp_path: Path, source: str) -> Iterator[str]:
    """The endpoint server around the handler ``source``, in this process: its URL."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "status_handler.py").write_text(source)
    server = endpoint_server.make_server(endpoint_server.load_handler(tmp_path, "status_handler.py"), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_handler_error_keeps_its_status_only_when_it_is_the_toolkits_error(tmp_path: Path) -> None:
    """The toolkit's Transformer answers a BaseInferenceToolkitError with its status_code and message, and
    any other exception with 500, even one with a status_code attribute (it used to keep that status)."""
    with handler_server(tmp_path, STATUS_HANDLER) as url:
        client = runtime(url)
        answer = client.invoke_endpoint(EndpointName="e", ContentType="text/plain", Body=b"ok")
        assert (answer["Body"].read(), answer["ContentType"]) == (b"OK", "text/plain")
        with pytest.raises(ClientError) as rejected:
            client.invoke_endpoint(EndpointName="e", ContentType="application/json", Body=b"{}")
        assert rejected.value.response["Error"]["Code"] == "ModelError"
        assert rejected.value.response["OriginalStatusCode"] == 415
        assert rejected.value.response["OriginalMessage"] == "cannot read application/json"
        assert http("POST", f"{url}/invocations", b"{}", "application/json") == (
            415,
            b"cannot read application/json",
        )
        with pytest.raises(ClientError) as crashed:
            client.invoke_endpoint(EndpointName="e", ContentType="application/x-status", Body=b"{}")
        assert crashed.value.response["OriginalStatusCode"] == 500
        assert crashed.value.response["OriginalMessage"] == "CarriesAStatus: not a toolkit error"


def test_serve_without_a_model_is_an_operator_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--model", str(tmp_path / "missing.tar.gz"), "--port", "0"]) == 1
    assert capsys.readouterr().err.startswith(
        f"error: cannot load the model at {tmp_path / 'missing.tar.gz'}: "
    )
    (tmp_path / "empty").mkdir()
    assert cli.main(["serve", "--model", str(tmp_path / "empty"), "--port", "0"]) == 1
    assert "code/inference.py" in capsys.readouterr().err


def test_serve_is_listed_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert re.search(r"\n\s+serve\s+serve one model artifact", capsys.readouterr().out)


def model_client_error(error: ClientError) -> tuple[int, str]:
    """(OriginalStatusCode, OriginalMessage) of a ModelError, as SageMaker wraps a container's 4xx."""
    response = error.response
    assert response["Error"]["Code"] == "ModelError", response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    return int(response["OriginalStatusCode"]), str(response["OriginalMessage"])


def test_bad_requests_get_client_errors_never_a_made_up_answer(tmp_path: Path) -> None:
    """An unmodified boto3 client against `reviewsense serve`: every body without a review is a 400 (it
    used to score {"foo": 1} as an empty review, and answer 500 to broken JSON and null texts)."""
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(model_archive(ROOT))
    with served(archive, tmp_path / "tmp") as (url, _):
        client = runtime(url)

        def refused(
            body: bytes | str, content_type: str = "application/json", **extra: str
        ) -> tuple[int, str]:
            with pytest.raises(ClientError) as rejected:
                client.invoke_endpoint(EndpointName="e", ContentType=content_type, Body=body, **extra)
            return model_client_error(rejected.value)

        assert refused('{"foo": 1}') == (
            400,
            "instance 1 has no review text: expected a key 'text' (keys given: 'foo')",
        )
        assert refused('{"instances": []}') == (400, "the request holds no review to score")
        assert refused('{"instances": ["great", {"text": null}]}') == (
            400,
            "instance 2: 'text' must be a string, not null",
        )
        assert refused('{"instances": ["great", "  "]}') == (400, "instance 2 has an empty review text")
        status, message = refused('{"instances": ["great"')
        assert status == 400 and message.startswith("the body is not valid JSON: ")
        status, message = refused('"great"\n{oops\n', "application/jsonlines")
        assert status == 400 and message.startswith("line 2 is not valid JSON: ")
        status, message = refused("caf\u00e9 ok".encode("latin-1"), "text/plain")
        assert status == 400 and message.startswith("the body is not valid utf-8: byte 3 (b'\\xe9')")
        # Exactly application/json (or text/csv): the toolkit decodes the body as UTF-8 before the handler
        # runs, and its UnicodeDecodeError is a 500 on SageMaker; the same here.
        status, message = refused('{"text": "caf\u00e9"}'.encode("latin-1"))
        assert status == 500 and message.startswith(
            "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9"
        )
        status, message = refused(
            '{"text": "caf\u00e9"}'.encode("latin-1"), "application/json; charset=utf-8"
        )
        assert status == 400 and message.startswith("the body is not valid utf-8")
        assert refused(b"great", "application/octet-stream")[0] == 415
        assert refused('"great"', Accept="image/png") == (
            406,
            "unsupported accept type 'image/png': ask for application/json, application/jsonlines "
            "or text/csv",
        )


def test_csv_reviews_are_scored_one_per_row_with_csv_quoting(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(model_archive(ROOT))
    with served(archive, tmp_path / "tmp") as (url, _):
        client = runtime(url)
        body = 'title,text\n"Awful, truly","terrible\nterrible, terrible"\n\nGreat,"great, ""great"""\n'
        answer = client.invoke_endpoint(EndpointName="e", ContentType="text/csv", Body=body)
        assert labels(answer) == ["negative", "positive"]
        answer = client.invoke_endpoint(
            EndpointName="e", ContentType="text/csv", Accept="text/csv", Body='"terrible, terrible"\n'
        )
        assert answer["ContentType"] == "text/csv"
        rows = answer["Body"].read().decode().splitlines()
        assert len(rows) == 1 and rows[0].split(",")[0] == "negative" and len(rows[0].split(",")) == 5
        with pytest.raises(ClientError) as rejected:
            client.invoke_endpoint(EndpointName="e", ContentType="text/csv", Body="a,b,c\n")
        assert model_client_error(rejected.value) == (
            400,
            "CSV row ending at line 1 has 3 columns: expected text, or title,text",
        )


def test_a_body_over_six_mb_is_refused_as_sagemaker_refuses_it(tmp_path: Path) -> None:
    """botocore's sagemaker-runtime model caps Body at 6 MB; SageMaker answers a larger one with HTTP 413
    before any model sees it. The client does not check the cap itself, so the server must."""
    limit = endpoint_server.MAX_PAYLOAD_BYTES
    assert limit == runtime_body_max() == 6291456
    (tmp_path / "model").mkdir()
    with handler_server(tmp_path / "model", STATUS_HANDLER) as url:
        client = runtime(url)
        with pytest.raises(ClientError) as rejected:
            client.invoke_endpoint(EndpointName="e", ContentType="text/plain", Body=b"x" * (limit + 1))
        error = rejected.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
        assert error["Error"]["Code"] == "413"
        assert error["Error"]["Message"] == "HTTP content length exceeded 6291456 bytes."
        answer = client.invoke_endpoint(EndpointName="e", ContentType="text/plain", Body=b"x" * limit)
        assert len(answer["Body"].read()) == limit  # at the limit: served
        # the connection stays usable after a refused body
        assert (
            client.invoke_endpoint(EndpointName="e", ContentType="text/plain", Body=b"ok")["Body"].read()
            == b"OK"
        )


def runtime_body_max() -> int:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    shape = model.operation_model("InvokeEndpoint").input_shape.members["Body"]
    return int(shape.metadata["max"])


def test_answers_leave_without_waiting_for_nagle(tmp_path: Path) -> None:
    """Headers and body are two writes: with Nagle's algorithm on, every answer waited for the client's
    delayed ACK (about 40 ms a request on Linux, the same for the local cloud's variant servers)."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "status_handler.py").write_text(STATUS_HANDLER)
    server = endpoint_server.make_server(endpoint_server.load_handler(tmp_path, "status_handler.py"), port=0)
    try:
        assert server.RequestHandlerClass.disable_nagle_algorithm is True  # type: ignore[attr-defined]
    finally:
        server.server_close()


def test_ctrl_c_stops_it_even_when_started_with_sigint_ignored(tmp_path: Path) -> None:
    """A non-interactive shell starts background jobs with SIGINT ignored (CI, `make test &`): Python then
    raises no KeyboardInterrupt by itself, so the server installs its own handler."""
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(model_archive(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "reviewsense.cli", "serve", "--model", str(archive), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509  the case under test
    )
    assert proc.stdout is not None
    assert URL_LINE.search(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    try:
        rest, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert (proc.returncode, rest.splitlines()[-1:]) == (0, ["stopping the model server"])
