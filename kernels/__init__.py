"""Device side of polyalloy: every @ti.kernel and @ti.func (installed as ``polyalloy.kernels``)."""
