"""``reviewsense serve``: one model artifact behind the SageMaker runtime protocol, on this machine.

A model directory or ``model.tar.gz`` (as a training job writes it) is loaded and served by the very
server the local cloud runs for every endpoint variant (``reviewsense.localcloud.endpoint_server``), in
the foreground, so that an unmodified boto3 ``sagemaker-runtime`` client pointed at it with
``endpoint_url`` gets the answers, headers and errors a SageMaker endpoint gives (as ``mlflow models
serve`` does for MLflow models). Errors a user can fix (no model there, no serving code, a busy port)
become ``OperatorError``; Ctrl-C or SIGTERM stops the server and removes an extracted archive. Requests
are answered as SageMaker answers them, bad ones included: a body over InvokeEndpoint's 6 MB is refused
with SageMaker's 413 before the model sees it, and the handler's client errors (400 no review text or a
body that cannot be read, 406, 415) reach the client as ``ModelError`` with ``OriginalStatusCode``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import TextIO

from reviewsense.errors import OperatorError
from reviewsense.localcloud import endpoint_server

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080  # the port SageMaker's serving containers listen on


def usage(url: str, variant: str) -> str:
    """What the server prints on start: where it listens and how to call it."""
    return f"""ReviewSense model server listening on {url} (variant {variant})
  GET  {url}/ping
  POST {url}/endpoints/<any name>/invocations   (SageMaker runtime: InvokeEndpoint)
  POST {url}/invocations                        (the serving container's protocol)
Call it with boto3:
  import boto3, json
  runtime = boto3.client("sagemaker-runtime", endpoint_url="{url}", region_name="us-east-1",
                         aws_access_key_id="local", aws_secret_access_key="local")
  answer = runtime.invoke_endpoint(EndpointName="reviewsense", ContentType="application/json",
                                   Body=json.dumps({{"instances": ["great dress"]}}))
  print(json.loads(answer["Body"].read()))
Bodies: application/json, application/jsonlines, text/csv (one review per row), text/plain; up to 6 MB.
Bad requests get client errors (ModelError with OriginalStatusCode 400 / 406 / 415; 413 over 6 MB).
Ctrl-C stops it."""


def serve(
    model: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    variant: str = endpoint_server.DEFAULT_VARIANT,
    out: TextIO | None = None,
) -> None:
    """Serve ``model`` (a directory or a ``model.tar.gz``) until Ctrl-C or SIGTERM."""
    stream = out or sys.stdout
    program = os.environ.get("SAGEMAKER_PROGRAM") or endpoint_server.DEFAULT_PROGRAM
    with contextlib.ExitStack() as stack:
        try:
            model_dir = stack.enter_context(endpoint_server.model_dir_of(model))
            handler = endpoint_server.load_handler(model_dir, program)
        except (FileNotFoundError, ValueError, ImportError, RuntimeError) as exc:
            raise OperatorError(f"cannot load the model at {model}: {exc}") from exc
        try:
            server = endpoint_server.make_server(handler, host, port, variant)
        except OSError as exc:
            raise OperatorError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        stack.callback(server.server_close)
        # Ctrl-C and SIGTERM both stop it. SIGINT is installed explicitly: a process started in the background
        # by a non-interactive shell inherits SIGINT ignored, and Python then raises no KeyboardInterrupt.
        for signum in (signal.SIGINT, signal.SIGTERM):
            stack.callback(signal.signal, signum, signal.signal(signum, _interrupt))
        try:  # the URL is printed inside: a Ctrl-C sent as soon as it is read is a clean stop too
            print(usage(f"http://{host}:{server.server_address[1]}", variant), file=stream, flush=True)
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopping the model server", file=stream, flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
