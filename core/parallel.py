"""Pure, CPU-bound work spread over the machine's cores, in order and in bounded memory.

Normalizing a million provider records is pure Python: one core does it at a few tens of
thousands a second, and the GIL keeps threads from helping. The bulk paths (imports, the
benches) hand chunks of work to worker processes with `ordered_map` and consume the
results in input order, so the output is exactly what one process would have produced.
One chunk per worker is out at a time: memory stays flat however long the input.

Workers are forked, so they start with the caller's modules and data already loaded
(`initializer` runs once in each, for per-worker state that is costly to send with
every chunk). Each has a pipe in and a pipe out, read and written only by the calling
thread: no helper threads to compete with it for the GIL (concurrent.futures' pool
spends more of the main process on its own threads than on the results). Worker
functions should return their failures as data; an exception that escapes one reaches
the caller as a WorkerError naming it. Whether workers pay depends on how costly the
results are to hand back: see MIN_CORES.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

A = TypeVar("A")
R = TypeVar("R")

MAX_WORKERS = 8
"""More processes than this only add memory: the main process is the bottleneck by then."""

MIN_CORES = 4
"""Fewer usable cores than this, and bulk work stays in one process (`default_workers`).

Handing results back costs: for a Shodan import, about 13 us per line in the main process
(unpickling) and 13 us in the worker (pickling), against some 31 us for the whole line in
one process (measured on a 2-core box). With 2 cores the hand-over eats the second core
(17k lines/s with workers against 32k without); from about 4, the workers' share is spread
thin enough to pay. That threshold is worked out from those CPU costs, not measured."""

ITEM_TIMEOUT = 600.0
"""Seconds a worker may take over one item before the import gives up on it."""

# The cyclic collector's first threshold while bulk work runs: the default (700 new
# container objects) runs a collection every few records, which costs 10-15 % of a
# bulk import for nothing; this pipeline makes no reference cycles of its own.
_BULK_GC_THRESHOLD = 20_000


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """Worker processes for bulk work on this machine: one per usable core but the main
    process's, capped at MAX_WORKERS; 1 (no workers: all here) below MIN_CORES."""
    cores = usable_cores()
    return 1 if cores < MIN_CORES else min(cores - 1, MAX_WORKERS)


def storing_workers() -> int:
    """Worker processes for bulk work whose results the workers store themselves (only a
    count comes back, so MIN_CORES does not apply): one per usable core, as the main
    process only waits; capped at MAX_WORKERS."""
    return min(usable_cores(), MAX_WORKERS)


