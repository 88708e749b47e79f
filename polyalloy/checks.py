"""``polyalloy check``: run a scene without rendering and judge the claims its script declares.

The scene runs frame by frame for its duration (or ``seconds``); the claims (``polyalloy.claims``)
are observed at frame 0 and after every frame, and the ``end`` claims on the last one. The record
says, per claim, what was measured, when, against which threshold, and whether it held.
"""
from __future__ import annotations

import time

from polyalloy.claims import Judge
from polyalloy.errors import ConfigError
from polyalloy.scene import Scene


def scene_claims(scene: Scene) -> list | None:
    """The scene's claims, made fresh (a claim's measure may keep state over one run); None when
    the scene declares none."""
    if scene.claims is None:
        return None
    try:
        claims = scene.claims(scene)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"scene {scene.name!r}: claims() failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(claims, (list, tuple)):
        raise ConfigError(f"scene {scene.name!r}: claims() must return a list of Claim, got {type(claims).__name__}")
    return list(claims)


def run_check(scene: Scene, seconds: float | None = None, progress: bool = True) -> dict:
    """Simulate ``scene`` for ``seconds`` (default: its duration) and judge its claims. Returns the
    record: scene, quality, dim, passed, claims (``Judge.results``), frames, particles, substeps,
    wall_seconds; ``claims`` None (and passed None) when the scene declares none, without running."""
    from polyalloy.jobs import Progress
    from polyalloy.simulation import Simulation

    record = dict(scene=scene.name, quality=scene.quality, dim=scene.dim)
    claims = scene_claims(scene)
    if claims is None:
        return dict(record, passed=None, claims=None, frames=0, particles=0, substeps=0, wall_seconds=0.0)
    judge = Judge(claims)
    frames = scene.duration_frames(seconds)
    start = time.perf_counter()
    with Simulation(scene) as sim:
        judge.observe(sim)
        bar = Progress(frames, scene.name, progress, verb="check")
        try:
            for k in range(frames):
                t0 = time.perf_counter()
                sim.step_frame()
                judge.observe(sim)
                bar.update(k, sim.t, time.perf_counter() - t0, None)
        finally:
            bar.close()
        judge.finish(sim)
        record.update(particles=sim.n_particles, substeps=sim.substeps)
    results = judge.results()
    return dict(record, passed=all(r["status"] == "pass" for r in results), claims=results, frames=frames,
                wall_seconds=round(time.perf_counter() - start, 2))
