"""The local Lambda runtime: sync errors, async retries and the dead-letter queue."""

from __future__ import annotations

from typing import Any

import pytest

from reviewsense.localcloud.runtime import FunctionError, FunctionSpec, LocalLambdaRuntime


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls += 1
        assert context.get_remaining_time_in_millis() > 0
        if self.calls <= self.failures:
            raise ValueError(f"boom {self.calls}")
        return {"ok": True, "echo": event}


def runtime(dlq: list[tuple[str, str]]) -> LocalLambdaRuntime:
    return LocalLambdaRuntime(
        retry_delays_s=(0.0, 0.0), send_to_dlq=lambda url, body: dlq.append((url, body))
    )


def test_sync_invoke_returns_result_or_typed_error() -> None:
    rt = runtime([])
    rt.register(FunctionSpec("fn", Flaky(1), "arn:aws:lambda:us-east-1:1:function:fn"))
    with pytest.raises(FunctionError) as err:
        rt.invoke("fn", {})
    assert err.value.payload["errorType"] == "ValueError"
    assert rt.invoke("arn:aws:lambda:us-east-1:1:function:fn", {"a": 1}) == {"ok": True, "echo": {"a": 1}}


def test_async_invoke_retries_twice_then_succeeds() -> None:
    dlq: list[tuple[str, str]] = []
    rt = runtime(dlq)
    handler = Flaky(2)
    rt.register(FunctionSpec("fn", handler, "arn", dead_letter_queue_url="q"))
    assert rt.invoke_async("fn", {}).result(timeout=5) == {"ok": True, "echo": {}}
    assert handler.calls == 3
    assert dlq == []


def test_async_invoke_dead_letters_after_three_failures() -> None:
    dlq: list[tuple[str, str]] = []
    rt = runtime(dlq)
    rt.register(FunctionSpec("fn", Flaky(99), "arn", dead_letter_queue_url="q"))
    rt.invoke_async("fn", {"k": "v"})
    assert rt.drain(timeout_s=5)
    ((url, body),) = dlq
    assert url == "q" and '"errorType": "ValueError"' in body and '"k": "v"' in body
    assert [h.attempt for h in rt.history] == [1, 2, 3]
