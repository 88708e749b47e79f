"""Benchmark behind ``polyalloy bench``: standard workloads timed in particle-steps per second,
with reference baselines (Taichi's own ``examples/simulation/mpm3d.py``, in 3D and in 2D) measured
in the same run.

Workloads (sizes for ``n_grid = 64``; every size scales with ``n_grid``), listed in ``WORKLOADS``:

- ``fluid_block``: our ``Simulation`` running a weakly compressible water block of 65,536 particles
  (2 particles per cell per axis) in a 1 m box on a 64^3 grid, at a fixed dt.
- ``polyalloy_block``: the same block as mimetic polyalloy with heat, phases, damage and the
  mimetic controller on (the block is its own template: every particle is gripped, the grid
  pull, the fine gap closing and the volume settling all run).
- ``reference_mpm3d``: the plain MLS-MPM of Taichi's example, loaded from the installed taichi
  package, on the same grid with the same particle count, dt and number of substeps.
- ``bars_walk``: the ``bars`` scene at preview size (the controlled man walking into a row of
  textured bar colliders: 10,720 particles at ``n_grid = 64``).
- ``polyalloy_flow``: a flowing body. A column of mimetic polyalloy (the fluid block stood on
  end: the same 65,536 particles, heat on, no controller) dropped at 2 m/s onto the floor of
  the box slumps and spreads like gelatine; timing starts ``FLOW_WARM_UP`` s into the slump,
  when most of the column is yielding (the ``yielding`` fraction is reported beside its time).
- ``fluid_block_2d`` and ``reference_mpm2d``: the same pair in 2D (the example's ``dim = 2``) on a
  256^2 grid (4 n_grid cells per metre) with 32,768 particles.
- ``sparse_grid``: one 13,824-particle water cube in a tight box and in a box 4x larger per side
  (same dx); the per-particle cost ratio shows whether cost follows the particles or the box.

Adding a workload (the humanoid walking through bars, once its controller exists) is one more
``Workload`` entry whose ``build(n_grid, dt)`` returns a ``_Case`` (``_simulation_case`` wraps any
``Simulation``); the report, the table and the JSON pick it up.

Every timing is bracketed by ``ti.sync()``. The first substep of each workload (JIT compilation,
or a load from the offline kernel cache) is timed apart as ``compile_s``. The workloads are then
timed in interleaved rounds and each reports its fastest round, so that a machine shared with
other work slows every workload alike and the ratios stay fair; ``cpu_seconds`` (process CPU
time of that round, all threads) is given beside the wall time. Every round starts from the
state the workload had after its warm-up (saved once, loaded before each round, untimed), so
that every round does the same work. (``sequential=True``, ``--sequential``: one workload at a
time instead, built, timed, checked and closed before the next: less memory, fewer compiles,
ratios less fair on a shared machine.)

Checks: after each round a workload records a ``checksum`` of its state (centre of mass,
kinetic energy and thermal energy, ``checksum``), and once more after the same substeps from
the same start on the *plain path*: our workloads with ``knobs.plain`` set, so that G2P takes
the SVD for every solid particle instead of its closed-form shortcuts (the same compiled
kernel; the fluid has no shortcut, so its plain run checks that rounds repeat). ``run_bench``
raises ``BenchCheckError`` when a checksum differs from the plain one beyond ``CHECK_TOLERANCE``,
so speed cannot come from doing less work. The references have no other path and are not checked.

P2G lanes (``run_p2g_lanes``; the full run, or ``p2g=True``): on a CPU with two threads or more
P2G scatters in lanes, one per thread (``kernels.fields.Grid.lanes``); the full run builds
``polyalloy_block`` and ``fluid_block`` once more with the serial P2G and times the transfer to
the grid (clear, P2G, block list: ``time_p2g``) of both builds, alternating, from the same state:
the speedup is measured in the same run.

The full run (or ``scaling=True``) also times fluid_block's water at 16,000 to ~1M particles
(``run_scaling``; sizes that do not fit in memory are skipped before allocating) and can plot it. The roofline line (``traffic_model``) gives the bytes moved and flops per particle-step of
the fluid workloads and the fraction of the measured memory bandwidth (a stream triad) reached.
"""
from __future__ import annotations

import linecache
import math
import os
import platform
import re
import resource
import subprocess
import time
import types
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import polyalloy
from polyalloy import runtime
from polyalloy.errors import PolyalloyError, SimulationError
from polyalloy.kernels.kinds import POLYALLOY
from polyalloy.materials import Fluid
from polyalloy.scene import Scene
from polyalloy.shapes import Box

FULL_GRID = 64  # n_grid of the standard size: 65,536 particles, as in mpm3d.py's 64^3 setting
BASE_DT = 2e-4 * FULL_GRID  # s * cells: dt = BASE_DT / n_grid, mpm3d.py's dt for n_grid = 64
QUICK = dict(substeps=20, rounds=3)
FULL = dict(substeps=100, rounds=5)
SPARSE_SCALE = 4  # the large box of the sparse workload is this many times the tight one per side
SPARSE_TIGHT_SIDE = 0.25  # m: the tight box around the sparse workload's body
# Water boxes (m per axis) whose sides are whole multiples of the particle spacing 1 / (2 n_grid):
# 0.5 x 0.25 x 0.25 holds exactly n_grid^3 / 4 particles, mpm3d.py's count (65,536 at n_grid = 64);
# the sparse workload's 0.1875 m cube holds (0.375 n_grid)^3 (13,824 at 64).
FLUID_BLOCK = (0.5, 0.25, 0.25)
SPARSE_BODY = (0.1875, 0.1875, 0.1875)
FLOW_COLUMN = (0.25, 0.5, 0.25)  # m: polyalloy_flow's column, FLUID_BLOCK stood on end (the same particles)
FLOW_LIFT = 0.05  # m: the column's bottom above the floor at t = 0
FLOW_DROP = 2.0  # m/s: its speed downward at t = 0
FLOW_WARM_UP = 0.06  # s of simulated time before the timed rounds: the slump is under way, 60% yielding at 32 cells/m
# How far a workload's checksum may lie from the plain path's after the same substeps from the same state
# (the two paths differ by f32 rounding only, which a flowing body amplifies): the centre of mass in cells
# (dx), the kinetic and thermal energy relative to their size. Measured on polyalloy_flow at 64 cells/m
# after 20 substeps: 3e-7 cells, 7e-7, 0; skipping the return of its yielding particles: 7e-3 cells, 0.14.
CHECK_TOLERANCE = dict(com_cells=1e-4, kinetic=1e-4, thermal=1e-6)
REFERENCE_PATH = os.path.join("examples", "simulation", "mpm3d.py")
GRID_2D = 4  # the 2D workloads have GRID_2D * n_grid cells per metre: 8 n_grid^2 particles (32,768 at 64)
SCALING_SIZES = (16_000, 65_536, 262_144, 524_288, 1_048_576, 2_097_152, 4_194_304, 8_388_608, 16_777_216)
SCALING_MAX_PARTICLES = 1_100_000
SCALING = dict(substeps=10, rounds=2)
TRIAD_ELEMENTS = 1 << 24  # per array of the bandwidth test (128 MiB of float64 in numpy)

WATER = Fluid(density=1000.0, bulk_modulus=1.0e5, viscosity=1.0e-3)  # as in scenes/dam_break.py


