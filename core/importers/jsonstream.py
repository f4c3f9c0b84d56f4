"""JSON records out of numbered lines, without loading a whole file.

Two shapes occur in findings files:

- JSON lines (Shodan downloads, naabu, Netlas downloads): one value per line. Each line is
  parsed on its own, so a bad line is reported at its number and the next one is fine.
- A document (a Shodan host lookup saved from the API, a Censys response, a Netlas JSON
  array): possibly pretty-printed over many lines. If its top level is an array, its
  elements are streamed one at a time; otherwise the document is one record.

`JsonError` carries the line where the text stopped being JSON.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic_core import from_json

MAX_RECORD_CHARS = 64 << 20
"""One JSON record larger than this is refused rather than buffered without end."""

_decoder = json.JSONDecoder()
_SPACE = " \t\r\n"


class JsonError(ValueError):
    def __init__(self, line: int, message: str, *, resumable: bool) -> None:
        super().__init__(message)
        self.line = line
        self.resumable = resumable  # True: the next line can be read; False: the rest is lost


def json_lines(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, Any | JsonError]]:
    """(line, value) per non-blank line; a line that is not JSON yields a resumable JsonError."""
    for number, text in lines:
        if not text or text.isspace():  # what strip() would empty, without copying the line
            continue
        try:
            yield number, _loads(text)
        except json.JSONDecodeError as exc:
            yield number, JsonError(number, f"not valid JSON: {exc.msg}", resumable=True)


def _loads(text: str) -> Any:
    # pydantic-core's parser (Rust) reads a line in about two thirds of json's time. It
    # accepts nothing json.loads refuses and reads what both accept to equal values; where
    # it refuses (a lone surrogate escape, which json takes), json.loads has the last
    # word, so results and error messages are json's exactly. (orjson is faster still, but
    # turns integers beyond 64 bits into floats without a word.)
    try:
        return from_json(text)
    except (ValueError, TypeError):  # TypeError: a str holding a lone surrogate itself
        return json.loads(text)


def ndjson_records(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, Any | JsonError]]:
    """Records of a JSON-lines file: `json_lines` with top-level arrays flattened.

    Every line stands alone, so any run of a file's lines gives the records that the
    whole file gives for those lines (core.importers.resolve parses chunks in parallel).
    """
    for number, value in json_lines(lines):
        if isinstance(value, list):
            for item in value:
                yield number, item
        else:
            yield number, value


def json_document(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, Any]]:
    """(first line, value) for each top-level value, entering one top-level array.

    Raises JsonError (not resumable) where the text stops being JSON: a document has no
    line boundaries to resynchronise on.
    """
    doc = _Document()
    for number, text in lines:
        doc.add(number, text)
        if doc.size >= doc.next_try:
            yield from doc.drain(final=False)
    yield from doc.drain(final=True)
    if doc.in_array:
        raise JsonError(
            doc.last, "the JSON array is not closed (a truncated file?)", resumable=False
        )


class _Document:
    """The unparsed tail of a JSON document and where it starts."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.start = 0  # line number of the buffer's first character
        self.last = 0  # the last line added
        self.next_try = 0  # buffer size at which decoding is worth another attempt
        self.in_array: bool | None = None  # None until the first non-blank character

    def add(self, number: int, text: str) -> None:
        if not self.parts:
            self.start = number
        self.parts.append(text)
        self.size += len(text)
        self.last = number

    def _line(self, buf: str, pos: int) -> int:
        return min(self.start + buf.count("\n", 0, pos), self.last)

    def drain(self, *, final: bool) -> Iterator[tuple[int, Any]]:
        buf = "".join(self.parts)
        pos = 0
        while True:
            pos = _skip(buf, pos, self.in_array is True)
            if pos >= len(buf):
                self.parts, self.size, self.next_try = [], 0, 0
                return
            if self.in_array is None:
                self.in_array = buf[pos] == "["
                if self.in_array:
                    pos += 1
                    continue
            elif self.in_array is False and buf[pos] in "[]":
                raise JsonError(
                    self._line(buf, pos), "unexpected text after the JSON", resumable=False
                )
            if self.in_array and buf[pos] == "]":
                self.in_array = False  # closed: only whitespace (or another document) may follow
                pos += 1
                continue
            try:
                value, end = _decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if final or not _incomplete(buf, exc):
                    what = "the JSON ends too early" if _incomplete(buf, exc) else "not valid JSON"
                    raise JsonError(
                        self._line(buf, exc.pos), f"{what}: {exc.msg}", resumable=False
                    ) from exc
                if len(buf) - pos > MAX_RECORD_CHARS:
                    raise JsonError(
                        self._line(buf, pos),
                        f"a JSON record is larger than {MAX_RECORD_CHARS >> 20} MB",
                        resumable=False,
                    ) from exc
                self.start = self._line(buf, pos)
                rest = buf[pos:]
                self.parts, self.size = [rest], len(rest)
                # Doubling keeps re-parsing of a long multi-line record linear overall.
                self.next_try = 2 * self.size
                return
            yield self._line(buf, pos), value
            pos = end


def _skip(buf: str, pos: int, in_array: bool) -> int:
    """Past whitespace, and past the commas between array elements."""
    n = len(buf)
    while pos < n and (buf[pos] in _SPACE or (in_array and buf[pos] == ",")):
        pos += 1
    return pos


def _incomplete(buf: str, exc: json.JSONDecodeError) -> bool:
    """Would more text possibly complete the value? (An error at the end, or an open string.)"""
    return exc.pos >= len(buf.rstrip()) or exc.msg.startswith("Unterminated string")


def json_records(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, Any | JsonError]]:
    """JSON lines if the first non-blank line is a whole JSON object, else a document.

    Lists are flattened one level (a JSON-lines file of arrays, or a one-line array), so
    callers see records. A document that stops being JSON yields one non-resumable
    JsonError, then ends.
    """
    source = iter(lines)
    first = opening_lines(source)
    if not first:
        return
    ndjson = is_json_lines(first)
    rest = itertools.chain(first, source)
    if ndjson:
        yield from ndjson_records(rest)
        return
    try:
        yield from json_document(rest)
    except JsonError as exc:
        yield exc.line, exc


def opening_lines(source: Iterator[tuple[int, str]]) -> list[tuple[int, str]]:
    """Lines taken from `source` up to and including the first non-blank one."""
    first: list[tuple[int, str]] = []
    for number, text in source:
        first.append((number, text))
        if text.strip():
            break
    return first


def is_json_lines(opening: list[tuple[int, str]]) -> bool:
    """Is a file JSON lines, judging by its opening lines: is the first one a whole object?"""
    try:
        return bool(opening) and isinstance(json.loads(opening[-1][1]), dict)
    except json.JSONDecodeError:
        return False
