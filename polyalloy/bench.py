"""Benchmark behind ``polyalloy bench``: standard 3D workloads timed in particle-steps per second,
with a reference baseline (Taichi's own ``examples/simulation/mpm3d.py``) measured in the same run.

Workloads (sizes for ``n_grid = 64``; every size scales with ``n_grid``):

- ``fluid_block``: our ``Simulation`` running a weakly compressible water block of 65,536 particles
  (2 particles per cell per axis) in a 1 m box on a 64^3 grid, at a fixed dt.
- ``reference_mpm3d``: the plain MLS-MPM of Taichi's example, loaded from the installed taichi
  package, on the same grid with the same particle count, dt and number of substeps.
- ``sparse_grid``: one 13,824-particle water cube in a tight box and in a box 4x larger per side
  (same dx); the per-particle cost ratio shows whether cost follows the particles or the box.

Every timing is bracketed by ``ti.sync()``. The first substep of each workload (JIT compilation,
or a load from the offline kernel cache) is timed apart as ``compile_s``. The workloads are then
timed in interleaved rounds and each reports its fastest round, so that a machine shared with
other work slows every workload alike and the ratios stay fair; ``cpu_seconds`` (process CPU
time of that round, all threads) is given beside the wall time.
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
REFERENCE_PATH = os.path.join("examples", "simulation", "mpm3d.py")

WATER = Fluid(density=1000.0, bulk_modulus=1.0e5, viscosity=1.0e-3)  # as in scenes/dam_break.py


@dataclass
class _Case:
    """One timed workload: ``step`` advances it by one substep of ``dt``."""

    step: Callable[[], None]
    particles: int
    grid: tuple
    dt: float
    check: Callable[[], None]
    compile_s: float = 0.0
    seconds: float = math.inf
    cpu_seconds: float = math.inf
    extra: dict = field(default_factory=dict)


def run_bench(quick: bool = True, arch: str = "cpu", n_grid: int = FULL_GRID, substeps: int | None = None,
              rounds: int | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Run the three workloads and return the measurements (a JSON-ready dict, see the module doc).

    quick: 20 timed substeps x 3 rounds per workload instead of 100 x 5.
    arch: passed to ``polyalloy.init`` (a runtime already started on that arch is reused).
    n_grid: grid cells per metre (and per axis of the 1 m box): the particle counts scale as
    n_grid^3 (65,536 and 13,824 at 64) and dt as 1 / n_grid; tests use 16.
    substeps, rounds: override the quick/full settings. progress: optional callable that
    receives one line of text per phase.
    """
    plan = dict(QUICK if quick else FULL)
    plan.update({k: v for k, v in (("substeps", substeps), ("rounds", rounds)) if v is not None})
    substeps, rounds = int(plan["substeps"]), int(plan["rounds"])
    if n_grid < 8:
        raise PolyalloyError(f"bench n_grid must be at least 8, got {n_grid}")
    if substeps < 1 or rounds < 1:
        raise PolyalloyError(f"bench substeps and rounds must be at least 1, got {substeps} and {rounds}")
    info = _start_runtime(arch)
    import taichi as ti

    say = progress or (lambda line: None)
    dt = BASE_DT / n_grid
    say(f"compiling fluid_block ({n_grid}^3 grid)")
    fluid_sim, fluid = _fluid_case(n_grid, dt)
    say(f"compiling polyalloy_block (heat, phases, damage; {n_grid}^3 grid)")
    alloy_sim, alloy = _polyalloy_case(n_grid, dt)
    say(f"compiling reference_mpm3d (taichi's {REFERENCE_PATH}, n_grid = {n_grid})")
    reference = _reference_case(n_grid, dt)
    say("compiling sparse_grid (tight box and a box 4x larger per side)")
    sparse = {case: _sparse_case(n_grid, dt, case) for case in ("tight", "large")}
    cases = {"fluid_block": fluid, "polyalloy_block": alloy, "reference_mpm3d": reference,
             "sparse_tight": sparse["tight"], "sparse_large": sparse["large"]}
    for r in range(rounds):
        say(f"round {r + 1}/{rounds}: {substeps} substeps of each workload")
        for case in cases.values():
            _time_round(case, substeps)
    for case in cases.values():
        case.check()
    say("per-kernel times of fluid_block")
    fluid.extra["kernel_ms"] = kernel_breakdown(fluid_sim, dt, substeps, rounds)
    say("per-kernel times of polyalloy_block")
    alloy.extra["kernel_ms"] = kernel_breakdown(alloy_sim, dt, substeps, rounds)
    alloy.extra["thermal_fraction"] = alloy.extra["kernel_ms"]["conduct"] / sum(alloy.extra["kernel_ms"].values())
    for case in sparse.values():
        case.extra["active_blocks"] = case.extra.pop("sim").active_blocks()

    workloads = {
        "fluid_block": _report(fluid, substeps, rounds),
        "polyalloy_block": _report(alloy, substeps, rounds),
        "reference_mpm3d": _report(reference, substeps, rounds),
        "sparse_grid": _sparse_report(sparse["tight"], sparse["large"], substeps, rounds),
    }
    ours, ref = workloads["fluid_block"], workloads["reference_mpm3d"]
    return {
        "version": polyalloy.__version__,
        "taichi_version": ".".join(map(str, ti.__version__)),
        "arch": info.arch,
        "device": _device_name(info.arch),
        "threads": info.threads,
        "precision": info.precision,
        "quick": bool(quick),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "workloads": workloads,
        "ratios": {
            "fluid_vs_reference": ours["particle_steps_per_s"] / ref["particle_steps_per_s"],
            # the same ratio in CPU time (all threads): steadier than wall time on a shared machine
            "fluid_vs_reference_cpu": (ref["cpu_seconds"] / ref["particles"])
            / (ours["cpu_seconds"] / ours["particles"]),
            "polyalloy_vs_reference": workloads["polyalloy_block"]["particle_steps_per_s"]
            / ref["particle_steps_per_s"],
            "sparse_large_vs_tight_per_particle": workloads["sparse_grid"]["large_vs_tight_per_particle"],
        },
    }