@dataclass
class _Case:
    """One timed workload: ``step`` advances it by one substep of ``dt``."""

    step: Callable[[], None]
    particles: int
    grid: tuple
    dt: float
    check: Callable[[], None]
    sim: object = None  # the Simulation behind the case (None for the reference)
    save: Callable[[], object] = None  # the state, to start every round from (``load``)
    load: Callable[[object], None] = None
    checksum: Callable[[], dict] = None  # centre of mass, kinetic and thermal energy of the state now
    plain: Callable[[int], None] = None  # switch the plain path on (1) or off (0); None: there is no other path
    yielding: Callable[[], float] = None  # fraction of the particles on their yield surface (polyalloy only)
    start: object = None  # the state every timed round starts from
    checksums: list = field(default_factory=list)  # after each timed round
    field_bytes: int = 0  # bytes of the fields the case allocated
    compile_s: float = 0.0
    active_blocks: int = 0  # the grid blocks its particles touched after its rounds (a Simulation's)
    active_nodes: int = 0  # their nodes
    seconds: float = math.inf
    cpu_seconds: float = math.inf
    round_seconds: list = field(default_factory=list)  # wall time of each timed round, in order
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """A standard workload: ``build(n_grid, dt)`` returns its warmed-up ``_Case``; ``profile``: time
    each kernel of its Simulation as well; ``roofline``: give its bytes and flops per particle-step
    (``traffic_model`` describes the fluid workloads only)."""

    name: str
    build: Callable[[int, float], "_Case"]
    profile: bool = False
    roofline: bool = False


WORKLOADS = (
    Workload("fluid_block", lambda n, dt: _fluid_case(n, dt, 3), profile=True, roofline=True),
    Workload("polyalloy_block", lambda n, dt: _polyalloy_case(n, dt), profile=True),
    Workload("reference_mpm3d", lambda n, dt: _reference_case(n, dt, 3)),
    Workload("fluid_block_2d", lambda n, dt: _fluid_case(GRID_2D * n, dt / GRID_2D, 2), profile=True, roofline=True),
    Workload("reference_mpm2d", lambda n, dt: _reference_case(GRID_2D * n, dt / GRID_2D, 2)),
    Workload("bars_walk", lambda n, dt: _bars_case(n, dt), profile=True),
    Workload("polyalloy_flow", lambda n, dt: _flow_case(n, dt), profile=True),
)


class BenchCheckError(PolyalloyError):
    """A workload's checksum differs from its plain path's beyond ``CHECK_TOLERANCE``; ``result``
    holds the measurements all the same."""

    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.result = result


def run_bench(quick: bool = True, arch: str = "cpu", n_grid: int = FULL_GRID, substeps: int | None = None,
              rounds: int | None = None, progress: Callable[[str], None] | None = None,
              scaling: bool | None = None, scaling_sizes=SCALING_SIZES, max_particles: int = SCALING_MAX_PARTICLES,
              triad_elements: int = TRIAD_ELEMENTS, p2g: bool | tuple | None = None, sequential: bool = False) -> dict:
    """Run the workloads and return the measurements (a JSON-ready dict, see the module doc).

    quick: 20 timed substeps x 3 rounds per workload instead of 100 x 5, and no scaling series.
    arch: passed to ``polyalloy.init`` (a runtime already started on that arch is reused).
    n_grid: grid cells per metre (and per axis of the 1 m box): the particle counts scale as
    n_grid^3 (65,536 and 13,824 at 64) and dt as 1 / n_grid; tests use 16.
    substeps, rounds: override the quick/full settings. progress: optional callable that
    receives one line of text per phase. scaling: time fluid_block's water at each particle count
    of ``scaling_sizes`` up to ``max_particles`` (``run_scaling``; default: in the full run only).
    triad_elements: array length of the bandwidth test. p2g: time the serial P2G against the
    runtime's P2G lanes (``run_p2g_lanes``; default: in the full run only), of ``P2G_WORKLOADS``
    or of the workloads named when a tuple (the tests time water's alone: one serial build less
    to compile). sequential: build, time, check and close one workload at a time instead of
    timing them in interleaved rounds: the fields of one workload at a time (the peak memory is
    the largest workload's, not their sum), and workloads of one layout compile once (at the
    tests' size fluid_block and both sparse boxes share one, polyalloy_block and bars_walk
    another); the ratios then compare rounds taken apart in time, which a shared machine skews.
    """
    plan = dict(QUICK if quick else FULL)
    plan.update({k: v for k, v in (("substeps", substeps), ("rounds", rounds)) if v is not None})
    substeps, rounds = int(plan["substeps"]), int(plan["rounds"])
    if n_grid < 8:
        raise PolyalloyError(f"bench n_grid must be at least 8, got {n_grid}")
    if substeps < 1 or rounds < 1:
        raise PolyalloyError(f"bench substeps and rounds must be at least 1, got {substeps} and {rounds}")
    if max_particles < 1:
        raise PolyalloyError(f"bench max_particles must be at least 1, got {max_particles}")
    info = _start_runtime(arch)
    import taichi as ti

    say = progress or (lambda line: None)
    dt = BASE_DT / n_grid
    profiled = {w.name for w in WORKLOADS if w.profile}
    builds = {w.name: (lambda w=w: w.build(n_grid, dt)) for w in WORKLOADS}
    builds.update({f"sparse_{c}": (lambda c=c: _sparse_case(n_grid, dt, c)) for c in ("tight", "large")})
    lanes = None  # the P2G lanes' section, when asked for
    if p2g if p2g is not None else not quick:
        lane_names = tuple(p2g) if isinstance(p2g, (tuple, list)) else P2G_WORKLOADS
        lanes = run_p2g_lanes({}, n_grid, dt, rounds, names=())  # the section's header (or why it is skipped)
    timed, failures = {}, []

    def begin(name: str) -> _Case:
        say(f"compiling {name}")
        # the runtime's lanes at any size (a small simulation would run on one thread:
        # ``simulation.serial_lanes``), so that a quick run times the code a full one does
        with runtime.p2g_lanes_of(runtime.info().p2g_lanes):
            case = timed[name] = builds[name]()
        case.start = case.save()
        if case.yielding is not None:
            case.extra["yielding_start"] = case.yielding()
        return case

    def conclude(name: str, case: _Case) -> None:
        """What needs the workload alive after its timed rounds: the checks, the per-kernel
        times, its P2G against the serial one; then its fields go back to the pool."""
        case.check()
        if case.yielding is not None:
            case.extra["yielding"] = case.yielding()
        failure = _plain_check(case, substeps, name)
        if failure:
            failures.append(failure)
        if name in profiled:
            say(f"per-kernel times of {name}")
            case.extra["kernel_ms"] = kernel_breakdown(case.sim, case.dt, substeps, rounds,
                                                       restore=lambda: case.load(case.start))
        if lanes is not None and "skipped" not in lanes and name in lane_names:
            lanes.update(run_p2g_lanes({name: case}, n_grid, dt, rounds, say=say, names=(name,)))
        if case.sim is not None:
            sim = case.sim
            case.active_blocks = sim.active_blocks()
            case.active_nodes = case.active_blocks * sim.grid.block ** sim.dim
            sim.close()  # a later workload of the same layout takes its fields and compiled kernels

    if sequential:
        for name in builds:
            case = begin(name)
            say(f"{rounds} rounds of {substeps} substeps of {name}, then its checks")
            for _ in range(rounds):
                _time_round(case, substeps)
            conclude(name, case)
    else:
        for name in builds:
            begin(name)
        for r in range(rounds):
            say(f"round {r + 1}/{rounds}: {substeps} substeps of each workload")
            for case in timed.values():
                _time_round(case, substeps)
        say(f"checks: {substeps} substeps of each workload on the plain path")
        for name, case in timed.items():
            conclude(name, case)
    cases = {w.name: timed[w.name] for w in WORKLOADS}
    alloy = cases["polyalloy_block"].extra
    alloy["thermal_fraction"] = alloy["kernel_ms"]["conduct"] / sum(alloy["kernel_ms"].values())
    for name in ("sparse_tight", "sparse_large"):
        timed[name].extra["active_blocks"] = timed[name].active_blocks

    workloads = {name: _report(case, substeps, rounds) for name, case in cases.items()}
    workloads["sparse_grid"] = _sparse_report(timed["sparse_tight"], timed["sparse_large"], substeps, rounds)
    say("memory bandwidth (stream triad)")
    bandwidth = measure_bandwidth(info.arch, triad_elements)
    roofline = {"bandwidth_gb_per_s": bandwidth,
                "bandwidth_used": "taichi_triad" if info.arch not in ("x64", "arm64") else "numpy_triad"}
    for w in WORKLOADS:
        if w.roofline:
            roofline[w.name] = _roofline(cases[w.name], workloads[w.name], bandwidth[roofline["bandwidth_used"]])
    ratio = lambda a, b: workloads[a]["particle_steps_per_s"] / workloads[b]["particle_steps_per_s"]  # noqa: E731

    def paired(a: str, b: str) -> float:
        """The median over rounds of the ratio within a round (``a`` and ``b`` timed seconds apart
        in one interleaved round): a second estimate beside the fastest rounds' ratio; where the
        two disagree, the machine's speed moved while the bench ran (``round_spread``)."""
        ra, rb = cases[a].round_seconds, cases[b].round_seconds
        per = [(cases[a].particles / ta) / (cases[b].particles / tb) for ta, tb in zip(ra, rb)]
        return float(np.median(per)) if per else math.nan
    ours, ref = workloads["fluid_block"], workloads["reference_mpm3d"]
    result = {
        "version": polyalloy.__version__,
        "taichi_version": ".".join(map(str, ti.__version__)),
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "platform": platform.platform(),
        "arch": info.arch,
        "device": _device_name(info.arch),
        "threads": info.threads,
        "pinned_cores": list(info.cores),  # Taichi's CPU workers, one to a core (polyalloy.affinity); [] unpinned
        "precision": info.precision,
        "fast_compile": info.fast_compile,  # Taichi's advanced optimisation off, for us and the reference
        "sort_every": info.sort_every,  # P2G in grid-block order, sorted every this many substeps (0: slot order)
        "quick": bool(quick),
        "sequential": bool(sequential),
        "workloads": workloads,
        "ratios": {
            "fluid_vs_reference": ratio("fluid_block", "reference_mpm3d"),
            # the same ratio in CPU time (all threads): steadier than wall time on a shared machine
            "fluid_vs_reference_cpu": (ref["cpu_seconds"] / ref["particles"])
            / (ours["cpu_seconds"] / ours["particles"]),
            "polyalloy_vs_reference": ratio("polyalloy_block", "reference_mpm3d"),
            "fluid_2d_vs_reference_2d": ratio("fluid_block_2d", "reference_mpm2d"),
            # the same ratios round by round (the median of each round's; see ``paired``)
            "fluid_vs_reference_paired": paired("fluid_block", "reference_mpm3d"),
            "polyalloy_vs_reference_paired": paired("polyalloy_block", "reference_mpm3d"),
            "sparse_large_vs_tight_per_particle": workloads["sparse_grid"]["large_vs_tight_per_particle"],
        },
        "roofline": roofline,
    }
    if lanes is not None:
        result["p2g_lanes"] = lanes
    if scaling if scaling is not None else not quick:
        result["scaling"] = run_scaling(scaling_sizes, max_particles, n_grid, info.arch, say=say, **SCALING)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if info.arch == "cuda":
        result.update(_gpu_facts())
    if failures:
        raise BenchCheckError(f"bench check failed: {failures[0]}" + (f" (and {len(failures) - 1} more)"
                                                                      if len(failures) > 1 else ""), result)
    return result


