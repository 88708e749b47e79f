"""Reading, writing and zeroing a group of Taichi fields with one kernel launch each way.

Taichi's own ``Field.to_numpy``, ``from_numpy``, ``fill`` and python-scope ``f[i] = v`` compile a
kernel for every field they meet (the field is the kernel's template argument): 50-100 ms of
compile each on the CPU. A simulation has ~140 fields in its particle store, tables and knobs, so
every new set of fields (a new layout in a process: ``polyalloy.pool``) spent seconds compiling
field I/O: 8-15 s per simulation of the benchmark's fixture, half of it. A ``FieldGroup``
compiles one kernel per group and direction instead (its fields are the template argument),
measured 3x cheaper to compile for the same fields; once compiled, a read or write is one launch.

The values travel through one flat numpy buffer per element type (f32, f64, i32), each field's
values at its own offset in C order, so a field comes back in exactly the shape and type of its
``to_numpy()``: (shape..., n) for a vector field, (shape..., n, m) for a matrix one. Fields of
other element types are read and written with Taichi's own methods.

``group(container, names)`` gives the cached group of a container's fields (all of them when
``names`` is None), so that each container compiles its kernels once. ``assign(container,
name=value, ...)`` writes a few fields (0-D knobs, say) in one launch: a python-scope
``f[None] = v`` compiles an accessor per field, ~30 ms each, and a simulation sets ~30 knobs as
it starts (~1 s of every new set of fields).
"""

import warnings

import numpy as np
import taichi as ti

_BUFFERS = (ti.f32, ti.f64, ti.i32)  # the element types a group's kernels carry, in buffer order
_NUMPY = (np.float32, np.float64, np.int32)


@ti.func
def _move(f: ti.template(), I: ti.template(), buf: ti.template(), base, out: ti.template()):
    """Field ``f`` at index ``I`` to or from ``buf`` at ``base`` (its components in C order)."""
    if ti.static(not isinstance(f, ti.MatrixField)):
        if ti.static(out):
            buf[base] = f[I]
        else:
            f[I] = buf[base]
    elif ti.static(f.ndim == 1):
        for r in ti.static(range(f.n)):
            if ti.static(out):
                buf[base + r] = f[I][r]
            else:
                f[I][r] = buf[base + r]
    else:
        for r, c in ti.static(ti.ndrange(f.n, f.m)):
            if ti.static(out):
                buf[base + r * f.m + c] = f[I][r, c]
            else:
                f[I][r, c] = buf[base + r * f.m + c]


@ti.func
def _flat(I: ti.template(), shape: ti.template()):
    flat = 0
    for a in ti.static(range(len(shape))):
        flat = flat * shape[a] + I[a]
    return flat


@ti.kernel
def _copy(fields: ti.template(), where: ti.template(), loops: ti.template(), out: ti.template(),
          b32: ti.types.ndarray(dtype=ti.f32, ndim=1), b64: ti.types.ndarray(dtype=ti.f64, ndim=1),
          bi: ti.types.ndarray(dtype=ti.i32, ndim=1)):
    """Every field of ``fields`` into (``out``) or from its buffer; ``where[j]`` = (buffer,
    offset, values per element) of field j; ``loops``: (shape, field indices) per loop, the
    fields of one shape moved in one loop (a kernel compiles in about the time per loop)."""
    for g in ti.static(range(len(loops))):
        shape, members = ti.static(loops[g][0], loops[g][1])
        if ti.static(len(shape) == 0):
            for j in ti.static(members):
                _move(fields[j], None, (b32, b64, bi)[where[j][0]], where[j][1], out)
        else:
            for I in ti.grouped(ti.ndrange(*shape)):
                flat = _flat(I, shape)
                for j in ti.static(members):
                    _move(fields[j], I, (b32, b64, bi)[where[j][0]], where[j][1] + flat * where[j][2], out)


@ti.func
def _zero_at(f: ti.template(), I: ti.template()):
    """Zero ``f[I]`` by assignment (``ti.zero(x)`` multiplies: a NaN left by a blown-up run stays)."""
    if ti.static(not isinstance(f, ti.MatrixField)):
        f[I] = 0
    elif ti.static(f.ndim == 1):
        f[I] = ti.Vector.zero(f.dtype, f.n)
    else:
        f[I] = ti.Matrix.zero(f.dtype, f.n, f.m)


@ti.kernel
def _zero(fields: ti.template(), loops: ti.template()):
    for g in ti.static(range(len(loops))):
        shape, members = ti.static(loops[g][0], loops[g][1])
        if ti.static(len(shape) == 0):
            for j in ti.static(members):
                _zero_at(fields[j], None)
        else:
            for I in ti.grouped(ti.ndrange(*shape)):
                for j in ti.static(members):
                    _zero_at(fields[j], I)


