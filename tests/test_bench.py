"""The benchmark at a tiny size (16^3 grid, a few substeps, a two-size scaling series): every
field of the report exists and is positive and finite, the workloads compare like with like, the
reference is Taichi's own example adapted as documented, and the scaling plot is a PNG. No timing
is asserted: this machine's speed is not a test."""
import json
import math

import numpy as np
import pytest

from polyalloy import bench, cli, runtime
from polyalloy.errors import PolyalloyError

N_GRID = 16
SCALING_SIZES = (300, 1000, 1500)
WORKLOAD_KEYS = ("particles", "grid", "substeps", "dt", "compile_s", "seconds", "cpu_seconds",
                 "particle_steps_per_s", "ms_per_substep", "field_mb", "threads")
WORKLOADS = {"fluid_block", "polyalloy_block", "reference_mpm3d", "fluid_block_2d", "reference_mpm2d", "bars_walk",
             "polyalloy_flow", "sparse_grid"}
REFERENCES = {"reference_mpm3d", "reference_mpm2d"}


@pytest.fixture(scope="module")
def result():
    lines = []
    out = bench.run_bench(quick=True, arch="cpu", n_grid=N_GRID, substeps=2, rounds=2, progress=lines.append,
                          scaling=True, scaling_sizes=SCALING_SIZES, triad_elements=1 << 18, p2g=("fluid_block",),
                          sequential=True)
    assert lines, "run_bench reports its progress"
    return out


def _positive_finite(value, where):
    assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where} = {value!r} is not a number"
    if where.endswith("compile_s"):
        # a layout that an earlier test in this process compiled comes warm from the field pool
        # (polyalloy.pool): its first step is no slower than the next, a compile time of 0
        assert math.isfinite(value) and value >= 0, f"{where} = {value!r} is not finite and >= 0"
    else:
        assert math.isfinite(value) and value > 0, f"{where} = {value!r} is not positive and finite"


def test_report_has_every_field_positive_and_finite(result):
    for key in ("version", "taichi_version", "python_version", "numpy_version", "platform", "arch", "device"):
        assert isinstance(result[key], str) and result[key], key
    _positive_finite(result["threads"], "threads")
    assert result["pinned_cores"] == list(runtime.info().cores)  # where Taichi's workers run
    _positive_finite(result["peak_rss_mb"], "peak_rss_mb")
    assert set(result["workloads"]) == WORKLOADS and result["sequential"] is True  # the fixture asks for it
    for name, w in result["workloads"].items():
        for key in WORKLOAD_KEYS:
            if key == "grid":
                assert len(w["grid"]) == (2 if name.endswith("2d") else 3), f"{name}.grid"
                assert all(r > 0 for r in w["grid"]), f"{name}.grid"
            else:
                _positive_finite(w[key], f"{name}.{key}")
        assert w["substeps"] == 2
    for case in ("tight", "large"):
        for key in WORKLOAD_KEYS + ("active_blocks", "total_blocks", "domain_m"):
            if key != "grid":
                _positive_finite(result["workloads"]["sparse_grid"][case][key], f"sparse_grid.{case}.{key}")
    for workload in ("fluid_block", "polyalloy_block", "fluid_block_2d", "bars_walk", "polyalloy_flow"):
        kernels = result["workloads"][workload]["kernel_ms"]
        assert {"p2g", "g2p"} <= set(kernels)
        for name, ms in kernels.items():
            _positive_finite(ms, f"{workload}.kernel_ms.{name}")
    assert "conduct" in result["workloads"]["polyalloy_block"]["kernel_ms"]
    assert "mimic" in result["workloads"]["bars_walk"]["kernel_ms"]  # the bars are textured
    assert 0 < result["workloads"]["polyalloy_block"]["thermal_fraction"] < 1
    assert set(result["ratios"]) == {"fluid_vs_reference", "fluid_vs_reference_cpu", "polyalloy_vs_reference",
                                      "fluid_2d_vs_reference_2d", "sparse_large_vs_tight_per_particle",
                                      "fluid_vs_reference_paired", "polyalloy_vs_reference_paired"}
    for key, value in result["ratios"].items():
        _positive_finite(value, f"ratios.{key}")
    for name, w in result["workloads"].items():  # every round, the fastest the one reported
        if name != "sparse_grid":
            assert len(w["round_ms_per_substep"]) == 2 and w["round_spread"] >= 1.0, name
            assert min(w["round_ms_per_substep"]) == pytest.approx(w["ms_per_substep"]), name
    ours, ref = result["workloads"]["polyalloy_block"], result["workloads"]["reference_mpm3d"]
    per_round = [(ours["particles"] / a) / (ref["particles"] / b)
                 for a, b in zip(ours["round_ms_per_substep"], ref["round_ms_per_substep"])]
    assert result["ratios"]["polyalloy_vs_reference_paired"] == pytest.approx(float(np.median(per_round)))
    roof = result["roofline"]
    assert roof["bandwidth_used"] == "numpy_triad"
    for key, value in roof["bandwidth_gb_per_s"].items():
        _positive_finite(value, f"roofline.bandwidth_gb_per_s.{key}")
    for name in ("fluid_block", "fluid_block_2d"):
        assert set(roof[name]) == {"bytes_per_particle_step", "flops_per_particle_step", "flops_per_byte",
                                   "active_nodes_per_particle", "achieved_gb_per_s", "achieved_gflop_per_s",
                                   "fraction_of_bandwidth"}
        for key, value in roof[name].items():
            _positive_finite(value, f"roofline.{name}.{key}")
    scaling = result["scaling"]
    assert [p["particles"] for p in scaling["points"]] == list(SCALING_SIZES) and scaling["skipped"] == []
    for p in scaling["points"]:
        for key, value in p.items():
            _positive_finite(value, f"scaling.{key}")
    for key in ("n_grid", "substeps", "rounds", "compile_s", "field_mb", "cube_side_m", "exponent_from"):
        _positive_finite(scaling[key], f"scaling.{key}")
    # a fitted slope of times: at these tiny sizes (300-1,500 particles) a substep is mostly fixed
    # cost and the slope sits near 0, either side of it (one run measured -0.007): finite, any sign
    assert math.isfinite(scaling["exponent"]), scaling["exponent"]
    json.loads(json.dumps(result, allow_nan=False))  # the CLI's --json must not fail


