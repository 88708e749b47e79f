"""Claims: what a scene promises about its physics, measured while it runs.

A scene script declares its claims next to ``build``: a module-level function
``claims(scene) -> list[Claim]`` (``scene`` is the built Scene, after ``--set``, so a claim can
scale its counts with ``scene.quality`` or ``scene.dim``). ``polyalloy check SCENE`` runs the
scene frame by frame without rendering and evaluates every claim at every output frame it
concerns; ``polyalloy render SCENE --check`` does the same while rendering and writes the results
into ``frames.json``. One mechanism for every scene, a user's own file included.

A ``Claim`` compares one measured number (a function of the running ``Simulation``, usually one
of ``polyalloy.metrics``) against a threshold, at one of four kinds of moment:

- ``when="end"``: at the last frame of the run;
- ``when=t`` (a number, s): at the first frame at or after ``t``;
- ``when="always"``: at every frame in ``[start, until]``; the worst value is reported;
- ``when="ever"``: at some frame in ``[start, until]``; the time it first held is reported.

A measure may keep state across frames (an initial mass to compare with, the first time the feet
froze): if it has an ``observe(sim)`` method, that is called at every frame of the run, frame 0
included, before any claim is evaluated at that frame. ``FirstTime`` is such a measure.

A frame's measures run inside the simulation's ``reading`` scope: the particles are read from the
device once for all of them, and a value a measure shares through ``Simulation.read_once`` (the
fragment labels of ``metrics.fragment_labels``) is computed once; their arrays are read-only
there, so a measure copies before it changes one.
"""
from __future__ import annotations

import contextlib
import math
import operator
from dataclasses import dataclass
from typing import Callable, Union

from polyalloy.errors import ConfigError

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
WHENS = ("end", "always", "ever")
TIME_EPS = 1e-9  # s: a frame "at" t may sit this far below t (frame times are k / fps in floats)


@dataclass
class Claim:
    """``measure(sim)`` ``op`` ``threshold`` at the moment(s) ``when`` (see the module docstring).

    ``name``: a short identifier (``past_bars``); ``text``: the claim in words, one line;
    ``start``/``until`` (s): the window of an ``always`` or ``ever`` claim (``until`` None: the end
    of the run); ``unit``: printed after the values.
    """

    name: str
    text: str
    measure: Callable
    op: str
    threshold: float
    when: Union[str, float] = "end"
    start: float = 0.0
    until: Union[float, None] = None
    unit: str = ""

    def __post_init__(self):
        if self.op not in OPS:
            raise ConfigError(f"claim {self.name!r}: op must be one of {', '.join(OPS)}, got {self.op!r}")
        if not callable(self.measure):
            raise ConfigError(f"claim {self.name!r}: measure must be callable (sim -> number)")
        if isinstance(self.when, str):
            if self.when not in WHENS:
                raise ConfigError(f"claim {self.name!r}: when must be a time (s) or one of {', '.join(WHENS)}, "
                                  f"got {self.when!r}")
        elif not (isinstance(self.when, (int, float)) and math.isfinite(self.when) and self.when >= 0):
            raise ConfigError(f"claim {self.name!r}: when must be a time >= 0 s, got {self.when!r}")
        if not (isinstance(self.threshold, (int, float)) and not isinstance(self.threshold, bool)):
            raise ConfigError(f"claim {self.name!r}: threshold must be a number, got {self.threshold!r}")

    def holds(self, value: float) -> bool:
        return bool(OPS[self.op](value, self.threshold))

    def moment(self) -> str:
        """When the claim is evaluated, in words: ``end``, ``t=1.20s``, ``every frame 0.5-3s``, ..."""
        if not isinstance(self.when, str):
            return f"t={self.when:g}s"
        if self.when == "end":
            return "end"
        window = "" if self.start == 0 and self.until is None else \
            f" {self.start:g}-{'end' if self.until is None else f'{self.until:g}s'}"
        return ("every frame" if self.when == "always" else "some frame") + window