def format_table(result: dict) -> str:
    """The result of ``run_bench`` as a plain-text table for the terminal."""
    head = (f"polyalloy {result['version']} | taichi {result['taichi_version']} | python {result['python_version']} | "
            f"numpy {result['numpy_version']} | arch {result['arch']} | {result['device']} | "
            f"{result['threads']} threads"
            + (" pinned one to a core" if result.get("pinned_cores") else "") + f" | {result['precision']}"
            + (" | fast compile (advanced optimisation off)" if result.get("fast_compile") else "")
            + (f" | P2G in block order, sorted every {result['sort_every']} substeps" if result.get("sort_every") else ""))
    cols = ("workload", "particles", "grid", "substeps", "dt (s)", "threads", "compile (s)", "fields (MB)",
            "ms/substep", "yielding", "M p-steps/s", "check")

    def row(name, w):
        yielding = (f"{100 * min(w['yielding_start'], w['yielding']):.0f}-"
                    f"{100 * max(w['yielding_start'], w['yielding']):.0f}%" if "yielding" in w else "")
        check = "" if "check" not in w else "ok" if w["check"]["ok"] else "FAILED"
        return (name, f"{w['particles']:,}", "x".join(map(str, w["grid"])), str(w["substeps"]), f"{w['dt']:.2e}",
                str(w["threads"]), f"{w['compile_s']:.2f}", f"{w['field_mb']:.1f}", f"{w['ms_per_substep']:.2f}",
                yielding, f"{w['particle_steps_per_s'] / 1e6:.3f}", check)

    rows = []
    for name, w in result["workloads"].items():
        rows.append(row(name, w))
        rows += [row(f"  {case} box {w[case]['domain_m']:g} m", w[case]) for case in ("tight", "large") if case in w]
    out = [head] + _columns(cols, rows)
    out.append("yielding: the share of particles on their yield surface at the start and the end of the timed "
               "substeps; check: the checksum after the timed substeps (centre of mass, kinetic and thermal "
               "energy) against the plain path's (SVD for every solid particle), within "
               f"{CHECK_TOLERANCE['com_cells']:g} dx, {CHECK_TOLERANCE['kinetic']:g} and "
               f"{CHECK_TOLERANCE['thermal']:g} relative; the references have no other path")
    for name, w in result["workloads"].items():
        if "kernel_ms" in w:
            out.append(f"{name} per kernel (ms/substep): " + ", ".join(f"{k} {v:.2f}" for k, v in w["kernel_ms"].items()))
    ratios = result["ratios"]
    out.append(f"polyalloy_block: the grid heat step (conduct) is "
               f"{100 * result['workloads']['polyalloy_block']['thermal_fraction']:.1f}% of the kernel time; "
               f"{ratios['polyalloy_vs_reference']:.2f}x the reference's particle-steps/s")
    sparse = result["workloads"]["sparse_grid"]
    out.append(f"fluid_block vs reference_mpm3d: {ratios['fluid_vs_reference']:.2f}x the reference's "
               f"particle-steps/s ({ratios['fluid_vs_reference_cpu']:.2f}x per CPU-second); 2D: "
               f"{ratios['fluid_2d_vs_reference_2d']:.2f}x")
    ref = result["workloads"]["reference_mpm3d"]
    out.append(f"round by round (the median of each round's ratio): fluid {ratios['fluid_vs_reference_paired']:.2f}x, "
               f"polyalloy {ratios['polyalloy_vs_reference_paired']:.2f}x; the reference's slowest round took "
               f"{ref['round_spread']:.2f}x its fastest")
    out.append(f"sparse grid: per-particle cost large/tight = {ratios['sparse_large_vs_tight_per_particle']:.2f} "
               f"(active blocks {sparse['tight']['active_blocks']} of {sparse['tight']['total_blocks']:,} vs "
               f"{sparse['large']['active_blocks']} of {sparse['large']['total_blocks']:,})")
    roof = result["roofline"]
    bw = roof["bandwidth_gb_per_s"]
    out.append(f"memory bandwidth (stream triad): numpy {bw['numpy_triad']:.1f} GB/s, taichi {bw['taichi_triad']:.1f} "
               f"GB/s; the roofline uses {roof['bandwidth_used'].split('_')[0]}'s")
    for name in (w.name for w in WORKLOADS if w.roofline):
        r = roof[name]
        out.append(f"roofline {name}: {r['bytes_per_particle_step']:.0f} B and {r['flops_per_particle_step']:.0f} "
                   f"flop per particle-step ({r['flops_per_byte']:.1f} flop/B) -> {r['achieved_gb_per_s']:.2f} GB/s, "
                   f"{100 * r['fraction_of_bandwidth']:.0f}% of the measured bandwidth, "
                   f"{r['achieved_gflop_per_s']:.1f} GFLOP/s")
    lanes = result.get("p2g_lanes")
    if lanes and "skipped" in lanes:
        out.append(f"P2G lanes: not timed ({lanes['skipped']})")
    elif lanes:
        for name in (n for n in P2G_WORKLOADS if n in lanes):
            p = lanes[name]
            out.append(f"P2G of {name} ({p['particles']:,} particles): serial (one thread) {p['serial_ms']:.2f} ms, "
                       f"{lanes['lanes']} lanes on {lanes['threads']} threads {p['lanes_ms']:.2f} ms "
                       f"({p['lanes_cpu_ms']:.2f} ms CPU) = {p['speedup']:.2f}x (best of {len(p['rounds_ms']['1'])} "
                       f"rounds; medians {p['serial_median_ms']:.2f} and {p['lanes_median_ms']:.2f} ms)")
    if "scaling" in result:
        sc = result["scaling"]
        rows = [(f"{p['particles']:,}", f"{p['ms_per_substep']:.2f}", f"{p['ns_per_particle_step']:.1f}",
                 f"{p['particle_steps_per_s'] / 1e6:.3f}") for p in sc["points"]]
        if rows:
            out.append(f"scaling: water cube at {sc['n_grid']} cells per metre, {sc['substeps']} substeps x "
                       f"{sc['rounds']} rounds per size, one compile ({sc['compile_s']:.2f} s), fields "
                       f"{sc['field_mb']:.0f} MB for the largest:")
            out += _columns(("particles", "ms/substep", "ns/particle-step", "M p-steps/s"), rows)
        out.append(f"cost ~ particles^{sc['exponent']:.2f} (least squares over the sizes from "
                   f"{sc['exponent_from']:,} particles on)"
                   if sc["exponent"] is not None else "too few sizes for a scaling exponent")
        out += [f"skipped {k['particles']:,} particles: {k['reason']}" for k in sc["skipped"]]
    out.append(f"peak host memory (RSS): {result['peak_rss_mb']:.0f} MB")
    return "\n".join(out)