def test_every_workload_is_checked_against_its_plain_path(result):
    """Each workload records a checksum after its timed substeps; ours also agree with the plain
    path's (the SVD for every solid particle) within the tolerance, the references have no
    other path; the polyalloy workloads report their yielding share, and the flowing one yields."""
    for name, w in result["workloads"].items():
        cases = [w["tight"], w["large"]] if name == "sparse_grid" else [w]
        for c in cases:
            assert set(c["checksum"]) == {"com_m", "kinetic_j", "thermal_j"}, name
            assert len(c["checksum"]["com_m"]) == len(c["grid"]) and c["checksum"]["kinetic_j"] >= 0, name
            if name in REFERENCES:
                assert "check" not in c, name
            else:
                assert c["check"]["ok"], (name, c["check"])
                assert set(c["check"]["error"]) == set(bench.CHECK_TOLERANCE), name
                assert all(c["check"]["error"][k] <= bench.CHECK_TOLERANCE[k] for k in bench.CHECK_TOLERANCE), name
        assert ("yielding" in w) == (name in {"polyalloy_block", "bars_walk", "polyalloy_flow"}), name
    flow = result["workloads"]["polyalloy_flow"]
    # measured at this size: 66-68% before and after the closed-form return
    assert min(flow["yielding_start"], flow["yielding"]) >= 0.4, flow
    assert flow["checksum"]["kinetic_j"] > 0 and result["workloads"]["polyalloy_block"]["yielding"] == 0.0
    assert flow["particles"] == result["workloads"]["polyalloy_block"]["particles"]  # the same block, on end


