"""Product-review files: the lake's own ``ReviewParser`` parses them, so the format has one parser.

Its accepted reviews map one to one onto records (no customer; product = the clothing id) and its
quarantine reasons onto ``FeedbackRejection``, with the original reason kept in the detail. Bad bytes
quarantine only the record that holds them (the ingest parser's rule); a file with a header and no
rows is ``empty_body``; a JSON ``\\ud800`` escape of a lone surrogate makes its review ``not_utf8``.

Pure: standard library and sibling domain modules only; no I/O, no clock, no environment.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.domain.feedback_json import has_lone_surrogate
from chalicelib.domain.feedback_record import (
    Channel,
    FeedbackParse,
    FeedbackRecord,
    FeedbackRejection,
    RejectedFeedback,
    feedback_id_for,
    safe_product_id,
)
from chalicelib.domain.pii import mask_pii
from chalicelib.domain.reviews import QuarantinedRecord, QuarantineReason, Review, ReviewParser

_REVIEW_REASONS: dict[QuarantineReason, FeedbackRejection] = {
    QuarantineReason.BAD_ENCODING: FeedbackRejection.NOT_UTF8,
    QuarantineReason.MISSING_TEXT: FeedbackRejection.EMPTY_TEXT,
    QuarantineReason.MISSING_REQUIRED_COLUMNS: FeedbackRejection.MISSING_FIELD,
    QuarantineReason.RATING_OUT_OF_RANGE: FeedbackRejection.INVALID_VALUE,
    QuarantineReason.INVALID_VALUE: FeedbackRejection.INVALID_VALUE,
    QuarantineReason.OVERSIZED_FIELD: FeedbackRejection.TOO_LARGE,
    QuarantineReason.UNPARSABLE_LINE: FeedbackRejection.UNPARSABLE,
    QuarantineReason.UNREADABLE_FILE: FeedbackRejection.UNPARSABLE,
    QuarantineReason.UNSUPPORTED_FORMAT: FeedbackRejection.UNSUPPORTED_FORMAT,
    QuarantineReason.OBJECT_TOO_LARGE: FeedbackRejection.TOO_LARGE,
}


def rejection_for_review(quarantined: QuarantinedRecord) -> RejectedFeedback:
    """A record the review parser quarantined, as a rejection (its own reason kept in the detail)."""
    where = "the file" if quarantined.record_number == 0 else f"record {quarantined.record_number}"
    return RejectedFeedback(
        source=quarantined.source_key,
        channel=Channel.REVIEW.value,
        reason=_REVIEW_REASONS.get(quarantined.reason, FeedbackRejection.UNPARSABLE),
        detail=mask_pii(f"{where}: {quarantined.reason.value}: {quarantined.detail}"),
    )


def record_for_review(review: Review, *, received_at: str) -> FeedbackRecord:
    """A review the lake's parser accepted, as a feedback record (no customer; product = clothing id)."""
    return FeedbackRecord(
        feedback_id=feedback_id_for(Channel.REVIEW.value, review.source_key, review.review_id),
        channel=Channel.REVIEW.value,
        received_at=received_at,
        customer_ref=None,
        product_id=safe_product_id(review.product_id),
        text=mask_pii(review.text),
        title=None if review.title is None else mask_pii(review.title),
        rating=review.rating,
        source=review.source_key,
    )


def parse_reviews(body: bytes, *, source: str, received_at: str, max_bytes: int) -> FeedbackParse:
    """Records and rejections of one review file (JSON nested too deeply is quarantined by the parser)."""
    parsed = ReviewParser().parse(
        body,
        source_key=source,
        channel=Channel.REVIEW.value,
        ingested_at=datetime.fromisoformat(received_at),
        max_bytes=max_bytes,
    )
    if parsed.total_records == 0:  # a header and nothing else: the body still needs an outcome
        rejection = RejectedFeedback(source, Channel.REVIEW.value, FeedbackRejection.EMPTY_BODY, "no records")
        return FeedbackParse(rejected=[rejection])
    result = FeedbackParse(rejected=[rejection_for_review(quarantined) for quarantined in parsed.quarantined])
    for review in parsed.reviews:
        # The lake parser checks for undecodable bytes, not for "\ud800" escapes in JSON reviews.
        if has_lone_surrogate([review.review_id, review.product_id, review.title, review.text]):
            detail = f"record {review.record_number}: holds a \\u escape of a lone UTF-16 surrogate"
            result.rejected.append(
                RejectedFeedback(source, review.channel, FeedbackRejection.NOT_UTF8, detail)
            )
        else:
            result.records.append(record_for_review(review, received_at=received_at))
    return result