class FirstTime:
    """A stateful measure: the first simulated time (s) at which ``condition(sim)`` was true, or
    inf while it has not been. Use it in an ``end`` claim (``<= 2.0``: it happened by 2 s), or
    compare two of them with ``Before``."""

    def __init__(self, condition: Callable):
        self.condition = condition
        self.time = math.inf

    def observe(self, sim) -> None:
        if self.time == math.inf and self.condition(sim):
            self.time = float(sim.t)

    def __call__(self, sim=None) -> float:
        return self.time


class Before:
    """A stateful measure: ``second``'s first time minus ``first``'s (two ``FirstTime``), in s; a
    claim ``> 0`` says ``first`` happened strictly earlier. Observing it observes both."""

    def __init__(self, first: FirstTime, second: FirstTime):
        self.first, self.second = first, second

    def observe(self, sim) -> None:
        self.first.observe(sim)
        self.second.observe(sim)

    def __call__(self, sim=None) -> float:
        a, b = self.first.time, self.second.time
        if a == math.inf:
            return -math.inf  # the first never happened: the claim fails
        return b - a  # inf when only the first happened


class RelativeChange:
    """A stateful measure: ``|measure(sim) - measure(sim at frame 0)| / |measure(sim at frame 0)|``,
    e.g. ``RelativeChange(lambda sim: sim.total_mass())`` in an ``always`` claim ``== 0``: the
    mass is conserved exactly."""

    def __init__(self, measure: Callable):
        self.measure = measure
        self.initial = None

    def observe(self, sim) -> None:
        if self.initial is None:
            self.initial = float(self.measure(sim))

    def __call__(self, sim) -> float:
        return abs(float(self.measure(sim)) - self.initial) / abs(self.initial)


class Judge:
    """Evaluates a list of claims over one run: call ``observe(sim)`` at every output frame (frame 0
    included) and ``finish(sim)`` after the last; ``results()`` gives one record per claim."""

    def __init__(self, claims: list):
        for c in claims:
            if not isinstance(c, Claim):
                raise ConfigError(f"claims() must return Claim objects, got {type(c).__name__}")
        names = [c.name for c in claims]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"claim names must be unique; repeated: {', '.join(dup)}")
        self.claims = list(claims)
        self.state = [dict(value=None, time=None, met=None, frames=0, ok=None, best=None) for _ in claims]
        self.frames = 0
        self.last_time = None

    def observe(self, sim) -> None:
        with _reading(sim):
            self._observe(sim)

    def _observe(self, sim) -> None:
        t = float(sim.t)
        seen = set()
        for c in self.claims:
            if hasattr(c.measure, "observe") and id(c.measure) not in seen:
                seen.add(id(c.measure))
                c.measure.observe(sim)
        for c, s in zip(self.claims, self.state):
            if isinstance(c.when, str):
                if c.when in ("always", "ever") and t >= c.start - TIME_EPS and \
                        (c.until is None or t <= c.until + TIME_EPS):
                    self._window(c, s, float(c.measure(sim)), t)
            elif s["frames"] == 0 and t >= c.when - TIME_EPS:
                self._record(c, s, float(c.measure(sim)), t)
        self.frames += 1
        self.last_time = t

    def finish(self, sim) -> None:
        """Evaluate the ``end`` claims on the last frame (``sim`` as it is now)."""
        with _reading(sim):
            for c, s in zip(self.claims, self.state):
                if c.when == "end":
                    self._record(c, s, float(c.measure(sim)), float(sim.t))

    @staticmethod
    def _record(c: Claim, s: dict, value: float, t: float) -> None:
        ok = c.holds(value)
        s.update(value=value, time=t, met=t if ok else None, frames=1, ok=ok)

    @staticmethod
    def _window(c: Claim, s: dict, value: float, t: float) -> None:
        ok = c.holds(value)
        s["frames"] += 1
        if c.when == "always":
            # report the worst frame: the first that fails, else the one closest to failing
            worse = s["value"] is None or (s["ok"] and (not ok or _margin(c, value) < _margin(c, s["value"])))
            if worse:
                s.update(value=value, time=t)
            s["ok"] = ok if s["ok"] is None else (s["ok"] and ok)
            if s["ok"] and s["met"] is None:
                s["met"] = t
        else:
            if s["best"] is None or _margin(c, value) > _margin(c, s["best"]):
                s["best"] = value  # the margin it reached, even after it first held
            if ok and s["met"] is None:
                s.update(value=value, time=t, met=t, ok=True)
            elif s["met"] is None and (s["value"] is None or _margin(c, value) > _margin(c, s["value"])):
                s.update(value=value, time=t, ok=False)

    def results(self) -> list[dict]:
        """One record per claim: name, text, when (in words), op, threshold, unit, value (the
        deciding measurement; None if never evaluated), time (s, when it was taken), met (the time
        it first held, or None), frames (how many frames evaluated it), best (an ``ever`` claim: its
        best value in the window, which shows the margin that the first value that held does not;
        None for the others), status (pass, FAIL or ``not reached``: the run ended before the
        claim's moment)."""
        out = []
        for c, s in zip(self.claims, self.state):
            status = "not reached" if s["frames"] == 0 else ("pass" if s["ok"] else "FAIL")
            if c.when == "always" and s["frames"] and c.until is not None and \
                    (self.last_time is None or self.last_time < c.until - TIME_EPS):
                status = "not reached" if s["ok"] else "FAIL"  # the window was cut short
            out.append(dict(name=c.name, text=c.text, when=c.moment(), op=c.op, threshold=c.threshold,
                            unit=c.unit, value=_plain(s["value"]), time=s["time"], met=s["met"],
                            frames=s["frames"], best=_plain(s["best"]), status=status))
        return out

    def passed(self) -> bool:
        return all(r["status"] == "pass" for r in self.results())


