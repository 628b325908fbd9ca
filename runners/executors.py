"""Executors: how a batch of candidates is run, one at a time or several at once on separate devices.

The run node hands a batch to the session's executor together with ``run_one(item, runner)``, the
function that runs one candidate through a runner and stores its trial. ``SerialExecutor`` runs them one
after the other. ``DeviceExecutor`` runs up to one candidate per device at once, each in its own thread
with a runner that adds ``CUDA_VISIBLE_DEVICES=<its device>`` to every process it starts, so a kernel
study on an 8-GPU node uses all eight. A target that measures a shared resource (``Target.shared_resource``:
the disk, the network) always runs one at a time, whatever the job asks.

``EXECUTORS`` maps the job's ``[runner] executor`` to a class, imported on first use; a cluster executor
(Ray, Slurm) plugs in with ``EXECUTORS.register("slurm", "package.module:SlurmExecutor")`` and a
``from_config(runner, config)`` class method.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import os
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from .base import Runner, RunResult, RunSpec
from .errors import JobError
from .registry import Registry

if TYPE_CHECKING:
    from .base import Target
    from .job import Job, RunnerConfig

T = TypeVar("T")
R = TypeVar("R")
DEVICE_ENV = "CUDA_VISIBLE_DEVICES"
_INTERRUPT_WAIT_S = 30.0  # after Ctrl-C, how long to wait for running candidates to stop and be recorded


class EnvRunner(Runner):
    """A runner that adds fixed environment variables to every RunSpec before the inner runner runs it."""

    def __init__(self, inner: Runner, extra_env: dict[str, str]) -> None:
        self.inner = inner
        self.extra_env = dict(extra_env)
        self.name = inner.name  # type: ignore[misc]

    def available(self) -> tuple[bool, str]:
        return self.inner.available()

    def attach(self, job: Job, scratch: Path) -> None:
        self.inner.attach(job, scratch)

    def run(self, spec: RunSpec) -> RunResult:
        return self.inner.run(spec.model_copy(update={"env": {**spec.env, **self.extra_env}}))


class Executor(abc.ABC, Generic[T, R]):
    """Runs a batch of candidates through ``run_one(item, runner)`` and returns the results in batch order.

    ``may_start(item)`` is asked just before each item starts (a budget check); once it says False no
    further item starts and the ones already running finish. ``on_done(item, result)`` is called in the
    calling thread as each item finishes. Items are never started twice and never skipped silently: the
    result list holds exactly the items that ran. ``notice`` says once how the executor runs candidates
    when that differs from what the job asked (``take_notice``).
    """

    name: ClassVar[str] = ""
    concurrent: ClassVar[bool] = False

    def __init__(self, runner: Runner, *, notice: str = "") -> None:
        self.runner = runner
        self.notice = notice

    @classmethod
    def from_config(cls, runner: Runner, config: RunnerConfig) -> Executor[Any, Any]:
        """The executor for a job's ``[runner]`` table."""
        return cls(runner)

    @property
    def slots(self) -> int:
        """How many candidates run at once."""
        return 1

    def comparison_runner(self) -> Runner:
        """The runner for runs that are compared with each other (re-measures, the final A B A B): they
        share one device, so a difference between devices never passes for a difference between configs."""
        return self.runner

    def take_notice(self) -> str:
        """The notice the first time it is asked for, then an empty string."""
        notice, self.notice = self.notice, ""
        return notice

    @abc.abstractmethod
    def run_batch(
        self,
        items: Sequence[T],
        run_one: Callable[[T, Runner], R],
        *,
        may_start: Callable[[T], bool] | None = None,
        on_done: Callable[[T, R], None] | None = None,
    ) -> list[R]:
        """Run the items; see the class docstring."""


class SerialExecutor(Executor[T, R]):
    """One candidate at a time, in the calling thread, through the session's runner."""

    name = "serial"

    def run_batch(self, items, run_one, *, may_start=None, on_done=None):  # type: ignore[no-untyped-def]
        results: list[R] = []
        for item in items:
            if may_start is not None and not may_start(item):
                break
            result = run_one(item, self.runner)
            results.append(result)
            if on_done is not None:
                on_done(item, result)
        return results


