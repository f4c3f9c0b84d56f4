"""core.parallel: results in input order, bounded read-ahead, errors and early exits."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest

from core.parallel import WorkerError, default_workers, ordered_map, relaxed_gc

_offset = 0


def _set_offset(value: int) -> None:
    global _offset
    _offset = value


def _work(item: int) -> tuple[int, int, int]:
    return item, item * item + _offset, os.getpid()


def _die(item: int) -> int:
    if item == 1:
        os._exit(3)
    return item


def _explode(item: int) -> int:
    if item == 3:
        raise ValueError("three")
    return item


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_come_back_in_input_order(workers: int) -> None:
    results = list(
        ordered_map(_work, range(50), workers=workers, initializer=_set_offset, initargs=(7,))
    )
    assert [(item, square) for item, square, _ in results] == [(i, i * i + 7) for i in range(50)]
    pids = {pid for _, _, pid in results}
    if workers == 1:
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids and 1 <= len(pids) <= workers


def test_the_input_is_read_only_a_bounded_way_ahead() -> None:
    taken: list[int] = []

    def source() -> Iterator[int]:
        for i in range(1000):
            taken.append(i)
            yield i

    results = ordered_map(_work, source(), workers=3)
    first = [next(results)[0] for _ in range(5)]
    assert first == [0, 1, 2, 3, 4]
    # Five consumed, one per worker handed out ahead of the consumer.
    assert len(taken) == 5 + 3
    results.close()  # stops the workers; what was not read is never read
    assert len(taken) == 5 + 3


def test_an_error_in_a_worker_is_raised_when_its_result_is_reached() -> None:
    results = ordered_map(_explode, range(10), workers=2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(WorkerError, match="ValueError: three"):
        next(results)


def test_an_error_in_this_process_is_raised_as_it_is() -> None:
    with pytest.raises(ValueError, match="three"):
        list(ordered_map(_explode, range(10), workers=1))


def test_a_worker_that_dies_is_an_error_not_a_hang() -> None:
    results = ordered_map(_die, range(10), workers=2)
    assert next(results) == 0
    with pytest.raises(WorkerError, match="died"):
        list(results)


def test_fewer_items_than_workers_and_none_at_all() -> None:
    assert [r[0] for r in ordered_map(_work, [5], workers=3)] == [5]
    assert list(ordered_map(_work, [], workers=3)) == []


def test_relaxed_gc_restores_the_thresholds() -> None:
    before = gc.get_threshold()
    with relaxed_gc():
        assert gc.get_threshold()[0] > before[0]
    assert gc.get_threshold() == before


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 1), (3, 1), (4, 3), (6, 5), (64, 8)])
def test_workers_only_where_the_hand_over_pays(
    cores: int, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)))
    assert default_workers() == workers
