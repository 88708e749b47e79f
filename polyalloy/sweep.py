"""``polyalloy sweep``: run a scene over the cross product of settings, one job per combination
(``polyalloy check`` or ``polyalloy render --check``), each in its own folder, locally or as Ray
tasks; then a summary table, ``summary.json`` and, for renders, a contact sheet.

    polyalloy sweep drop --set dim=2 --vary gravity=-9.81,-39.24 --vary seed=0,1 --out sweeps/drop

A ``--vary KEY=A,B,...`` key is any ``--set`` key of the scene (a build option such as ``dim``, a
tunable such as ``cfl``, ``materials.NAME.FIELD``, ``control.FIELD``) or ``seed``. Every
combination is built with ``load_scene`` before the first job starts, so a bad key or value is a
one-line error (exit 2) and nothing runs.

The folder (``--out``, default ``sweeps/SCENE``) holds ``sweep.json`` (the settings every job
shares), one folder per job named after its varied settings (``gravity=-9.81,seed=1``) and,
at the end, ``summary.json`` and ``sheet.png``. A job folder holds ``job.json`` (its settings and
the command it ran), ``log.txt`` (the command's stderr), the command's ``--json`` record
(``check.json`` or ``render.json``; a render's frames and checkpoint beside it) and, written last
and atomically, ``result.json``: a job with one is done. Run the same sweep again and the jobs
that are done are read back, not run: a killed sweep resumes where it stopped (an unfinished render
resumes from its checkpoint), and a sweep given more values runs only the new combinations. A
folder that holds a sweep of other shared settings is refused unless ``--force`` (which reruns
every job).

Each job is a ``python -m polyalloy.cli`` process: the Taichi runtime, its compiled kernels and its
memory end with the job (one process that builds simulation after simulation is what Taichi 1.7's
CPU runtime does worst), and a job reads the kernel cache the first one filled. ``--workers`` jobs
run at once, each on ``--threads`` CPU threads (``POLYALLOY_THREADS``); the P2G lane count stays
what a lone ``polyalloy check`` on this machine uses (``POLYALLOY_LONE_LANES``: a large scene's
lanes; a small one runs on one lane and thread either way, ``simulation.serial_lanes``), so a job
simulates what the same command run alone does, whatever the number of workers (float sums over threads that
feed only the energy accounting change in their last bits with the threads).

Backends: ``local`` (the default) runs the jobs as subprocesses of this one; ``ray`` sends each as a
Ray task that reserves ``--threads`` CPUs (``ray.init`` joins the cluster at ``RAY_ADDRESS``, else
starts one on this machine). A task's output comes back to the driver, which writes the job folder;
a render writes its frames itself, so on a cluster of several machines ``--out`` must be a folder
every node mounts (a render whose ``frames.json`` is missing afterwards is reported as an error).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
import time

from polyalloy.errors import ConfigError, Interrupted

JOBS = ("check", "render")
BACKENDS = ("local", "ray")
SPECIAL = ("seed",)  # --vary keys that are command flags, not --set keys
NAME_MAX = 100  # characters of a job folder name before it is shortened with a hash
SHEET_WIDTH = 240  # px: a contact sheet tile's width


@dataclasses.dataclass
class Sweep:
    """What every job shares (``base``, written to ``sweep.json``) and what varies between them."""

    scene: str
    job: str = "check"
    vary: list = dataclasses.field(default_factory=list)  # [(key, [value, ...]), ...]
    sets: dict = dataclasses.field(default_factory=dict)  # --set of every job
    quality: str = "preview"
    seconds: float | None = None
    seed: int = 0
    arch: str = "auto"
    precision: str = "f32"
    deterministic: bool = False
    fast_compile: bool | None = None
    max_memory: str | None = None
    size: str | None = None  # render jobs
    formats: str = "png"  # render jobs

    def base(self) -> dict:
        """The settings every job shares (what a resumed sweep must match)."""
        d = dataclasses.asdict(self)
        d.pop("vary")
        return d


@dataclasses.dataclass
class Job:
    settings: dict  # the varied key -> value (strings, as given)
    name: str  # its folder

    def argv(self, sweep: Sweep, folder: str, resume: bool = False) -> list:
        """The ``polyalloy`` command line of this job (after ``python -m polyalloy.cli``)."""
        sets = dict(sweep.sets)
        seed = sweep.seed
        for key, value in self.settings.items():
            if key == "seed":
                seed = int(value)
            else:
                sets[key] = value
        args = [sweep.job, sweep.scene, "--json", "--no-progress", "--quality", sweep.quality, "--seed", str(seed),
                "--arch", sweep.arch, "--precision", sweep.precision]
        for key, value in sets.items():
            args += ["--set", f"{key}={value}"]
        if sweep.seconds is not None:
            args += ["--seconds", repr(sweep.seconds)]
        if sweep.deterministic:
            args.append("--deterministic")
        if sweep.fast_compile:
            args.append("--fast-compile")
        if sweep.max_memory:
            args += ["--max-memory", sweep.max_memory]
        if sweep.job == "render":
            args += ["--out", folder, "--check", "--format", sweep.formats]
            if sweep.size:
                args += ["--size", sweep.size]
            if resume:
                args.append("--resume")
        return args


def parse_vary(items) -> list:
    """``["key=a,b", ...]`` -> ``[(key, ["a", "b"]), ...]``; a ConfigError for a malformed item, an
    empty or repeated value, or a key given twice."""
    out, seen = [], set()
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--vary expects key=value,value,..., got {item!r}")
        values = [v.strip() for v in text.split(",")]
        if any(v == "" for v in values):
            raise ConfigError(f"--vary {key}: an empty value in {text!r} (give values separated by commas)")
        if len(set(values)) != len(values):
            raise ConfigError(f"--vary {key}: a value is given twice in {text!r}")
        if key in seen:
            raise ConfigError(f"--vary {key} is given twice; put all its values in one --vary")
        seen.add(key)
        out.append((key, values))
    if not out:
        raise ConfigError("a sweep needs at least one --vary key=value,value,...")
    return out


def job_name(settings: dict) -> str:
    """The folder of a job: ``key=value`` pairs joined by commas, characters a file name should not
    hold replaced by ``_``; a long one shortened and made unique with a hash of the settings."""
    import hashlib

    text = ",".join(f"{k}={v}" for k, v in settings.items())
    name = re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)
    if len(name) > NAME_MAX or name != text:
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
        name = f"{name[:NAME_MAX - 9]}-{digest}"
    return name


def plan(sweep: Sweep) -> list:
    """The jobs of ``sweep``, the first --vary key slowest; each combination built with
    ``load_scene`` first, so that a bad key or value fails before anything runs."""
    from polyalloy.scene import load_scene

    keys = [k for k, _ in sweep.vary]
    clash = [k for k in keys if k in sweep.sets]
    if clash:
        raise ConfigError(f"{clash[0]!r} is both in --set and in --vary; give it in one of them")
    if sweep.job not in JOBS:
        raise ConfigError(f"unknown sweep job {sweep.job!r}; choose {' or '.join(JOBS)}")
    jobs = []
    for values in itertools.product(*(v for _, v in sweep.vary)):
        settings = dict(zip(keys, values))
        sets = dict(sweep.sets)
        for key, value in settings.items():
            if key == "seed":
                try:
                    if int(value) < 0:
                        raise ValueError
                except ValueError:
                    raise ConfigError(f"--vary seed: {value!r} is not a whole number >= 0") from None
            else:
                sets[key] = value
        try:
            load_scene(sweep.scene, sweep.quality, sets)
        except ConfigError as exc:
            raise ConfigError(f"job {job_name(settings)}: {exc}") from None
        jobs.append(Job(settings, job_name(settings)))
    return jobs


def _job_env(threads: int, deterministic: bool) -> dict:
    """What a job process gets on top of this one's environment: its threads, and the P2G lanes a
    lone command would use here (``runtime.p2g_lanes``, as ``POLYALLOY_LONE_LANES``: not pinned, so
    a small scene still runs on one lane as alone; a deterministic run's one thread has one lane
    already), unless the user pinned them (``POLYALLOY_P2G_LANES``)."""
    from polyalloy import runtime

    env = {"POLYALLOY_THREADS": str(threads), "ENABLE_TAICHI_HEADER_PRINT": "0"}
    if "POLYALLOY_P2G_LANES" not in os.environ and not deterministic:
        env["POLYALLOY_LONE_LANES"] = str(runtime.p2g_lanes("x64", os.cpu_count() or 1))
    return env


def _end_with_parent() -> None:
    """In a job's process before it starts (Linux): a SIGTERM when the process that started it dies,
    so that a Ray task cancelled with force, or a sweep killed outright, leaves no job running on
    (the command stops cleanly on SIGTERM, as on Ctrl-C). Elsewhere nothing."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def run_command(args: list, env: dict, running: set | None = None) -> dict:
    """Run ``python -m polyalloy.cli ARGS`` with ``env`` added; its exit status, stdout, stderr,
    wall seconds and host. The process is in ``running`` while it runs (so that an interrupted
    sweep can stop it). A Ray task runs this same function on whichever node it lands."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "polyalloy.cli", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_end_with_parent)
    if running is not None:
        running.add(proc)
    try:
        stdout, stderr = proc.communicate()
    finally:
        if running is not None:
            running.discard(proc)
    return dict(rc=proc.returncode, stdout=stdout, stderr=stderr, wall_seconds=round(time.perf_counter() - t0, 2),
                host=socket.gethostname())


def _record(job: Job, sweep: Sweep, folder: str, out: dict) -> dict:
    """A job's row from its command's result: ``status`` pass (exit 0), fail (the claims failed: exit
    1 with a record) or error (no record: bad input at run time, a blow-up, a crash, a render whose
    files are not in its folder), with the claims' counts and measured values."""
    record = None
    try:
        record = json.loads(out["stdout"]) if out["stdout"].strip() else None
    except json.JSONDecodeError:
        record = None
    lines = [ln for ln in out["stderr"].splitlines() if ln.strip() and not ln.startswith("[Taichi]")]
    row = dict(job=job.name, settings=job.settings, rc=out["rc"], wall_seconds=out["wall_seconds"], host=out["host"],
               folder=os.path.abspath(folder), status="error", claims_passed=None, claims_total=None, failed=[],
               values={}, error=None)
    claims = None
    if isinstance(record, dict):
        claims = record.get("claims")
        if sweep.job == "render" and isinstance(claims, dict):
            claims = claims.get("records")
    if isinstance(claims, list):
        row["claims_total"] = len(claims)
        row["claims_passed"] = sum(c.get("status") == "pass" for c in claims)
        row["failed"] = [c["name"] for c in claims if c.get("status") != "pass"]
        row["values"] = {c["name"]: c.get("value") for c in claims}
    if record is not None and out["rc"] in (0, 1):
        row["status"] = "pass" if out["rc"] == 0 else "fail"
    if sweep.job == "render" and row["status"] != "error" and not os.path.isfile(os.path.join(folder, "frames.json")):
        row["status"] = "error"
        row["error"] = (f"the render's files are not in {folder} (on a Ray cluster of several machines, --out must be "
                        f"a folder every node mounts)")
    if row["status"] == "error" and row["error"] is None:
        row["error"] = lines[-1] if lines else f"exit status {out['rc']} and no output"
    return row