@contextlib.contextmanager
def relaxed_gc() -> Iterator[None]:
    """Collect cycles less often for the duration (restored after): for bulk loops."""
    before = gc.get_threshold()
    gc.set_threshold(_BULK_GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def ordered_map(
    fn: Callable[[A], R],
    items: Iterable[A],
    *,
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Generator[R, None, None]:
    """`map(fn, items)` computed in `workers` processes; results in the order of `items`.

    `items` is read lazily: one item per worker is out ahead of what the caller has
    consumed. With `workers` <= 1 everything runs here, in this process, `initializer`
    called once first. Closing the iterator early stops the workers. An exception in `fn`
    (or a worker that dies) raises WorkerError when its result is reached.
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, items)
        return
    pool = _Pool(fn, workers, initializer, initargs)
    try:
        # Item i goes to worker i % workers and its result is read back in the same turn,
        # so the order needs no bookkeeping. A worker gets its next item only after its
        # last result was read: neither side can block the other on a full pipe.
        source = iter(items)
        busy = [False] * workers
        for worker in range(workers):
            item = next(source, _DONE)
            if item is _DONE:
                break
            pool.send(worker, item)
            busy[worker] = True
        worker = 0
        while busy[worker]:
            result = pool.receive(worker)
            item = next(source, _DONE)
            if item is _DONE:
                busy[worker] = False
            else:
                pool.send(worker, item)  # before yielding: the worker starts at once
            yield result
            worker = (worker + 1) % workers
    finally:
        pool.close()


class WorkerError(RuntimeError):
    """A worker process failed: its function raised, or the process died."""


_DONE = object()


class _Pool:
    """Forked processes, each with a pipe in and a pipe out, used only from this thread.

    os.fork, not multiprocessing.Process: a Process runs every after-fork hook other
    libraries registered in this interpreter (kombu's closes inherited Redis connections
    by talking to the server, and hangs when it is gone), and a pure worker needs none.
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        workers: int,
        initializer: Callable[..., None] | None,
        initargs: tuple[Any, ...],
    ) -> None:
        self._tasks: list[Connection] = []
        self._results: list[Connection] = []
        self._pids: list[int] = []
        self._exit: dict[int, int] = {}  # pid -> exit status, once reaped
        try:
            for _ in range(workers):
                task_out, task_in = multiprocessing.Pipe(duplex=False)
                result_out, result_in = multiprocessing.Pipe(duplex=False)
                pid = os.fork()
                if pid == 0:  # the worker: never returns
                    code = 1
                    try:
                        for conn in (task_in, result_out, *self._tasks, *self._results):
                            conn.close()  # other ends, so EOF means what it says
                        _serve(fn, initializer, initargs, task_out, result_in)
                        code = 0
                    finally:
                        os._exit(code)  # no atexit, no finalizers: they belong to the parent
                task_out.close()
                result_in.close()
                self._tasks.append(task_in)
                self._results.append(result_out)
                self._pids.append(pid)
        except BaseException:
            self.close()
            raise

    def send(self, worker: int, item: Any) -> None:
        self._tasks[worker].send_bytes(pickle.dumps(item, pickle.HIGHEST_PROTOCOL))

    def receive(self, worker: int) -> Any:
        conn, pid = self._results[worker], self._pids[worker]
        waited = 0.0
        # Bounded: a worker that died is noticed within a second, a stuck one in ITEM_TIMEOUT.
        while not conn.poll(1.0):
            if self._reap(pid, block=False):
                break  # died without a word: recv_bytes below sees EOF
            waited += 1.0
            if waited >= ITEM_TIMEOUT:
                raise WorkerError(f"worker process {pid} gave no result in {ITEM_TIMEOUT:.0f} s")
        try:
            ok, payload = pickle.loads(conn.recv_bytes())  # noqa: S301 - our own worker's
        except (EOFError, OSError) as exc:
            self._reap(pid, block=True)
            status = self._exit.get(pid)
            raise WorkerError(f"worker process {pid} died (wait status {status})") from exc
        if not ok:
            raise WorkerError(payload)
        return payload

    def _reap(self, pid: int, *, block: bool) -> bool:
        """Has `pid` exited? (Collects its status once.)"""
        if pid in self._exit:
            return True
        try:
            done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done, status = pid, -1
        if done:
            self._exit[pid] = status
        return bool(done)

    def close(self) -> None:
        for conn in self._tasks:
            with contextlib.suppress(OSError):  # a worker already gone needs no telling
                conn.send_bytes(b"")  # stop
            conn.close()
        for conn in self._results:
            conn.close()  # a worker blocked writing a result gets EPIPE and stops
        for pid in self._pids:
            for _ in range(50):  # bounded: 5 s for a worker to finish its item
                if self._reap(pid, block=False):
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._reap(pid, block=True)


def _serve(
    fn: Callable[[Any], Any],
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
    tasks: Connection,
    results: Connection,
) -> None:
    """A worker's loop: an item in, its result (or the error, as text) out, until told."""
    # Ctrl-C reaches the whole process group: the main process alone decides what to do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(_BULK_GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        if initializer is not None:
            initializer(*initargs)
        while data := tasks.recv_bytes():
            try:
                reply: tuple[bool, Any] = (True, fn(pickle.loads(data)))  # noqa: S301
            except Exception as exc:  # handed to the main process, as text
                reply = (False, f"{type(exc).__name__}: {exc}")
            results.send_bytes(pickle.dumps(reply, pickle.HIGHEST_PROTOCOL))
    except (EOFError, OSError):
        pass  # the main process went away, or stopped reading: nothing left to do