def _columns(cols, rows) -> list:
    widths = [max(len(r[i]) for r in rows + [cols]) for i in range(len(cols))]

    def line(r):
        return "  ".join(s.ljust(w) if i == 0 else s.rjust(w) for i, (s, w) in enumerate(zip(r, widths)))

    return [line(cols), line(tuple("-" * w for w in widths))] + [line(r) for r in rows]


# --- scaling ------------------------------------------------------------------------------------
def run_scaling(sizes=SCALING_SIZES, max_particles: int = SCALING_MAX_PARTICLES, n_grid: int = FULL_GRID,
                arch: str | None = None, substeps: int = SCALING["substeps"], rounds: int = SCALING["rounds"],
                say: Callable[[str], None] = lambda line: None) -> dict:
    """Substep cost of fluid_block's water (``n_grid`` cells per metre, 8 particles per cell) at each
    particle count of ``sizes`` up to ``max_particles``.

    One Simulation holds a water cube, sitting in the corner of its box, of the largest size that
    fits in the memory of ``arch`` (host RAM, or the share of GPU memory Taichi reserved; larger
    sizes are skipped before allocating). Its particles are stored in nested shells from that
    corner, so the first n of them form a smaller cube in the same corner: each size is timed with
    only those n live. So every size runs the same compiled kernels (one compile, ``compile_s``)
    on the same grid, and the cost differs only by the particles. ``exponent``: the slope of
    log(time) against log(particles) over the sizes from 65,536 particles on (all sizes when fewer
    than two are that large; ``exponent_from`` says which), 1 = linear."""
    from polyalloy.simulation import Simulation

    arch = arch or runtime.info().arch
    budget = _memory_budget(arch)
    wanted = sorted(int(n) for n in sizes if n <= max_particles)
    spacing = 1.0 / (2 * n_grid)  # m between particles
    fits, skipped = [], []
    for n in wanted:
        side = math.ceil(round(n ** (1 / 3), 9)) * spacing  # m: the smallest whole-spacing cube holding n
        domain = side + 4.0 / n_grid
        need = _simulation_bytes(3, math.ceil(side / spacing) ** 3, (math.ceil(domain * n_grid) + 2 * 3 + 1,) * 3,
                                 thermal=False)
        if need > 0.8 * budget:
            skipped.append(dict(particles=n, reason=f"needs {need / 2**30:.1f} GiB of {budget / 2**30:.1f} GiB "
                                                    f"available"))
        else:
            fits.append((n, side, domain))
    points, facts = [], {}
    if fits:
        largest, side, domain = fits[-1]
        say(f"scaling: one water cube of {largest:,} particles ({n_grid} cells per metre), timed at "
            f"{len(fits)} sizes")
        sim = Simulation(_water_scene("bench_scaling", n_grid, (0.0, 0.0, 0.0), domain, side / 2, (side,) * 3))
        x = sim.particles()["x"]
        shell = np.floor((x - x.min(axis=0)) / spacing).max(axis=1)
        from polyalloy.kernels import fields as kf

        kf.put(sim.particles_fields.x, x[np.argsort(shell, kind="stable")])
        dt = BASE_DT / n_grid
        case = None
        for n, _, _ in fits:
            sim.particles_fields.n[None] = n
            sim.particles_fields.n_sorted[None] = 0  # a block order of other sizes (kernels.order)
            if case is None:
                case = _simulation_case(sim, dt, "scaling")
            else:
                case.step()  # the first substep at a new size re-lists the grid blocks
            case.particles, case.seconds = n, math.inf
            for _ in range(rounds):
                _time_round(case, substeps)
            case.check()
            ms = 1e3 * case.seconds / substeps
            points.append(dict(particles=n, ms_per_substep=ms, ns_per_particle_step=1e6 * ms / n,
                               particle_steps_per_s=n * substeps / case.seconds))
        facts = dict(compile_s=case.compile_s, field_mb=case.field_bytes / 2**20, cube_side_m=side)
        sim.close()
    # below ~65k particles a substep's fixed costs (kernel launches, syncs) still show
    fit = [p for p in points if p["particles"] >= 65_536]
    fit = fit if len(fit) >= 2 else points
    exponent = (float(np.polyfit(np.log([p["particles"] for p in fit]), np.log([p["ms_per_substep"] for p in fit]),
                                 1)[0]) if len(fit) >= 2 else None)
    return dict(workload="fluid_block", n_grid=n_grid, substeps=substeps, rounds=rounds, points=points,
                skipped=skipped, exponent=exponent, exponent_from=min((p["particles"] for p in fit), default=None),
                **facts)


P2G_REPEATS = 10  # P2G launches per timed round of ``run_p2g_lanes``
P2G_WORKLOADS = ("polyalloy_block", "fluid_block")  # what ``run_p2g_lanes`` times by default


def substep_ms(case: _Case, substeps: int = 20) -> float:
    """Wall milliseconds per substep of ``substeps`` substeps of ``case`` from where it stands,
    synced before and after (the tools' timing of whole substeps)."""
    import taichi as ti

    ti.sync()
    t0 = time.perf_counter()
    for _ in range(substeps):
        case.step()
    ti.sync()
    return 1e3 * (time.perf_counter() - t0) / substeps


def time_p2g(sim, repeats: int = P2G_REPEATS, mpm=None) -> tuple[float, float]:
    """Wall and CPU milliseconds of one transfer of ``sim``'s particles to the grid as they are:
    clear, P2G and the block list (with the lanes' sum where there are lanes), ``repeats`` of them
    back to back as in a substep, one sync at the end; the mean. With heat, the transfer of a
    substep that carries the heat step (every channel, as every substep's before the multirate
    heat, ``kernels.heat``). ``mpm``: the kernels' module (default ``polyalloy.kernels.mpm``;
    ``tools/p2g_ab.py`` passes versions of it)."""
    import taichi as ti

    if mpm is None:
        from polyalloy.kernels import mpm

    g, k = sim.grid, sim.knobs
    k.heat_step[None] = 1
    ti.sync()
    w, c = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        mpm.clear_grid(g, k)
        mpm.p2g(sim.particles_fields, g, sim.materials, sim.control_table, k)
        mpm.collect_blocks(g, k)
    ti.sync()
    return 1e3 * (time.perf_counter() - w) / repeats, 1e3 * (time.process_time() - c) / repeats


