"""The feedback fixture files and one way to parse them, shared by the ``test_feedback_parsers*`` modules."""

from __future__ import annotations

from chalicelib.domain.feedback import DEFAULT_MAX_BYTES, FeedbackParse, parse_feedback
from tests.helpers.paths import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "feedback"
SALT = "test-salt"
NOW = "2026-11-29T12:00:00Z"


def parse(
    channel: str, name: str, *, source: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> FeedbackParse:
    """The fixture ``channel/name`` parsed with the test salt and clock (source: its raw-lake key)."""
    return parse_feedback(
        channel,
        (FIXTURES / channel / name).read_bytes(),
        source=source or f"raw/feedback/{channel}/{name}",
        received_at=NOW,
        salt=SALT,
        max_bytes=max_bytes,
    )
