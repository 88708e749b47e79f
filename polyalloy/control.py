"""The mimetic controller on the host: home points, their assignment, poses and healing.

``Controller`` is built by ``Simulation`` when a body has a ``template``. It

1. samples every controlled body's template at the particle spacing into *slots* (home
   points in the template's rest coordinates, each with the part it lies in; a point inside
   several parts, e.g. the overlapping legs of a 2D side view, picks one of them at random),
   resized to the body's particle count (a random subset, or repeats with a small jitter);
2. matches particles to slots with ``transport_match``: recursive bisection, an
   approximation of the optimal transport (least total squared distance) assignment. Both
   point sets are split at the same rank along the longest axis of their common box, so the
   two halves of the particles go to the two halves of the slots, and so on down to leaves
   of ``LEAF`` points that are matched exactly (Hungarian method). The map is monotone at
   every scale: neighbours get neighbouring homes and no flow crosses the body. O(n log n);
3. uploads, per part, the affine map rest -> posed world at the current time (and its time
   derivative) from the body's walk (``polyalloy.body``).
   A body that ``follow``s has no walk: its template's root rides on the body's centre of
   mass (measured every substep, moved on at the measured velocity in between), so the
   controller holds the shape relative to the body and never drags it back to a place;
4. with several ``earlier`` shapes, gives every particle the home in the one the glitch's
   current pulse goes to: pulse k (k = floor(glitch_rate t + 1/4)) goes to shape k mod n;
   the switch falls in the quiet half of an in-step pulse, so with ``glitch_spread`` below
   1/4 no part changes target while it is away. A following body's earlier shapes are
   moved at rest so that their centroids sit on the template's (see ``_assign_initial``);
5. standing (a body that ``stands``): at every healing check (below), before it, asks whether
   what the controller holds still stands on something: the body's particles are linked into
   pieces as ``polyalloy.metrics.fragments`` links them (within 1.5 particle spacings, rubble
   apart), a piece rests when one of its particles lies within ``FOOTING`` cells of a collider
   or of the domain's floor, and the body has lost its footing when less than half of its
   gripped mass lies in resting pieces and less than half of his legs (the particles homed in
   the lower half of the template) is gripped: his frozen legs snapped off under him, and what
   the controller holds is the torso, in the air. Any collider counts: a body whose frozen arm
   is stuck to an overhead line still stands (and the controller still carries it) until the
   arm snaps. (A body is asked only once it has stood on its legs, from the start or again
   after it froze through: the reform after a thaw, whose pieces the pull lifts before their
   legs are gripped, is left as it was.) From then on the body is *adrift*: its pose stops
   where it was (the walk goes no further) and rides on the gripped part's centre of mass,
   measured with the centroid of its homes, both with the grips of the moment, before the
   pose of every substep that carries the heat step goes up (the pull acts on those) and at
   every healing check, and moved on at its velocity, less the sag that balances the weight
   support (``hold`` g / (gain omega^2) down: the pull's mean error then cancels ``hold_up``,
   kernels.control; the pull's implicit damping, a few per cent at the beats' heat steps, is
   left out), so the controller keeps his shape and no longer holds his weight: he falls.
   The shape is held upright as posed, so a torso that lands on its stump rocks on it
   (tests/test_control.py). It ends when next to nothing is gripped any more (under
   ``HELD_LEAST`` of the body's mass: frozen through, or molten), not when legs thaw under a
   body that lies adrift. Without ``stands`` (the default) a body is held up wherever it is:
   the controller carries ``hold`` of its gripped weight;
6. every ``reassign_every`` seconds, heals: gripped particles farther than
   ``reassign_distance`` template heights from home are "far". The slots of the near ones
   are kept; the far ones are matched (``transport_match``) to a random choice of the
   remaining free slots. So scattered fragments and the mass blown out of a hole go to
   wherever the body is missing material, the body reforms from whatever mass is left, and
   no particle is dragged across the body after a home it can no longer reach.
"""
from __future__ import annotations

import numpy as np

from polyalloy.body import _transform_row
from polyalloy.kernels import control as kc
from polyalloy.kernels import fieldio
from polyalloy.kernels.sdf import evaluate_sdf

