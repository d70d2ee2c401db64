"""The feedback bench's message ids survive the fan-in's PII masking, so its accounting can find them.

``account`` finds every message by its stored source, ``msg:<message id>``, and the fan-in masks a
source as it masks text. Run ids of the form ``tp<Unix seconds>`` made about one id in 97 a valid-looking
IBAN (``msg:tp1795961704-112`` was stored as ``msg:[IBAN]``): a scored message reported unaccounted.
"""

from __future__ import annotations

import pytest

from chalicelib.domain.pii import mask_pii
from reviewsense.bench_feedback import check_sources, mixed_messages, run_id
from reviewsense.errors import OperatorError

#: Unix seconds of runs seen failing with the former ids, and a spread of later ones.
SECONDS = (1795961704, 1795961748, 1795961755, 1800000000, 1900000000, 2000000000)


@pytest.mark.parametrize("now", SECONDS)
def test_no_message_id_of_a_10000_message_run_is_masked(now: int) -> None:
    messages = mixed_messages(10_000, run_id(now))
    masked = [
        m["message_id"] for m in messages if mask_pii(f"msg:{m['message_id']}") != f"msg:{m['message_id']}"
    ]
    assert masked == []
    check_sources(messages)  # and the run's own guard agrees


def test_a_run_whose_ids_would_be_masked_is_refused_before_it_starts() -> None:
    # The id seen unaccounted: its source was stored as "msg:[IBAN]".
    assert mask_pii("msg:tp1795961704-112") == "msg:[IBAN]"
    with pytest.raises(OperatorError, match=r"1 message ids look like personal data.*tp1795961704-112"):
        check_sources(mixed_messages(200, "tp1795961704"))
