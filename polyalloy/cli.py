"""The ``polyalloy`` command: list scenes, render one, check a scene's claims, sweep its settings, run
the benchmark or the physics validation.

Every error a user can cause ends as one line on stderr and a non-zero exit status
(2 for bad input, 1 for a simulation that failed, 130 on SIGINT, 143 on SIGTERM); ``--traceback``
shows the Python traceback of an unexpected failure.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys

os.environ.setdefault("ENABLE_TAICHI_HEADER_PRINT", "0")  # keep stdout clean for --json

from polyalloy import __version__  # noqa: E402
from polyalloy.errors import ConfigError, Interrupted, PolyalloyError, SimulationError  # noqa: E402
from polyalloy.runtime import ARCHES  # noqa: E402

log = logging.getLogger("polyalloy")


def _parse_set(items) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _parse_size(text: str | None, quality: str) -> tuple[int, int]:
    from polyalloy.render import PRESETS

    if text is None:
        return PRESETS[quality]
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size expects WIDTHxHEIGHT, got {text!r}") from None
    if w < 16 or h < 16 or w % 8 or h % 8 or w > 7680 or h > 4320:
        raise ConfigError(f"--size {text}: width and height must be multiples of 8 between 16 and 7680x4320")
    return w, h


def _add_runtime_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="auto", choices=ARCHES,
                   help="backend: auto tries CUDA (Metal on macOS) then the CPU (default: auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of the particle sampling and ti.random (default: 0)")
    p.add_argument("--deterministic", action="store_true",
                   help="CPU, one thread: bit-identical results across runs (slower)")
    p.add_argument("--precision", default="f32", choices=("f32", "f64"), help="float precision (default: f32)")
    p.add_argument("--fast-compile", action="store_true", default=None,
                   help="compile polyalloy kernels ~1.5x faster (water ones no faster), run them 1.3-1.5x "
                        "slower (Taichi's advanced optimisation off; also POLYALLOY_FAST_COMPILE=1)")


def _add_memory_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-memory", metavar="SIZE",
                   help="refuse a scene whose estimated memory (particles, grid, state copies, renderer, Taichi) "
                        "is above SIZE, e.g. 512M or 4G, before anything is allocated (default: the memory "
                        "available when it starts); the message gives the largest dx that fits")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polyalloy", description=(
        "Liquid-metal physics toy: MLS-MPM in Taichi. Render a scene to PNG frames, MP4/GIF and "
        "PLY/NPZ particle data, list the scenes, check their claims, sweep their settings, or run the benchmark."))
    parser.add_argument("--version", action="version", version=f"polyalloy {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the runtime chooses")
    parser.add_argument("--traceback", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list the shipped scenes")
    p.add_argument("--json", action="store_true", help="print a JSON object name -> description")

    p = sub.add_parser("render", help="simulate a scene and write frames, videos and particle data",
                       description="Simulate SCENE and write numbered PNG frames, an MP4 and/or GIF, and "
                                   "per-frame PLY/NPZ particle data to --out, with a frames.json manifest and "
                                   "a checkpoint of the simulation state. Frames already on disk are kept "
                                   "(not rewritten) unless --force; --resume continues an interrupted render.")
    p.add_argument("scene", help="a shipped scene name (see `polyalloy list`) or a path to a scene .py file")
    p.add_argument("--quality", default="preview", choices=("preview", "film"),
                   help="preview: CPU-friendly resolution and image size; film: for a GPU (default: preview)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--frames", type=int, help="number of frames to write (frame 0 is the initial state)")
    length.add_argument("--seconds", type=float, help="simulated seconds to render (default: the scene's duration)")
    p.add_argument("--out", help="output folder (default: renders/SCENE)")
    p.add_argument("--format", default="png,mp4",
                   help="comma list of png (frame_00000.png ...), mp4 (H.264, yuv420p), gif (small, looping, "
                        "at most 320 px wide and 15 fps), ply and npz (particles_00000.ply/.npz: position, "
                        "velocity, temperature, phase, colour); mp4 and gif are made from the PNGs, which are "
                        "kept (default: png,mp4)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted render in --out from its last checkpoint (repeat the original "
                        "options; a different scene, --set, seed, size, formats or POLYALLOY_SORT_EVERY is refused); "
                        "also extends a finished one to more "
                        "--frames")
    p.add_argument("--force", action="store_true",
                   help="rewrite frames and videos already in --out (default: keep them; their frames are "
                        "simulated again but neither rendered nor written)")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="write the simulation checkpoint every N frames (default: 1 preview, 10 film)")
    p.add_argument("--size", help="image size WIDTHxHEIGHT, multiples of 8 (default: 640x360 preview, "
                                   "1920x1080 film)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="change a scene option or parameter, e.g. --set dim=2 --set cfl=0.3 "
                        "--set materials.water.viscosity=0.1 (repeatable)")
    p.add_argument("--check", action="store_true",
                   help="judge the scene's claims at every frame, as `polyalloy check` does, into frames.json; "
                        "exit status 1 when one fails (the files stay written) or when a --resume could only "
                        "judge from its checkpoint on (partial: no verdict)")
    p.add_argument("--json", action="store_true", help="print a JSON summary of what was written")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    _add_memory_flag(p)
    _add_runtime_flags(p)

    p = sub.add_parser("check", help="run a scene without rendering and judge the claims its script declares",
                       description="Simulate SCENE for its duration (no rendering) and evaluate the claims its "
                                   "script declares beside build() (claims(scene) -> list of polyalloy.claims.Claim): "
                                   "print a table of claim, moment, measured value, threshold and status. Exit "
                                   "status 0 when every claim holds, 1 when one fails or is not reached, 2 for bad "
                                   "input; a scene that declares no claims is reported with status 0.")
    p.add_argument("scene", help="a shipped scene name (see `polyalloy list`) or a path to a scene .py file")
    p.add_argument("--quality", default="preview", choices=("preview", "film"),
                   help="the scene's size: preview (CPU) or film (GPU) (default: preview)")
    p.add_argument("--seconds", type=float, help="simulated seconds (default: the scene's duration; a shorter run "
                                                 "leaves later claims not reached)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="change a scene option or parameter, as for render (repeatable)")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    _add_memory_flag(p)
    _add_runtime_flags(p)

    p = sub.add_parser("sweep", help="run a scene's check or render over the cross product of settings",
                       description="Run `polyalloy check` (or `render --check`) of SCENE once per combination of the "
                                   "--vary values, each job a process with its own folder under --out, locally or "
                                   "as Ray tasks; print a table of the jobs' verdicts and write summary.json (and "
                                   "sheet.png, a contact sheet of the render jobs' frames). A sweep run again into "
                                   "the same folder reuses the jobs that finished (result.json) and runs the rest. "
                                   "Exit status 0 when every job passed, 1 when one failed or could not run, 2 for "
                                   "bad input (every combination is built before the first job starts).")
    p.add_argument("scene", help="a shipped scene name (see `polyalloy list`) or a path to a scene .py file")
    p.add_argument("--vary", action="append", metavar="KEY=A,B,...", default=[],
                   help="a --set key (or seed) and the values it takes, e.g. --vary cfl=0.3,0.5 --vary seed=0,1,2 "
                        "(repeatable: the jobs are the cross product)")
    p.add_argument("--job", default="check", choices=("check", "render"),
                   help="what each job runs: check (the claims, no images) or render (frames, videos and the "
                        "claims, --check) (default: check)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="a scene option or parameter for every job, as for render (repeatable)")
    p.add_argument("--quality", default="preview", choices=("preview", "film"),
                   help="the scene's size: preview (CPU) or film (GPU) (default: preview)")
    p.add_argument("--seconds", type=float, help="simulated seconds of each job (default: the scene's duration)")
    p.add_argument("--out", help="the sweep's folder (default: sweeps/SCENE)")
    p.add_argument("--workers", type=int, default=1, help="jobs that run at once (default: 1)")
    p.add_argument("--threads", type=int, help="CPU threads of each job (default: the cores / --workers)")
    p.add_argument("--backend", default="local", choices=("local", "ray"),
                   help="local: jobs as subprocesses here; ray: jobs as Ray tasks (the cluster at RAY_ADDRESS, "
                        "else one started on this machine; pip install 'polyalloy[ray]') (default: local)")
    p.add_argument("--force", action="store_true",
                   help="run every job again, also those done, and into a folder of another sweep")
    p.add_argument("--show", default="", metavar="CLAIM,...",
                   help="claims whose measured values get a column in the table")
    p.add_argument("--size", help="render jobs: image size WIDTHxHEIGHT, multiples of 8 (default: the quality's)")
    p.add_argument("--format", default="png", help="render jobs: the files, as for render (default: png)")
    p.add_argument("--sheet-time", type=float, metavar="S",
                   help="render jobs: the contact sheet shows each job's frame nearest S seconds (default: its last)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    _add_memory_flag(p)
    _add_runtime_flags(p)

    p = sub.add_parser("bench", help="measure particle-steps per second against a reference MLS-MPM",
                       description="Run the standard workloads and Taichi's own mpm3d algorithm in the same "
                                   "process, and report particle-steps/s, ratios and compile times, the threads, "
                                   "and the share of polyalloy particles yielding. Each workload's checksum (centre "
                                   "of mass, kinetic and thermal energy after its timed substeps) is checked "
                                   "against the same substeps on the plain path (SVD for every solid particle): "
                                   "exit status 2 when one differs beyond tolerance.")
    p.add_argument("--quick", action="store_true", help="a short run (about a minute on a 2-core CPU), no scaling")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--scaling", action="store_true",
                   help="also time fluid_block from 16,000 particles up to --max-particles (always on in the full run)")
    p.add_argument("--max-particles", type=int, default=None, metavar="N",
                   help="largest size of the scaling series (default: 1,100,000; sizes that do not fit in "
                        "memory are skipped)")
    p.add_argument("--plot", metavar="PATH", help="write the scaling series as a PNG (implies --scaling)")
    p.add_argument("--p2g", action="store_true",
                   help="also time the serial P2G against the P2G lanes, one per CPU thread (always on in the "
                        "full run; nothing to time with one thread or on a GPU)")
    p.add_argument("--n-grid", type=int, default=None, metavar="N",
                   help="grid cells per metre of the standard workloads (default: 64, i.e. 65,536 particles)")
    p.add_argument("--sequential", action="store_true",
                   help="one workload at a time (built, timed, checked, closed) instead of interleaved rounds: "
                        "the memory of the largest workload alone and one compile per layout, but the ratios "
                        "compare rounds taken minutes apart")
    _add_runtime_flags(p)

    p = sub.add_parser("validate", help="run the physics validation cases against their thresholds",
                       description="Run the analytic and experimental validation cases (heat diffusion, Stefan "
                                   "front, mixing, free fall, momentum, thermal energy, dam break) at small sizes and print "
                                   "each error against its threshold; exit status 1 if any check fails.")
    p.add_argument("--quick", action="store_true", help="2D cases only (the full run adds 3D free fall and momentum)")
    p.add_argument("--only", action="append", metavar="CASE", default=[],
                   help="run only this case (repeatable); one of: heat_diffusion, stefan_front, mixing, "
                        "free_fall, momentum, thermal_energy, dam_break")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    _add_runtime_flags(p)

    p = sub.add_parser("live", help="run a scene in a window with sliders, pokes and kernel hot reload",
                       description="Open a window (Taichi GGUI, needs Vulkan) that runs SCENE live: sliders for "
                                   "its live parameters, mouse pokes (click: shoot, right-drag: pull, shift/ctrl "
                                   "+ click: heat/chill), keys (space pause, n step, r reset, p screenshot, m "
                                   "record MP4, v surface/points, arrows orbit, +/- zoom) and kernel hot reload: "
                                   "saving a file in the kernels folder reloads it. --benchmark N times N frames "
                                   "without a window.")
    p.add_argument("scene", nargs="?", help="a shipped scene name or a path to a scene .py file")
    p.add_argument("--quality", default="preview", choices=("preview", "film"), help="the scene's size (default: preview)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="change a scene option or parameter before the start, as for render (repeatable)")
    p.add_argument("--fps", type=float, help="frames per second of scene time: each frame advances time_scale/fps "
                                             "s (default: 60 in 2D, 30 in 3D)")
    p.add_argument("--size", help="image size WIDTHxHEIGHT, scaled up in the window (default: 320x184)")
    p.add_argument("--view", default="surface", choices=("surface", "points"), help="what to draw (default: surface)")
    p.add_argument("--benchmark", type=int, metavar="N",
                   help="no window: time N frames (simulation and drawing) and print frames/s and the real-time factor")
    p.add_argument("--kernels", metavar="DIR", help="run on the kernel modules in DIR (a copy written by "
                                                   "--export-kernels) and watch them for edits")
    p.add_argument("--export-kernels", metavar="DIR", help="write a copy of the kernel modules into the new folder "
                                                          "DIR and exit")
    p.add_argument("--replay", metavar="FILE", help="replay a run saved from the window (key o) or LiveSession.save")
    p.add_argument("--screenshot", metavar="PNG", help="run the window without showing it for --frames frames, "
                                                       "save a screenshot of it and exit")
    p.add_argument("--frames", type=int, default=30, help="frames to run with --screenshot (default: 30)")
    p.add_argument("--json", action="store_true", help="print the --benchmark result as JSON")
    _add_runtime_flags(p)
    return parser


def _init_runtime(args) -> None:
    import polyalloy

    info = polyalloy.init(arch=args.arch, seed=args.seed, deterministic=args.deterministic,
                          precision=args.precision, fast_compile=args.fast_compile)
    log.info("arch %s (asked %s), %s, %d threads", info.arch, info.requested, info.precision, info.threads)


def _limit_memory(args, scene, image=None) -> None:
    """Apply ``--max-memory`` to ``scene`` and refuse what does not fit (with the renderer's ``image``)
    before the runtime starts."""
    from polyalloy import preflight

    if args.max_memory is not None:
        scene.max_memory = preflight.parse_bytes(args.max_memory)
    preflight.check_memory(scene, image=image, real_bytes=8 if args.precision == "f64" else 4)


def cmd_list(args) -> int:
    from polyalloy.scene import list_scenes

    scenes = list_scenes()
    if args.json:
        print(json.dumps(scenes, indent=2))
    else:
        width = max(len(n) for n in scenes)
        for name, text in scenes.items():
            print(f"{name:<{width}}  {text}")
    return 0


def cmd_render(args) -> int:
    from polyalloy.jobs import RenderJob, parse_formats
    from polyalloy.scene import load_scene

    formats = parse_formats(args.format)
    size = _parse_size(args.size, args.quality)
    overrides = _parse_set(args.set)
    scene = load_scene(args.scene, args.quality, overrides)
    scene.seed = args.seed
    if args.frames is not None:
        frames = args.frames
    else:
        frames = scene.duration_frames(args.seconds) + 1
    if frames < 1 or frames > 100_000:
        raise ConfigError(f"--frames must be between 1 and 100000, got {frames}")
    out = args.out or os.path.join("renders", scene.name)
    source = os.path.abspath(args.scene) if args.scene.endswith(".py") or os.sep in args.scene else args.scene
    job = RenderJob(scene, out, frames, size, formats, quality=args.quality, source=source, params=overrides,
                    resume=args.resume, force=args.force, checkpoint_every=args.checkpoint_every,
                    progress=not args.no_progress, precision=args.precision, judge=args.check)
    job.check()
    _limit_memory(args, scene, size)
    _init_runtime(args)
    result = job.run()
    out = os.path.abspath(out)
    summary = dict(scene=scene.name, out=out, frames=frames, formats=list(formats), written=result.written,
                   resumed_from=result.resumed_from, manifest=os.path.join(out, "frames.json"),
                   videos={f: os.path.abspath(p) for f, p in result.videos.items()},
                   video=os.path.abspath(result.video) if result.video else None, particles=result.particles,
                   substeps=result.substeps, sim_seconds=round(result.sim_seconds, 3),
                   render_seconds=round(result.render_seconds, 3))
    if args.check:
        summary["claims"] = result.claims
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        kinds = ", ".join(f.upper() for f in formats)
        again = f", resumed from frame {result.resumed_from}" if result.resumed_from is not None else ""
        print(f"{frames} frames of {scene.name} ({kinds}; {result.particles:,} particles, {result.substeps} "
              f"substeps, sim {result.sim_seconds:.1f} s, render {result.render_seconds:.1f} s, "
              f"{result.written} files written{again}) are in {out}"
              + "".join(f", {p}" for p in summary["videos"].values()))
        if args.check:
            print(_render_verdict(scene.name, result.claims))
    if not args.check or result.claims["records"] is None:
        return 0
    return 0 if result.claims["passed"] else 1


def _render_verdict(name: str, claims: dict) -> str:
    """What ``render --check`` found, for the terminal: the table and one verdict line."""
    from polyalloy.claims import format_table

    if claims["records"] is None:
        return f"scene {name} declares no claims (a scene script adds them with claims(scene) beside build)"
    table = format_table(claims["records"])
    if claims["partial"]:
        return (f"{table}\nclaims judged from frame {claims['judged_from']} on only (resumed render): no verdict, "
                f"not a pass; `polyalloy check {name}` judges the whole run")
    return f"{table}\nclaims of this render (in frames.json): {'all hold' if claims['passed'] else 'FAILED'}"


def cmd_check(args) -> int:
    from polyalloy import checks
    from polyalloy.claims import format_table
    from polyalloy.scene import load_scene

    scene = load_scene(args.scene, args.quality, _parse_set(args.set))
    scene.seed = args.seed
    if args.seconds is not None and not (0 < args.seconds <= 3600):
        raise ConfigError(f"--seconds must be in (0, 3600], got {args.seconds}")
    _limit_memory(args, scene)
    if scene.claims is not None:
        checks.scene_claims(scene)  # a broken claims() fails before minutes of simulation
        _init_runtime(args)
    record = checks.run_check(scene, seconds=args.seconds, progress=not args.no_progress)
    if args.json:
        print(json.dumps(record, indent=2))
    elif record["claims"] is None:
        print(f"scene {scene.name} declares no claims (a scene script adds them with claims(scene) beside build)")
    else:
        verdict = "all claims hold" if record["passed"] else "claims FAILED"
        print(format_table(record["claims"]))
        print(f"{scene.name} ({scene.quality}, {scene.dim}D, {record['particles']:,} particles, {record['frames']} "
              f"frames, {record['substeps']} substeps, {record['wall_seconds']:.0f} s): {verdict}")
    return 0 if record["passed"] in (True, None) else 1


def cmd_sweep(args) -> int:
    from polyalloy import sweep
    from polyalloy.jobs import parse_formats

    if args.job == "render":
        parse_formats(args.format)
        _parse_size(args.size, args.quality)
    if args.seconds is not None and not (0 < args.seconds <= 3600):
        raise ConfigError(f"--seconds must be in (0, 3600], got {args.seconds}")
    if args.max_memory is not None:
        from polyalloy import preflight

        preflight.parse_bytes(args.max_memory)
    spec = sweep.Sweep(scene=args.scene, job=args.job, vary=sweep.parse_vary(args.vary), sets=_parse_set(args.set),
                       quality=args.quality, seconds=args.seconds, seed=args.seed, arch=args.arch,
                       precision=args.precision, deterministic=args.deterministic, fast_compile=args.fast_compile,
                       max_memory=args.max_memory, size=args.size, formats=args.format)
    out = args.out or os.path.join("sweeps", os.path.splitext(os.path.basename(args.scene))[0])
    say = (lambda line: None) if args.no_progress else (lambda line: print(f"polyalloy sweep: {line}", file=sys.stderr))
    summary = sweep.run_sweep(spec, out, workers=args.workers, threads=args.threads, backend=args.backend,
                              force=args.force, sheet_time=args.sheet_time, say=say)
    show = [s.strip() for s in args.show.split(",") if s.strip()]
    print(json.dumps(summary, indent=2) if args.json else sweep.format_table(summary, show))
    return 0 if summary["passed"] else 1


def cmd_bench(args) -> int:
    from polyalloy import bench

    options = dict(quick=args.quick, arch=args.arch,
                   progress=lambda line: print(f"polyalloy: {line}", file=sys.stderr))
    if args.scaling or args.plot:
        options["scaling"] = True
    if args.p2g:
        options["p2g"] = True
    if args.max_particles is not None:
        options["max_particles"] = args.max_particles
    if args.n_grid is not None:
        options["n_grid"] = args.n_grid
    if args.sequential:
        options["sequential"] = True
    if args.plot:
        from polyalloy.export import ensure_writable_dir

        ensure_writable_dir(os.path.dirname(os.path.abspath(args.plot)))  # before minutes of benchmarking
    _init_runtime(args)
    try:
        result = bench.run_bench(**options)
    except bench.BenchCheckError as exc:  # the figures still print; the failure is the one-line message
        if exc.result is not None:
            print(json.dumps(exc.result, indent=2) if args.json else bench.format_table(exc.result))
        raise
    if args.plot:
        result["plot"] = os.path.abspath(bench.plot_scaling(result, args.plot))
    print(json.dumps(result, indent=2) if args.json else bench.format_table(result))
    return 0


def cmd_validate(args) -> int:
    from polyalloy import validate

    _init_runtime(args)
    report = validate.run_validation(quick=args.quick, only=args.only,
                                     progress=lambda line: print(f"polyalloy: {line}", file=sys.stderr))
    print(json.dumps(validate.json_record(report), indent=2) if args.json else validate.format_table(report))
    return 0 if report["passed"] else 1


def cmd_live(args) -> int:
    from polyalloy import live, reload

    if args.export_kernels:
        path = reload.export_kernels(args.export_kernels)
        print(f"kernels written to {path}; run `polyalloy live SCENE --kernels {path}` and edit them there")
        return 0
    if args.replay and args.scene:
        raise ConfigError("give a scene or --replay FILE, not both (the saved run names its scene)")
    if not args.scene and not args.replay:
        raise ConfigError("live needs a scene (see `polyalloy list`) or --replay FILE")
    size = _parse_size(args.size, "preview") if args.size else live.SIZE
    if args.frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {args.frames}")
    if args.benchmark is not None and not 1 <= args.benchmark <= 100_000:
        raise ConfigError(f"--benchmark needs 1 to 100000 frames, got {args.benchmark}")
    _init_runtime(args)
    opts = dict(fps=args.fps, size=size, view=args.view, kernels=args.kernels)
    if args.replay:
        session = live.LiveSession.load(args.replay, **opts)
        session.replay()
    else:
        session = live.LiveSession(args.scene, args.quality, _parse_set(args.set), **opts)
    if args.benchmark is not None:
        r = live.benchmark(session, args.benchmark, args.view)
        if args.json:
            print(json.dumps(r, indent=2))
        else:
            print(f"{r['scene']} ({r['dim']}D, {r['particles']:,} particles, {r['view']} {size[0]}x{size[1]}): "
                  f"{r['fps']:.1f} frames/s at {r['frame_dt'] * 1000:.1f} ms of scene time per frame, real-time "
                  f"factor {r['realtime']:.2f} (simulation {r['sim_ms']:.0f} ms + drawing {r['render_ms']:.0f} ms "
                  f"a frame, {r['substeps_per_frame']:.1f} substeps a frame; warm-up {r['warmup_s']:.0f} s)")
        return 0
    from polyalloy import window

    return window.run(session, screenshot=args.screenshot, frames=args.frames)


COMMANDS = {"live": cmd_live, "list": cmd_list, "render": cmd_render, "check": cmd_check, "bench": cmd_bench,
            "validate": cmd_validate, "sweep": cmd_sweep}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="polyalloy: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    def terminate(signum, frame):
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, terminate)  # like Ctrl-C: clean up, one line, exit 143
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as exc:
        if not isinstance(exc, Interrupted):
            exc = Interrupted(signal.SIGINT)
        print(f"polyalloy: {_one_line(exc)}", file=sys.stderr)
        return 128 + exc.signum
    except ConfigError as exc:
        print(f"polyalloy: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"polyalloy: simulation failed: {_one_line(exc)}", file=sys.stderr)
        return 1
    except PolyalloyError as exc:
        print(f"polyalloy: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # an unexpected failure still ends as one line unless --traceback
        if args.traceback:
            raise
        print(f"polyalloy: internal error: {type(exc).__name__}: {_one_line(exc)} (run with --traceback for details)",
              file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    """An error message as one line (a message may quote a user's multi-line text)."""
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