def _reading(sim):
    """``sim.reading()``, or nothing to enter for an object without it (a test's stand-in)."""
    reading = getattr(sim, "reading", None)
    return reading() if reading is not None else contextlib.nullcontext()


def _margin(c: Claim, value: float) -> float:
    """How far ``value`` is on the good side of the threshold (negative: on the bad side)."""
    if c.op in (">=", ">"):
        return value - c.threshold
    if c.op in ("<=", "<"):
        return c.threshold - value
    return -abs(value - c.threshold)


def _plain(value):
    """A JSON-safe number: inf and nan become strings."""
    if value is None or math.isfinite(value):
        return value
    return str(value)


def format_table(results: list[dict]) -> str:
    """The claims of one run as an aligned text table."""
    rows = [("claim", "when", "measured", "at", "threshold", "status")]
    for r in results:
        v = r["value"]
        measured = "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
        at = "-" if r["time"] is None else f"{r['time']:.2f}s"
        rows.append((r["name"], r["when"], f"{measured}{r['unit'] and ' ' + r['unit']}", at,
                     f"{r['op']} {r['threshold']:g}", r["status"]))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class RelativeTo:
    """A stateful measure: ``measure(sim)`` divided by its value at the first frame at or after
    ``start`` (s), so a claim ``< 0.5`` with ``when="ever"`` says it fell below half of what it
    was then. Before ``start`` it is 1; a zero start value gives inf (nothing to fall from)."""

    def __init__(self, measure: Callable, start: float):
        self.measure, self.start = measure, start
        self.initial = None

    def observe(self, sim) -> None:
        if self.initial is None and float(sim.t) >= self.start - TIME_EPS:
            self.initial = float(self.measure(sim))

    def __call__(self, sim) -> float:
        if self.initial is None:
            return 1.0
        if self.initial <= 0:
            return math.inf
        return float(self.measure(sim)) / self.initial