LEAF = 48  # points per leaf of the recursive bisection, matched exactly
FOOTING = 2.0  # cells from a collider or the domain's floor within which a piece of a standing body rests
HELD_LEAST = 0.1  # gripped share of a standing body's mass under which it is no longer adrift


def transport_match(a: np.ndarray, b: np.ndarray, leaf: int = LEAF) -> np.ndarray:
    """A permutation ``perm`` pairing point ``a[i]`` with ``b[perm[i]]`` (equal counts) that
    approximately minimises the total squared distance (see the module docstring)."""
    from scipy.optimize import linear_sum_assignment

    n = len(a)
    if len(b) != n:
        raise ValueError(f"transport_match needs equal counts, got {n} and {len(b)}")
    out = np.empty(n, np.int64)
    stack = [(np.arange(n), np.arange(n))]
    while stack:
        ia, ib = stack.pop()
        if len(ia) <= leaf:
            cost = ((a[ia][:, None, :] - b[ib][None, :, :]) ** 2).sum(-1)
            r, c = linear_sum_assignment(cost)
            out[ia[r]] = ib[c]
            continue
        both = np.concatenate([a[ia], b[ib]])
        axis = int(np.argmax(both.max(0) - both.min(0)))
        k = len(ia) // 2
        sa = ia[np.argpartition(a[ia, axis], k)]
        sb = ib[np.argpartition(b[ib, axis], k)]
        stack.append((sa[:k], sb[:k]))
        stack.append((sa[k:], sb[k:]))
    return out


def sample_template(template, dim: int, spacing: float, lo=None, hi=None) -> np.ndarray:
    """The points of a regular lattice of ``spacing`` (m) that lie inside ``template`` at rest
    (and inside the box ``lo``..``hi`` when given), evaluated on the device; so
    ``len(points) * spacing**dim`` is the template's volume as the simulation sees it (the
    volume a body must hold to fill it)."""
    from polyalloy import pool, runtime

    rows = template.part_rows(dim)
    blo, bhi = template.bounds(dim)
    if lo is not None:
        blo, bhi = np.maximum(blo, lo), np.minimum(bhi, hi)
    counts = np.maximum(np.ceil((bhi - blo) / spacing).astype(np.int64), 1)
    axes = [blo[k] + (np.arange(counts[k]) + 0.5) * spacing for k in range(dim)]
    np_real = runtime.np_real()
    pts = np.ascontiguousarray(np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim), np_real)
    dist = np.empty(len(pts), dtype=np_real)
    table = pool.acquire_table(dim, len(rows))
    try:
        table.upload(rows)
        evaluate_sdf(table, -1, pts, dist, 0.0)
    finally:
        pool.release_table(table)
    return pts[dist < 0].astype(np.float64)


