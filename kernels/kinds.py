"""The integer codes that the material table and the particles carry, defined once for the
kernels and the host (``polyalloy.materials``); plain constants, so importing them needs no Taichi."""

FLUID, ELASTIC, PLASTIC, POLYALLOY = 0, 1, 2, 3  # a material's ``kind``
ALL_KINDS = (FLUID, ELASTIC, PLASTIC, POLYALLOY)
FROZEN, MIMETIC, MOLTEN = 0, 1, 2  # a particle's ``phase`` (kernels.heat.next_phase)
