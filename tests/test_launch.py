"""Taichi's kernel launch with its per-call Python work done once per instantiation
(``polyalloy.launch``): a remembered instantiation launches directly with this call's scalars, each
set of template arguments keeps its own instantiation, a return value is this launch's, what Taichi
has to judge (a wrong argument, keyword arguments) takes Taichi's path, and a simulation steps to the same bits
either way."""
import numpy as np
import pytest
import taichi as ti
from taichi.lang import kernel_impl

from conftest import make_scene
from polyalloy import launch
from polyalloy.materials import Fluid
from polyalloy.shapes import Box
from polyalloy.simulation import Simulation


@ti.kernel
def _ramp(f: ti.template(), scale: ti.f32, n: ti.i32, odd: ti.template()):
    for i in range(f.shape[0]):
        f[i] = 0.0
        if i < n:
            f[i] = scale * i + (1000.0 if ti.static(odd) else 0.0)


@ti.kernel
def _total(f: ti.template()) -> ti.f32:
    s = 0.0
    for i in range(f.shape[0]):
        s += f[i]
    return s


@ti.kernel
def _axpy(a: ti.f32, x: ti.types.ndarray(), y: ti.types.ndarray(), n: ti.i32):
    for i in range(n):
        y[i] = a * x[i] + y[i]


def _taichi_path_calls(monkeypatch, kernel):
    calls, primal = [], kernel._primal
    ensure = kernel_impl.Kernel.ensure_compiled
    monkeypatch.setattr(kernel_impl.Kernel, "ensure_compiled",
                        lambda self, *a: (self is primal and calls.append(a), ensure(self, *a))[1])
    return calls


@pytest.fixture
def taichi_path_calls(monkeypatch):
    """How often a launch of ``_ramp`` took Taichi's own path (it, and only it, looks the
    instantiation up)."""
    return _taichi_path_calls(monkeypatch, _ramp)


def test_the_runtime_installs_the_launch_memo(runtime):
    assert launch.installed()  # polyalloy.init did it (tests/conftest.py starts the runtime)


def test_a_remembered_instantiation_launches_with_this_call_s_scalars_on_its_own_fields(runtime, taichi_path_calls):
    a, b = ti.field(ti.f32, 8), ti.field(ti.f32, 8)
    i = np.arange(8)
    _ramp(a, 2.0, 3, False)  # first calls: Taichi's path
    _ramp(b, 5.0, 8, False)
    _ramp(a, 0.5, 6, True)  # another instantiation (the bool is part of the key)
    first = len(taichi_path_calls)
    assert first >= 3
    _ramp(a, 7.0, 2, False)  # remembered: launched directly
    np.testing.assert_array_equal(a.to_numpy(), np.where(i < 2, 7.0 * i, 0.0))
    _ramp(b, -1.5, 5, False)
    np.testing.assert_array_equal(b.to_numpy(), np.where(i < 5, -1.5 * i, 0.0))
    _ramp(a, 3, 4, True)  # an int where the real goes: Taichi takes it too
    np.testing.assert_array_equal(a.to_numpy(), np.where(i < 4, 3.0 * i + 1000.0, 0.0))
    _ramp(b, np.float32(0.25), np.int64(8), False)  # numpy scalars as Taichi takes them
    np.testing.assert_array_equal(b.to_numpy(), 0.25 * i)
    assert len(taichi_path_calls) == first  # none of the last four took Taichi's path (to_numpy's kernels did)
    assert len(_ramp._primal._polyalloy_launches) == 3