def run_p2g_lanes(cases: dict, n_grid: int, dt: float, rounds: int, say=lambda line: None,
                  names: tuple = P2G_WORKLOADS) -> dict:
    """The transfer to the grid (``time_p2g``) with P2G in the runtime's lanes
    (``kernels.fields.Grid.lanes``) against the serial P2G, one thread, in this process:
    ``names`` (``polyalloy_block`` and ``fluid_block``) from ``cases`` (built with the runtime's lanes) and the
    same workloads built again with one lane; one untimed transfer each, then rounds alternate,
    and each reports the best round, the median, the CPU time and the grid mass of both (equal to
    rounding). Nothing to do where the runtime has fewer than two lanes (one thread, or a GPU)."""
    from polyalloy.kernels import mpm

    lanes = runtime.info().p2g_lanes
    out = {"lanes": lanes, "threads": runtime.info().threads, "repeats": P2G_REPEATS, "rounds": rounds}
    if lanes < 2:
        out["skipped"] = "the runtime has fewer than two P2G lanes (one thread, or a GPU's atomics)"
        return out
    builders = {w.name: w.build for w in WORKLOADS}
    for name in names:
        say(f"compiling {name} with the serial P2G")
        laned = cases[name]
        laned.load(laned.start)
        with runtime.p2g_lanes_of(1):
            serial = builders[name](n_grid, dt)
        serial.load(laned.start)  # the very state the laned case times
        times = {1: [], lanes: []}
        for case in (serial, laned):
            time_p2g(case.sim, 1)  # untimed: the first transfer of a build ran 5-6x slower in the quick runs
        for _ in range(max(3, rounds)):
            for n, case in ((1, serial), (lanes, laned)):
                times[n].append(time_p2g(case.sim))
        mass = {n: float(mpm.grid_mass(case.sim.grid)) for n, case in ((1, serial), (lanes, laned))}
        serial.sim.close()
        best = {n: min(w for w, _ in t) for n, t in times.items()}
        out[name] = dict(
            particles=laned.particles, serial_ms=best[1], lanes_ms=best[lanes], speedup=best[1] / best[lanes],
            serial_median_ms=float(np.median([w for w, _ in times[1]])),
            lanes_median_ms=float(np.median([w for w, _ in times[lanes]])),
            lanes_cpu_ms=min(c for _, c in times[lanes]), rounds_ms={str(n): [w for w, _ in t] for n, t in times.items()},
            grid_mass=mass[lanes], grid_mass_serial=mass[1])
    return out


def plot_scaling(result: dict, path: str) -> str:
    """Write a small PNG of the scaling series (ms per substep against particles, log-log, with a
    linear reference through the first point): with matplotlib when it is installed (the
    ``plot`` extra), else drawn with Pillow. Returns the path written."""
    sc = result.get("scaling")
    if not sc or not sc["points"]:
        raise PolyalloyError("the benchmark result has no scaling series to plot (run the full bench or --scaling)")
    n = np.array([p["particles"] for p in sc["points"]], float)
    ms = np.array([p["ms_per_substep"] for p in sc["points"]], float)
    from polyalloy.export import _atomic_target, ensure_writable_dir

    title = f"polyalloy bench: water cube on {result['arch']} ({result['device']})"
    ensure_writable_dir(os.path.dirname(os.path.abspath(path)))
    with _atomic_target(path, ".png") as tmp:
        _draw_scaling(n, ms, title, tmp)
    return path


def _draw_scaling(n, ms, title: str, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        ax.loglog(n, ms, "o-", label="measured")
        ax.loglog(n, ms[0] * n / n[0], "--", color="grey", label="linear in particles")
        ax.set_xlabel("particles")
        ax.set_ylabel("ms per substep")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, format="png")
        plt.close(fig)
    except ImportError:
        _plot_with_pillow(n, ms, title, path)


