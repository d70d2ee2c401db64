"""One SageMaker endpoint variant, served locally the way the PyTorch serving container serves it.

The local cloud starts this file as its own process for every production variant of an endpoint, so
that a model's memory (torch, transformers) is released when the endpoint goes away and a crashing
handler cannot take the local cloud down with it; ``reviewsense serve`` runs the same server in the
foreground for one model artifact. It loads the model exactly as the SageMaker PyTorch inference
toolkit does: ``<model_dir>/code/<SAGEMAKER_PROGRAM>`` (default ``inference.py``) is imported with
``code/`` on ``sys.path`` and its ``model_fn`` / ``input_fn`` / ``predict_fn`` / ``output_fn`` (or a
single ``transform_fn``) are called per request. It speaks two protocols on one port:

* the container protocol (``GET /ping``, ``POST /invocations``), which the local cloud's
  ``InvokeEndpoint`` forwards to, with the SageMaker inference toolkit's rules (``sagemaker_inference``
  ``Transformer.transform``, which the PyTorch serving container runs): a body whose Content-Type is
  exactly ``application/json`` or ``text/csv`` is decoded as UTF-8 before the handler sees it (a body
  that is not UTF-8 is then a 500, as there); an error that is a ``BaseInferenceToolkitError`` is
  answered with its ``status_code`` and ``message`` (``training/inference.py`` raises 400 / 406 / 415
  that way), any other exception with 500 (a ``status_code`` attribute alone does not count there);
* the runtime protocol (``POST /endpoints/<any name>/invocations``), what an unmodified boto3
  ``sagemaker-runtime`` client sends: the answer carries ``x-Amzn-Invoked-Production-Variant``, and a
  container error becomes SageMaker's ``ModelError`` (HTTP 424, ``OriginalStatusCode`` /
  ``OriginalMessage``) as botocore parses it. A body over InvokeEndpoint's limit (``MAX_PAYLOAD_BYTES``,
  botocore's ``BodyBlob`` ``max``) is refused before it reaches the model, as SageMaker refuses it:
  HTTP 413 without an error type, which botocore raises as a ``ClientError`` with code ``"413"``.

Standard library only: it must start in any interpreter that can run the handler.

Run: ``python endpoint_server.py --model-dir DIR_OR_MODEL_TAR_GZ [--port-file FILE]``. The model is
loaded before the socket is bound; the chosen port is then written to ``--port-file`` (atomically), so
the parent knows the variant is ready when the file appears, and that it failed when the process exits
first.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

log = logging.getLogger("endpoint_server")

DEFAULT_PROGRAM = "inference.py"
DEFAULT_ACCEPT = "application/json"
#: The variant name the SageMaker SDK gives a single-model endpoint.
DEFAULT_VARIANT = "AllTraffic"
#: ``InvokeEndpoint``'s request URI in botocore's model of ``sagemaker-runtime``.
RUNTIME_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
#: InvokeEndpoint's largest request body: 6 MB (botocore's sagemaker-runtime model, ``BodyBlob`` ``max``).
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: The content types the inference toolkit decodes as UTF-8 itself (``sagemaker_inference.content_types``).
TOOLKIT_UTF8_TYPES = ("application/json", "text/csv")
#: The toolkit's error class: only its subclasses keep their ``status_code`` (matched by name, so the
#: stand-in a handler defines where ``sagemaker_inference`` is not installed counts too).
TOOLKIT_ERROR = "BaseInferenceToolkitError"


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a handler function with as many of ``args`` as it declares (the toolkit appends a context)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return fn(*args)
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return fn(*args)
    positional = sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    return fn(*args[:positional])


def _default_input_fn(body: bytes, content_type: str) -> Any:
    if content_type.split(";", maxsplit=1)[0].strip().lower() in ("application/json", ""):
        return json.loads(body.decode("utf-8"))
    return body


def _default_predict_fn(data: Any, model: Any) -> Any:
    return model(data)


def _default_output_fn(prediction: Any, accept: str) -> Any:
    return json.dumps(prediction)


class Handler:
    """The user module's serving functions, with the toolkit's fall-backs where one is missing."""

    def __init__(self, module: ModuleType, model_dir: Path) -> None:
        model_fn = getattr(module, "model_fn", None)
        if model_fn is None:
            raise RuntimeError(f"{module.__file__} defines no model_fn: the serving container needs one")
        self.module = module
        self.model = _call(model_fn, str(model_dir), None)
        self.transform_fn: Callable[..., Any] | None = getattr(module, "transform_fn", None)
        self.input_fn: Callable[..., Any] = getattr(module, "input_fn", _default_input_fn)
        self.predict_fn: Callable[..., Any] = getattr(module, "predict_fn", _default_predict_fn)
        self.output_fn: Callable[..., Any] = getattr(module, "output_fn", _default_output_fn)
        self.lock = threading.Lock()  # one worker, like a single-model TorchServe worker

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        data: bytes | str = body.decode("utf-8") if content_type in TOOLKIT_UTF8_TYPES else body
        with self.lock:
            if self.transform_fn is not None:
                result = _call(self.transform_fn, self.model, data, content_type, accept, None)
            else:
                inputs = _call(self.input_fn, data, content_type, None)
                prediction = _call(self.predict_fn, inputs, self.model, None)
                result = _call(self.output_fn, prediction, accept, None)
        response_type = accept
        if isinstance(result, tuple):  # (body, content_type), as the toolkit accepts
            result, response_type = result[0], str(result[1])
        if isinstance(result, str):
            return result.encode("utf-8"), response_type
        if isinstance(result, bytes | bytearray):
            return bytes(result), response_type
        return json.dumps(result).encode("utf-8"), response_type


def is_toolkit_error(exc: BaseException) -> bool:
    """Whether the toolkit answers ``exc`` with its own status (it is a ``BaseInferenceToolkitError``)."""
    return any(cls.__name__ == TOOLKIT_ERROR for cls in type(exc).__mro__)


def handler_status(exc: BaseException) -> int:
    """The status the inference toolkit answers for a handler error: a ``BaseInferenceToolkitError``'s
    ``status_code`` (``training/inference.py``: 400 bad body, 406 accept, 415 content type); 500 otherwise."""
    status = getattr(exc, "status_code", None) if is_toolkit_error(exc) else None
    return status if isinstance(status, int) and 400 <= status <= 599 else 500


def handler_message(exc: BaseException) -> str:
    """The body the toolkit answers with: a toolkit error's ``message`` (the container appends the
    traceback, which goes to the log here), else ``<type>: <text>`` of the exception."""
    message = getattr(exc, "message", None)
    if is_toolkit_error(exc) and isinstance(message, str):
        return message
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def model_dir_of(path: Path) -> Iterator[Path]:
    """The model directory of ``path``: the directory itself, or a ``model.tar.gz`` extracted (as
    SageMaker extracts it into ``/opt/ml/model``) into a temporary directory removed afterwards."""
    if path.is_dir():
        yield path
        return
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path} (give a model directory or a model.tar.gz)")
    if not path.name.endswith(ARCHIVE_SUFFIXES) or not tarfile.is_tarfile(path):
        raise ValueError(f"{path} is neither a directory nor a model.tar.gz")
    target = Path(tempfile.mkdtemp(prefix="reviewsense-model-"))
    try:
        with tarfile.open(path, "r:*") as tar:
            tar.extractall(target, filter="data")
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)


def load_handler(model_dir: Path, program: str = DEFAULT_PROGRAM) -> Handler:
    code_dir = model_dir / "code"
    script = code_dir / program
    if not script.is_file():
        raise FileNotFoundError(f"no serving code at {script} (model.tar.gz must contain code/{program})")
    if (code_dir / "requirements.txt").exists():
        log.warning(
            "code/requirements.txt is not installed locally; the local interpreter's packages are used"
        )
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location(Path(program).stem, script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return Handler(module, model_dir)


def model_error(status: int, message: str, variant: str) -> tuple[int, dict[str, str], bytes]:
    """SageMaker runtime's answer when the container answered ``status``: ``ModelError``, HTTP 424."""
    kind = "client" if status < 500 else "server"
    body = {
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if status < 500 else "INTERNAL_FAILURE_FROM_MODEL",
        "Message": f'Received {kind} error ({status}) from {variant} with message "{message}". '
        "See the server's log for more information.",
        "OriginalStatusCode": status,
        "OriginalMessage": message,
    }
    return 424, {"x-amzn-ErrorType": "ModelError"}, json.dumps(body).encode()


