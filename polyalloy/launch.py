"""Taichi's kernel launch, its per-call Python work done once per instantiation (``install``,
called by ``polyalloy.init``).

Every call of a ``@ti.kernel`` goes through Taichi's Python launch path before the compiled code
runs: the arguments are matched to the parameters, each template argument is turned into the
instantiation's key (``extract_arg``: a chain of ``isinstance`` tests per argument), the key is
looked up, the fields are materialised, the compiled kernel is looked up again in the C++ cache
(``compile_kernel``) and a launch context is filled argument by argument: on this project's 2-core
CPU 95-125 us of a launch of the substep's kernels (``python tools/launch_memo.py``: 348-418 us a
launch through Taichi's path with the device clock stopped, 220-334 us with that work skipped; a
2D substep is two launches and ~1.5 ms).

For a kernel whose parameters are all templates, scalars (``ti.f32``, ``ti.i32``, ...) or arrays
of scalars (``ti.types.ndarray``, without gradients) and that has no ``print``, ``install``
remembers per instantiation what that path found (the C++ kernel and its compiled data), keyed by
the template arguments (by identity; by value for a Python bool, int, float or str, as Taichi's
own key) and each array's element type and number of axes, and launches it directly: a launch
context, the scalars and the arrays set (a C-ordered numpy array by its address and shape, as
Taichi sets it; any other array takes Taichi's path), the launch (and, for a kernel that returns
values, the sync and the values read as Taichi reads them). The arrays matter on the host's
side of a run: the field I/O (``kernels.fieldio``), the pose upload and the event scans pass
numpy arrays (9,140 such calls in a 2D freeze check), and Taichi's path also looks such a kernel
up in its C++ cache at every call (``python tools/launch_memo.py freeze``: a read of the
particles 877-1040 -> 581-735 us, the pose's upload 187-231 -> 144-156 us). The first call of
an instantiation, any other kind of kernel or call (keyword arguments, autodiff, a tape, another
Taichi program after ``ti.reset``) take Taichi's own path, unchanged.
The objects of a remembered key are kept alive with it (Taichi keeps a plain object alive in its
own table the same way), so an identity is never reused by another object. Nothing changes in
what runs: the same compiled kernel with the same arguments; ``tests/test_launch.py`` holds it to
the bit. ``POLYALLOY_LAUNCH_MEMO=0`` leaves Taichi as it is. Where the installed Taichi lacks what
this uses (another version), nothing is changed.
"""
from __future__ import annotations

import os

PRIMITIVE = (bool, int, float, str)
KERNEL_LIMIT = 64  # remembered instantiations per kernel before its table starts afresh
_installed = False


def install() -> bool:
    """Wrap Taichi's ``Kernel.__call__`` as described above, once per process; True when wrapped."""
    global _installed
    if _installed:
        return True
    if os.environ.get("POLYALLOY_LAUNCH_MEMO", "1").strip() == "0":
        return False
    try:
        from taichi.lang import kernel_impl
        from taichi.types import primitive_types
    except ImportError:
        return False
    kernel = getattr(kernel_impl, "Kernel", None)
    needed = (getattr(kernel, "__call__", None), getattr(kernel, "ensure_compiled", None),
              getattr(kernel, "launch_kernel", None),
              getattr(primitive_types, "real_type_ids", None), getattr(primitive_types, "integer_type_ids", None),
              getattr(primitive_types, "type_ids", None), getattr(kernel_impl, "ndarray_type", None),
              getattr(kernel_impl, "is_signed", None), getattr(kernel_impl, "cook_dtype", None),
              getattr(kernel_impl, "AutodiffMode", None), getattr(kernel_impl, "handle_exception_from_cpp", None),
              getattr(kernel_impl, "template", None), getattr(kernel_impl, "runtime_ops", None),
              getattr(kernel, "construct_kernel_ret", None))
    if any(n is None for n in needed):
        return False
    kernel.__call__ = _memo_call(kernel.__call__, kernel_impl, primitive_types)
    _installed = True
    return True


def installed() -> bool:
    return _installed


