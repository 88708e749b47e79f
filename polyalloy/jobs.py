"""The render job: simulate a scene frame by frame, render each frame, export the files.

Used by ``polyalloy render`` and callable from Python (``render_scene``). Frame k is the state
at t = k / fps (frame 0: the initial state). For each frame, in this order: the PNG and the
particle files, then the manifest ``frames.json`` (which lists it), then, every
``checkpoint_every`` frames and at the last one, ``checkpoint.npz``: the whole simulation state
(``Simulation.state_dict``). Every file is written atomically and SIGINT/SIGTERM are held back
while one is written, so a killed render leaves only whole files. ``checkpoint.npz`` records its
format version and a SHA-256 of its arrays; ``resume`` checks both before the runtime starts, loads
the checkpoint and goes on from its frame; a frame whose files are already on disk is simulated
but not written again (unless ``force``). In deterministic mode a resumed render ends with the
same files, bit for bit, as one that was never interrupted. A frame that blows up is redone
from its start at half the cfl (``Simulation.step_frame_retrying``); the manifest records each
frame's ``retries`` and, when every retry failed, ``failed``. A render holds an flock on
``.polyalloy.lock`` in its folder, so a second one into the same folder is refused. MP4 and GIF
are encoded from the PNG frames at the end.

With ``check``, the scene's claims (``polyalloy.claims``, the same ``Judge`` as ``polyalloy
check``) are observed at every frame, frame 0 included, and ``frames.json`` carries them under
``claims``: ``records`` (``Judge.results``), ``passed``, ``final`` (false until the last frame is
judged), ``judged_from`` (the first frame observed) and ``partial``. A resumed render does not
have the judge's memory of the frames before its checkpoint (a stateful measure's first mass, the
time the feet first froze), so it judges from the resumed frame on and says so: ``partial``
true, ``passed`` None, never a pass. ``polyalloy check`` gives the full verdict.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from polyalloy.errors import ConfigError, Interrupted, PolyalloyError
from polyalloy.scene import Scene

log = logging.getLogger("polyalloy")

FORMATS = ("png", "mp4", "gif", "ply", "npz")
VIDEOS = ("mp4", "gif")  # encoded from the PNG frames, so they imply png
PER_FRAME = ("png", "ply", "npz")
MANIFEST = "frames.json"
CHECKPOINT = "checkpoint.npz"
CHECKPOINT_FORMAT = 2  # layout of checkpoint.npz (state arrays + meta with identity and checksum); others are refused
RESTART = "run without --resume and with --force to start over, or use another --out"
LOCK = ".polyalloy.lock"  # flock'ed by the render writing into the folder; the OS drops it when that process dies
# checkpoint period in frames: a preview state is a few MB (cheap every frame); a film state
# can be hundreds of MB, so it is written every 10th frame and a resume redoes at most 9
CHECKPOINT_EVERY = {"preview": 1, "film": 10}


# identity entries added since a render folder was written: a folder without one was rendered with this
IDENTITY_DEFAULTS = {"POLYALLOY_SORT_EVERY": 0}  # P2G in slot order (``kernels.order``), 2026-12-06


@dataclass
class RenderResult:
    """What a render job left on disk: ``frames`` (PNG paths), ``videos`` (format -> path), ``written``
    (files written by this run), counts and timings (s)."""

    out_dir: str
    frames: list = field(default_factory=list)
    videos: dict = field(default_factory=dict)
    written: int = 0
    resumed_from: int | None = None
    particles: int = 0
    sim_seconds: float = 0.0
    render_seconds: float = 0.0
    substeps: int = 0
    claims: dict | None = None  # the claims entry of frames.json (``RenderJob.judge``), else None

    @property
    def video(self) -> str | None:
        return self.videos.get("mp4")


def parse_formats(text: str) -> tuple[str, ...]:
    """``"png,mp4"`` -> ``("png", "mp4")``; mp4 and gif add png (they are made from the PNG frames)."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"unknown format {', '.join(unknown) or repr(text)}; choose from {', '.join(FORMATS)}")
    if any(f in VIDEOS for f in formats):
        formats.append("png")
    return tuple(f for f in FORMATS if f in formats)