def _check_folder(sweep: Sweep, out_dir: str, force: bool) -> None:
    """Refuse a folder that holds a sweep of other shared settings (unless ``force``); write ours."""
    from polyalloy.export import ensure_writable_dir, write_json_atomic

    ensure_writable_dir(out_dir)
    path = os.path.join(out_dir, "sweep.json")
    if os.path.isfile(path) and not force:
        try:
            with open(path) as f:
                earlier = json.load(f).get("base")
        except (OSError, ValueError):
            earlier = None
        if earlier != json.loads(json.dumps(sweep.base())):
            diff = ""
            if isinstance(earlier, dict):
                keys = [k for k in sweep.base() if earlier.get(k) != sweep.base()[k]]
                if keys:
                    diff = f" ({keys[0]}: {earlier.get(keys[0])!r} there, {sweep.base()[keys[0]]!r} now)"
            raise ConfigError(f"{out_dir} holds a sweep of other settings{diff}; use another --out, or --force to "
                              f"run every job again")
    write_json_atomic(path, dict(base=sweep.base(), vary=dict(sweep.vary)))


def _done(job: Job, folder: str) -> dict | None:
    """The row of a job that finished in an earlier run of the sweep, or None."""
    path = os.path.join(folder, "result.json")
    try:
        with open(path) as f:
            row = json.load(f)
    except (OSError, ValueError):
        return None
    return row if row.get("settings") == job.settings else None