def test_the_check_fails_when_the_fast_path_does_less_work():
    """``_plain_check`` against a case whose fast path skips part of its work (it moves the body
    half as far as the plain path does): a one-line failure naming the workload; within the
    tolerance it passes."""
    from types import SimpleNamespace

    state = dict(x=np.zeros((4, 3)), plain=0)

    def step(share):
        state["x"] = state["x"] + (1.0 if state["plain"] else share) * 1e-3

    def make(share):
        case = bench._Case(lambda: step(share), 4, (8, 8, 8), 1e-3, lambda: None,
                           sim=SimpleNamespace(scene=SimpleNamespace(dx=0.01), total_mass=lambda: 4.0),
                           save=lambda: state["x"].copy(), load=lambda x: state.update(x=x.copy()),
                           checksum=lambda: bench.checksum(state["x"], np.ones((4, 3)), 1.0),
                           plain=lambda on: state.update(plain=on))
        case.start = case.save()
        bench._time_round(case, 10)
        return case

    failure = bench._plain_check(make(0.5), 10, "halfway")
    assert failure and "halfway" in failure and "com_cells" in failure and "\n" not in failure
    assert bench._plain_check(make(1.0), 10, "whole") is None


def test_cli_prints_the_figures_and_fails_on_a_check(result, monkeypatch, capsys):
    def failing(**kwargs):
        raise bench.BenchCheckError("bench check failed: polyalloy_flow's kinetic differs", result)

    monkeypatch.setattr(bench, "run_bench", failing)
    assert cli.main(["bench", "--arch", "cpu", "--quick"]) == 2
    out, err = capsys.readouterr()
    assert "polyalloy_flow" in out and "yielding" in out
    assert err.strip().splitlines()[-1] == "polyalloy: error: bench check failed: polyalloy_flow's kinetic differs"


def test_workloads_compare_like_with_like(result):
    w = result["workloads"]
    fluid, ref, sparse = w["fluid_block"], w["reference_mpm3d"], w["sparse_grid"]
    assert fluid["particles"] == ref["particles"] == N_GRID ** 3 // 4
    assert ref["grid"] == [N_GRID] * 3
    assert fluid["dt"] == ref["dt"] and fluid["substeps"] == ref["substeps"]
    fluid2, ref2 = w["fluid_block_2d"], w["reference_mpm2d"]
    assert fluid2["particles"] == ref2["particles"] == (bench.GRID_2D * N_GRID) ** 2 // 2
    assert ref2["grid"] == [bench.GRID_2D * N_GRID] * 2 and fluid2["dt"] == ref2["dt"]
    assert sparse["tight"]["particles"] == sparse["large"]["particles"] == sparse["particles"]
    assert sparse["large"]["domain_m"] == pytest.approx(bench.SPARSE_SCALE * sparse["tight"]["domain_m"])
    assert sparse["large"]["total_blocks"] > sparse["tight"]["total_blocks"]
    for case in ("tight", "large"):
        assert sparse[case]["active_blocks"] <= sparse[case]["total_blocks"]
    assert result["ratios"]["fluid_vs_reference"] == pytest.approx(
        fluid["particle_steps_per_s"] / ref["particle_steps_per_s"])


def test_table_names_every_workload(result):
    table = bench.format_table(result)
    for name in ("fluid_block", "reference_mpm3d", "fluid_block_2d", "reference_mpm2d", "sparse_grid", "tight box",
                 "large box", "p2g", "roofline fluid_block", "scaling: water cube", "peak host memory", "polyalloy_flow",
                 "threads", "yielding", "check"):
        assert name in table


def test_p2g_lanes_are_timed_against_the_serial_p2g_from_the_same_state(result):
    """``run_p2g_lanes`` (``--p2g``): on a runtime of two threads or more the bench builds a
    workload again with the serial P2G and times both transfers from one state (here
    ``fluid_block`` alone, as the fixture asks; the full run adds ``polyalloy_block``, whose
    laned and serial grids ``tests/test_mpm.py`` compares channel by channel); both grids then
    hold the same mass (that state's particles', to f32 rounding), and the table gives the
    figures. With one thread there is nothing to compare, and it says so."""
    from polyalloy import runtime

    lanes = result["p2g_lanes"]
    assert lanes["lanes"] == runtime.info().p2g_lanes and lanes["threads"] == runtime.info().threads
    if lanes["lanes"] < 2:
        assert "skipped" in lanes
        return
    table = bench.format_table(result)
    assert "polyalloy_block" not in lanes and "P2G of polyalloy_block" not in table
    for name in ("fluid_block",):
        p = lanes[name]
        assert p["grid_mass"] == pytest.approx(p["grid_mass_serial"], rel=1e-6) and p["grid_mass"] > 0
        for key in ("serial_ms", "lanes_ms", "serial_median_ms", "lanes_median_ms", "lanes_cpu_ms"):
            _positive_finite(p[key], f"p2g_lanes.{name}.{key}")
        assert p["speedup"] == pytest.approx(p["serial_ms"] / p["lanes_ms"])
        assert len(p["rounds_ms"]["1"]) == len(p["rounds_ms"][str(lanes["lanes"])]) >= 3
        assert f"P2G of {name}" in table