def _plot_with_pillow(n, ms, title, path) -> None:
    from PIL import Image, ImageDraw

    w, h, left, right, top, bottom = 600, 400, 70, 20, 40, 50
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    lx, ly = np.log10(n), np.log10(np.concatenate([ms, ms[0] * n / n[0]]))
    x0, x1 = np.floor(lx.min()), np.ceil(lx.max())
    y0, y1 = np.floor(ly.min()), np.ceil(ly.max())
    px = lambda v: left + (np.log10(v) - x0) / max(x1 - x0, 1e-9) * (w - left - right)  # noqa: E731
    py = lambda v: h - bottom - (np.log10(v) - y0) / max(y1 - y0, 1e-9) * (h - top - bottom)  # noqa: E731
    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    for e in range(int(x0), int(x1) + 1):
        draw.text((px(10.0 ** e) - 10, h - bottom + 5), f"1e{e}", fill="black")
    for e in range(int(y0), int(y1) + 1):
        draw.text((5, py(10.0 ** e) - 6), f"1e{e} ms", fill="black")
    draw.line([(px(a), py(ms[0] * a / n[0])) for a in (n[0], n[-1])], fill=(150, 150, 150), width=1)
    draw.line([(px(a), py(b)) for a, b in zip(n, ms)], fill=(31, 119, 180), width=2)
    for a, b in zip(n, ms):
        draw.ellipse([px(a) - 3, py(b) - 3, px(a) + 3, py(b) + 3], fill=(31, 119, 180))
    draw.text((left, 12), title, fill="black")
    draw.text((w // 2 - 150, h - 20), "x: particles, y: ms per substep (log-log); grey: linear", fill="black")
    img.save(path, format="PNG")


# --- roofline -----------------------------------------------------------------------------------
def traffic_model(dim: int, real: int, nodes_per_particle: float) -> dict:
    """Bytes moved and flops per particle-step of one fluid substep (``clear_grid``, ``p2g``,
    ``collect_blocks``, ``update_grid``, ``g2p`` of ``kernels/mpm.py`` for a ``FLUID`` material on a
    grid without heat), counted from the kernels' field reads and writes; keep in step with them.

    Bytes: the compulsory traffic, each particle field read or written once per kernel that touches
    it and each active grid node once per grid pass (``nodes_per_particle`` = active nodes /
    particles); the 3^dim stencil's re-reads of nodes are taken to hit the cache, so this is a lower
    bound on the traffic. ``real``: bytes per float; ints are 4 bytes.

    Flops: multiplications, additions, divisions, square roots and powers count one each; index
    arithmetic, comparisons and the NaN checks count none.
    """
    d, i4, stencil = dim, 4, 3 ** dim
    p2g_bytes = real * (2 * d + 2 * d * d + 4) + 2 * i4  # reads x, v, C, tau; mass, vol0, T, H; alive, material
    g2p_bytes = (real * (d + d * d + 4) + 3 * i4  # reads x, F; H, T, damage, Jp; alive, material, phase
                 + real * (2 * d + 3 * d * d + 4) + 2 * i4)  # writes x, v, C, F, tau; Jp, H, T, damage; phase, alive
    node_bytes = real * (2 * (d + 1)  # p2g: read-modify-write v, m
                         + (d + 1)  # clear_grid: write v, m
                         + (2 * d + 1)  # update_grid: read v, m, write v
                         + d)  # g2p: read v
    det = {2: 3, 3: 14}[d]
    setup = 4 * d + 9 * d  # stencil_base (scale, floor, offset) and the quadratic weights (3 per axis)
    p2g = (setup + (4 + 3 * d * d) + d  # affine = -dt V0 4/dx^2 tau + m C; momentum m v
           + stencil * (2 * d + d + (2 * d * d - d) + 3 * d + 2))  # dpos, weight, affine@dpos, sums, mass
    g2p = (setup + stencil * (2 * d + d + 2 * d + 3 + 3 * d * d)  # dpos, weight, v += w g_v, C += w g_v dpos^T
           + 2 * d  # x += dt v
           + (d * d + d + d ** 3 + d * d * (d - 1))  # F = (I + dt C) F
           + det + 1  # liquid projection F = diag(J, 1, ...): J = max(det F, 1e-6)
           + det + 2 + d + 3 * d * d  # fluid stress J (K (J - 1) I + eta (C + C^T))
           + 2 * d + 5)  # |v| and the wave speed for the next dt
    update = 3 * d  # per node: v = p / m + dt g
    return dict(bytes=p2g_bytes + g2p_bytes + nodes_per_particle * node_bytes,
                flops=p2g + g2p + nodes_per_particle * update)


def _roofline(case: _Case, report: dict, bandwidth: float) -> dict:
    nodes = case.active_nodes
    model = traffic_model(len(case.grid), 8 if runtime.info().precision == "f64" else 4, nodes / case.particles)
    rate = report["particle_steps_per_s"]
    return dict(bytes_per_particle_step=model["bytes"], flops_per_particle_step=model["flops"],
                flops_per_byte=model["flops"] / model["bytes"], active_nodes_per_particle=nodes / case.particles,
                achieved_gb_per_s=model["bytes"] * rate / 1e9, achieved_gflop_per_s=model["flops"] * rate / 1e9,
                fraction_of_bandwidth=model["bytes"] * rate / 1e9 / bandwidth)


def measure_bandwidth(arch: str, elements: int = TRIAD_ELEMENTS, repeats: int = 5) -> dict:
    """Memory bandwidth in GB/s from a stream triad a = b + s c, best of ``repeats``: in numpy on the
    host (float64, ``elements`` per array; numpy makes two passes, c -> a then a + b -> a, so 5 arrays
    move) and in a Taichi kernel on ``arch`` (float32; 3 arrays move; 8x the elements on a GPU, so
    that a pass takes well over a kernel launch). Write-allocate traffic is not counted (STREAM's rule)."""
    import taichi as ti

    from polyalloy.kernels import stream

    b, c = np.random.default_rng(0).random((2, elements))
    a = np.empty_like(b)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)
        best = min(best, time.perf_counter() - t0)
    numpy_gbs = 5 * a.nbytes / best / 1e9
    del a, b, c
    if arch not in ("x64", "arm64"):
        elements *= 8
    fb = ti.FieldsBuilder()
    fields = [ti.field(ti.f32) for _ in range(3)]
    fb.dense(ti.i, elements).place(*fields)
    tree = fb.finalize()
    try:
        for f in fields[1:]:
            f.fill(1.0)
        stream.triad(*fields, 3.0)
        ti.sync()
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            stream.triad(*fields, 3.0)
            ti.sync()
            best = min(best, time.perf_counter() - t0)
    finally:
        tree.destroy()
    return dict(numpy_triad=numpy_gbs, taichi_triad=3 * 4 * elements / best / 1e9)


# --- workloads ---------------------------------------------------------------------------------
def _fluid_case(n_grid: int, dt: float, dim: int) -> _Case:
    """A water block of FLUID_BLOCK (m, the first ``dim`` axes) in a 1 m box, ``n_grid`` cells per metre."""
    from polyalloy.simulation import Simulation

    name = "fluid_block" if dim == 3 else f"fluid_block_{dim}d"
    sim = Simulation(_water_scene(f"bench_{name}", n_grid, (0.0, 0.0, 0.0), 1.0, 0.35, FLUID_BLOCK, dim=dim))
    return _simulation_case(sim, dt, name)


def _polyalloy_case(n_grid: int, dt: float) -> _Case:
    """The fluid block's geometry filled with mimetic polyalloy at room temperature, heat on,
    held by the controller to its own shape: every substep runs the stress blend, the heat
    transfer, phases, damage and the control forces."""
    from polyalloy.body import ShapeTemplate
    from polyalloy.materials import Polyalloy
    from polyalloy.simulation import Simulation

    scene = _water_scene("bench_polyalloy_block", n_grid, (0.0, 0.0, 0.0), 1.0, 0.35, FLUID_BLOCK)
    scene.materials["water"] = Polyalloy()
    body = scene.bodies[0]
    body.shape = body.template = ShapeTemplate(shape=body.shape)
    return _simulation_case(Simulation(scene), dt, "polyalloy_block")


def _bars_case(n_grid: int, dt: float) -> _Case:
    """The shipped ``bars`` scene at preview size (dx = 2.56 / n_grid: 4 cm and 10,720 particles at
    64): the controlled man walking toward seven textured bars, with heat, phases, the
    controller, pose uploads and mimicry on every substep."""
    from polyalloy.scene import load_scene
    from polyalloy.simulation import Simulation

    scene = load_scene("bars", "preview")
    scene.dx = 2.56 / n_grid
    return _simulation_case(Simulation(scene), dt, "bars_walk")


def _flow_case(n_grid: int, dt: float) -> _Case:
    """A flowing body: a column of mimetic polyalloy (FLOW_COLUMN, the fluid block's particles)
    at room temperature, heat on, dropped at FLOW_DROP m/s from FLOW_LIFT above the floor of a
    1 m box, run for FLOW_WARM_UP s before timing: the impact and its own weight make it
    yield and slump (von Mises in Hencky strain: the return mapping runs for most particles)."""
    from polyalloy.materials import Polyalloy
    from polyalloy.simulation import Simulation

    scene = Scene(name="bench_polyalloy_flow", dim=3, domain=((0.0,) * 3, (1.0,) * 3), dx=1.0 / n_grid,
                  particles_per_cell=2, gravity=-9.81)
    scene.add_material("polyalloy", Polyalloy())
    half = tuple(s / 2 for s in FLOW_COLUMN)
    scene.add_body("column", Box(centre=(0.5, FLOW_LIFT + half[1], 0.5), half_size=half), "polyalloy",
                   velocity=(0.0, -FLOW_DROP, 0.0))
    case = _simulation_case(Simulation(scene), dt, "polyalloy_flow")
    while case.sim.t < FLOW_WARM_UP - 0.5 * dt:
        case.step()
    return case


def yielding_fraction(sim) -> float:
    """The share of ``sim``'s live particles that lie on their yield surface: mimetic polyalloy
    whose deviatoric Hencky strain |dev log(sigma)| (sigma: the singular values of F) is at its
    ``yield_strain`` to 1e-4 of it, i.e. the particles that the last substep's return mapping
    pulled back (inside the limit nothing is returned). Computed on the host in float64."""
    from polyalloy.kernels.kinds import MIMETIC

    n, pf = sim.n_particles, sim.particles_fields
    alive = pf.alive.to_numpy()[:n].astype(bool)
    if not alive.any():
        return 0.0
    limit = np.array([getattr(sim.scene.materials[m], "yield_strain", math.inf) for m in sim.material_names])
    mat, phase = pf.material.to_numpy()[:n][alive], pf.phase.to_numpy()[:n][alive]
    sig = np.linalg.svd(pf.F.to_numpy()[:n][alive].astype(np.float64), compute_uv=False)
    eps = np.log(np.maximum(sig, 1e-4))
    dev = np.linalg.norm(eps - eps.mean(axis=1, keepdims=True), axis=1)
    return float(np.count_nonzero((phase == MIMETIC) & (dev >= (1.0 - 1e-4) * limit[mat])) / alive.sum())


def checksum(x, v, mass, H=None) -> dict:
    """What a workload's substeps produced, in float64: ``com_m`` (centre of mass, m),
    ``kinetic_j`` (sum m v^2 / 2, J) and ``thermal_j`` (sum m H, J, with H the specific enthalpy
    from 0 K, ``Simulation.thermal_energy``; 0 without heat)."""
    m = np.broadcast_to(np.asarray(mass, np.float64), (len(x),))
    v = np.asarray(v, np.float64)
    return dict(com_m=[float(c) for c in (m[:, None] * np.asarray(x, np.float64)).sum(axis=0) / m.sum()],
                kinetic_j=float(0.5 * (m * (v * v).sum(axis=1)).sum()),
                thermal_j=float((m * np.asarray(H, np.float64)).sum()) if H is not None else 0.0)


def checksum_error(got: dict, plain: dict, dx: float, mass: float) -> dict:
    """How far ``got`` lies from ``plain`` in the units of ``CHECK_TOLERANCE``: the centre of mass
    in cells, the energies relative to the plain path's, the kinetic energy to at least that of
    ``mass`` (kg) moving at 1 mm/s (a body at rest has none), the thermal one to at least 1 J."""
    rel = lambda a, b, floor: abs(a - b) / max(abs(b), floor)  # noqa: E731
    return dict(com_cells=float(np.abs(np.subtract(got["com_m"], plain["com_m"])).max() / dx),
                kinetic=rel(got["kinetic_j"], plain["kinetic_j"], 0.5 * mass * 1e-6),
                thermal=rel(got["thermal_j"], plain["thermal_j"], 1.0))


def _plain_check(case: _Case, substeps: int, name: str) -> str | None:
    """Run ``substeps`` substeps of ``case`` from its start on the plain path and compare each timed
    round's checksum with that one's; records ``check`` in ``case.extra`` and returns a one-line
    failure (None when within ``CHECK_TOLERANCE``, or when the case has no other path)."""
    case.extra["checksum"] = case.checksums[-1]
    if case.plain is None:
        return None
    case.load(case.start)
    case.plain(1)
    try:
        for _ in range(substeps):
            case.step()
        plain = case.checksum()
    finally:
        case.plain(0)
    errors = [checksum_error(got, plain, case.sim.scene.dx, case.sim.total_mass()) for got in case.checksums]
    worst = {k: max(e[k] for e in errors) for k in CHECK_TOLERANCE}
    bad = [k for k in CHECK_TOLERANCE if not worst[k] <= CHECK_TOLERANCE[k]]
    case.extra["check"] = dict(ok=not bad, plain_checksum=plain, error=worst, tolerance=dict(CHECK_TOLERANCE))
    if not bad:
        return None
    k = bad[0]
    return (f"{name}'s {k} after {substeps} substeps differs from the plain path's by {worst[k]:.3g} "
            f"(tolerance {CHECK_TOLERANCE[k]:g}): the fast path did not do the same work")


def _sparse_case(n_grid: int, dt: float, case: str) -> _Case:
    from polyalloy.simulation import Simulation

    box = SPARSE_TIGHT_SIDE * (SPARSE_SCALE if case == "large" else 1)
    lo = 0.5 - box / 2
    # no gravity: the body stays where it is, so both boxes time the very same particles
    sim = Simulation(_water_scene(f"bench_sparse_{case}", n_grid, (lo, lo, lo), box, 0.5, SPARSE_BODY,
                                  gravity=0.0))
    c = _simulation_case(sim, dt, f"sparse_grid ({case} box)")
    c.extra.update(domain_m=box, total_blocks=int(np.prod([-(-r // sim.grid.block) for r in sim.grid.host_res])))
    return c


def _simulation_case(sim, dt: float, name: str) -> _Case:
    limit = sim.stable_dt()
    if dt > limit:
        raise PolyalloyError(f"bench dt {dt:.3g} s is above the stable step {limit:.3g} s of {name}")

    def check():
        from polyalloy.kernels import mpm

        if mpm.count_nonfinite(sim.particles_fields) or not math.isfinite(sim.stable_dt()):
            raise SimulationError(f"{name} blew up during the benchmark; its timing is meaningless")

    def plain(on: int) -> None:
        sim.knobs.plain[None] = on

    def state() -> dict:
        s = sim.particles()
        return checksum(s["x"], s["v"], s["mass"], sim.thermal_energy(1.0, s["H"], s["material"]) if sim.thermal
                        else None)

    yielding = ((lambda: yielding_fraction(sim)) if any(m.kind == POLYALLOY for m in sim.scene.materials.values())
                else None)
    return _warm_up(_Case(lambda: sim.substep(dt), sim.n_particles, tuple(sim.grid.host_res), dt, check, sim=sim,
                          field_bytes=sim.layout.nbytes(), save=sim.state_dict, load=sim.load_state_dict,
                          checksum=state, plain=plain, yielding=yielding))


def _simulation_bytes(dim: int, particles: int, res, thermal: bool, real: int = 4) -> int:
    """Bytes of a Simulation's particle and grid fields (what ``Simulation`` checks before allocating)."""
    from polyalloy.kernels import fields as kf

    nodes = int(np.prod(np.asarray(res, np.int64)))
    lanes = kf.grid_lanes(runtime.info().p2g_lanes, nodes, dim, real, thermal, False)
    return particles * kf.particle_bytes(dim, real) + nodes * kf.grid_node_bytes(dim, real, thermal, lanes=lanes)


def _reference_case(n_grid: int, dt: float, dim: int) -> _Case:
    ref = load_reference(n_grid, dt, dim)
    ref.init()

    n = int(ref.n_particles)
    real = 8 if runtime.info().precision == "f64" else 4
    # its fields: x, v (dim), C (dim x dim), J per particle; v (dim), m per node
    field_bytes = real * (n * (2 * dim + dim * dim + 1) + int(ref.n_grid) ** dim * (dim + 1))
    # its particle state in one launch each way (the grid is cleared each substep)
    from polyalloy.kernels.fieldio import FieldGroup

    state = FieldGroup({name: getattr(ref, name) for name in ("F_x", "F_v", "F_C", "F_J")})

    def check():
        if not np.isfinite(state.read()["F_x"]).all():
            raise SimulationError(f"reference_mpm{dim}d blew up during the benchmark; its timing is meaningless")

    def now():
        s = state.read()
        return checksum(s["F_x"], s["F_v"], float(ref.p_mass))

    return _warm_up(_Case(ref.substep, n, (int(ref.n_grid),) * dim, dt, check, field_bytes=field_bytes,
                          save=state.read, load=state.write, checksum=now))


def load_reference(n_grid: int, dt: float, dim: int = 3) -> types.ModuleType:
    """Taichi's ``examples/simulation/mpm3d.py`` from the installed taichi package, as a fresh module
    with its ``ti.init`` line removed (it asks for ``ti.gpu``; polyalloy has started Taichi already)
    and its ``dim, n_grid, steps, dt`` line set to ``dim`` (the example supports 2 and 3), ``n_grid``
    and ``dt``. Call after ``init``."""
    import taichi as ti

    path = os.path.join(os.path.dirname(ti.__file__), REFERENCE_PATH)
    if not os.path.isfile(path):
        raise PolyalloyError(f"the reference benchmark needs Taichi's example {REFERENCE_PATH}, not found at {path}; "
                             f"reinstall taichi (pip install --force-reinstall 'taichi=={ti.__version__}')")
    with open(path, encoding="utf-8") as f:
        source = f.read()
    # blank the line rather than delete it, so that line numbers in Taichi's messages stay true
    source, n_init = re.subn(r"^ti\.init\(.*\)[ \t]*$", "", source, flags=re.M)
    source, n_set = re.subn(r"^dim, n_grid, steps, dt = [^,\n]+, [^,\n]+, ([^,\n]+), [^,\n]+$",
                            lambda m: f"dim, n_grid, steps, dt = {int(dim)}, {int(n_grid)}, {m.group(1)}, {float(dt)!r}",
                            source, flags=re.M)
    if n_init != 1 or n_set != 1:
        raise PolyalloyError(f"{path} no longer has one 'ti.init(...)' line and one 'dim, n_grid, steps, dt = ...' "
                             f"line; the reference benchmark cannot adapt it")
    # Taichi reads a kernel's source through linecache: register the rewritten text under a pseudo file name
    name = f"<reference mpm3d.py dim={int(dim)} n_grid={int(n_grid)} dt={float(dt)!r}>"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    module = types.ModuleType("polyalloy_bench_reference_mpm3d")
    module.__file__ = name
    exec(compile(source, name, "exec"), module.__dict__)
    return module


# --- measuring ------------------------------------------------------------------------------
def _start_runtime(arch: str):
    if runtime.is_initialized():
        info = runtime.info()
        if arch not in ("auto", info.requested):
            raise PolyalloyError(f"the runtime already runs on {info.requested} ({info.arch}); "
                                 f"cannot benchmark arch {arch!r} in this process")
        return info
    return polyalloy.init(arch=arch)


def _water_scene(name: str, n_grid: int, lo, domain: float, centre: float, size,
                 gravity: float = -9.81, dim: int = 3) -> Scene:
    """A water box of ``size`` (m per axis) about ``centre`` in a cube domain of side ``domain`` from ``lo``."""
    scene = Scene(name=name, dim=dim, domain=(tuple(lo), tuple(v + domain for v in lo)), dx=1.0 / n_grid,
                  particles_per_cell=2, gravity=gravity)
    scene.add_material("water", WATER)
    scene.add_body("block", Box(centre=(centre,) * 3, half_size=tuple(s / 2 for s in size)), "water")
    return scene


def _warm_up(case: _Case) -> _Case:
    """Time the first substep (compilation), then take one more untimed step and a steady one to
    subtract: ``compile_s`` is the first step's excess over a steady step."""
    import taichi as ti

    ti.sync()
    t0 = time.perf_counter()
    case.step()
    ti.sync()
    first = time.perf_counter() - t0
    case.step()
    ti.sync()
    t0 = time.perf_counter()
    case.step()
    ti.sync()
    case.compile_s = max(first - (time.perf_counter() - t0), 0.0)
    return case


def _time_round(case: _Case, substeps: int) -> None:
    """Time ``substeps`` substeps of ``case`` from its ``start`` state (when it has one); keep the
    fastest round and record the checksum of each."""
    import taichi as ti

    if case.start is not None:
        case.load(case.start)
    ti.sync()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(substeps):
        case.step()
    ti.sync()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    case.round_seconds.append(wall)
    if wall < case.seconds:
        case.seconds, case.cpu_seconds = wall, cpu
    if case.checksum is not None:
        case.checksums.append(case.checksum())


def _report(case: _Case, substeps: int, rounds: int) -> dict:
    out = {
        "particles": int(case.particles),
        "grid": [int(r) for r in case.grid],
        "substeps": int(substeps),
        "rounds": int(rounds),
        "dt": float(case.dt),
        "compile_s": case.compile_s,
        "seconds": case.seconds,
        "cpu_seconds": case.cpu_seconds,
        "particle_steps_per_s": case.particles * substeps / case.seconds,
        "ms_per_substep": 1e3 * case.seconds / substeps,
        # every round, and the slowest over the fastest: how steady the machine was while it ran
        "round_ms_per_substep": [1e3 * t / substeps for t in case.round_seconds],
        "round_spread": max(case.round_seconds) / min(case.round_seconds) if case.round_seconds else 1.0,
        "field_mb": case.field_bytes / 2**20,
        "threads": runtime.info().threads,
    }
    out.update(case.extra)
    return out


def _sparse_report(tight: _Case, large: _Case, substeps: int, rounds: int) -> dict:
    if tight.particles != large.particles:
        raise PolyalloyError(f"sparse_grid: the two boxes sampled {tight.particles} and {large.particles} "
                             f"particles; the comparison needs the same body")
    t, g = _report(tight, substeps, rounds), _report(large, substeps, rounds)
    seconds = t["seconds"] + g["seconds"]
    return {
        "particles": t["particles"],
        "grid": g["grid"],
        "substeps": int(substeps),
        "rounds": int(rounds),
        "dt": t["dt"],
        "compile_s": t["compile_s"] + g["compile_s"],
        "seconds": seconds,
        "cpu_seconds": t["cpu_seconds"] + g["cpu_seconds"],
        "particle_steps_per_s": 2 * t["particles"] * substeps / seconds,
        "ms_per_substep": 1e3 * seconds / (2 * substeps),
        "field_mb": t["field_mb"] + g["field_mb"],
        "threads": t["threads"],
        "check": dict(ok=t["check"]["ok"] and g["check"]["ok"]),
        # same particles in both boxes, so the per-particle cost ratio is the ratio of times
        "large_vs_tight_per_particle": g["seconds"] / t["seconds"],
        "tight": t,
        "large": g,
    }


class _TimedKernels:
    """Stands in for a kernel module inside ``polyalloy.simulation`` while profiling: each Taichi
    kernel called through it is bracketed by ``ti.sync()`` and its wall time added to ``totals``."""

    def __init__(self, module: types.ModuleType, totals: dict):
        self._module = module
        self._totals = totals

    def __getattr__(self, name):
        obj = getattr(self._module, name)
        if not getattr(obj, "_is_wrapped_kernel", False):
            return obj
        import taichi as ti

        def timed(*args, **kwargs):
            ti.sync()
            t0 = time.perf_counter()
            out = obj(*args, **kwargs)
            ti.sync()
            self._totals[name] += time.perf_counter() - t0
            return out

        return timed


def kernel_breakdown(sim, dt: float, substeps: int, rounds: int = 1, restore: Callable[[], None] | None = None) -> dict:
    """Milliseconds per substep spent in each pass of a substep (the fastest of ``rounds`` rounds of
    ``substeps`` substeps, each after ``restore()`` when given), found by running the substeps with
    a launch per pass (``Simulation.fused`` off: the same state to the bit) and the kernel modules
    that ``polyalloy.simulation`` uses swapped for timing stand-ins. (The passes' sum exceeds the
    two-launch substep by the launches it saves.)"""
    from polyalloy import simulation as sim_module

    best: dict = {}
    swapped = {name: value for name, value in vars(sim_module).items()
               if isinstance(value, types.ModuleType) and value.__name__.startswith("polyalloy.kernels.")}
    fused, sim.fused = sim.fused, False
    try:
        for _ in range(rounds):
            if restore is not None:
                restore()
            totals: dict = defaultdict(float)
            for name, module in swapped.items():
                setattr(sim_module, name, _TimedKernels(module, totals))
            for _ in range(substeps):
                sim.substep(dt)
            for name, total in totals.items():
                best[name] = min(best.get(name, math.inf), 1e3 * total / substeps)
    finally:
        sim.fused = fused
        for name, module in swapped.items():
            setattr(sim_module, name, module)
    return best


def _nvidia_smi(query: str) -> str | None:
    """First line of ``nvidia-smi --query-gpu=QUERY`` (None without a working nvidia-smi)."""
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def _gpu_facts() -> dict:
    """Driver version and memory of the GPU (CUDA runs)."""
    out = {}
    for key, query in (("gpu_driver", "driver_version"), ("gpu_memory_mb", "memory.total")):
        value = _nvidia_smi(query)
        if value:
            out[key] = float(value) if key == "gpu_memory_mb" else value
    return out


def _memory_budget(arch: str) -> int:
    """Bytes that fields may take on ``arch``: the share of GPU memory Taichi reserves on CUDA
    (``polyalloy.runtime``'s device_memory_fraction), otherwise the host's available memory."""
    from polyalloy.preflight import available_memory

    if arch == "cuda":
        total = _nvidia_smi("memory.total")
        if total:
            return int(float(total) * 2**20 * runtime.CUDA_MEMORY_FRACTION)
    return available_memory()


def _device_name(arch: str) -> str:
    if arch == "cuda":
        name = _nvidia_smi("name")
        if name:
            return name
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
