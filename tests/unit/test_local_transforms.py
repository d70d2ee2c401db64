"""The local cloud's Batch Transform semantics, without a cloud: filters, the input join, mini-batches."""

from __future__ import annotations

import pytest

from reviewsense.localcloud.sagemaker.common import JobError
from reviewsense.localcloud.sagemaker.transforms import MB, join_records, json_filter, mini_batches


def test_json_filters_select_as_sagemakers_jsonpath_subset() -> None:
    record = {"row": 3, "text": "t", "SageMakerOutput": {"label": "positive"}}
    assert json_filter(None)(record) is record
    assert json_filter("$")(record) is record
    assert json_filter("$.text")(record) == "t"
    assert json_filter("$['row','SageMakerOutput']")(record) == {
        "row": 3,
        "SageMakerOutput": {"label": "positive"},
    }
    with pytest.raises(JobError, match=r"does not support the JSONPath filter '\$\[1:\]'"):
        json_filter("$[1:]")


def test_join_source_input_adds_the_answer_to_the_record() -> None:
    assert join_records({"row": 1}, {"label": "x"}) == {"row": 1, "SageMakerOutput": {"label": "x"}}
    assert join_records([1, 2], "y") == {"SageMakerInput": [1, 2], "SageMakerOutput": "y"}


def test_multirecord_batches_stay_within_the_payload_and_keep_the_order() -> None:
    records = [bytes([65 + i]) * 400_000 for i in range(6)]  # 0.4 MB each
    batches = mini_batches(records, "MultiRecord", 1 * MB)
    assert [len(b) for b in batches] == [2, 2, 2]
    assert [r for b in batches for r in b] == records
    assert mini_batches(records[:2], "SingleRecord", 1 * MB) == [[records[0]], [records[1]]]
    with pytest.raises(JobError, match="exceeds MaxPayloadInMB"):
        mini_batches([b"x" * (MB + 1)], "MultiRecord", 1 * MB)