def test_a_remembered_instantiation_reads_and_writes_this_call_s_arrays(runtime, monkeypatch):
    """Arrays of scalars (``ti.types.ndarray``): a remembered instantiation reads and writes the
    arrays of this call, by their own memory; another element type is another instantiation; an
    array that is not in C order, or not a numpy array, takes Taichi's path."""
    calls = _taichi_path_calls(monkeypatch, _axpy)
    x, y = np.arange(6, dtype=np.float32), np.ones(6, np.float32)
    _axpy(2.0, x, y, 6)  # first call: Taichi's path
    np.testing.assert_array_equal(y, 2.0 * x + 1.0)
    first = len(calls)
    x2, y2 = np.full(6, 3.0, np.float32), np.zeros(6, np.float32)
    _axpy(0.5, x2, y2, 4)  # remembered: this call's arrays and scalars
    np.testing.assert_array_equal(y2, [1.5, 1.5, 1.5, 1.5, 0.0, 0.0])
    np.testing.assert_array_equal(y, 2.0 * x + 1.0)  # the first call's arrays untouched
    _axpy(1.0, x, y, 6)
    np.testing.assert_array_equal(y, 3.0 * x + 1.0)
    assert len(calls) == first
    x64, y64 = np.arange(6, dtype=np.float64) / 3.0, np.zeros(6, np.float64)
    _axpy(3.0, x64, y64, 6)  # doubles: another instantiation, through Taichi's path once
    second = len(calls)
    assert second > first
    _axpy(3.0, x64, y64, 6)
    np.testing.assert_array_equal(y64, 2.0 * (3.0 * x64))  # read as doubles: not truncated to f32
    assert len(calls) == second
    assert len(_axpy._primal._polyalloy_launches) == 2
    grid = np.zeros((2, 6), np.float32)
    y_strided = grid[:, 0]  # not in C order: Taichi's path (it refuses the array)
    with pytest.raises(ValueError, match="(?i)contiguous"):
        _axpy(1.0, x, y_strided, 6)
    assert len(calls) > second
    with pytest.raises(Exception):
        _axpy(1.0, list(x), y, 6)  # not an array: Taichi's own error
    np.testing.assert_array_equal(y, 3.0 * x + 1.0)


def test_what_taichi_must_judge_takes_its_path(runtime, taichi_path_calls):
    a = ti.field(ti.f32, 4)
    _ramp(a, 1.0, 4, False)
    _ramp(a, 1.0, 4, False)
    n = len(taichi_path_calls)
    with pytest.raises(Exception, match="(?i)argument"):
        _ramp(a, "two", 4, False)  # Taichi's own error for a wrong scalar
    with pytest.raises(Exception, match="(?i)argument"):
        _ramp(a, 1.0, 2.5, False)  # a real where an int goes
    _ramp(f=a, scale=2.0, n=4, odd=False)  # keyword arguments: Taichi's path
    assert len(taichi_path_calls) > n
    np.testing.assert_array_equal(a.to_numpy(), 2.0 * np.arange(4))


def test_a_remembered_kernel_returns_its_values(runtime):
    a, b = ti.field(ti.f32, 4), ti.field(ti.f32, 4)
    _ramp(a, 1.0, 4, False)
    _ramp(b, 2.0, 3, False)
    assert _total(a) == pytest.approx(6.0)  # Taichi's path, remembered
    assert _total(a) == pytest.approx(6.0)  # the memo: launched, synced, read
    assert _total(b) == pytest.approx(6.0)
    _ramp(a, 3.0, 4, False)
    assert _total(a) == pytest.approx(18.0)  # the value of this launch
    assert len(_total._primal._polyalloy_launches) == 2


def test_a_simulation_steps_to_the_same_bits_through_either_path(runtime, monkeypatch):
    """From one state, three frames of a 2D splash launched through the memo and through Taichi's
    own path (``Kernel.__call__`` put back) end in the same particle fields to the bit."""
    scene = make_scene(2, name="launch")
    scene.add_material("water", Fluid(density=1000.0, bulk_modulus=2e4, viscosity=1e-3))
    scene.add_body("block", Box(centre=(0.35, 0.3), half_size=(0.15, 0.2)), "water", velocity=(1.0, 0.0))
    with Simulation(scene) as sim:
        sim.step_frame()
        state, runs = sim.state_dict(), {}
        for memo in (True, False):
            if not memo:
                monkeypatch.setattr(kernel_impl.Kernel, "__call__", kernel_impl.Kernel.__call__.__wrapped__)
            sim.load_state_dict(state)
            for _ in range(3):
                sim.step_frame()
            runs[memo] = (sim.state_dict(), sim.substeps)
    (fast, n_fast), (taichis, n_taichi) = runs[True], runs[False]
    assert n_fast == n_taichi
    for key in fast:
        if key.startswith("field/particles_fields/"):
            assert np.array_equal(fast[key], taichis[key]), key
    assert not np.array_equal(fast["field/particles_fields/x"], state["field/particles_fields/x"])
