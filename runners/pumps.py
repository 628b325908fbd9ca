"""Long-lived reader threads for the runs' output pipes.

Each run reads its stdout and stderr in threads. Starting a thread waits until the new thread has run
(a GIL hand-off and a scheduler wake-up: milliseconds on a busy machine), twice per run. Instead the
runner hands each pipe to an idle thread of this pool, which starts a new daemon thread only when every
thread is busy (several runs at once), so a steady series of runs starts no thread at all. Daemon threads:
a pipe still held open by a process that escaped everything never blocks the interpreter's exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

_IDLE_S = 60.0  # an idle thread ends after this long without work


class Job:
    """One pipe being read: ``join`` waits for its end, like ``Thread.join``."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self._done = threading.Event()

    def run(self) -> None:
        try:
            self.fn()
        finally:
            self._done.set()

    def is_alive(self) -> bool:
        return not self._done.is_set()

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)


class Pumps:
    """A pool of daemon threads that run blocking read loops; thread-safe."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def start(self, fn: Callable[[], None]) -> Job:
        """Run ``fn`` in a pool thread; returns at once with its ``Job`` (a new thread only if none is idle)."""
        job = Job(fn)
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1  # claims one waiting thread for this job
        if spawn:
            threading.Thread(target=self._serve, args=(job,), daemon=True, name="tunesmith-pump").start()
        else:
            self._jobs.put(job)
        return job

    def _serve(self, job: Job | None) -> None:
        # Invariant: threads waiting on the queue = idle (unclaimed) + jobs claimed but not yet taken.
        while job is not None:
            job.run()
            job = None
            with self._lock:
                self._idle += 1
            try:
                job = self._jobs.get(timeout=_IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # an unclaimed thread may leave
                        self._idle -= 1
                        return
                job = self._jobs.get()  # every waiting thread is claimed: a job is on its way


PUMPS = Pumps()