def test_traffic_model_counts_the_fluid_kernels():
    """The model's sums for a 3D f32 substep with no grid share: p2g reads 120 B, g2p reads 76 B
    and writes 156 B per particle; doubling the float size doubles the float traffic."""
    model = bench.traffic_model(3, 4, 0.0)
    assert model["bytes"] == 120 + 76 + 156
    assert bench.traffic_model(3, 8, 0.0)["bytes"] == 2 * (120 + 76 + 156) - 7 * 4
    assert bench.traffic_model(3, 4, 1.0)["bytes"] > model["bytes"]
    assert 2000 < model["flops"] < 3000 and bench.traffic_model(2, 4, 0.0)["flops"] < model["flops"]


def test_scaling_plot_is_a_png(result, tmp_path):
    path = bench.plot_scaling(result, str(tmp_path / "plots" / "scaling.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(path) as img:
        assert min(img.size) >= 200
        assert len(np.unique(np.asarray(img.convert("L")))) > 2  # something was drawn
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["scaling.png"]  # no temporary file left


def test_scaling_skips_sizes_that_do_not_fit_before_allocating(monkeypatch):
    monkeypatch.setattr(bench, "_memory_budget", lambda arch: 1 << 10)
    monkeypatch.setattr(bench, "_water_scene", lambda *a, **k: pytest.fail("allocated a size that does not fit"))
    out = bench.run_scaling(sizes=(128, 16_000, 65_536), max_particles=20_000, arch="x64")
    assert out["points"] == [] and out["exponent"] is None
    assert [k["particles"] for k in out["skipped"]] == [128, 16_000]  # 65,536 is above max_particles
    assert "GiB" in out["skipped"][0]["reason"]


def test_cli_prints_json_and_writes_the_plot(result, monkeypatch, capsys, tmp_path):
    """``polyalloy bench --quick --json --plot PATH``: valid JSON on stdout, the PNG on disk, and
    the flags reach run_bench (the run itself is the module's, to keep the suite short)."""
    seen = {}

    def fake_run_bench(**kwargs):
        seen.update(kwargs)
        return result

    monkeypatch.setattr(bench, "run_bench", fake_run_bench)
    plot = tmp_path / "scaling.png"
    assert cli.main(["bench", "--arch", "cpu", "--quick", "--json", "--plot", str(plot), "--max-particles",
                     "70000", "--p2g"]) == 0
    assert json.loads(capsys.readouterr().out)["workloads"].keys() == result["workloads"].keys()
    assert plot.stat().st_size > 0
    assert seen["quick"] and seen["scaling"] and seen["p2g"] and seen["max_particles"] == 70_000


def test_reference_is_taichis_example_adapted(result):
    ref = bench.load_reference(N_GRID, 1e-4)
    assert (ref.dim, ref.n_grid, ref.dt, ref.n_particles) == (3, N_GRID, 1e-4, N_GRID ** 3 // 4)
    assert callable(ref.init) and callable(ref.substep)
    ref = bench.load_reference(64, 5e-5, dim=2)
    assert (ref.dim, ref.n_grid, ref.dt, ref.n_particles) == (2, 64, 5e-5, 64 ** 2 // 2)


def test_missing_reference_is_a_clear_error(result, monkeypatch):
    monkeypatch.setattr(bench, "REFERENCE_PATH", "examples/simulation/no_such_example.py")
    with pytest.raises(PolyalloyError, match="no_such_example.py"):
        bench.load_reference(N_GRID, 1e-4)


def test_bad_sizes_are_errors(result):
    with pytest.raises(PolyalloyError, match="n_grid"):
        bench.run_bench(n_grid=4)
    with pytest.raises(PolyalloyError, match="substeps"):
        bench.run_bench(n_grid=N_GRID, substeps=0)
