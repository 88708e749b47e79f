"""Particles in grid-block order for P2G: a counting sort of the slots by the block of their stencil.

P2G adds each particle's mass, momentum and the rest into the 3^dim nodes of its stencil. In slot
order (as sampled, then as the particles moved) neighbouring slots can lie far apart: on a GPU a
warp's float atomics then land all over the grid's memory, on a CPU the nodes a particle loads
are seldom the ones the last particle left in the caches. ``sort_by_block`` writes, into
``Particles.order``, every slot below ``n`` ordered by the grid block (``Grid.block`` nodes per axis)
of its stencil's lower corner, axis 0 slowest (a block's slots stay in slot order on a CPU, where
the sort is serial; on a GPU in any order), the dead slots last; ``mpm.p2g_pass`` then visits the
slots through it (``slot_at``). Only the order of the adds changes: the grid holds the same sums to
rounding, and on a CPU a run repeats bit for bit (the order is state: a checkpoint carries it).
Slots switched on after a sort (an emitter's fill past ``n_sorted``) come after the sorted ones
in their own order; a fill inside it was a dead slot at the sort and is found at the end.

The sort: a count per block (one bin more for the dead), an exclusive prefix sum in two levels
(sums of ``SORT_CHUNK`` bins in parallel, the chunks' starts on one thread, each chunk's bins in
parallel; every loop on the calling thread for a small simulation, ``Grid.serial``, as its
substep's), then each slot placed at its bin's next place. Launched by the host before every
``Simulation.sort_every``-th substep it launches (``runtime``: ``POLYALLOY_SORT_EVERY``; 0, the default: never,
and P2G's visits are the slot order, as before). Particles move less than a cell a substep, so an
order some substeps old is still nearly sorted.
"""
import taichi as ti

from polyalloy.kernels.fields import SORT_CHUNK
from polyalloy.kernels.mpm import stencil_base


@ti.func
def block_key(grid: ti.template(), parts: ti.template(), p):
    """The bin of slot ``p``: its stencil's block, axis 0 slowest (``Grid.total_blocks`` for a dead slot)."""
    key = grid.total_blocks
    if parts.alive[p]:
        base, _ = stencil_base(grid, parts.x[p])  # clamped into the grid: a NaN position too
        B = base // grid.block
        key = 0
        for d in ti.static(range(grid.dim)):
            key = key * grid.n_blocks[d] + B[d]
    return key


@ti.kernel
def sort_by_block(parts: ti.template(), grid: ti.template()):
    """``Particles.order``: the slots below ``n`` by block (see the module); ``n_sorted`` = ``n``."""
    n = parts.n[None]
    bins = ti.static(grid.total_blocks + 1)
    chunks = ti.static(-(-(grid.total_blocks + 1) // SORT_CHUNK))
    ti.loop_config(serialize=grid.serial)  # a small simulation's loops on the calling thread, as its substep's
    for b in range(bins):
        grid.bin_start[b] = 0
    ti.loop_config(serialize=grid.serial)
    for p in range(n):
        ti.atomic_add(grid.bin_start[block_key(grid, parts, p)], 1)
    ti.loop_config(serialize=grid.serial)
    for c in range(chunks):
        total = 0
        for b in range(c * SORT_CHUNK, ti.min((c + 1) * SORT_CHUNK, bins)):
            total += grid.bin_start[b]
        grid.bin_chunk[c] = total
    ti.loop_config(serialize=True)
    for _ in range(1):
        start = 0
        for c in range(chunks):
            count = grid.bin_chunk[c]
            grid.bin_chunk[c] = start
            start += count
    ti.loop_config(serialize=grid.serial)
    for c in range(chunks):
        start = grid.bin_chunk[c]
        for b in range(c * SORT_CHUNK, ti.min((c + 1) * SORT_CHUNK, bins)):
            count = grid.bin_start[b]
            grid.bin_start[b] = start
            start += count
    # each slot at its bin's next place: on a CPU on one thread, so a block keeps its slots in
    # slot order and the order is the same every run (P2G's sums are then too); a GPU's atomics
    # hand out the places in any order, as its P2G's float atomics add in any order
    ti.loop_config(serialize=grid.lanes >= 1)
    for p in range(n):
        parts.order[ti.atomic_add(grid.bin_start[block_key(grid, parts, p)], 1)] = p
    parts.n_sorted[None] = n