def run_sweep(sweep: Sweep, out_dir: str, workers: int = 1, threads: int | None = None, backend: str = "local",
              force: bool = False, sheet_time: float | None = None, say=lambda line: None) -> dict:
    """Run (or resume) ``sweep`` into ``out_dir``; the summary (also ``summary.json``): one row per
    job in plan order, ``passed`` (every job exit 0), the counts, and ``sheet`` (render jobs: the
    frame nearest ``sheet_time`` s of each job, else its last)."""
    from polyalloy.export import write_json_atomic

    if backend not in BACKENDS:
        raise ConfigError(f"unknown sweep backend {backend!r}; choose {' or '.join(BACKENDS)}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    cpus = os.cpu_count() or 1
    threads = threads if threads is not None else max(1, cpus // workers)
    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    jobs = plan(sweep)
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):  # only a hash collision could do this
        raise ConfigError("two jobs of this sweep map to one folder name")
    _check_folder(sweep, out_dir, force)
    rows, todo = {}, []
    for job in jobs:
        folder = os.path.join(out_dir, job.name)
        earlier = None if force else _done(job, folder)
        if earlier is not None:
            earlier["reused"] = True
            rows[job.name] = earlier
        else:
            todo.append(job)
    say(f"{len(jobs)} jobs ({len(jobs) - len(todo)} done earlier), {min(workers, max(1, len(todo)))} at once, "
        f"{threads} thread{'s' if threads > 1 else ''} each, backend {backend}")
    env = _job_env(threads, sweep.deterministic)
    started = time.perf_counter()

    def prepare(job: Job) -> list:
        folder = os.path.abspath(os.path.join(out_dir, job.name))
        os.makedirs(folder, exist_ok=True)
        resume = (sweep.job == "render" and not force and os.path.isfile(os.path.join(folder, "checkpoint.npz")))
        args = job.argv(sweep, folder, resume=resume)
        write_json_atomic(os.path.join(folder, "job.json"), dict(settings=job.settings, command=["polyalloy", *args],
                                                                env=env))
        return args

    def finish(job: Job, out: dict) -> None:
        folder = os.path.join(out_dir, job.name)
        with open(os.path.join(folder, "log.txt"), "w") as f:
            f.write(out["stderr"])
        if out["stdout"].strip():
            with open(os.path.join(folder, f"{sweep.job}.json"), "w") as f:
                f.write(out["stdout"])
        row = _record(job, sweep, folder, out)
        write_json_atomic(os.path.join(folder, "result.json"), row)
        rows[job.name] = row
        claims = f", {row['claims_passed']}/{row['claims_total']} claims" if row["claims_total"] is not None else ""
        why = f": {row['error']}" if row["error"] else ""
        say(f"[{len(rows)}/{len(jobs)}] {job.name}: {row['status']}{claims}, {row['wall_seconds']:.1f} s{why}")

    if todo:
        run = _run_ray if backend == "ray" else _run_local
        run(todo, prepare, finish, env, workers, threads)
    ordered = [rows[j.name] for j in jobs]
    summary = dict(scene=sweep.scene, job=sweep.job, out=os.path.abspath(out_dir), backend=backend, workers=workers,
                   threads=threads, base=sweep.base(), vary=dict(sweep.vary), jobs=ordered,
                   ran=len(todo), reused=len(jobs) - len(todo),
                   counts={s: sum(r["status"] == s for r in ordered) for s in ("pass", "fail", "error")},
                   passed=all(r["status"] == "pass" for r in ordered),
                   wall_seconds=round(time.perf_counter() - started, 2), sheet=None)
    if sweep.job == "render":
        summary["sheet"] = contact_sheet(ordered, os.path.join(out_dir, "sheet.png"), time=sheet_time)
    write_json_atomic(os.path.join(out_dir, "summary.json"), summary)
    return summary


def _run_local(todo, prepare, finish, env, workers, threads) -> None:
    """The jobs as subprocesses of this process, ``workers`` at once; on Ctrl-C or SIGTERM the
    running ones are stopped (each cleans up as its own command does) and the interrupt goes on."""
    running = set()

    def one(job):
        return run_command(prepare(job), env, running)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    futures = {}
    try:
        futures = {pool.submit(one, job): job for job in todo}
        for fut in concurrent.futures.as_completed(futures):
            finish(futures[fut], fut.result())
    except (KeyboardInterrupt, Interrupted):
        for fut in futures:
            fut.cancel()
        for proc in list(running):
            proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_ray(todo, prepare, finish, env, workers, threads) -> None:
    """The jobs as Ray tasks of ``threads`` CPUs each (``run_command`` on the node a task lands
    on); at most ``workers`` in flight, so that a local machine is not oversubscribed."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'polyalloy[ray]'") from None
    started = not ray.is_initialized()  # then shut down at the end; a caller's own Ray stays up
    if started:
        address = os.environ.get("RAY_ADDRESS") or None
        options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        if address is None:
            options["num_cpus"] = os.cpu_count() or 1
        ray.init(address=address, **options)
    pending, queue = {}, list(todo)
    try:
        have = ray.cluster_resources().get("CPU", 0)
        if have < threads:
            raise ConfigError(f"--threads {threads} is more than the Ray cluster's {have:g} CPUs")
        task = ray.remote(num_cpus=threads)(run_command)
        while queue or pending:
            while queue and len(pending) < workers:
                job = queue.pop(0)
                pending[task.remote(prepare(job), env)] = job
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                finish(pending.pop(ref), ray.get(ref))
    except (KeyboardInterrupt, Interrupted):
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


def contact_sheet(rows: list, path: str, columns: int | None = None, time: float | None = None) -> str | None:
    """One tile per render job (its PNG frame nearest ``time`` s, else its last, captioned with its
    varied values, each key's last dotted part, its status and the frame's time) in a grid, written
    to ``path``; None when no job has a frame."""
    from polyalloy.export import label_grid

    tiles = []
    for row in rows:
        manifest = os.path.join(row["folder"], "frames.json")
        try:
            with open(manifest) as f:
                frames = [fr for fr in json.load(f)["frames"] if "png" in fr.get("files", {})]
        except (OSError, ValueError, KeyError):
            frames = []
        if not frames:
            continue
        if time is None:
            frame = max(frames, key=lambda fr: fr["time"])
        else:
            frame = min(frames, key=lambda fr: abs(fr["time"] - time))
        said = " ".join(f"{k.split('.')[-1]}={v}" for k, v in row["settings"].items())
        tiles.append((os.path.join(row["folder"], frame["files"]["png"]),
                      f"{said}  {row['status']}  {frame['time']:.2f} s"))
    if not tiles:
        return None
    cols = columns or max(1, min(len(tiles), math.ceil(math.sqrt(len(tiles)))))
    label_grid(tiles, path, columns=cols, width=SHEET_WIDTH)
    return os.path.abspath(path)


def format_table(summary: dict, show=()) -> str:
    """The summary for the terminal: a row per job (its varied settings, status, claims that hold,
    the claims that did not, wall seconds, and the measured value of each claim named in ``show``)."""
    keys = list(summary["vary"])
    head = keys + ["status", "claims"] + list(show) + ["failed", "wall s"]
    body = []
    for r in summary["jobs"]:
        claims = f"{r['claims_passed']}/{r['claims_total']}" if r["claims_total"] is not None else "-"
        values = []
        for name in show:
            v = r.get("values", {}).get(name)
            values.append(f"{v:.4g}" if isinstance(v, (int, float)) else "-")
        failed = ", ".join(r["failed"]) if r["failed"] else (r["error"] or "" if r["status"] == "error" else "")
        body.append([str(r["settings"].get(k, "")) for k in keys] + [r["status"] + (" (earlier)" if r.get("reused")
                                                                                else ""), claims] + values
                    + [failed[:60], f"{r['wall_seconds']:.1f}"])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
    c = summary["counts"]
    lines.append(f"{summary['scene']} sweep ({summary['job']}, {len(summary['jobs'])} jobs: {c['pass']} pass, "
                 f"{c['fail']} fail, {c['error']} error; {summary['ran']} run now, {summary['reused']} done earlier) "
                 f"in {summary['out']}" + (f"; contact sheet {summary['sheet']}" if summary.get("sheet") else ""))
    return "\n".join(lines)
