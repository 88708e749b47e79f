"""Taichi's CPU worker threads, one to a core.

Taichi runs a parallel loop on its own pool of worker threads (as many as ``cpu_max_num_threads``)
while the calling thread waits. Between loops the workers sleep; a loop wakes them all at once,
and Linux puts a thread it wakes on the core of the thread that woke it when it can (the waker is
about to sleep): both workers start on the launching thread's core, and the second moves to the
idle core only when the scheduler balances its queues, milliseconds later. A loop of a few ms of
work then runs mostly on one core (``python tools/thread_wake.py``, free and pinned alternating:
1.1 ms of work 1.10 ms wall, pinned 0.61; 8.4 ms of work 6.18 ms wall, pinned 4.33). Pinning
worker i to core i (as OpenMP's ``OMP_PROC_BIND`` does for its threads) has each wake on its own
core at once.

``pin_pool`` finds the workers (the threads ``ti.init`` started that run while a parallel loop
runs and not while the same loop runs serialised: Taichi's compile threads run in neither once
the loop is compiled) and pins them, on Linux, where there are as many workers as cores this
process may use (a lone command's default; a sweep's jobs, on fewer threads each, stay
unpinned). It changes no result: a loop's iterations and their order are Taichi's either way
(P2G's lanes sum in lane order, whichever core runs them). ``POLYALLOY_PIN_THREADS=0`` leaves
the workers to the scheduler.
"""

import logging
import os
import threading

import numpy as np

log = logging.getLogger("polyalloy")

VARIABLE = "POLYALLOY_PIN_THREADS"
TOUCH_ELEMENTS = 1 << 14  # the finding loop's length: enough chunks that every worker wakes for it
TOUCH_LAUNCHES = 20


def wanted() -> bool:
    """Whether ``POLYALLOY_PIN_THREADS`` allows pinning (anything but ``0``; on by default)."""
    return os.environ.get(VARIABLE, "1").strip() != "0"


def thread_times() -> dict[int, int]:
    """Each thread of this process: its id and the nanoseconds it has run (``/proc``; empty where
    there is no ``/proc/self/task``)."""
    out = {}
    try:
        names = os.listdir("/proc/self/task")
    except OSError:
        return out
    for name in names:
        try:
            with open(f"/proc/self/task/{name}/schedstat") as f:
                out[int(name)] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile, or a kernel without schedstat
    return out


_kernels = None


def _kernels_():
    """A parallel loop and the same loop serialised, over a numpy array (no field: finding the
    workers allocates nothing on the device)."""
    global _kernels
    if _kernels is None:
        import taichi as ti

        @ti.kernel
        def parallel(a: ti.types.ndarray(dtype=ti.i32, ndim=1)):
            for i in range(a.shape[0]):
                a[i] += 1

        @ti.kernel
        def serial(a: ti.types.ndarray(dtype=ti.i32, ndim=1)):
            ti.loop_config(serialize=True)
            for i in range(a.shape[0]):
                a[i] += 1

        _kernels = parallel, serial
    return _kernels


def _ran(kernel, a, threads: set) -> set:
    """Those of ``threads`` that ran while ``kernel`` ran ``TOUCH_LAUNCHES`` times."""
    import taichi as ti

    before = thread_times()
    for _ in range(TOUCH_LAUNCHES):
        kernel(a)
    ti.sync()
    after = thread_times()
    return {t for t in threads if after.get(t, 0) > before.get(t, 0)}


def pool_workers(started: set, threads: int, attempts: int = 5) -> list:
    """The ids of Taichi's CPU workers among the threads ``started`` by ``ti.init``, in the order they
    were started: those that run while a compiled parallel loop runs and not while the same loop
    runs serialised on the calling thread (a thread of Taichi's that is busy with something else
    meanwhile, as one started by ``ti.init`` sometimes is, runs in both). Up to ``attempts`` tries
    until ``threads`` are found; the last try's otherwise."""
    parallel, serial = _kernels_()
    a = np.zeros(TOUCH_ELEMENTS, np.int32)
    parallel(a)  # compiles (Taichi's compile threads run here, not below)
    serial(a)
    candidates = set(started) - {threading.get_native_id()}
    workers = set()
    for _ in range(attempts):
        workers = _ran(parallel, a, candidates) - _ran(serial, a, candidates)
        if len(workers) == threads:
            break
    return sorted(workers)


def pin_pool(started: set[int], threads: int) -> tuple[int, ...]:
    """Pin Taichi's ``threads`` CPU workers (started by ``ti.init`` among ``started``) one to a core,
    where they are as many as the cores this process may use; returns the cores in the workers'
    order, or ``()`` where it pinned nothing: one thread; workers more than the cores, or fewer (on a
    16-core machine a sweep's two jobs of 8 threads each would both pin to cores 0-7, so workers
    fewer than the cores are left to the scheduler); no ``/proc`` or ``sched_setaffinity``; the
    workers not found; or ``POLYALLOY_PIN_THREADS=0``."""
    if threads < 2 or not wanted() or not hasattr(os, "sched_setaffinity") or not started:
        return ()
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) != threads:  # fewer workers than cores: other processes (a sweep's jobs) may want the rest
        return ()
    workers = pool_workers(started, threads)
    if len(workers) != threads:
        log.info("polyalloy: found %d of Taichi's %d CPU workers; they are left unpinned", len(workers), threads)
        return ()
    try:
        for worker, core in zip(workers, cores):
            os.sched_setaffinity(worker, {core})
    except OSError as e:  # a container that forbids it: the scheduler places them as before
        log.info("polyalloy: could not pin Taichi's CPU workers (%s)", e)
        for worker in workers:
            try:
                os.sched_setaffinity(worker, set(cores))
            except OSError:
                pass
        return ()
    return tuple(cores[:threads])