class DeviceExecutor(Executor[T, R]):
    """Up to one candidate per device at once, each pinned to its device through ``CUDA_VISIBLE_DEVICES``.

    ``devices`` are the values given to the variable: GPU indexes (``0``), groups for multi-GPU candidates
    (``"0,1"``) or UUIDs. Each candidate runs in a worker thread; a device is handed to the next candidate
    as soon as its previous one finishes. If one candidate's run raises, no further candidate starts, the
    running ones finish, and the error is raised. Ctrl-C interrupts every running candidate the way it
    interrupts a serial run (the runner kills its processes, the trial is marked interrupted and retried
    on resume), then propagates.
    """

    name = "devices"
    concurrent = True

    def __init__(self, runner: Runner, devices: Sequence[int | str], *, env_var: str = DEVICE_ENV,
                 notice: str = "") -> None:
        super().__init__(runner, notice=notice)
        self.devices = check_devices(devices)
        if not self.devices:
            raise JobError("runner.devices: no device to run on", 'list devices, e.g. devices = [0, 1], or use executor = "serial"')
        self.env_var = env_var

    @classmethod
    def from_config(cls, runner: Runner, config: RunnerConfig) -> Executor[Any, Any]:
        devices = resolve_devices(config.devices)
        if not devices:
            why = 'runner.devices = "auto" found no GPU here'
            return SerialExecutor(runner, notice=f"{why}: running candidates one at a time")
        return cls(runner, devices)

    @property
    def slots(self) -> int:
        return len(self.devices)

    def comparison_runner(self) -> Runner:
        return EnvRunner(self.runner, {self.env_var: self.devices[0]})

    def run_batch(self, items, run_one, *, may_start=None, on_done=None):  # type: ignore[no-untyped-def]
        done: queue.Queue[tuple[int, str, Any, BaseException | None]] = queue.Queue()
        running: dict[int, threading.Thread] = {}
        free = list(self.devices)
        results: dict[int, R] = {}
        errors: list[BaseException] = []

        def work(index: int, item: T, device: str) -> None:
            try:
                done.put((index, device, run_one(item, EnvRunner(self.runner, {self.env_var: device})), None))
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                done.put((index, device, None, exc))

        def collect() -> None:
            index, device, result, exc = done.get()
            running.pop(index).join()
            free.append(device)
            if exc is not None:
                errors.append(exc)
                return
            results[index] = result
            if on_done is not None:
                on_done(items[index], result)

        try:
            for index, item in enumerate(items):
                while not free:
                    collect()
                if errors or (may_start is not None and not may_start(item)):
                    break
                device = free.pop(0)
                thread = threading.Thread(target=work, args=(index, item, device), daemon=True,
                                          name=f"tunesmith-device-{device}")
                running[index] = thread
                thread.start()
            while running:
                collect()
        except BaseException:
            _interrupt(list(running.values()))
            raise
        if errors:
            raise errors[0]
        return [results[i] for i in sorted(results)]


def _interrupt(threads: list[threading.Thread]) -> None:
    """Raise KeyboardInterrupt inside each live worker thread and wait (bounded) for it to clean up.

    The local runner polls its process several times a second, so the interrupt lands within a poll;
    its cleanup kills the candidate's processes and ``run_candidate`` marks the trial interrupted.
    """
    for thread in threads:
        if thread.is_alive() and thread.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt))
    for thread in threads:
        with contextlib.suppress(BaseException):  # a second Ctrl-C stops the waiting, not the exit
            thread.join(_INTERRUPT_WAIT_S)


def check_devices(devices: Sequence[int | str]) -> list[str]:
    """Device entries as ``CUDA_VISIBLE_DEVICES`` values; one-line JobError for a bad or repeated one."""
    if isinstance(devices, str) or not isinstance(devices, Sequence):
        raise JobError(f"runner.devices: {devices!r} is not a list of devices", 'write "auto" or a list, e.g. [0, 1]')
    out: list[str] = []
    for entry in devices:
        text = str(entry).strip()
        wrong_type = isinstance(entry, bool) or not isinstance(entry, (int, str))
        if wrong_type or (isinstance(entry, int) and entry < 0) or not text or any(c.isspace() for c in text):
            raise JobError(f"runner.devices: {entry!r} is not a device", 'use an index (0), a group ("0,1") or a UUID')
        if text in out:
            raise JobError(f"runner.devices: {text!r} is listed twice", "list each device once")
        out.append(text)
    return out


def resolve_devices(devices: Sequence[int | str] | str) -> list[str]:
    """The job's ``devices``; ``"auto"``: the GPUs this process may use (its own ``CUDA_VISIBLE_DEVICES``
    entries when that is set, else ``0 .. torch.cuda.device_count() - 1``; none without torch or a GPU).
    """
    if devices != "auto":
        return check_devices(devices)  # type: ignore[arg-type]
    visible = os.environ.get(DEVICE_ENV)
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


EXECUTORS: Registry[Executor[Any, Any]] = Registry(
    "executor",
    {
        "serial": "tunesmith.runners.executors:SerialExecutor",
        "devices": "tunesmith.runners.executors:DeviceExecutor",
    },
)


def build_executor(config: RunnerConfig, runner: Runner, target: Target | None = None) -> Executor[Any, Any]:
    """The executor the job's ``[runner]`` asks for; one at a time when the target measures a shared
    resource (the returned executor's notice says so). Raises JobError for an unknown executor.
    """
    try:
        cls = EXECUTORS.get(config.executor)
    except JobError as exc:
        raise JobError(f"runner.executor: {exc.problem}", exc.fix) from None
    if config.devices != "auto":
        check_devices(config.devices)  # a wrong list is reported whichever executor is chosen
    shared = getattr(target, "shared_resource", None)
    if cls.concurrent and shared:
        note = (f"executor {config.executor!r}: the {target.name} target measures a shared resource "  # type: ignore[union-attr]
                f"({shared}); running candidates one at a time")
        return SerialExecutor(runner, notice=note)
    return cls.from_config(runner, config)