def _plan(kernel, kernel_impl, primitive_types):
    """How to launch ``kernel`` directly: (template positions, [(position, slot, setter name)],
    [(position, slot)] of its arrays), or None where a parameter needs Taichi's own path (a
    ``print``, which Taichi learns when it compiles, is checked at every call). An array parameter
    (``ti.types.ndarray``) qualifies when its elements are scalars and it carries no gradient."""
    if kernel.autodiff_mode != kernel_impl.AutodiffMode.NONE:
        return None
    templates, scalars, arrays = [], [], []
    for i, argument in enumerate(kernel.arguments):
        anno = argument.annotation
        if isinstance(anno, kernel_impl.template):
            templates.append(i)
        elif id(anno) in primitive_types.real_type_ids:
            scalars.append((i, i - len(templates), "set_arg_float"))
        elif id(anno) in primitive_types.integer_type_ids:
            signed = kernel_impl.is_signed(kernel_impl.cook_dtype(anno))
            scalars.append((i, i - len(templates), "set_arg_int" if signed else "set_arg_uint"))
        elif (isinstance(anno, kernel_impl.ndarray_type.NdarrayType) and not anno.needs_grad
              and (anno.dtype is None or id(anno.dtype) in primitive_types.type_ids)):
            arrays.append((i, i - len(templates)))
        else:
            return None
    return tuple(templates), tuple(scalars), tuple(arrays)


def _memo_call(taichi_call, kernel_impl, primitive_types):
    import numpy as np

    reals, integers = (float, int, np.floating, np.integer), (int, np.integer)  # what Taichi accepts
    ndarray = np.ndarray

    def __call__(self, *args, **kwargs):
        runtime = self.runtime
        if kwargs or runtime.fwd_mode_manager or runtime.target_tape:
            return taichi_call(self, *args, **kwargs)
        try:
            plan = self._polyalloy_plan
        except AttributeError:
            plan = self._polyalloy_plan = _plan(self, kernel_impl, primitive_types)
            self._polyalloy_launches = {}
        if plan is None or self.has_print or len(args) != len(self.arguments):
            return taichi_call(self, *args)
        templates, scalars, arrays = plan
        for i, _ in arrays:
            if type(args[i]) is not ndarray or not args[i].flags.c_contiguous:
                return taichi_call(self, *args)  # another kind of array: Taichi's path
        objects = tuple(args[i] for i in templates)
        # an array's instantiation depends on its element type and its number of axes, as Taichi's key
        key = tuple(a if type(a) in PRIMITIVE else id(a) for a in objects) + \
            tuple((args[i].dtype, args[i].ndim) for i, _ in arrays)
        prog = runtime.prog
        entry = self._polyalloy_launches.get(key)
        if (entry is None or entry[0] is not prog or any(a is not b for a, b in zip(entry[1], objects)
                                                         if type(b) not in PRIMITIVE)
                or not all(isinstance(args[i], reals if setter == "set_arg_float" else integers)
                           for i, _, setter in scalars)):
            out = taichi_call(self, *args)  # a first call, or a call Taichi has to judge: its own path
            _remember(self, key, args, objects, prog)
            return out
        runtime.materialize()  # fields declared since the last launch, as Taichi's path does
        context = entry[2].make_launch_context()
        for i, slot, setter in scalars:
            value = args[i]
            getattr(context, setter)((slot,), float(value) if setter == "set_arg_float" else int(value))
        for i, slot in arrays:  # the launch reads and writes the array's own memory (no copy: C order)
            value = args[i]
            context.set_arg_external_array_with_shape((slot,), int(value.ctypes.data), value.nbytes, value.shape, 0)
        try:
            prog.launch_kernel(entry[3], context)
        except Exception as e:
            raise kernel_impl.handle_exception_from_cpp(e) from None
        returns = self.return_type
        if not returns:
            return None
        kernel_impl.runtime_ops.sync()  # as Taichi's path: the values are read after the device is done
        out = [self.construct_kernel_ret(context, r, (i,)) for i, r in enumerate(returns)]
        return out[0] if len(out) == 1 else out

    __call__.__wrapped__ = taichi_call
    return __call__


def _remember(kernel, key, args, objects, prog) -> None:
    """Keep the C++ kernel and the compiled data of the instantiation that Taichi just launched
    (its tables answer from memory now: nothing is compiled again)."""
    table = kernel._polyalloy_launches
    if len(table) >= KERNEL_LIMIT:
        table.clear()
    t_kernel = kernel.compiled_kernels[kernel.ensure_compiled(*args)]
    table[key] = (prog, objects, t_kernel, prog.compile_kernel(prog.config(), prog.get_device_caps(), t_kernel))
