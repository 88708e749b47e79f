"""Taichi's frontend with its repeated work done once (``polyalloy.frontend``): the position texts
are Taichi's own byte for byte, a compile error reads as it did, and a function's source is read
once per function object (a reloaded module's functions read theirs afresh; an old kernel keeps
the source it was first compiled from)."""
import importlib
import sys
import textwrap

import numpy as np
import pytest
import taichi as ti
from taichi.lang.ast import ast_transformer_utils

from polyalloy import frontend


def test_the_runtime_installs_the_frontend(runtime):
    assert frontend.installed()  # polyalloy.init did it (tests/conftest.py starts the runtime)


@ti.func
def _spread(grid: ti.template(), base, value):
    for i, j in ti.static(ti.ndrange(3, 3)):  # unrolled: every node of this body visited 9 times
        w = (0.5 + i) * (0.25
                         + j)  # a node over two lines
        grid[base + i, base + j] += w * value


@ti.kernel
def _scatter(grid: ti.template(), n: ti.i32):
    for p in range(n):
        if p % 2 == 0:
            _spread(grid, p % 4, 1.0)
        else:
            _spread(grid, 1, -0.5)


def test_position_texts_are_taichis_own_for_every_node(monkeypatch):
    memo = ast_transformer_utils.ASTTransformerContext.get_pos_info
    taichis = memo.__wrapped__
    seen = []

    def both(self, node):
        ours = memo(self, node)
        seen.append((ours, taichis(self, node)))
        return ours

    monkeypatch.setattr(ast_transformer_utils.ASTTransformerContext, "get_pos_info", both)
    a, b = ti.field(ti.f32, (8, 8)), ti.field(ti.f32, (8, 8))
    _scatter(a, 6)
    _scatter(b, 6)  # a second instantiation (other fields): its texts come from the table
    assert len(seen) > 200
    assert all(ours == theirs for ours, theirs in seen)
    assert any("^" in ours and "_spread" in ours for ours, _ in seen)
    # the kernels compiled as they would have: three even and three odd particles
    want = np.zeros((8, 8), np.float32)
    for p in range(6):
        base, value = (p % 4, 1.0) if p % 2 == 0 else (1, -0.5)
        for i in range(3):
            for j in range(3):
                want[base + i, base + j] += (0.5 + i) * (0.25 + j) * value
    np.testing.assert_allclose(a.to_numpy(), want, rtol=1e-6)
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


@ti.kernel
def _broken(f: ti.template()):
    for i in f:
        f[i] = not_a_name_anywhere * 2.0  # noqa: F821


def _error_text(kernel, *args) -> str:
    with pytest.raises(Exception) as caught:
        kernel(*args)
    return str(caught.value)


def test_a_compile_error_names_the_file_line_and_place_as_taichi_does(monkeypatch):
    f = ti.field(ti.f32, 4)
    ours = _error_text(_broken, f)
    assert f'File "{__file__}"' in ours and "in _broken" in ours and "not_a_name_anywhere" in ours
    assert "^^^" in ours
    memo = ast_transformer_utils.ASTTransformerContext.get_pos_info
    monkeypatch.setattr(ast_transformer_utils.ASTTransformerContext, "get_pos_info", memo.__wrapped__)
    assert _error_text(_broken, ti.field(ti.f32, 4)) == ours


MODULE = '''
import taichi as ti


@ti.kernel
def put(f: ti.template()):
    f[None] = {value}
'''


def test_each_function_keeps_the_source_it_was_compiled_from(tmp_path, monkeypatch):
    """Taichi reads a kernel's source from disk when it compiles a new instantiation: an old
    kernel asked for one after its file was edited read the new lines. Read once per function
    object, it compiles its own."""
    path = tmp_path / "frontend_probe.py"
    path.write_text(MODULE.format(value=1.0))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("frontend_probe")
    try:
        old = module.put
        a = ti.field(ti.f32, ())
        old(a)
        assert a[None] == 1.0
        path.write_text(MODULE.format(value=2.0) + "\n# edited\n")
        importlib.invalidate_caches()
        new = importlib.reload(module).put
        b, c = ti.field(ti.f32, ()), ti.field(ti.f32, ())
        new(b)
        old(c)  # a new instantiation of the old kernel
        assert (b[None], c[None]) == (2.0, 1.0)
    finally:
        sys.modules.pop("frontend_probe", None)


def test_textwrap_as_the_frontend_sees_it_gives_the_modules_answers():
    from taichi.lang import kernel_impl

    wrapped = kernel_impl.textwrap
    assert wrapped is not textwrap and wrapped.TextWrapper is textwrap.TextWrapper
    line = "\tx = a_long_name + another_one  # a comment"
    for _ in range(2):  # the second answer comes from the table
        assert wrapped.fill(line, tabsize=4, width=9999) == textwrap.fill(line, tabsize=4, width=9999)
        assert wrapped.dedent("    a\n      b\n") == textwrap.dedent("    a\n      b\n")
