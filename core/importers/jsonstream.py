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
    loads = json.loads
    for number, text in lines:
        if not text.strip():
            continue
        try:
            yield number, loads(text)
        except json.JSONDecodeError as exc:
            yield number, JsonError(number, f"not valid JSON: {exc.msg}", resumable=True)


def json_document(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, Any]]:
    """(first line, value) for each top-level value, entering one top-level array.

    Raises JsonError (not resumable) where the text stops being JSON: a document has no
    line boundaries to resynchronise on.
    """
    parts: list[str] = []
    size = 0
    start = 0  # line number of the buffer's first character
    next_try = 0  # buffer size at which decoding is worth another attempt
    in_array: bool | None = None  # None until the first non-blank character is seen
    for number, text in lines:
        if not parts:
            start = number
        parts.append(text)
        size += len(text)
        if size < next_try:
            continue
        buf = "".join(parts)
        pos = 0
        while True:
            pos = _skip(buf, pos, in_array is True)
            if pos >= len(buf):
                parts, size, next_try = [], 0, 0
                break
            if in_array is None:
                in_array = buf[pos] == "["
                if in_array:
                    pos += 1
                    continue
            if in_array and buf[pos] == "]":
                in_array = False  # the array is closed: only whitespace may follow
                pos += 1
                continue
            try:
                value, end = _decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if _incomplete(buf, exc):
                    if len(buf) - pos > MAX_RECORD_CHARS:
                        raise JsonError(
                            start + buf.count("\n", 0, pos),
                            f"a JSON record is larger than {MAX_RECORD_CHARS >> 20} MB",
                            resumable=False,
                        ) from exc
                    rest = buf[pos:]
                    start += buf.count("\n", 0, pos)
                    parts, size = [rest], len(rest)
                    # Doubling keeps re-parsing of a long multi-line record linear overall.
                    next_try = 2 * size
                    break
                line = start + buf.count("\n", 0, exc.pos)
                raise JsonError(line, f"not valid JSON: {exc.msg}", resumable=False) from exc
            yield start + buf.count("\n", 0, pos), value
            pos = end
    if parts:
        buf = "".join(parts)
        pos = _skip(buf, 0, in_array is True)
        if pos < len(buf):
            try:
                value, end = _decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                line = start + buf.count("\n", 0, exc.pos)
                raise JsonError(
                    line, f"the JSON ends too early: {exc.msg}", resumable=False
                ) from exc
            yield start + buf.count("\n", 0, pos), value
            if _skip(buf, end, in_array is True) < len(buf):
                line = start + buf.count("\n", 0, end)
                raise JsonError(line, "unexpected text after the JSON", resumable=False)
    if in_array:
        raise JsonError(start, "the JSON array is not closed (a truncated file?)", resumable=False)


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
    first: list[tuple[int, str]] = []
    for number, text in source:
        first.append((number, text))
        if text.strip():
            break
    if not first:
        return
    try:
        ndjson = isinstance(json.loads(first[-1][1]), dict)
    except json.JSONDecodeError:
        ndjson = False
    rest = itertools.chain(first, source)
    if ndjson:
        for number, value in json_lines(rest):
            if isinstance(value, list):
                for item in value:
                    yield number, item
            else:
                yield number, value
        return
    try:
        yield from json_document(rest)
    except JsonError as exc:
        yield exc.line, exc
