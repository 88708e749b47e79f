"""A substep in two launches: ``scatter_step`` (clear, P2G, block list, grid update, heat step,
mixing) and ``gather_step`` (G2P, mimicry, the device clock), where each pass was a launch.

A substep is ``clear_grid`` -> ``p2g`` -> ``collect_blocks`` -> ``update_grid`` -> (heat)
``conduct`` -> (mixing) ``scatter``, ``gather`` -> ``g2p`` -> (mimicry) ``mimic`` ->
``fold_lanes``. Each pass is a ``ti.func`` of its module (``mpm.clear_grid_pass`` ...); its
parallel loops stay parallel loops here (Taichi offloads every top-level loop of a kernel,
inlined functions' too), in the same order, with the same code, so the state after a substep is
the same to the bit as after the passes launched one by one (``tests/test_mpm.py``). What it saves
is launches: each costs the host 20-50 us on a CPU, and a small scene's substep is mostly launches
(docs/benchmark.md, "Two launches a substep").

Why two and not one: Taichi's compile time grows faster than a kernel's size. One kernel with
P2G and G2P both took 11.9 s to compile for the polyalloy (cold cache) against 8.3 s for the
passes apart; with G2P in a kernel of its own the two kernels take what the passes took.

The passes one by one are still kernels of their modules (``mpm.p2g`` ...): the bench's per-kernel
times and ``tools/kernel_ab.py`` launch them so (``Simulation.fused`` off).
"""
import taichi as ti

from polyalloy.kernels.control import mimic_pass
from polyalloy.kernels.heat import conduct_pass
from polyalloy.kernels.mixing import gather_pass, scatter_pass
from polyalloy.kernels.mpm import (clear_grid_pass, collect_blocks_pass, fold_lanes_pass, g2p_pass, p2g_pass,
                                   update_grid_pass)


@ti.kernel
def scatter_step(parts: ti.template(), grid: ti.template(), mats: ti.template(), cols: ti.template(),
                 ctrl: ti.template(), knobs: ti.template(), mixes: ti.template()):
    """The grid cleared, P2G, the block list (and the P2G lanes' sum), the grid update, the heat
    step on a thermal grid, and the liquids' mixing when ``mixes`` (a Python bool: compiled in
    or not)."""
    clear_grid_pass(grid, knobs)
    p2g_pass(parts, grid, mats, ctrl, knobs)
    collect_blocks_pass(grid, knobs)
    update_grid_pass(grid, cols, knobs)
    if ti.static(grid.thermal):
        conduct_pass(grid, cols, knobs)
    if ti.static(mixes):
        if ti.static(not grid.mixing):  # P2G added the mixing's sums on a grid built to mix
            scatter_pass(parts, grid, mats, knobs)
        gather_pass(parts, grid, mats, knobs)


@ti.kernel
def gather_step(parts: ti.template(), grid: ti.template(), mats: ti.template(), cols: ti.template(),
                ctrl: ti.template(), knobs: ti.template(), textured: ti.template(), reach: float):
    """G2P, mimicry within ``reach`` (m) of a textured collider when ``textured`` (a Python bool),
    and the device clock moved on (``mpm.fold_lanes_pass``)."""
    g2p_pass(parts, grid, mats, cols, ctrl, knobs)
    if ti.static(textured):
        mimic_pass(parts, mats, cols, ctrl, knobs, reach)
    fold_lanes_pass(knobs)