def format_table(result: dict) -> str:
    """The result of ``run_bench`` as a plain-text table for the terminal."""
    head = (f"polyalloy {result['version']} | taichi {result['taichi_version']} | arch {result['arch']} | "
            f"{result['device']} | {result['threads']} threads | {result['precision']}")
    cols = ("workload", "particles", "grid", "substeps", "dt (s)", "compile (s)", "ms/substep", "M p-steps/s")

    def row(name, w):
        return (name, f"{w['particles']:,}", "x".join(map(str, w["grid"])), str(w["substeps"]), f"{w['dt']:.2e}",
                f"{w['compile_s']:.2f}", f"{w['ms_per_substep']:.2f}", f"{w['particle_steps_per_s'] / 1e6:.3f}")

    rows = []
    for name, w in result["workloads"].items():
        rows.append(row(name, w))
        rows += [row(f"  {case} box {w[case]['domain_m']:g} m", w[case]) for case in ("tight", "large") if case in w]
    widths = [max(len(r[i]) for r in rows + [cols]) for i in range(len(cols))]

    def line(r):
        return "  ".join(s.ljust(w) if i == 0 else s.rjust(w) for i, (s, w) in enumerate(zip(r, widths)))

    out = [head, line(cols), line(tuple("-" * w for w in widths))] + [line(r) for r in rows]
    for name in ("fluid_block", "polyalloy_block"):
        kernels = result["workloads"][name]["kernel_ms"]
        out.append(f"{name} per kernel (ms/substep): " + ", ".join(f"{k} {v:.2f}" for k, v in kernels.items()))
    out.append(f"polyalloy_block: the grid heat step (conduct) is "
               f"{100 * result['workloads']['polyalloy_block']['thermal_fraction']:.1f}% of the kernel time; "
               f"{result['ratios']['polyalloy_vs_reference']:.2f}x the reference's particle-steps/s")
    sparse, ratios = result["workloads"]["sparse_grid"], result["ratios"]
    out.append(f"fluid_block vs reference_mpm3d: {ratios['fluid_vs_reference']:.2f}x the reference's "
               f"particle-steps/s ({ratios['fluid_vs_reference_cpu']:.2f}x per CPU-second)")
    out.append(f"sparse grid: per-particle cost large/tight = {ratios['sparse_large_vs_tight_per_particle']:.2f} "
               f"(active blocks {sparse['tight']['active_blocks']} of {sparse['tight']['total_blocks']:,} vs "
               f"{sparse['large']['active_blocks']} of {sparse['large']['total_blocks']:,})")
    return "\n".join(out)


# --- workloads ------------------------------------------------------------------------------
def _fluid_case(n_grid: int, dt: float):
    from polyalloy.simulation import Simulation

    sim = Simulation(_water_scene("bench_fluid_block", n_grid, (0.0, 0.0, 0.0), 1.0, 0.35, FLUID_BLOCK))
    return sim, _simulation_case(sim, dt, "fluid_block")


def _polyalloy_case(n_grid: int, dt: float):
    """The fluid block's geometry filled with mimetic polyalloy at room temperature, heat on:
    every substep runs the stress blend, the heat transfer, phases and damage."""
    from polyalloy.materials import Polyalloy
    from polyalloy.simulation import Simulation

    scene = _water_scene("bench_polyalloy_block", n_grid, (0.0, 0.0, 0.0), 1.0, 0.35, FLUID_BLOCK)
    scene.materials["water"] = Polyalloy()
    sim = Simulation(scene)
    return sim, _simulation_case(sim, dt, "polyalloy_block")