def service_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    """An error of the runtime service itself (rest-json: the code in ``x-amzn-ErrorType``)."""
    return status, {"x-amzn-ErrorType": code}, json.dumps({"message": message}).encode()


def payload_too_large(length: int) -> tuple[int, dict[str, str], bytes] | None:
    """SageMaker's answer to a body over InvokeEndpoint's limit: HTTP 413 and no error type, which
    botocore raises as ``ClientError`` code ``"413"`` ("HTTP content length exceeded 6291456 bytes.");
    ``None`` for a body within it."""
    if length <= MAX_PAYLOAD_BYTES:
        return None
    message = f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes."
    return 413, {}, json.dumps({"message": message}).encode()


def make_server(
    handler: Handler, host: str = "127.0.0.1", port: int = 0, variant: str = DEFAULT_VARIANT
) -> ThreadingHTTPServer:
    default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", DEFAULT_ACCEPT)

    def invoke(body: bytes, content_type: str, accept: str | None) -> tuple[int, bytes, str]:
        """The container's answer: (status, body, content type)."""
        if not accept or accept == "*/*":
            accept = default_accept
        try:
            out, out_type = handler.invoke(body, content_type, accept)
        except Exception as exc:
            status = handler_status(exc)
            if status < 500:
                log.warning("invocation refused (%d): %s", status, handler_message(exc))
            else:
                log.error("invocation failed:\n%s", traceback.format_exc())
            return status, handler_message(exc).encode(), "text/plain"
        return 200, out, out_type

    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str = "text/plain",
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_error(self, error: tuple[int, dict[str, str], bytes]) -> None:
            status, headers, body = error
            self._send(status, body, "application/json", headers)

        def _discard(self, length: int) -> None:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 20))
                if not chunk:
                    break
                length -= len(chunk)

        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/ping":
                self._send(200, b"")
            else:
                self._send(404, b"not found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            path = self.path.split("?")[0]
            too_large = payload_too_large(length)
            if too_large is not None and RUNTIME_PATH.match(path):
                self._discard(length)  # read it all, so the client sees the answer, not a reset
                self._send_error(too_large)
                return
            body = self.rfile.read(length) if length else b""
            if path == "/invocations":  # the container protocol
                status, out, out_type = invoke(
                    body, self.headers.get("Content-Type") or "application/json", self.headers.get("Accept")
                )
                self._send(status, out, out_type)
                return
            match = RUNTIME_PATH.match(path)
            if match is None:
                self._send_error(
                    service_error(404, "UnknownOperationException", f"no operation at POST {path}")
                )
                return
            self._invoke_endpoint(unquote(match.group(1)), body)

        def _invoke_endpoint(self, endpoint: str, body: bytes) -> None:
            """``InvokeEndpoint`` as the SageMaker runtime answers it, for the one variant served here."""
            target = self.headers.get("X-Amzn-SageMaker-Target-Variant")
            if target and target != variant:
                message = f"The variant {target} is not valid for endpoint {endpoint} (it serves {variant})."
                self._send_error(service_error(400, "ValidationError", message))
                return
            status, out, out_type = invoke(
                body,
                self.headers.get("Content-Type") or "application/octet-stream",
                self.headers.get("Accept"),
            )
            if status != 200:
                self._send_error(model_error(status, out.decode("utf-8", errors="replace"), variant))
                return
            self._send(200, out, out_type, {"x-Amzn-Invoked-Production-Variant": variant})

    return ThreadingHTTPServer((host, port), RequestHandler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--model-dir",
        "--model",
        dest="model",
        required=True,
        help="the model: a directory (SageMaker: /opt/ml/model) or its model.tar.gz",
    )
    parser.add_argument("--port-file", help="written with the port once the model is loaded")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--variant", default=DEFAULT_VARIANT, help="the production variant's name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    program = os.environ.get("SAGEMAKER_PROGRAM") or DEFAULT_PROGRAM
    with model_dir_of(Path(args.model)) as model_dir:
        handler = load_handler(model_dir, program)
        server = make_server(handler, args.host, args.port, args.variant)
        port = int(server.server_address[1])
        if args.port_file:
            port_file = Path(args.port_file)
            tmp = port_file.with_name(port_file.name + ".tmp")
            tmp.write_text(str(port))
            os.replace(tmp, port_file)
            parent = os.getppid()

            def exit_with_parent() -> None:  # never outlive the local cloud, even when it is killed
                while os.getppid() == parent:
                    time.sleep(1.0)
                os._exit(0)

            threading.Thread(target=exit_with_parent, daemon=True).start()
        log.info("serving %s on %s:%d", args.model, args.host, port)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
