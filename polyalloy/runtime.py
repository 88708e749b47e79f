"""Runtime: the one place that calls ``ti.init``.

``polyalloy.init()`` picks the backend (never ``ti.gpu``: its OpenGL probe segfaults on
machines without Vulkan, and a software Vulkan is slower than the CPU backend), the float
precision and, in deterministic mode, a single CPU thread so that runs are bit-identical.
Nothing in polyalloy calls it at import time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import platform
import sys
from dataclasses import dataclass

import numpy as np

from polyalloy import affinity, frontend, launch
from polyalloy.errors import PolyalloyError

log = logging.getLogger("polyalloy")

ARCHES = ("auto", "cpu", "cuda", "vulkan", "metal")
PRECISIONS = ("f32", "f64")
MAX_P2G_LANES = 16  # with two lanes or more, each keeps a copy of the grid's scattered channels
CUDA_MEMORY_FRACTION = 0.8  # of the GPU's memory that Taichi reserves for fields on CUDA


@dataclass(frozen=True)
class RuntimeInfo:
    """What ``init`` chose: ``arch`` is the backend actually running (e.g. ``x64``, ``cuda``)."""

    arch: str
    requested: str
    precision: str
    seed: int
    deterministic: bool
    threads: int
    fast_compile: bool = False
    p2g_lanes: int = 1  # how P2G adds into the grid (``p2g_lanes``, ``kernels.fields.Grid.lanes``)
    lanes_pinned: bool = False  # asked for (POLYALLOY_P2G_LANES, ``p2g_lanes_of``): a small simulation keeps them
    cores: tuple = ()  # the core each of Taichi's CPU workers is pinned to (``polyalloy.affinity``); () unpinned
    sort_every: int = 0  # P2G's particles sorted by grid block every this many substeps (``sort_every_wanted``)


def lanes_wanted(variable: str = "POLYALLOY_P2G_LANES") -> int | None:
    """``POLYALLOY_P2G_LANES`` (1 to ``MAX_P2G_LANES``: the lanes pinned), or None where it is not
    set; anything else is an error (``init`` reads it before it starts Taichi). ``variable``
    ``POLYALLOY_LONE_LANES``: the lanes of a lone command on this machine, which a sweep's job on
    fewer threads takes as its runtime's without pinning them (``polyalloy.sweep``)."""
    wanted = os.environ.get(variable, "").strip()
    if not wanted:
        return None
    if not (wanted.isascii() and wanted.isdigit()) or not 1 <= int(wanted) <= MAX_P2G_LANES:
        raise PolyalloyError(f"{variable} must be a whole number from 1 to {MAX_P2G_LANES}, got {wanted!r}")
    return int(wanted)


def sort_every_wanted() -> int:
    """``POLYALLOY_SORT_EVERY``: P2G visits the particles in grid-block order, sorted again every this
    many substeps (``kernels.order``); unset or 0: in their slots' order, as sampled. A lever built
    for a GPU's float atomics, off by default: on a 2-core CPU it measured 1.06-2.3x slower (the
    particles' arrays read through the order cost more than the grid's locality saves), and it
    changes the order of every sum, so a run's last bits (docs/benchmark.md, "P2G in block order")."""
    text = os.environ.get("POLYALLOY_SORT_EVERY", "").strip()
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()) or int(text) > 1_000_000:
        raise PolyalloyError(f"POLYALLOY_SORT_EVERY must be a whole number of substeps from 0 to 1000000, got {text!r}")
    return int(text)


def p2g_lanes(arch: str, threads: int, wanted: int | None = None) -> int:
    """How P2G adds into the grid (``kernels.fields.Grid.lanes``): 0 (float atomics) on a GPU;
    on the CPU one lane per thread, at most ``MAX_P2G_LANES`` (one thread: the serial loop), or
    ``wanted`` (``lanes_wanted``) where set. A run repeats bit for bit at a given lane count,
    whatever the threads; another count adds in another order (last bits differ)."""
    if arch not in ("x64", "arm64"):
        return 0
    return wanted if wanted is not None else max(1, min(threads, MAX_P2G_LANES))


_info: RuntimeInfo | None = None


def _candidates(arch: str):
    import taichi as ti

    if arch == "auto":
        wanted = [ti.cuda]
        if platform.system() == "Darwin":
            wanted.append(ti.metal)
        return wanted + [ti.cpu]
    return {"cpu": [ti.cpu], "cuda": [ti.cuda], "vulkan": [ti.vulkan], "metal": [ti.metal]}[arch]


def threads_wanted() -> int | None:
    """The CPU threads that ``POLYALLOY_THREADS`` asks for (``polyalloy sweep`` sets it for each job),
    None where it is unset; a PolyalloyError for a value that is not a whole number >= 1."""
    text = os.environ.get("POLYALLOY_THREADS", "").strip()
    if not text:
        return None
    try:
        n = int(text)
        if n < 1:
            raise ValueError
    except ValueError:
        raise PolyalloyError(f"POLYALLOY_THREADS must be a whole number >= 1, got {text!r}") from None
    return n