def _sparse_case(n_grid: int, dt: float, case: str) -> _Case:
    from polyalloy.simulation import Simulation

    box = SPARSE_TIGHT_SIDE * (SPARSE_SCALE if case == "large" else 1)
    lo = 0.5 - box / 2
    # no gravity: the body stays where it is, so both boxes time the very same particles
    sim = Simulation(_water_scene(f"bench_sparse_{case}", n_grid, (lo, lo, lo), box, 0.5, SPARSE_BODY,
                                  gravity=0.0))
    c = _simulation_case(sim, dt, f"sparse_grid ({case} box)")
    c.extra.update(sim=sim, domain_m=box,
                   total_blocks=int(np.prod([-(-r // sim.grid.block) for r in sim.grid.res])))
    return c


def _simulation_case(sim, dt: float, name: str) -> _Case:
    limit = sim.stable_dt()
    if dt > limit:
        raise PolyalloyError(f"bench dt {dt:.3g} s is above the stable step {limit:.3g} s of {name}")

    def check():
        from polyalloy.kernels import mpm

        if mpm.count_nonfinite(sim.particles_fields) or not math.isfinite(sim.stable_dt()):
            raise SimulationError(f"{name} blew up during the benchmark; its timing is meaningless")

    return _warm_up(_Case(lambda: sim.substep(dt), sim.n_particles, tuple(sim.grid.res), dt, check))


def _reference_case(n_grid: int, dt: float) -> _Case:
    ref = load_reference(n_grid, dt)
    ref.init()

    def check():
        if not np.isfinite(ref.F_x.to_numpy()).all():
            raise SimulationError("reference_mpm3d blew up during the benchmark; its timing is meaningless")

    return _warm_up(_Case(ref.substep, int(ref.n_particles), (int(ref.n_grid),) * int(ref.dim), dt, check))


def load_reference(n_grid: int, dt: float) -> types.ModuleType:
    """Taichi's ``examples/simulation/mpm3d.py`` from the installed taichi package, as a fresh module
    with its ``ti.init`` line removed (it asks for ``ti.gpu``; polyalloy has started Taichi already)
    and its ``dim, n_grid, steps, dt`` line set to 3D, ``n_grid`` and ``dt``. Call after ``init``."""
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
                            lambda m: f"dim, n_grid, steps, dt = 3, {int(n_grid)}, {m.group(1)}, {float(dt)!r}",
                            source, flags=re.M)
    if n_init != 1 or n_set != 1:
        raise PolyalloyError(f"{path} no longer has one 'ti.init(...)' line and one 'dim, n_grid, steps, dt = ...' "
                             f"line; the reference benchmark cannot adapt it")
    # Taichi reads a kernel's source through linecache: register the rewritten text under a pseudo file name
    name = f"<reference mpm3d.py n_grid={int(n_grid)} dt={float(dt)!r}>"
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
                 gravity: float = -9.81) -> Scene:
    """A water box of ``size`` (m per axis) about ``centre`` in a cube domain of side ``domain`` from ``lo``."""
    scene = Scene(name=name, dim=3, domain=(tuple(lo), tuple(v + domain for v in lo)), dx=1.0 / n_grid,
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
    import taichi as ti

    ti.sync()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(substeps):
        case.step()
    ti.sync()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if wall < case.seconds:
        case.seconds, case.cpu_seconds = wall, cpu


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


def kernel_breakdown(sim, dt: float, substeps: int, rounds: int = 1) -> dict:
    """Milliseconds per substep spent in each kernel that ``Simulation.substep`` launches (the fastest
    of ``rounds`` rounds of ``substeps`` substeps), found by running the substeps with the kernel
    modules that ``polyalloy.simulation`` uses swapped for timing stand-ins."""
    from polyalloy import simulation as sim_module

    best: dict = {}
    swapped = {name: value for name, value in vars(sim_module).items()
               if isinstance(value, types.ModuleType) and value.__name__.startswith("polyalloy.kernels.")}
    try:
        for _ in range(rounds):
            totals: dict = defaultdict(float)
            for name, module in swapped.items():
                setattr(sim_module, name, _TimedKernels(module, totals))
            for _ in range(substeps):
                sim.substep(dt)
            for name, total in totals.items():
                best[name] = min(best.get(name, math.inf), 1e3 * total / substeps)
    finally:
        for name, module in swapped.items():
            setattr(sim_module, name, module)
    return best


def _device_name(arch: str) -> str:
    if arch == "cuda":
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
