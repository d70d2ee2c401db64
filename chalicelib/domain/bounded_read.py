"""Reading one uploaded object's bytes within a size limit: gzip undone on the fly, then decoded to text.

The limit is on the decompressed size and is enforced while the chunks arrive: ``BoundedReader`` never
holds more than ``limit + 1`` output bytes, so a gzip bomb stops at the first byte past the limit whatever
its compression ratio, and ``ObjectTooLargeError`` says how many bytes were seen on each side. A corrupt
gzip stream raises ``RecordError`` (``UNREADABLE_FILE``). Pure: the caller supplies the chunks.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.quarantine import QuarantineReason, RecordError

GZIP_MAGIC = b"\x1f\x8b"
#: How much of an object's start a whole-object quarantine record shows.
HEAD_BYTES = 2048
_PIECE_BYTES = 1 << 20


class ObjectTooLargeError(Exception):
    """The decompressed content passed the limit; the counts say how far reading got before it stopped."""

    def __init__(
        self, limit: int, compressed_bytes: int, decompressed_bytes: int, *, gzip: bool, head: bytes
    ) -> None:
        self.limit = limit
        self.compressed_bytes = compressed_bytes
        self.decompressed_bytes = decompressed_bytes
        self.gzip = gzip
        self.head = head
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        if self.gzip:
            return (
                f"decompressed size exceeds the limit of {self.limit} bytes: reading stopped after "
                f"{self.compressed_bytes} compressed bytes had inflated to {self.decompressed_bytes} bytes"
            )
        return (
            f"size exceeds the limit of {self.limit} bytes: "
            f"reading stopped after {self.compressed_bytes} bytes"
        )


@dataclass(frozen=True)
class BoundedContent:
    """What a bounded read produced: the (decompressed) bytes and the byte counts on both sides."""

    data: bytearray  # not copied into ``bytes``: the content may be as large as the limit
    compressed_bytes: int
    gzip: bool

    @property
    def decompressed_bytes(self) -> int:
        return len(self.data)


class BoundedReader:
    """Incremental gzip-or-plain reader that never holds more than ``limit + 1`` output bytes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._out = bytearray()
        self._pending = b""  # the first bytes, until there are two to compare with the gzip magic
        self._mode: str | None = None  # None (undecided), "plain" or "gzip"
        self._inflater: Any = None
        self._seen = 0
        self.raw_head = b""  # the first input bytes, for the quarantine record of an unreadable object

    def feed(self, chunk: bytes) -> None:
        if len(self.raw_head) < HEAD_BYTES:
            self.raw_head += chunk[: HEAD_BYTES - len(self.raw_head)]
        self._seen += len(chunk)
        if self._mode is None:
            self._pending += chunk
            if len(self._pending) < len(GZIP_MAGIC):
                return
            chunk, self._pending = self._pending, b""
            self._mode = "gzip" if chunk.startswith(GZIP_MAGIC) else "plain"
        if self._mode == "plain":
            self._out += chunk
            self._check()
        else:
            self._inflate(chunk)

    def finish(self) -> BoundedContent:
        if self._mode is None:
            self._out += self._pending
            self._mode = "plain"
        if self._mode == "gzip" and not (self._inflater is not None and self._inflater.eof):
            raise RecordError(
                QuarantineReason.UNREADABLE_FILE,
                "corrupt gzip stream: compressed file ended before the end-of-stream marker was reached",
            )
        return BoundedContent(self._out, self._seen, self._mode == "gzip")

    def _check(self) -> None:
        if len(self._out) > self._limit:
            raise ObjectTooLargeError(
                self._limit,
                self._seen,
                len(self._out),
                gzip=self._mode == "gzip",
                head=bytes(self._out[:HEAD_BYTES]),
            )

    def _inflate(self, data: bytes) -> None:
        try:
            while True:
                if self._inflater is None or self._inflater.eof:
                    if self._inflater is not None:
                        data = data.lstrip(b"\x00")  # zero padding after a member, as gzip allows
                    if not data:
                        return
                    if not GZIP_MAGIC.startswith(data[:2]):
                        raise RecordError(
                            QuarantineReason.UNREADABLE_FILE, "corrupt gzip stream: trailing garbage"
                        )
                    self._inflater = zlib.decompressobj(wbits=31)  # the next gzip member
                # Inflate in small pieces, never past the first byte over the limit.
                room = min(self._limit - len(self._out) + 1, _PIECE_BYTES)
                piece = self._inflater.decompress(data, room)
                self._out += piece
                self._check()
                if self._inflater.eof:
                    data = self._inflater.unused_data
                else:
                    data = self._inflater.unconsumed_tail
                    if not data and len(piece) < room:
                        return  # all input consumed and no output pending
        except zlib.error as exc:
            raise RecordError(QuarantineReason.UNREADABLE_FILE, f"corrupt gzip stream: {exc}") from exc


def decode(data: bytes | bytearray) -> str:
    """Decode UTF-8 (with or without BOM) or BOM-marked UTF-16.

    Invalid UTF-8 bytes survive as lone surrogates (``surrogateescape``) so that only the records
    containing them are quarantined, not the whole file.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise RecordError(QuarantineReason.BAD_ENCODING, f"invalid UTF-16: {exc}") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="surrogateescape")


def head_text(data: bytes | bytearray, limit: int = HEAD_BYTES) -> str:
    """The first ``limit`` bytes as text (invalid UTF-8 kept as lone surrogates, like ``decode``)."""
    return bytes(data[:limit]).decode("utf-8", errors="surrogateescape")