def _resize(points: np.ndarray, parts: np.ndarray, n: int, spacing: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` slots from the sampled ones: a random subset, or all of them plus random repeats
    moved by a quarter spacing (the body then holds more mass than the template's volume)."""
    m = len(points)
    if n <= m:
        keep = np.sort(rng.choice(m, n, replace=False))
        return points[keep], parts[keep]
    extra = rng.choice(m, n - m, replace=True)
    jitter = rng.uniform(-0.25, 0.25, (n - m, points.shape[1])) * spacing
    return np.concatenate([points, points[extra] + jitter]), np.concatenate([parts, parts[extra]])


class Controller:
    """Home points and poses of the controlled bodies of one Simulation (see the module docstring)."""

    def __init__(self, sim, samples):
        import taichi as ti

        self.sim = sim
        sc, d = sim.scene, sim.dim
        self.bodies = [i for i, b in enumerate(sc.bodies) if b.template is not None]
        self.part_offset, rows, body_rows = {}, [], []
        offset = 0
        for i in self.bodies:
            tpl = sc.bodies[i].template
            self.part_offset[i] = offset
            for r in tpl.part_rows(d):
                rows.append(dict(r, owner=offset + r["owner"]))
                body_rows.append(dict(r, owner=i))
            offset += len(tpl.part_names())
        self.n_parts = offset
        self.table = sim.control_table
        self.part_shapes = sim.kit.part_shapes  # owner: global part index
        self.body_shapes = sim.kit.template_shapes  # owner: body index, posed on demand
        self.part_shapes.upload(rows)
        self.body_shapes.upload(body_rows)
        self._shapes_time = None

        starts = np.cumsum([0] + [len(s[0]) for s in samples[: len(sc.bodies)]])
        self.ranges = {i: (int(starts[i]), int(starts[i + 1])) for i in range(len(sc.bodies))}
        self.spacing = sc.dx / sc.particles_per_cell
        self.slots = {}  # body -> (home (N, d) rest coords, part (N,) global, alts (n earlier, N, d))
        self.slot_of = {}  # body -> slot index of each of its particles
        self.earlier_shift = {}  # body -> per earlier shape, how far it is moved at rest (m)
        for i in self.bodies:
            self._assign_initial(i, samples[i][0])
        self.next_check = sc.control.reassign_every
        self.reassigned = 0  # particles given a new home so far
        self.following = [i for i in self.bodies if sc.bodies[i].follow]
        self.standing = [i for i in self.bodies if sc.bodies[i].stands]
        # a standing body that lost its footing: the time its pose stopped at, the gripped part's
        # centre of mass and velocity at the last measurement (and its time), the gripped homes'
        # centroid at that pose (Controller.pose)
        self.adrift = {}
        self.stood = {i: False for i in self.standing}  # has stood on his legs since he last froze through
        self.mid_height = {}  # rest y (m) under which a home is in the legs: half the template's height
        for i in self.standing:
            y = self.slots[i][0][:, 1]
            self.mid_height[i] = 0.5 * (y.min() + y.max())
        self._walks = any(sc.bodies[i].walk is not None for i in self.bodies) or bool(self.following)
        self.pose_due = None  # a time whose pose the table should hold and does not yet (upload_pose)
        # a following body: its rest home centroid, and per body (time, centre of mass, velocity)
        self.rest_centre = {i: self.slots[i][0].mean(axis=0) for i in self.following}
        self.track = np.zeros((len(self.following), 1 + 2 * d))
        self.cycle = np.zeros(len(self.bodies), np.int64)  # the earlier shape each body's glitch goes to
        self.track_bodies(0.0)
        earlier_rows = []
        self.earlier_index = {}  # (body, k) -> owner in earlier_shapes
        for i in self.bodies:
            for k, e in enumerate(sc.bodies[i].earlier_shapes()):
                self.earlier_index[i, k] = len(self.earlier_index)
                shift = self.earlier_shift[i][k]
                earlier_rows += [dict(r, owner=self.earlier_index[i, k], centre=np.asarray(r["centre"], float) + shift)
                                 for r in e.part_rows(d)]
        self.earlier_rest = earlier_rows
        self.earlier_table = sim.kit.earlier_shapes  # posed on demand
        self._earlier_time = None

    # --- set-up ---------------------------------------------------------------------------
    def _sample_parts(self, i: int, template, index_offset: int, table=None, fill: int = 0):
        """Points of ``template`` (rest) at the particle spacing and the (global) part of each."""
        sim, d = self.sim, self.sim.dim
        lo, hi = template.bounds(d)
        lo, hi = np.maximum(lo, sim.domain_lo), np.minimum(hi, sim.domain_hi)
        counts = np.ceil((hi - lo) / self.spacing).astype(np.int64)
        rng = np.random.default_rng([sim.scene.seed, 1000 + i, fill])
        axes = [lo[k] + (np.arange(counts[k]) + 0.5) * self.spacing for k in range(d)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
        pts += rng.uniform(-0.25, 0.25, pts.shape) * self.spacing
        return self._parts_of(pts, template, index_offset, table, rng)

    def _parts_of(self, pts, template, index_offset, table, rng):
        """Keep the points inside ``template`` and pick a part for each (at random among the
        parts that contain it)."""
        sim = self.sim
        table = table or self.part_shapes
        n_parts = len(template.part_names())
        pts = np.ascontiguousarray(pts, dtype=sim.np_real)
        inside = np.zeros((n_parts, len(pts)), bool)
        dist = np.empty(len(pts), dtype=sim.np_real)
        for k in range(n_parts):
            evaluate_sdf(table, index_offset + k, pts, dist, 0.0)
            inside[k] = dist < 0
        keep = inside.any(axis=0)
        inside = inside[:, keep]
        score = rng.random(inside.shape) * inside
        return pts[keep].astype(np.float64), index_offset + np.argmax(score, axis=0)

    def _assign_initial(self, i: int, x: np.ndarray) -> None:
        sim, body = self.sim, self.sim.scene.bodies[i]
        rng = np.random.default_rng([sim.scene.seed, 2000 + i])
        off = self.part_offset[i]
        if body.shape is body.template:
            home, part = self._parts_of(x, body.template, off, None, rng)
            if len(home) != len(x):  # a particle on the very surface may test as outside every part
                home, part = self._nearest_part(x, off, body.template)
        else:
            pts, parts = self._sample_parts(i, body.template, off)
            pts, parts = _resize(pts, parts, len(x), self.spacing, rng)
            perm = transport_match(x, pts)
            home, part = pts[perm], parts[perm]
        alts = [home.copy()]
        self.earlier_shift[i] = []
        if body.earlier is not None:
            alts = []
            for earlier in body.earlier_shapes():
                alt_pts = self._earlier_points(i, earlier, len(x), rng)
                # a following template rides on the centre of mass: an earlier shape whose own
                # centre sat elsewhere would drag the body after it for ever, so centre it there
                shift = home.mean(axis=0) - alt_pts.mean(axis=0) if body.follow else np.zeros(home.shape[1])
                self.earlier_shift[i].append(shift)
                alt_pts = alt_pts + shift
                alts.append(alt_pts[transport_match(home, alt_pts)])
        self.slots[i] = (home, part, np.array(alts))
        self.slot_of[i] = np.arange(len(x))

    def _nearest_part(self, x, off, template):
        """Every point with the part whose surface is nearest (for points on the boundary)."""
        sim = self.sim
        pts = np.ascontiguousarray(x, dtype=sim.np_real)
        n_parts = len(template.part_names())
        dist = np.empty((n_parts, len(pts)), dtype=sim.np_real)
        for k in range(n_parts):
            evaluate_sdf(self.part_shapes, off + k, pts, dist[k], 0.0)
        return x.astype(np.float64), off + np.argmin(dist, axis=0)

    def _earlier_points(self, i: int, earlier, n: int, rng) -> np.ndarray:
        """``n`` points of the earlier shape, placed like the template at rest."""
        sim = self.sim
        pts = sample_template(earlier, sim.dim, self.spacing, sim.domain_lo, sim.domain_hi)
        if len(pts) == 0:
            from polyalloy.errors import ConfigError

            raise ConfigError(f"body {sim.scene.bodies[i].name!r}: its earlier shape holds no points "
                              f"inside the domain")
        pts, _ = _resize(pts, np.zeros(len(pts), np.int64), n, self.spacing, rng)
        return pts

    # --- device state ---------------------------------------------------------------------
    def upload_particles(self) -> None:
        """Write ``part``, ``home`` and ``home_alt`` of every particle (-1 / 0 when uncontrolled)."""
        sim = self.sim
        pf, cap, d = sim.particles_fields, sim.particles_fields.capacity, sim.dim
        part = np.full(cap, -1, np.int32)
        home = np.zeros((cap, d))
        alt = np.zeros((cap, d))
        for j, i in enumerate(self.bodies):
            s, e = self.ranges[i]
            h, k, a = self.slots[i]
            idx = self.slot_of[i]
            home[s:e], part[s:e], alt[s:e] = h[idx], k[idx], a[self.cycle[j] % len(a)][idx]
        fieldio.group(pf, ("part", "home", "home_alt")).write(dict(part=part, home=home, home_alt=alt))

    def pose(self, i: int, t: float):
        """Body ``i``'s template pose at time ``t``: its walk's, or riding on its centre of mass
        when it follows the body (extrapolated from the last measurement at its velocity)."""
        sim, d = self.sim, self.sim.dim
        body = sim.scene.bodies[i]
        if i in self.adrift:  # lost its footing: the shape rides on what is gripped, and falls with it
            a = self.adrift[i]
            pose = body.template.pose_at(a["pose_t"], d, body.walk)
            shift = a["com"] + a["vel"] * (t - a["t0"]) + self._sag() - a["centre"]
            pose.position = tuple(np.asarray(pose.position, float)[:d] + shift)
            return pose
        pose = body.template.pose_at(t, d, body.walk)
        if body.follow:
            row = self.track[self.following.index(i)]
            t0, com, vel = row[0], row[1:1 + d], row[1 + d:]
            base = np.asarray(pose.position, float)[:d]
            pose.position = tuple(base + com + vel * (t - t0) - self.rest_centre[i])
        return pose

    def track_bodies(self, t: float) -> None:
        """Measure the centre of mass and velocity of every following body (now, at ``t`` s)."""
        sim, d = self.sim, self.sim.dim
        for j, i in enumerate(self.following):
            out = np.zeros(1 + 2 * d)
            kc.body_moments(sim.particles_fields, sim.materials, sim.knobs, i, out, False)
            m = max(out[0], 1e-30)
            self.track[j] = np.concatenate([[t], out[1:] / m])

    @property
    def moving(self) -> bool:
        """Whether the pose changes from substep to substep: a body walks or follows its centre of
        mass, or one is adrift (or has just come back: a pose waits, ``pose_due``)."""
        return self._walks or bool(self.adrift) or self.pose_due is not None

    # --- standing (module docstring, 5) -----------------------------------------------------
    def _sag(self) -> np.ndarray:
        """How far (m) below the gripped part's centre of mass an adrift body's homes sit: the
        pull's mean error that cancels the weight support (``kernels.control.hold_up``)."""
        c, d = self.sim.scene.control, self.sim.dim
        sag = np.zeros(d)
        if c.gain > 0:  # along gravity (y), so below the centre when gravity points down
            sag[1] = c.hold * self.sim.scene.gravity / (c.gain * (2 * np.pi * c.frequency) ** 2)
        return sag

    def _gripped_centre(self, i: int, grip: np.ndarray, pose_t: float) -> np.ndarray:
        """Grip-weighted centroid (m) of body ``i``'s homes posed at its walk's pose at ``pose_t``."""
        sim, d = self.sim, self.sim.dim
        body = sim.scene.bodies[i]
        A, b = body.template.transforms(body.template.pose_at(pose_t, d, body.walk), d)
        hk, pk, _ = self.slots[i]
        idx = self.slot_of[i]
        k = pk[idx] - self.part_offset[i]
        posed = np.einsum("nij,nj->ni", A[k], hk[idx]) + b[k]
        return (posed * grip[:, None]).sum(axis=0) / max(grip.sum(), 1e-30)

    def track_adrift(self, t: float, grip: np.ndarray | None = None) -> None:
        """Measure, for every adrift body, the gripped part's centre of mass and velocity and the
        centroid of its homes (at the stopped pose) with the same grips, now, at ``t``: before
        the pose of a substep that carries the heat step goes up (the pull acts on those alone),
        so that a save, which uploads a waiting pose, measures nothing. (With a centroid of
        older grips, a torso freezing from below would be pulled up by the difference.) ``grip``:
        every particle's grip read now, if the caller has it."""
        if not self.adrift:
            return
        sim, d = self.sim, self.sim.dim
        if grip is None:
            grip = np.zeros(sim.n_particles, sim.np_real)
            kc.grips(sim.particles_fields, sim.materials, sim.knobs, grip)
        for i, a in self.adrift.items():
            out = np.zeros(1 + 2 * d)
            kc.body_moments(sim.particles_fields, sim.materials, sim.knobs, i, out, True)
            s, e = self.ranges[i]
            w = a["mass"] * grip[s:e]
            if out[0] > 0 and w.sum() > 0:
                a.update(t0=t, com=out[1:1 + d] / out[0], vel=out[1 + d:] / out[0],
                         centre=self._gripped_centre(i, w, a["pose_t"]))

    def check_support(self, t: float, grip: np.ndarray, state: dict) -> list:
        """Standing bodies that lost their footing at ``t`` (module docstring, 5), from ``grip`` and
        ``state`` (``Simulation.particles``, retired included) read now; the ones frozen or
        molten through are no longer adrift. Returns the bodies that went adrift now."""
        from polyalloy.metrics import link_labels

        if not self.standing:
            return []
        sim, d = self.sim, self.sim.dim
        went = []
        for i in self.standing:
            s, e = self.ranges[i]
            live = state["alive"][s:e].astype(bool)
            m = state["mass"][s:e].astype(np.float64) * live
            g = grip[s:e].astype(np.float64) * live
            held = (m * g).sum()
            if m.sum() <= 0 or held < HELD_LEAST * m.sum():
                if self.adrift.pop(i, None) is not None and not self.sim.scene.bodies[i].walk:
                    self.pose_due = t  # its pose goes back to where it stands (upload_pose)
                self.stood[i] = False
                continue
            if i in self.adrift:
                self.adrift[i]["mass"] = m
                continue
            hk = self.slots[i][0][self.slot_of[i]]
            lower = hk[:, 1] < self.mid_height[i]  # homed in his legs
            legs = (m * g)[lower].sum() / max(m[lower].sum(), 1e-30) >= 0.5
            if legs == self.stood[i]:  # standing on them, or not yet stood: nothing to ask
                continue
            x = state["x"][s:e][live].astype(np.float64)
            labels = link_labels(x, state["damage"][s:e][live] < 1.0, 1.5 * self.spacing)
            pts = np.ascontiguousarray(x, dtype=sim.np_real)
            dist = np.empty(len(pts), dtype=sim.np_real)
            evaluate_sdf(sim.colliders, -1, pts, dist, float(t))
            reach = FOOTING * sim.scene.dx
            near = (dist < reach) | (x[:, 1] < sim.domain_lo[1] + reach)
            rests = np.zeros(labels.max() + 1, bool)
            rests[labels[near]] = True
            footed = (m * g)[live][rests[labels]].sum() >= 0.5 * held
            if not self.stood[i]:  # his legs gripped again: he stands once they rest
                self.stood[i] = bool(footed)
                continue
            if footed:
                continue
            self.adrift[i] = dict(pose_t=t, t0=t, com=np.zeros(d), vel=np.zeros(d), mass=m,
                                  centre=self._gripped_centre(i, m * g, t))
            went.append(i)
        if went:
            self.track_adrift(t, grip)  # its pose from now on (the healing check next poses the homes)
        return went

    def maybe_cycle(self, t: float) -> None:
        """Point each body with several earlier shapes at the one its glitch's pulse at ``t``
        goes to (module docstring), uploading the homes when that changes."""
        c = self.sim.scene.control
        changed = False
        for j, i in enumerate(self.bodies):
            n = len(self.sim.scene.bodies[i].earlier_shapes())
            if n > 1:
                k = int(np.floor(c.glitch_rate * t + 0.25)) % n
                changed |= k != self.cycle[j]
                self.cycle[j] = k
        if changed:
            self.upload_particles()

    def pose_maps(self, t: float, roots: bool = True):
        """Per part (A, b) at ``t``, and per part the body's root map (RA, Rb; None unless ``roots``)."""
        sc, d = self.sim.scene, self.sim.dim
        A, b, RA, Rb = [], [], [], []
        for i in self.bodies:
            body = sc.bodies[i]
            pose = self.pose(i, t)
            Ai, bi = body.template.transforms(pose, d)
            A.append(Ai), b.append(bi)
            if roots:
                Ri, ri = body.template.transforms(type(pose)(position=pose.position, heading=pose.heading), d)
                RA.append(Ri), Rb.append(ri)
        if not roots:
            return np.concatenate(A), np.concatenate(b), None, None
        return np.concatenate(A), np.concatenate(b), np.concatenate(RA), np.concatenate(Rb)

    def sync_pose(self) -> None:
        """Upload the pose that waits (``pose_due``: the last substep's, which did not read it), so
        that the table holds what an upload on every substep would have left there."""
        if self.pose_due is not None:
            self.upload_pose(self.pose_due)

    def upload_pose(self, t: float, h: float = 1e-3) -> None:
        """The part maps at ``t`` and their time derivatives (central differences over ``h`` s)."""
        self.pose_due = None
        npr = self.sim.np_real
        A, b, RA, Rb = self.pose_maps(t)
        A1, b1, _, _ = self.pose_maps(t + h, roots=False)
        A0, b0, _, _ = self.pose_maps(max(t - h, 0.0), roots=False)
        span = t + h - max(t - h, 0.0)
        maps = np.stack([np.concatenate([A, b[..., None]], axis=2),
                         np.concatenate([(A1 - A0) / span, ((b1 - b0) / span)[..., None]], axis=2),
                         np.concatenate([RA, Rb[..., None]], axis=2)], axis=1)
        kc.set_pose(self.table, maps.astype(npr))

    # --- healing --------------------------------------------------------------------------
    def maybe_reassign(self, t: float) -> int:
        """Every ``reassign_every`` s: give far gripped particles free homes (module docstring)."""
        if t + 1e-12 < self.next_check:
            return 0
        self.next_check = t + self.sim.scene.control.reassign_every
        # one read of the grips and the particles serves the standing check, the healing and the
        # adrift bodies' measure (nothing moves between them)
        sim = self.sim
        grip = np.zeros(sim.n_particles, sim.np_real)
        kc.grips(sim.particles_fields, sim.materials, sim.knobs, grip)
        state = sim.particles(retired=True)
        self.check_support(t, grip, state)
        moved = self.reassign(t, grip, state["x"])
        self.track_adrift(t, grip)  # after the homes moved (pose uploads follow at the heat step)
        return moved

    def reassign(self, t: float, grip: np.ndarray, x: np.ndarray) -> int:
        """Give far gripped particles free homes (module docstring, 6), from ``grip`` (every
        particle's, ``kernels.control.grips``) and positions ``x`` (``Simulation.particles``,
        retired included) read now."""
        sim = self.sim
        pf, n, d = sim.particles_fields, sim.n_particles, sim.dim
        home = np.zeros((n, d), sim.np_real)
        self.sync_pose()
        kc.homes(pf, self.table, sim.knobs, t, home)
        x = x.astype(np.float64)
        moved = 0
        for i in self.bodies:
            s, e = self.ranges[i]
            reach = sim.scene.control.reassign_distance * sim.scene.bodies[i].template.height
            gripped = grip[s:e] > 0.5
            dist = np.linalg.norm(x[s:e] - home[s:e], axis=1)
            far = np.flatnonzero(gripped & (dist > reach))
            if len(far) == 0:
                continue
            near = gripped & (dist <= reach)
            slots_home, _, _ = self.slots[i]
            free = np.ones(len(slots_home), bool)
            free[self.slot_of[i][near]] = False
            free = np.flatnonzero(free)
            rng = np.random.default_rng([sim.scene.seed, 3000 + i, int(t * 1e6)])
            chosen = rng.choice(free, len(far), replace=False) if len(free) > len(far) else free[: len(far)]
            A, b, _, _ = self.pose_maps(t)
            hk, pk, _ = self.slots[i]
            posed = np.einsum("nij,nj->ni", A[pk[chosen]], hk[chosen]) + b[pk[chosen]]
            perm = transport_match(x[s:e][far], posed)
            self.slot_of[i][far] = chosen[perm]
            moved += len(far)
        if moved:
            self.upload_particles()
            self.reassigned += moved
        return moved

    # --- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict:
        """The host state a resumed run needs (the homes themselves are particle fields):
        which slot each controlled particle holds, the next healing check, the count so far."""
        # copies: a healing check rewrites ``slot_of`` in place, and a state kept in memory (a
        # frame's retry, a test's replay) must not change with it
        out = {f"slot_of_{i}": self.slot_of[i].copy() for i in self.bodies}
        out["next_check"] = np.float64(self.next_check)
        out["reassigned"] = np.int64(self.reassigned)
        out["track"] = self.track.copy()
        out["cycle"] = self.cycle.copy()
        if self.standing:  # (a checkpoint of a scene without one is as it was)
            out["stood"] = np.array([self.stood[i] for i in self.standing], bool)
        for i in self.standing:  # one row each, NaN when it stands: the same keys whether adrift or not
            a = self.adrift.get(i)
            out[f"adrift_{i}"] = (np.full(2 + 3 * self.sim.dim, np.nan) if a is None else
                                  np.concatenate([[a["pose_t"], a["t0"]], a["com"], a["vel"], a["centre"]]))
        return out

    def load_state(self, state: dict) -> None:
        for i in self.bodies:
            self.slot_of[i] = np.asarray(state[f"slot_of_{i}"]).copy()
        self.next_check = float(state["next_check"])
        self.reassigned = int(state["reassigned"])
        self.track = np.asarray(state["track"], float).copy()
        self.cycle = np.asarray(state["cycle"], np.int64).copy()
        d = self.sim.dim
        self.adrift = {}
        if "stood" in state:
            self.stood = dict(zip(self.standing, np.asarray(state["stood"], bool).tolist()))
        live = None  # the particles' masses, read once for every adrift body
        for i in self.standing:
            row = np.asarray(state.get(f"adrift_{i}", np.nan), float)
            if not np.isnan(row).any():
                s, e = self.ranges[i]
                if live is None:
                    live = fieldio.group(self.sim.particles_fields, ("mass", "alive")).read()
                self.adrift[i] = dict(pose_t=row[0], t0=row[1], com=row[2:2 + d].copy(),
                                      vel=row[2 + d:2 + 2 * d].copy(), centre=row[2 + 2 * d:2 + 3 * d].copy(),
                                      mass=live["mass"][s:e].astype(np.float64) * (live["alive"][s:e] != 0))

    # --- measuring ------------------------------------------------------------------------
    def template_distance(self, body: int, points: np.ndarray, t: float) -> np.ndarray:
        """Signed distance (m) of ``points`` to body ``body``'s posed template at time ``t``."""
        sim, d = self.sim, self.sim.dim
        if self._shapes_time != t:
            rows = []
            for i in self.bodies:
                b = sim.scene.bodies[i]
                rows += [dict(r, owner=i) for r in b.template.posed_rows(self.pose(i, t), d)]
            self.body_shapes.upload(rows)
            self._shapes_time = t
        pts = np.ascontiguousarray(points, dtype=sim.np_real)
        out = np.empty(len(pts), dtype=sim.np_real)
        evaluate_sdf(self.body_shapes, body, pts, out, 0.0)
        return out.astype(np.float64)

    def part_distance(self, body: int, k: int, points: np.ndarray, t: float) -> np.ndarray:
        """Signed distance (m) of ``points`` to part ``k`` (its index in the template) of body
        ``body``'s template posed at time ``t``: the points are taken back to rest coordinates
        by the part's rigid map and measured against the part at rest."""
        sim, d = self.sim, self.sim.dim
        tpl = sim.scene.bodies[body].template
        A, b = tpl.transforms(self.pose(body, t), d)
        rest = np.ascontiguousarray((np.asarray(points, float) - b[k]) @ A[k], dtype=sim.np_real)
        out = np.empty(len(rest), dtype=sim.np_real)
        evaluate_sdf(self.part_shapes, self.part_offset[body] + k, rest, out, 0.0)
        return out.astype(np.float64)

    def earlier_distance(self, body: int, k: int, points: np.ndarray, t: float) -> np.ndarray:
        """Signed distance (m) of ``points`` to body ``body``'s ``k``-th earlier shape, placed by
        the body's root pose at time ``t`` as the glitch places it."""
        sim, d = self.sim, self.sim.dim
        if (body, k) not in self.earlier_index:
            from polyalloy.errors import ConfigError

            raise ConfigError(f"body {sim.scene.bodies[body].name!r} has no earlier shape number {k}")
        if self._earlier_time != t:
            A, b, RA, Rb = self.pose_maps(t)
            rows = []
            for i in self.bodies:
                root = self.part_offset[i]  # every part of a body has the body's root map
                for kk in range(len(sim.scene.bodies[i].earlier_shapes())):
                    owner = self.earlier_index[i, kk]
                    rows += [_transform_row(r, RA[root], Rb[root], owner) for r in self.earlier_rest
                             if r["owner"] == owner]
            self.earlier_table.upload(rows)
            self._earlier_time = t
        pts = np.ascontiguousarray(points, dtype=sim.np_real)
        out = np.empty(len(pts), dtype=sim.np_real)
        evaluate_sdf(self.earlier_table, self.earlier_index[body, k], pts, out, 0.0)
        return out.astype(np.float64)

