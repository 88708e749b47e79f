"""Taichi's CPU workers pinned one to a core (``polyalloy.affinity``): found and pinned on a
machine with the cores for them, left alone when asked or when there is one thread, and the
motion the same bits pinned or not."""
import json
import os
import subprocess
import sys

import pytest

# a fresh process: the runtime's choice, and each Taichi thread's cores
REPORT = """
import json, os
import polyalloy
info = polyalloy.init(arch="cpu")
cores = [os.sched_getaffinity(int(t)) for t in os.listdir("/proc/self/task")]
single = sorted(next(iter(c)) for c in cores if len(c) == 1)
print(json.dumps({"threads": info.threads, "cores": list(info.cores), "single": single}))
"""


def report(**env):
    out = subprocess.run([sys.executable, "-c", REPORT], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, ENABLE_TAICHI_HEADER_PRINT="0", **env))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


needs_two_cores = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2 or not os.path.isdir("/proc/self/task"),
    reason="pinning needs Linux and two cores this process may use")


@needs_two_cores
def test_each_worker_is_pinned_to_a_core_of_its_own():
    """As many threads as cores (a lone command's default): the runtime finds Taichi's workers and
    pins each to a core of its own; exactly that many threads of the process are on one core each
    (the launching thread and Taichi's compile threads keep every core)."""
    cores = sorted(os.sched_getaffinity(0))
    got = report(POLYALLOY_THREADS=str(len(cores)), POLYALLOY_PIN_THREADS="1")
    assert got["threads"] == len(cores)
    assert got["cores"] == cores
    assert got["single"] == cores


@needs_two_cores
@pytest.mark.parametrize("env", [dict(POLYALLOY_THREADS="2", POLYALLOY_PIN_THREADS="0"), dict(POLYALLOY_THREADS="1")])
def test_workers_stay_unpinned_when_asked_or_alone(env):
    got = report(**env)
    assert got["cores"] == [] and got["single"] == []


def test_workers_fewer_than_the_cores_are_left_to_the_scheduler(monkeypatch):
    """A sweep's job on 8 threads of a 16-core machine: pinning would put every job's workers on
    cores 0-7, so nothing is pinned (and the workers are not even looked for)."""
    from polyalloy import affinity

    monkeypatch.setattr(affinity.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr(affinity, "pool_workers", lambda *a: pytest.fail("looked for the workers"))
    assert affinity.pin_pool({1, 2, 3}, 8) == ()
    monkeypatch.setattr(affinity.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(affinity, "pool_workers", lambda started, threads: [])
    assert affinity.pin_pool({1, 2, 3}, 8) == ()  # as many as the cores, but the workers not found