class _SignalGuard:
    """Turns SIGINT and SIGTERM into ``Interrupted``, except inside ``hold()``, where the signal
    waits until the file being written is complete."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, where):
        self.where = where  # () -> str: what is on disk, for the message
        self.held = 0
        self.pending = None
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame):
        if self.held:
            self.pending = signum
        else:
            self._raise(signum)

    def _raise(self, signum):
        raise Interrupted(signum, self.where())

    @contextlib.contextmanager
    def hold(self):
        self.held += 1
        try:
            yield
        finally:
            self.held -= 1
            if not self.held and self.pending is not None:
                signum, self.pending = self.pending, None
                self._raise(signum)


class Progress:
    """One plain-text line per frame on stderr: count, percentage, sim time, the frame's sim and
    render seconds, elapsed and ETA. On a terminal the line is redrawn in place. The ETA goes at
    the pace of the last ``PACE`` frames: the first frames pay the kernels' compile (minutes on a
    small CPU), and a beat's frames differ in cost (contact takes more substeps)."""

    PACE = 10

    def __init__(self, total: int, name: str, enabled: bool, stream=None, verb: str = "render"):
        self.total, self.name, self.enabled, self.verb = total, name, enabled, verb
        self.stream = stream or sys.stderr
        self.tty = enabled and self.stream.isatty()
        self.start = time.perf_counter()
        self.ends = []  # seconds elapsed at the end of each of the last PACE + 1 frames
        self.done = 0

    def update(self, index: int, t: float, sim_s: float, render_s: float | None, reused: bool = False) -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        left = self.total - index - 1
        self.ends = (self.ends + [elapsed])[-(self.PACE + 1):]
        # after one frame there is no pace yet (and that frame held the compile)
        eta = _clock((self.ends[-1] - self.ends[0]) / (len(self.ends) - 1) * left) if len(self.ends) > 1 else "?"
        what = "" if render_s is None else (" on disk" if reused else f" render {render_s:.2f}s")
        line = (f"{self.verb} {self.name}: frame {index + 1}/{self.total} {100 * (index + 1) // self.total:3d}% "
                f"t={t:.3f}s sim {sim_s:.2f}s{what} | elapsed {_clock(elapsed)} ETA {eta}")
        self.stream.write(f"\r{line}\x1b[K" if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.done:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def particle_record(sim) -> dict:
    """The exported arrays of ``sim``'s live particles (see ``polyalloy.export``)."""
    s = sim.particles(retired=True)
    alive = s["alive"]
    return dict(id=np.flatnonzero(alive).astype(np.int32),
                **{k: s[k][alive] for k in ("x", "v", "T", "phase", "color", "comp")})


@dataclass
class RenderJob:
    """A render of ``frames`` frames of ``scene`` into ``out_dir`` at ``size`` (width, height px,
    multiples of 8). ``identity`` (scene source, quality, ``params`` = the --set overrides, seed,
    precision, size, formats, fps) is recorded in ``frames.json``; a resume or a re-run into the
    same folder must match it."""

    scene: Scene
    out_dir: str
    frames: int
    size: tuple
    formats: tuple = ("png", "mp4")
    quality: str = "preview"
    source: str | None = None  # how the scene was named: a shipped name or a script path (default: scene.name)
    params: dict = field(default_factory=dict)
    resume: bool = False
    force: bool = False
    checkpoint_every: int | None = None  # frames; default CHECKPOINT_EVERY[quality]
    progress: bool = True
    precision: str | None = None  # f32 or f64; default: the runtime's (lets ``check`` run before polyalloy.init)
    judge: bool = False  # evaluate the scene's claims frame by frame into frames.json (``render --check``)

    def __post_init__(self):
        self.formats = parse_formats(",".join(self.formats))
        if not (isinstance(self.frames, int) and 1 <= self.frames <= 100_000):
            raise ConfigError(f"--frames must be between 1 and 100000, got {self.frames}")
        if self.checkpoint_every is None:
            self.checkpoint_every = CHECKPOINT_EVERY.get(self.quality, 1)
        if not (isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 1):
            raise ConfigError(f"--checkpoint-every must be a whole number of frames >= 1, got {self.checkpoint_every}")
        self.size = tuple(int(v) for v in self.size)
        self._lock_fd = None
        self._resume_state = None  # the checkpoint's arrays between check() and their load

    # --- what the folder holds ---------------------------------------------------------------
    def identity(self) -> dict:
        from polyalloy import runtime

        return dict(scene=self.scene.name, source=self.source or self.scene.name, quality=self.quality,
                    params={k: str(v) for k, v in sorted(self.params.items())}, seed=int(self.scene.seed),
                    precision=self.precision or runtime.info().precision, size=list(self.size),
                    formats=list(self.formats),
                    fps=self.scene.fps, POLYALLOY_SORT_EVERY=runtime.sort_every_wanted())

    def _path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    def _read_manifest(self) -> dict | None:
        path = self._path(MANIFEST)
        if not os.path.exists(path):
            return None
        try:
            with open(path, "rb") as f:
                manifest = json.loads(f.read().decode("utf-8"))
            _check_manifest(manifest)
        except Exception as exc:  # whatever is wrong with the file's bytes, it is not a manifest we wrote
            if self.force and not self.resume:
                return None
            raise ConfigError(f"{path} is not a polyalloy render manifest ({_reason(exc)}); "
                              f"use --force to start over or another --out") from None
        return manifest

    def _check_identity(self, manifest: dict | None, mine: dict) -> None:
        if manifest is None:
            if self.resume:
                raise ConfigError(f"nothing to resume in {self.out_dir}: it has no {MANIFEST}; run without --resume")
            return
        theirs = {k: manifest.get(k, IDENTITY_DEFAULTS.get(k)) for k in mine}
        if theirs == mine or (self.force and not self.resume):
            return
        diff = [f"{k} {theirs[k]!r} (now {mine[k]!r})" for k in mine if theirs[k] != mine[k]]
        verb = "cannot resume" if self.resume else "will not mix frames"
        fix = "repeat the original options" + ("" if self.resume else ", add --force to overwrite,")
        raise ConfigError(f"{verb}: {self.out_dir} was rendered with {'; '.join(diff)}; {fix} or use another --out")

    def _checkpoint(self, mine: dict) -> dict | None:
        """The state in ``checkpoint.npz``, read and verified (format, checksum, identity) once and
        kept until it is loaded; None without one."""
        path = self._path(CHECKPOINT)
        if self._resume_state is None and os.path.exists(path):
            state, meta = _read_checkpoint(path)
            theirs = meta.get("identity")
            if isinstance(theirs, dict):
                theirs = dict(IDENTITY_DEFAULTS, **theirs)
            if theirs != mine:
                raise ConfigError(f"{path} belongs to another render than {MANIFEST}; {RESTART}")
            self._resume_state = state
        return self._resume_state

    def _load_checkpoint(self, sim, mine: dict) -> int | None:
        """Load ``checkpoint.npz`` into ``sim``; the frame it holds, or None without one."""
        state = self._checkpoint(mine)
        if state is None:
            return None
        self._resume_state = None
        try:
            sim.load_state_dict(state)
        except Exception as exc:  # a checksummed state that still does not load was written by another scene
            raise ConfigError(f"{self._path(CHECKPOINT)} does not fit this scene ({_reason(exc)}); {RESTART}") from None
        return sim.frame

    # --- the job --------------------------------------------------------------------------
    def check(self) -> dict | None:
        """Refuse what cannot work before anything is computed: an unwritable folder, a folder that
        holds a render with other settings, a resume with nothing to resume or a damaged checkpoint,
        a folder that another render is writing into (this job then holds the folder's lock until
        ``run`` ends). Returns the manifest."""
        from polyalloy.export import ensure_writable_dir

        ensure_writable_dir(self.out_dir)
        self._lock()
        try:
            manifest = self._read_manifest()
            self._check_identity(manifest, self.identity())
            if self.resume:
                self._checkpoint(self.identity())
            if self.judge:
                from polyalloy.checks import scene_claims

                scene_claims(self.scene)  # a broken claims() fails before any simulation
        except BaseException:
            self._unlock()
            raise
        return manifest

    def run(self) -> RenderResult:
        try:
            return self._run()
        finally:
            self._unlock()

    def _run(self) -> RenderResult:
        from polyalloy import export
        from polyalloy.simulation import Simulation

        manifest = self.check()
        mine = self.identity()
        sim = Simulation(self.scene)
        result = RenderResult(out_dir=self.out_dir, particles=sim.n_particles)
        entries = {}  # frame index -> its manifest entry
        if self.resume:
            result.resumed_from = self._load_checkpoint(sim, mine)
            if result.resumed_from is None:
                log.warning("no %s in %s: resuming from frame 0", CHECKPOINT, self.out_dir)
            else:
                entries = {e["index"]: e for e in manifest["frames"] if e["index"] < result.resumed_from}
        renderer = None
        if "png" in self.formats:
            from polyalloy.render import SurfaceRenderer

            renderer = SurfaceRenderer(sim, *self.size, self.quality)
        doc = self._manifest(sim, mine)
        judge = self._judge()
        state = dict(last_checkpoint=result.resumed_from, done=result.resumed_from or 0)

        def where() -> str:
            ck = state["last_checkpoint"]
            return (f"{state['done']} of {self.frames} frames in {self.out_dir} are complete; "
                    + (f"--resume goes on from frame {ck}" if ck is not None else "nothing to resume yet"))

        bar = Progress(self.frames, self.scene.name, self.progress)
        with _SignalGuard(where) as guard:
            try:
                for k in range(result.resumed_from or 0, self.frames):
                    t0 = time.perf_counter()
                    retries = self._step(sim, doc, guard) if k > sim.frame else []
                    if judge is not None:
                        judge.observe(sim)
                        if k == self.frames - 1:
                            judge.finish(sim)
                    t1 = time.perf_counter()
                    files, todo, made = self._make_frame(k, sim, renderer)
                    with guard.hold():
                        for fmt in todo:
                            made[fmt](files[fmt])
                        t2 = time.perf_counter()
                        entries[k] = dict(index=k, time=sim.t, substeps=sim.substeps,
                                          files={fmt: p.name for fmt, p in files.items()},
                                          sim_seconds=round(t1 - t0, 4), render_seconds=round(t2 - t1, 4),
                                          written=todo, **({"retries": retries} if retries else {}))
                        doc["frames"] = [entries[i] for i in sorted(entries)]
                        if self.judge:
                            doc["claims"] = result.claims = self._claims_record(judge, result.resumed_from or 0,
                                                                                final=k == self.frames - 1)
                        export.write_json_atomic(self._path(MANIFEST), doc)
                        if k % self.checkpoint_every == 0 or k == self.frames - 1:
                            self._save_checkpoint(sim, mine)
                            state["last_checkpoint"] = k
                        state["done"] = k + 1
                    result.written += len(todo)
                    result.sim_seconds += t1 - t0
                    result.render_seconds += t2 - t1
                    bar.update(k, sim.t, t1 - t0, t2 - t1, reused=not todo)
            finally:
                bar.close()
            result.substeps = sim.substeps
            if "png" in self.formats:
                result.frames = [str(export.frame_path(self.out_dir, k)) for k in range(self.frames)]
            for fmt in VIDEOS:
                if fmt in self.formats:
                    result.videos[fmt] = self._video(fmt, result)
            doc.update(complete=True, videos={f: os.path.basename(p) for f, p in result.videos.items()})
            with guard.hold():
                export.write_json_atomic(self._path(MANIFEST), doc)
        sim.close()
        return result

    def _manifest(self, sim, mine: dict) -> dict:
        """The manifest of this job, before its frames: identity, versions, runtime, scene parameters."""
        import taichi as ti

        from polyalloy import __version__, runtime
        from polyalloy.scene import TUNABLE

        info = runtime.info()
        return dict(mine, polyalloy=__version__, taichi=".".join(map(str, ti.__version__)), arch=info.arch,
                    deterministic=info.deterministic,
                    scene_params={k: getattr(self.scene, k) for k in ("dim", *TUNABLE)},
                    particles=sim.n_particles, frames_total=self.frames, checkpoint=CHECKPOINT,
                    checkpoint_every=self.checkpoint_every, complete=False, videos={}, frames=[])

    def _judge(self):
        """A fresh ``Judge`` of the scene's claims (None without ``judge`` or without claims)."""
        if not self.judge:
            return None
        from polyalloy.checks import scene_claims
        from polyalloy.claims import Judge

        claims = scene_claims(self.scene)
        return None if claims is None else Judge(claims)

    def _claims_record(self, judge, first: int, final: bool) -> dict:
        """The ``claims`` entry of frames.json (see the module docstring); ``records`` None when the
        scene declares no claims."""
        if judge is None:
            return dict(records=None, passed=None, final=final, judged_from=first, partial=False,
                        note=f"scene {self.scene.name} declares no claims")
        records = judge.results()
        partial = first > 0
        passed = None if partial or not final else all(r["status"] == "pass" for r in records)
        return dict(records=records, passed=passed, final=final, judged_from=first, partial=partial)

    def _make_frame(self, k: int, sim, renderer) -> tuple[dict, list, dict]:
        """Frame ``k``'s paths by format, the formats to write (missing, or all with ``force``) and, for
        those, a writer each (path -> None) holding the rendered image or particle arrays."""
        from polyalloy import __version__, export

        files = {fmt: export.frame_path(self.out_dir, k, fmt) for fmt in PER_FRAME if fmt in self.formats}
        todo = [fmt for fmt, p in files.items() if self.force or not p.exists()]
        made = {}
        if "png" in todo:
            image = renderer.render()
            made["png"] = lambda path: export.write_png_atomic(path, image)
        if {"ply", "npz"} & set(todo):
            record, t = particle_record(sim), sim.t
            comment = f"polyalloy {__version__} scene {self.scene.name} frame {k} time {t!r}"
            made["ply"] = lambda path: export.write_ply(path, record, comment)
            made["npz"] = lambda path: export.write_particles_npz(path, record, t)
        return files, todo, made

    def _step(self, sim, doc: dict, guard) -> list[float]:
        """Simulate the next frame with ``Simulation.step_frame_retrying``; the cfl of each retry, or
        [] when the first try held. When every retry blew up too, the manifest records the failure
        (frame, cfl tried, message) before the SimulationError goes on."""
        from polyalloy import export
        from polyalloy.errors import SimulationError

        try:
            return sim.step_frame_retrying()
        except SimulationError as exc:
            doc["failed"] = dict(frame=sim.frame + 1, time=sim.t, error=str(exc))
            with guard.hold():
                export.write_json_atomic(self._path(MANIFEST), doc)
            raise

    def _save_checkpoint(self, sim, mine: dict) -> None:
        from polyalloy import export

        state = sim.state_dict()
        meta = json.dumps(dict(format=CHECKPOINT_FORMAT, checksum=_checksum(state), identity=mine, frame=sim.frame,
                               t=sim.t))
        export.write_npz_atomic(self._path(CHECKPOINT), dict(state, meta=np.array(meta)))

    def _lock(self) -> None:
        """Hold ``LOCK`` in the output folder (an flock, so a killed run leaves nothing stuck), or
        refuse when another render holds it. A lock file unlinked by a finishing run is taken anew."""
        if self._lock_fd is not None:
            return
        path = self._path(LOCK)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip()
                os.close(fd)
                raise PolyalloyError(f"another polyalloy render{f' (pid {holder})' if holder.isdigit() else ''} is "
                                     f"writing into {self.out_dir}; wait for it to end or use another --out") from None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed this file as we took it: take the new one
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.remove(self._path(LOCK))
            os.close(self._lock_fd)
            self._lock_fd = None

    def _video(self, fmt: str, result: RenderResult) -> str:
        """Encode the MP4 or GIF from every PNG frame, unless it is on disk and no frame changed."""
        from polyalloy import export

        path = self._path(f"{self.scene.name}.{fmt}")
        if os.path.exists(path) and not result.written and not self.force:
            return path
        missing = [p for p in result.frames if not os.path.exists(p)]
        if missing:
            raise PolyalloyError(f"cannot make the {fmt.upper()}: {missing[0]} is missing; "
                                 f"render again with --force to redo every frame")
        writer = export.write_mp4 if fmt == "mp4" else export.write_gif
        writer(result.frames, path, self.scene.fps)
        result.written += 1
        return path


def _reason(exc: Exception) -> str:
    """An exception as a short phrase for a one-line message."""
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_manifest(manifest) -> None:
    """ValueError unless ``manifest`` has the shape ``RenderJob`` writes: an object with a scene name and a
    list of frame entries, each an object with a whole ``index`` >= 0."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("scene"), str):
        raise ValueError("no scene name")
    frames = manifest.get("frames")
    if not isinstance(frames, list):
        raise ValueError("no list of frames")
    for e in frames:
        if not (isinstance(e, dict) and type(e.get("index")) is int and e["index"] >= 0):
            raise ValueError(f"a frame entry without a whole index: {str(e)[:60]}")


def _checksum(state: dict) -> str:
    """SHA-256 of a state dict: every array's name, dtype, shape and bytes, by name."""
    h = hashlib.sha256()
    for key in sorted(state):
        a = np.ascontiguousarray(state[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _read_checkpoint(path: str) -> tuple[dict, dict]:
    """The state arrays and the meta of ``checkpoint.npz``; a ConfigError that says how to start over
    when it cannot be read, was written in another format or fails its checksum."""
    try:
        with np.load(path, allow_pickle=False) as data:
            state = {k: data[k] for k in data.files}
        meta = json.loads(str(state.pop("meta")))
        if not isinstance(meta, dict):
            raise ValueError("its meta is not a JSON object")
    except Exception as exc:  # a truncated or foreign file fails in many ways (zip, zlib, npy, JSON)
        raise ConfigError(f"{path} is unreadable ({_reason(exc)}); {RESTART}") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path} is in checkpoint format {meta.get('format')!r}, this polyalloy reads format "
                          f"{CHECKPOINT_FORMAT}; {RESTART}")
    if meta.get("checksum") != _checksum(state):
        raise ConfigError(f"{path} is damaged: its checksum does not match its contents; {RESTART}")
    return state, meta


def render_scene(scene: Scene, out_dir: str, frames: int, size: tuple[int, int],
                 formats=("png", "mp4"), progress: bool = True, **options) -> RenderResult:
    """Simulate ``frames`` frames of ``scene`` and write them to ``out_dir`` (see ``RenderJob``
    for ``options``: quality, source, params, resume, force, checkpoint_every)."""
    return RenderJob(scene, out_dir, frames, size, tuple(formats), progress=progress, **options).run()