def _shape(f) -> tuple:
    """The shape of ``f.to_numpy()``."""
    comp = ()
    if isinstance(f, ti.MatrixField):
        comp = (f.n,) if f.ndim == 1 else (f.n, f.m)
    return tuple(f.shape) + comp


class FieldGroup:
    """A fixed group of fields (``name -> field``) read, written and zeroed with one launch."""

    def __init__(self, fields: dict):
        self.fields = dict(fields)
        self.shapes = {k: _shape(f) for k, f in self.fields.items()}
        self.dtypes = {k: np.dtype(ti.lang.util.to_numpy_type(f.dtype)) for k, f in self.fields.items()}
        self.other = [k for k, f in self.fields.items() if f.dtype not in _BUFFERS]  # Taichi's own methods
        self.moved = [k for k in self.fields if k not in self.other]
        sizes, where = [0, 0, 0], []
        self.slices = {}
        for k in self.moved:
            f = self.fields[k]
            b = _BUFFERS.index(f.dtype)
            n = int(np.prod(self.shapes[k], dtype=np.int64))
            per = int(np.prod(self.shapes[k][len(f.shape):], dtype=np.int64))
            where.append((b, sizes[b], per))
            self.slices[k] = (b, sizes[b], n)
            sizes[b] += n
        self.sizes = sizes
        self.where = tuple(where)
        self.tuple = tuple(self.fields[k] for k in self.moved)
        shapes = sorted({tuple(f.shape) for f in self.tuple})
        self.loops = tuple((s, tuple(j for j, f in enumerate(self.tuple) if tuple(f.shape) == s)) for s in shapes)

    def _launch(self, kernel, *args) -> None:
        with warnings.catch_warnings():  # Taichi warns of a static loop over more than 32 fields
            warnings.simplefilter("ignore", SyntaxWarning)
            kernel(*args)

    def _buffers(self) -> list:
        return [np.zeros(max(n, 1), t) for n, t in zip(self.sizes, _NUMPY)]

    def read(self) -> dict:
        """Every field's values (views into this read's buffers: fresh arrays on each call)."""
        bufs = self._buffers()
        if self.moved:
            self._launch(_copy, self.tuple, self.where, self.loops, True, *bufs)
        out = {}
        for k in self.fields:
            if k in self.other:
                out[k] = self.fields[k].to_numpy()
            else:
                b, o, n = self.slices[k]
                out[k] = bufs[b][o:o + n].reshape(self.shapes[k])
        return out

    def write(self, values: dict, pad: bool = False) -> None:
        """Write every field of the group from ``values`` (name -> array in the field's
        ``to_numpy()`` shape, cast to its type). With ``pad``, an array with fewer rows (first
        axis) than the field has is padded with zeros, as ``kernels.fields.put`` does."""
        missing = [k for k in self.fields if k not in values]
        if missing:
            raise ValueError(f"no values for field {missing[0]!r} of the group")
        bufs = self._buffers()
        for k, f in self.fields.items():
            a = np.asarray(values[k], self.dtypes[k])
            want = self.shapes[k]
            if pad and a.ndim == len(want) and a.ndim and a.shape[0] < want[0] and a.shape[1:] == want[1:]:
                a = np.concatenate([a, np.zeros((want[0] - a.shape[0],) + want[1:], a.dtype)])
            if a.shape != want:
                a = np.broadcast_to(a, want) if a.ndim == 0 else a
            if a.shape != want:
                raise ValueError(f"field {k!r} takes shape {want}, got {a.shape}")
            if k in self.other:
                f.from_numpy(np.ascontiguousarray(a))
            else:
                b, o, n = self.slices[k]
                bufs[b][o:o + n] = a.reshape(-1)
        if self.moved:
            self._launch(_copy, self.tuple, self.where, self.loops, False, *bufs)

    def zero(self) -> None:
        """Every field of the group to zero."""
        if self.moved:
            self._launch(_zero, self.tuple, self.loops)
        for k in self.other:
            self.fields[k].fill(0)


def group(container, names=None) -> FieldGroup:
    """The ``FieldGroup`` of ``container``'s fields ``names`` (all its Taichi fields, by name,
    when None), made once and kept on the container, so that its kernels compile once."""
    cache = container.__dict__.setdefault("_field_groups", {})
    key = None if names is None else tuple(names)
    g = cache.get(key)
    if g is None:
        if names is None:
            fields = {k: v for k, v in sorted(vars(container).items()) if isinstance(v, ti.Field)}
        else:
            fields = {k: getattr(container, k) for k in names}
        g = cache[key] = FieldGroup(fields)
    return g


def assign(container, **values) -> None:
    """Write ``container``'s fields named by the keywords (values as for ``FieldGroup.write``) in
    one launch: the group of those names, in the order given, compiles once per container."""
    group(container, tuple(values)).write(values)
