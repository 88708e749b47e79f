"""A STREAM-style triad, a = b + s c, for measuring the memory bandwidth that a Taichi kernel
reaches on the current arch (the benchmark's roofline line divides by it)."""
import taichi as ti


@ti.kernel
def triad(a: ti.template(), b: ti.template(), c: ti.template(), s: float):
    """a[i] = b[i] + s c[i]: reads two arrays and writes one (McCalpin's STREAM triad)."""
    for i in a:
        a[i] = b[i] + s * c[i]