def init(arch: str = "auto", seed: int = 0, deterministic: bool = False,
         precision: str = "f32", threads: int | None = None, debug: bool = False,
         fast_compile: bool | None = None) -> RuntimeInfo:
    """Start Taichi once for this process and return what was chosen.

    arch: ``auto`` (CUDA if present, Metal on macOS, else the CPU), ``cpu``, ``cuda``,
    ``vulkan`` or ``metal``. seed: seeds numpy sampling and ``ti.random``. deterministic:
    CPU with one thread, so that float atomics add in a fixed order (bit-identical runs).
    precision: ``f32`` or ``f64`` for every real field. Calling again with the same
    settings is a no-op; with different settings it is an error (fields would be lost).
    threads: CPU threads (default: ``POLYALLOY_THREADS`` where set, else every core).
    fast_compile: switch off Taichi's advanced IR optimisation, so that the 3D polyalloy substep
    compiles ~1.5x faster (9.7 s against 12.5 s cold for ``polyalloy_block``, 8.0 against 13.3 s for
    ``bars_walk``; a water scene's no faster, since the kernels carry only its kinds' code and the
    CFG pass is off anyway) and runs 1.3-1.5x slower: the trade a test
    suite or a kernel being edited wants, not a render or the benchmark. None: from the
    environment variable ``POLYALLOY_FAST_COMPILE`` (1 turns it on), off by default.
    """
    global _info
    if arch not in ARCHES:
        raise PolyalloyError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHES)}")
    if precision not in PRECISIONS:
        raise PolyalloyError(f"unknown precision {precision!r}; choose f32 or f64")
    if deterministic:
        if arch not in ("auto", "cpu"):
            raise PolyalloyError("deterministic mode runs on the CPU only; use --arch cpu or auto")
        arch, threads = "cpu", 1
    if fast_compile is None:
        fast_compile = os.environ.get("POLYALLOY_FAST_COMPILE", "0").strip() not in ("", "0")
    if threads is None:
        threads = threads_wanted()
    wanted_lanes, lone_lanes = lanes_wanted(), lanes_wanted("POLYALLOY_LONE_LANES")
    sort_every = sort_every_wanted()
    wanted = (arch, precision, int(seed), bool(deterministic), bool(fast_compile))
    if _info is not None:
        if (_info.requested, _info.precision, _info.seed, _info.deterministic, _info.fast_compile) == wanted:
            return _info
        raise PolyalloyError(
            f"polyalloy.init was already called with arch={_info.requested}, "
            f"precision={_info.precision}, seed={_info.seed}, deterministic={_info.deterministic}, "
            f"fast_compile={_info.fast_compile}")

    import taichi as ti

    kwargs = dict(
        arch=_candidates(arch),
        default_fp=ti.f64 if precision == "f64" else ti.f32,
        random_seed=int(seed),
        offline_cache=True,
        advanced_optimization=not fast_compile,
        log_level=ti.WARN if debug else ti.ERROR,
        debug=debug,
    )
    if "TI_CFG_OPTIMIZATION" not in os.environ:
        # Taichi's store-to-load forwarding and dead-store pass over the whole kernel: 15-20% of a
        # cold compile (polyalloy_block 77.7 -> 62.0 s, bars_walk 57.4 -> 46.4 s, fluid_block 10.3 ->
        # 6.2 s) for no run time we could measure (LLVM does the same work on the kernel's locals:
        # best substep 28.6/23.8 ms on against 27.0/24.8 ms off; docs/benchmark.md). Set
        # TI_CFG_OPTIMIZATION=1 to have it back.
        kwargs["cfg_optimization"] = False
    if threads is not None:
        kwargs["cpu_max_num_threads"] = int(threads)
    if arch == "cuda":
        kwargs["device_memory_fraction"] = CUDA_MEMORY_FRACTION
    before = set(affinity.thread_times())
    with contextlib.redirect_stdout(sys.stderr):  # Taichi prints its banner; keep stdout for --json
        ti.init(**kwargs)
    started = set(affinity.thread_times()) - before
    frontend.install()  # Taichi's frontend redoes work per node and per ti.func call: done once (frontend.py)
    launch.install()  # and its launch path per call: done once per instantiation (launch.py)
    chosen = str(ti.lang.impl.current_cfg().arch).split(".")[-1]
    if arch not in ("auto", "cpu") and chosen in ("x64", "arm64"):
        raise PolyalloyError(f"arch {arch!r} is not available on this machine; use --arch cpu or auto")
    np.random.seed(int(seed) % 2**32)
    n_threads = threads if threads is not None else (os.cpu_count() or 1)
    # one core each for Taichi's CPU workers: a short loop's second worker starts at once (affinity.py)
    cores = affinity.pin_pool(started, n_threads) if chosen in ("x64", "arm64") else ()
    _info = RuntimeInfo(chosen, arch, precision, int(seed), bool(deterministic), n_threads, bool(fast_compile),
                        p2g_lanes(chosen, n_threads, wanted_lanes if wanted_lanes is not None else lone_lanes),
                        wanted_lanes is not None, cores, sort_every)
    log.info("polyalloy runtime: arch=%s (asked %s), precision=%s, seed=%d, deterministic=%s, fast_compile=%s, "
             "workers pinned to cores %s", chosen, arch, precision, seed, deterministic, fast_compile, cores or "no")
    return _info


@contextlib.contextmanager
def p2g_lanes_of(lanes: int):
    """Within the block, simulations made are built with ``lanes`` P2G lanes (the benchmark's and
    the tests' comparison of the serial and the laned P2G in one process); the runtime's own after."""
    global _info
    before = info()
    _info = dataclasses.replace(before, p2g_lanes=int(lanes), lanes_pinned=True)
    try:
        yield
    finally:
        _info = before


def info() -> RuntimeInfo:
    """The runtime chosen by ``init``; an error if ``init`` has not been called."""
    if _info is None:
        raise PolyalloyError("call polyalloy.init() before building a simulation")
    return _info


def is_initialized() -> bool:
    return _info is not None


def real_dtype():
    """The Taichi float type of every real field (chosen by ``init(precision=...)``)."""
    import taichi as ti

    return ti.f64 if info().precision == "f64" else ti.f32


def np_real():
    return np.float64 if info().precision == "f64" else np.float32
