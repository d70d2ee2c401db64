"""The serving handler refuses what it cannot score with a client error, and reads CSV.

``input_fn`` / ``output_fn`` of ``training/inference.py`` alone (no model): every body without a review
is a ``BadRequestError`` (400) naming what is wrong, never an empty review scored; an unknown Content-Type
is 415 and an unknown Accept 406; ``text/csv`` is one review per row with RFC 4180 quoting. The errors
carry what the SageMaker inference toolkit's ``Transformer.handle_error`` reads (``status_code``,
``message``, ``phrase``) and are its ``BaseInferenceToolkitError`` when the toolkit is installed.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import ROOT
from training import inference
from training.inference import BadRequestError, NotAcceptableError, RequestError, UnsupportedContentTypeError


def refused(body: str | bytes, content_type: str = "application/json") -> RequestError:
    with pytest.raises(RequestError) as raised:
        inference.input_fn(body, content_type)
    return raised.value


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        (
            '{"foo": 1}',
            "missing_text",
            "instance 1 has no review text: expected a key 'text' (keys given: 'foo')",
        ),
        ("{}", "missing_text", "instance 1 has no review text: expected a key 'text' (keys given: none)"),
        ('{"instances": []}', "no_instances", "the request holds no review to score"),
        ("[]", "no_instances", "the request holds no review to score"),
        ('{"text": null}', "missing_text", "instance 1: 'text' must be a string, not null"),
        ('{"text": NaN}', "missing_text", "instance 1: 'text' must be a string, not a number"),
        ('{"text": ""}', "missing_text", "instance 1 has an empty review text"),
        ('["great", "   "]', "missing_text", "instance 2 has an empty review text"),
        ('{"text": 5}', "invalid_text", "instance 1: 'text' must be a string, not a number"),
        ('{"text": ["a"]}', "invalid_text", "instance 1: 'text' must be a string, not a list"),
        ('{"text": "ok", "title": 3}', "invalid_text", "instance 1: 'title' must be a string, not a number"),
        ('{"review_text": null}', "missing_text", "instance 1: 'review_text' must be a string, not null"),
        (
            '{"instances": ["ok", null]}',
            "invalid_text",
            "instance 2 is null: expected a string or an object with 'text'",
        ),
        (
            '{"instances": [42]}',
            "invalid_text",
            "instance 1 is a number: expected a string or an object with 'text'",
        ),
        ('{"instances": "great"}', "invalid_json", "'instances' must be a list, not a string"),
        (
            "42",
            "invalid_json",
            "the body is a number: expected {'instances': [...]}, a list, an object or a string",
        ),
        (
            "null",
            "invalid_json",
            "the body is null: expected {'instances': [...]}, a list, an object or a string",
        ),
    ],
)
def test_a_json_body_without_review_text_is_a_400_naming_the_problem(
    body: str, reason: str, message: str
) -> None:
    error = refused(body)
    assert isinstance(error, BadRequestError)
    assert (error.status_code, error.reason, error.message, str(error)) == (400, reason, message, message)
    assert error.phrase == message  # the toolkit's HTTP reason phrase


@pytest.mark.parametrize(
    "body", ["{oops", '{"instances": ["a"]', "", "   ", "'single quotes'", '{"a": 1} {"b": 2}']
)
def test_invalid_json_is_a_400(body: str) -> None:
    error = refused(body)
    assert (error.status_code, error.reason) == (400, "invalid_json")
    assert error.message.startswith("the body is not valid JSON: ")


def test_invalid_json_lines_name_the_line() -> None:
    error = refused('{"text": "a"}\n\n{broken\n', "application/jsonlines")
    assert (error.status_code, error.reason) == (400, "invalid_json")
    assert error.message.startswith("line 3 is not valid JSON: ")
    assert refused('{"text": "a"}\n{"foo": 1}\n', "application/jsonlines").message.startswith(
        "instance 2 has no review text"
    )
    assert refused("\n\n", "application/x-jsonlines").reason == "no_instances"


@pytest.mark.parametrize(
    ("body", "content_type", "start"),
    [
        (b'{"text": "caf\xe9"}', "application/json", "the body is not valid utf-8: byte 13 (b'\\xe9')"),
        (b"\xff\xfegreat", "text/plain", "the body is not valid utf-8: byte 0 (b'\\xff')"),
        (b'"caf\xc3"', "application/jsonlines", "the body is not valid utf-8: byte 4 (b'\\xc3')"),
        (b"a,caf\xe9\n", "text/csv; charset=utf-8", "the body is not valid utf-8: byte 5 (b'\\xe9')"),
        (b"\x80", "text/plain; charset=us-ascii", "the body is not valid ascii: byte 0 (b'\\x80')"),
    ],
)
def test_a_body_that_is_not_valid_in_its_charset_is_a_400(body: bytes, content_type: str, start: str) -> None:
    error = refused(body, content_type)
    assert (error.status_code, error.reason) == (400, "bad_encoding")
    assert error.message.startswith(start)


def test_a_declared_charset_is_honoured_and_a_bom_ignored() -> None:
    assert inference.input_fn("café".encode("latin-1"), "text/plain; charset=ISO-8859-1") == ["café"]
    assert inference.input_fn(b'\xef\xbb\xbf{"text": "caf\xc3\xa9"}', "application/json") == [
        {"text": "café"}
    ]
    assert inference.input_fn('\ufeff"great"', "application/json") == ["great"]  # decoded by the toolkit
    error = refused(b"great", "text/plain; charset=klingon")
    assert (error.status_code, error.reason) == (415, "unsupported_content_type")


@pytest.mark.parametrize(
    "content_type", ["application/x-foo", "application/octet-stream", "image/png", "text/html"]
)
def test_an_unsupported_content_type_is_a_415(content_type: str) -> None:
    error = refused(b"great", content_type)
    assert isinstance(error, UnsupportedContentTypeError)
    assert error.status_code == 415
    assert error.message == (
        f"unsupported content type {content_type!r}: send one of application/json, application/jsonlines, "
        "text/csv, text/plain"
    )


def test_csv_is_one_review_per_row_with_csv_quoting() -> None:
    rows = [
        ["Awful, truly", 'It said "one size"\nand lied, twice'],
        ["", "plain"],
        ["Great", """ quotes "" and, commas """],
    ]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    body = "title,text\r\n" + out.getvalue() + "\r\n"
    assert inference.input_fn(body, "text/csv") == [{"title": t, "text": x} for t, x in rows]
    # one column is the text; a header is optional ("text", or "title,text", any case)
    assert inference.input_fn('"a, b"\n"c\nd"\n', "text/csv") == [
        {"title": "", "text": "a, b"},
        {"title": "", "text": "c\nd"},
    ]
    assert inference.input_fn("TEXT\nhello\n", "text/csv; charset=utf-8") == [{"title": "", "text": "hello"}]
    assert inference.input_fn(" Title , Text \nT,hello\n", "text/csv") == [{"title": "T", "text": "hello"}]
    assert inference.input_fn(b"caf\xc3\xa9,ok\n", "text/csv") == [{"title": "café", "text": "ok"}]


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        ("a,b,c\n", "invalid_csv", "CSV row ending at line 1 has 3 columns: expected text, or title,text"),
        (
            'ok\n"x\ny",b,c\n',
            "invalid_csv",
            "CSV row ending at line 3 has 3 columns: expected text, or title,text",
        ),
        ("title,text\nT,\n", "missing_text", "CSV row ending at line 2 has an empty review text"),
        ("title,text\n", "no_instances", "the request holds no review to score"),
        ("\n\n", "no_instances", "the request holds no review to score"),
        ('"never closed\n', "invalid_csv", "the body is not valid CSV at line 1: unexpected end of data"),
        ('"a"b\n', "invalid_csv", "the body is not valid CSV at line 1: ',' expected after '\"'"),
    ],
)
def test_bad_csv_is_a_400(body: str, reason: str, message: str) -> None:
    error = refused(body, "text/csv")
    assert (error.status_code, error.reason, error.message) == (400, reason, message)


def test_text_plain_is_one_review_per_line() -> None:
    assert inference.input_fn("great\n\n  \nawful\n", "text/plain") == ["great", "awful"]
    assert refused(" \n", "text/plain").reason == "no_instances"


def test_the_accepted_shapes_are_unchanged() -> None:
    body = {"instances": ["great", {"title": "Nope", "text": "bad", "feedback_id": "f-1"}]}
    assert inference.input_fn(json.dumps(body)) == body["instances"]
    assert inference.input_fn('{"inputs": ["a", "b"]}') == ["a", "b"]
    assert inference.input_fn('{"inputs": "a"}') == [{"inputs": "a"}]
    assert inference.input_fn('"a"') == ["a"]


PREDICTIONS: list[dict[str, Any]] = [
    {
        "label": "negative",
        "label_id": 0,
        "score": 0.75,
        "probabilities": {"negative": 0.75, "neutral": 0.125, "positive": 0.125},
    },
    {
        "label": "positive",
        "label_id": 2,
        "score": 0.5,
        "probabilities": {"negative": 0.25, "neutral": 0.25, "positive": 0.5},
    },
]


def test_output_fn_writes_json_json_lines_or_csv_and_refuses_other_types_with_406() -> None:
    for accept in ("application/json", "*/*", "application/*", "", "text/html, application/json;q=0.9"):
        assert json.loads(inference.output_fn(PREDICTIONS, accept)) == {"predictions": PREDICTIONS}
    lines = inference.output_fn(PREDICTIONS, "application/jsonlines").splitlines()
    assert [json.loads(line) for line in lines] == PREDICTIONS
    assert (
        inference.output_fn(PREDICTIONS, "text/csv")
        == "negative,0.75,0.75,0.125,0.125\npositive,0.5,0.25,0.25,0.5\n"
    )
    with pytest.raises(NotAcceptableError) as raised:
        inference.output_fn(PREDICTIONS, "image/png")
    assert (raised.value.status_code, raised.value.reason) == (406, "unsupported_accept")
    assert raised.value.message == (
        "unsupported accept type 'image/png': ask for application/json, application/jsonlines or text/csv"
    )


def test_the_errors_are_the_toolkits_own_class_when_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the serving container ``sagemaker_inference`` is importable: its Transformer answers only a
    ``BaseInferenceToolkitError`` with the error's status (anything else is 500)."""

    class BaseInferenceToolkitError(Exception):  # the toolkit's class, as sagemaker_inference 1.10 has it
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code, self.message, self.phrase = status_code, message, phrase
            super().__init__(status_code, message, phrase)

    errors = types.ModuleType("sagemaker_inference.errors")
    errors.BaseInferenceToolkitError = BaseInferenceToolkitError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sagemaker_inference", types.ModuleType("sagemaker_inference"))
    monkeypatch.setitem(sys.modules, "sagemaker_inference.errors", errors)
    spec = importlib.util.spec_from_file_location("served_inference", ROOT / "training" / "inference.py")
    assert spec is not None and spec.loader is not None
    served = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(served)
    with pytest.raises(BaseInferenceToolkitError) as raised:
        served.input_fn('{"foo": 1}', "application/json")
    assert (raised.value.status_code, raised.value.phrase) == (400, raised.value.message)
    assert issubclass(served.UnsupportedContentTypeError, BaseInferenceToolkitError)
    # without the toolkit: a stand-in of the same name, which the local endpoint server recognises
    assert [c.__name__ for c in inference.RequestError.__mro__][1] == "BaseInferenceToolkitError"
    assert Path(inference.__file__).resolve() == (ROOT / "training" / "inference.py").resolve()
