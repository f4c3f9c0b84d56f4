"""Reading an import file as numbered text lines, streamed, whatever it was written in.

Files arrive gzip'd (Shodan downloads) or not, as UTF-8, UTF-16 (spreadsheet exports) or a
mix of UTF-8 and a legacy code page (files concatenated from several tools). Gzip is
detected from its magic bytes, not the name, and decompressed as a stream. Each line is
decoded on its own: UTF-8 first, then Windows-1252 (then Latin-1, which never fails), so one
odd line neither stops the import nor garbles the others; the reader counts such lines so
the report can say so. A truncated or corrupt gzip stream becomes an `InputError` naming
the last line read: what came before it is intact.
"""

from __future__ import annotations

import codecs
import io
import itertools
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from core.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib's "expect a gzip header and trailer"
CHUNK = 1 << 16
T = TypeVar("T", str, bytes)
FALLBACK_ENCODING = "cp1252"


class TruncatedInput(InputError):
    """The file ended (or broke) inside its compressed stream."""


class LineReader:
    """Numbered, decoded lines of one file (1-based, line endings kept).

    Iterate once. `line` is the number of the last line handed out; `fallback_lines` and
    `first_fallback` say how many lines were not UTF-8 and where the first one was.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self.line = 0
        self.fallback_lines = 0
        self.first_fallback = 0
        self.gzipped = False
        self.encoding = "utf-8"

    def __iter__(self) -> Iterator[tuple[int, str]]:
        try:
            with self.path.open("rb") as raw:
                chunks = self._chunks(raw)
                first = next(chunks, b"")
                rest = itertools.chain([first], chunks)
                if first[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
                    self.encoding = "utf-16"
                    yield from self._utf16(rest)
                else:
                    yield from self._lines(rest)
        except FileNotFoundError as exc:
            raise InputError("no such file", file=self.name) from exc
        except IsADirectoryError as exc:
            raise InputError("is a directory, not a findings file", file=self.name) from exc
        except (EOFError, zlib.error) as exc:
            raise TruncatedInput(
                f"the gzip stream is truncated or corrupt after line {self.line} ({exc}); "
                "the lines before it were read",
                file=self.name,
                line=self.line + 1,
            ) from exc

    def _chunks(self, raw: io.BufferedReader) -> Iterator[bytes]:
        if raw.peek(2)[:2] == GZIP_MAGIC:
            self.gzipped = True
            return _gunzip(raw)
        return iter(lambda: raw.read(CHUNK), b"")

    def _lines(self, chunks: Iterable[bytes]) -> Iterator[tuple[int, str]]:
        first = True
        for data in _split(chunks, b"\n"):
            self.line += 1
            if first:
                first = False
                if data.startswith(codecs.BOM_UTF8):
                    data = data[len(codecs.BOM_UTF8) :]
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = self._fallback(data)
            yield self.line, text

    def _fallback(self, data: bytes) -> str:
        self.fallback_lines += 1
        if not self.first_fallback:
            self.first_fallback = self.line
        try:
            return data.decode(FALLBACK_ENCODING)
        except UnicodeDecodeError:
            return data.decode("latin-1")  # every byte maps: never fails

    def _utf16(self, chunks: Iterable[bytes]) -> Iterator[tuple[int, str]]:
        decoder = codecs.getincrementaldecoder("utf-16")(errors="replace")
        texts = (decoder.decode(chunk) for chunk in chunks)
        for line in _split(itertools.chain(texts, [decoder.decode(b"", final=True)]), "\n"):
            self.line += 1
            yield self.line, line

    def encoding_note(self) -> str | None:
        """What the report should say about decoding, if anything unusual happened."""
        if self.fallback_lines:
            return (
                f"{self.fallback_lines:,} line(s) were not valid UTF-8 and were decoded as "
                f"Windows-1252 (first at line {self.first_fallback}): check names and banners"
            )
        if self.encoding != "utf-8":
            return f"the file is {self.encoding.upper()} (byte order mark), decoded as such"
        return None


def _gunzip(raw: io.BufferedReader) -> Iterator[bytes]:
    """Decompressed chunks of a gzip stream (several members too), as they arrive.

    GzipFile would drop what it decompressed before finding the stream cut short; this
    hands every byte over first and then raises EOFError, so the lines before a
    truncation are imported.
    """
    decomp = zlib.decompressobj(GZIP_WBITS)
    fed = False
    while chunk := raw.read(CHUNK):
        while chunk:
            fed = True
            out = decomp.decompress(chunk)
            if out:
                yield out
            if decomp.eof:  # a member ended: what follows is the next member (or padding)
                chunk = decomp.unused_data.lstrip(b"\0")
                decomp, fed = zlib.decompressobj(GZIP_WBITS), False
            else:
                chunk = b""
    if fed and not decomp.eof:
        tail = decomp.flush()
        if tail:
            yield tail
        raise EOFError("the compressed stream ended before its end marker")


def _split(chunks: Iterable[T], sep: T) -> Iterator[T]:
    """Lines (separator kept) out of chunks that cut lines anywhere."""
    pending: Any = None
    for chunk in chunks:
        data = chunk if pending is None else pending + chunk
        parts = data.split(sep)
        pending = parts.pop()
        for part in parts:
            yield part + sep
    if pending:
        yield pending


def head(path: Path, max_lines: int = 200, max_chars: int = 1 << 16) -> list[tuple[int, str]]:
    """The first lines of a file, decoded like the import will: what detection looks at."""
    out: list[tuple[int, str]] = []
    size = 0
    try:
        for number, text in LineReader(path):
            out.append((number, text))
            size += len(text)
            if len(out) >= max_lines or size >= max_chars:
                break
    except TruncatedInput:
        pass  # detection works on what there is; the import itself reports the truncation
    return out
