from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.importers.jsonstream import JsonError, _loads, json_document, json_lines, json_records


def numbered(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.splitlines(keepends=True), 1))


def test_a_pretty_printed_array_streams_its_elements_with_their_lines() -> None:
    text = '[\n  {"a": 1},\n  {\n    "b": [1,\n 2]\n  }\n]\n'
    assert list(json_document(numbered(text))) == [(2, {"a": 1}), (3, {"b": [1, 2]})]


def test_one_document_is_one_record() -> None:
    assert list(json_document(numbered('{\n"ip_str": "192.0.2.1",\n"data": []\n}\n'))) == [
        (1, {"ip_str": "192.0.2.1", "data": []})
    ]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[\n{"a": 1},\n{"b": oops}\n]\n', 3, "not valid JSON"),
        ('{\n"a": 1,\n', 2, "ends too early"),
        ('[\n{"a": 1}\n', 2, "not closed"),
    ],
)
def test_broken_documents_say_where(text: str, line: int, words: str) -> None:
    with pytest.raises(JsonError) as info:
        list(json_document(numbered(text)))
    assert info.value.line == line
    assert words in str(info.value)
    assert not info.value.resumable


def test_json_lines_report_a_bad_line_and_go_on() -> None:
    out = list(json_lines(numbered('{"a": 1}\n{"a": \n\n{"a": 3}\n')))
    assert out[0] == (1, {"a": 1})
    assert isinstance(out[1][1], JsonError) and out[1][0] == 2 and out[1][1].resumable
    assert out[2] == (4, {"a": 3})


def test_records_choose_lines_or_document_by_the_first_line() -> None:
    assert [v for _, v in json_records(numbered('{"a": 1}\n{"a": 2}\n'))] == [{"a": 1}, {"a": 2}]
    assert [v for _, v in json_records(numbered('[{"a": 1},\n{"a": 2}]\n'))] == [{"a": 1}, {"a": 2}]
    broken = list(json_records(numbered('{\n"a": \n')))
    assert isinstance(broken[-1][1], JsonError)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too (orjson, for one, makes floats of those)
    | st.floats(allow_nan=False)  # infinities: json writes and reads Infinity
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(_JSON_VALUES, st.booleans())
def test_a_line_reads_as_json_reads_it(value: object, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert repr(_loads(text)) == repr(json.loads(text))  # repr: 1 and 1.0 differ, NaN is NaN


@given(st.text(st.characters(codec=None), max_size=40))  # lone surrogates included
@example('"\\ud800"')  # a lone surrogate escape: json reads it
@example("[NaN, -Infinity]")
@example(str(-(2**64) - 1))
@example("\ufeff{}")  # a byte order mark: json refuses it
@example("\ud800")  # a lone surrogate in the text itself (pydantic-core raised TypeError)
def test_text_is_read_or_refused_as_json_does(text: str) -> None:
    try:
        expected = json.loads(text)
    except json.JSONDecodeError as exc:
        with pytest.raises(json.JSONDecodeError) as refused:
            _loads(text)
        assert refused.value.msg == exc.msg
    else:
        assert repr(_loads(text)) == repr(expected)
