"""The benchmark at a tiny size (16^3 grid, a few substeps): every field of the report exists and
is positive and finite, the workloads compare like with like, and the reference is Taichi's own
example adapted as documented. No timing is asserted: this machine's speed is not a test."""
import json
import math

import pytest

from polyalloy import bench
from polyalloy.errors import PolyalloyError

N_GRID = 16
WORKLOAD_KEYS = ("particles", "grid", "substeps", "dt", "compile_s", "seconds", "cpu_seconds",
                 "particle_steps_per_s", "ms_per_substep")


@pytest.fixture(scope="module")
def result():
    lines = []
    out = bench.run_bench(quick=True, arch="cpu", n_grid=N_GRID, substeps=2, rounds=2, progress=lines.append)
    assert lines, "run_bench reports its progress"
    return out


def _positive_finite(value, where):
    assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where} = {value!r} is not a number"
    assert math.isfinite(value) and value > 0, f"{where} = {value!r} is not positive and finite"


def test_report_has_every_field_positive_and_finite(result):
    for key in ("version", "taichi_version", "arch", "device"):
        assert isinstance(result[key], str) and result[key], key
    _positive_finite(result["threads"], "threads")
    _positive_finite(result["peak_rss_mb"], "peak_rss_mb")
    assert set(result["workloads"]) == {"fluid_block", "polyalloy_block", "reference_mpm3d", "sparse_grid"}
    for name, w in result["workloads"].items():
        for key in WORKLOAD_KEYS:
            if key == "grid":
                assert len(w["grid"]) == 3 and all(r > 0 for r in w["grid"]), f"{name}.grid"
            else:
                _positive_finite(w[key], f"{name}.{key}")
        assert w["substeps"] == 2
    for case in ("tight", "large"):
        for key in WORKLOAD_KEYS + ("active_blocks", "total_blocks", "domain_m"):
            if key != "grid":
                _positive_finite(result["workloads"]["sparse_grid"][case][key], f"sparse_grid.{case}.{key}")
    for workload in ("fluid_block", "polyalloy_block"):
        kernels = result["workloads"][workload]["kernel_ms"]
        assert {"p2g", "g2p"} <= set(kernels)
        for name, ms in kernels.items():
            _positive_finite(ms, f"{workload}.kernel_ms.{name}")
    assert "conduct" in result["workloads"]["polyalloy_block"]["kernel_ms"]
    assert 0 < result["workloads"]["polyalloy_block"]["thermal_fraction"] < 1
    assert set(result["ratios"]) == {"fluid_vs_reference", "fluid_vs_reference_cpu", "polyalloy_vs_reference",
                                      "sparse_large_vs_tight_per_particle"}
    for key, value in result["ratios"].items():
        _positive_finite(value, f"ratios.{key}")
    json.dumps(result, allow_nan=False)  # the CLI's --json must not fail


def test_workloads_compare_like_with_like(result):
    w = result["workloads"]
    fluid, ref, sparse = w["fluid_block"], w["reference_mpm3d"], w["sparse_grid"]
    assert fluid["particles"] == ref["particles"] == N_GRID ** 3 // 4
    assert ref["grid"] == [N_GRID] * 3
    assert fluid["dt"] == ref["dt"] and fluid["substeps"] == ref["substeps"]
    assert sparse["tight"]["particles"] == sparse["large"]["particles"] == sparse["particles"]
    assert sparse["large"]["domain_m"] == pytest.approx(bench.SPARSE_SCALE * sparse["tight"]["domain_m"])
    assert sparse["large"]["total_blocks"] > sparse["tight"]["total_blocks"]
    for case in ("tight", "large"):
        assert sparse[case]["active_blocks"] <= sparse[case]["total_blocks"]
    assert result["ratios"]["fluid_vs_reference"] == pytest.approx(
        fluid["particle_steps_per_s"] / ref["particle_steps_per_s"])


def test_table_names_every_workload(result):
    table = bench.format_table(result)
    for name in ("fluid_block", "reference_mpm3d", "sparse_grid", "tight box", "large box", "p2g"):
        assert name in table


def test_reference_is_taichis_example_adapted(result):
    ref = bench.load_reference(N_GRID, 1e-4)
    assert (ref.dim, ref.n_grid, ref.dt, ref.n_particles) == (3, N_GRID, 1e-4, N_GRID ** 3 // 4)
    assert callable(ref.init) and callable(ref.substep)


def test_missing_reference_is_a_clear_error(result, monkeypatch):
    monkeypatch.setattr(bench, "REFERENCE_PATH", "examples/simulation/no_such_example.py")
    with pytest.raises(PolyalloyError, match="no_such_example.py"):
        bench.load_reference(N_GRID, 1e-4)


def test_bad_sizes_are_errors(result):
    with pytest.raises(PolyalloyError, match="n_grid"):
        bench.run_bench(n_grid=4)
    with pytest.raises(PolyalloyError, match="substeps"):
        bench.run_bench(n_grid=N_GRID, substeps=0)
