"""Vectorised ray casting of a :class:`Scene`: exact metric depth, object ids, Lambertian shading."""

from __future__ import annotations

import numpy as np

from .scene import BOX, CYLINDER, ROOM_SURFACES, SPHERE, Material, Scene

_DT = np.float32
_FAR = np.float32(1e9)


def camera_rays(width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Ray directions in the camera frame with unit z, (3, H, W): a hit at parameter t has depth t.

    Pixel (row r, col c) is at toolbox coordinates (c + 1, r + 1), as in the NYU calibration.
    """
    cols, rows = np.meshgrid(np.arange(1, width + 1, dtype=np.float64), np.arange(1, height + 1, dtype=np.float64))
    return np.stack([(cols - cx) / fx, (rows - cy) / fy, np.ones((height, width))])


class _Hits:
    """Nearest hit so far per ray: parameter, object id and world normal."""

    def __init__(self, n: int):
        self.t = np.full(n, _FAR, dtype=_DT)
        self.obj = np.full(n, -1, dtype=np.int32)
        self.normal = np.zeros((3, n), dtype=_DT)

    def offer(self, t: np.ndarray, obj: int, normal: np.ndarray, rays=slice(None)) -> None:
        """Keep the hits ``t`` of object ``obj`` on the rays ``rays`` where they are nearer."""
        closer = (t > 1e-4) & (t < self.t[rays])
        where = np.flatnonzero(closer) if isinstance(rays, slice) else rays[closer]
        self.t[where] = t[closer]
        self.obj[where] = obj
        self.normal[:, where] = normal[:, closer] if normal.ndim == 2 else normal[:, None]


def _hit_room(hits: _Hits, origin: np.ndarray, dirs: np.ndarray, room: np.ndarray) -> None:
    for axis in range(3):
        d = dirs[axis]
        with np.errstate(divide="ignore", invalid="ignore"):
            t_low = ((0.0 - origin[axis]) / d).astype(_DT)
            t_high = ((room[axis] - origin[axis]) / d).astype(_DT)
        t_low[~(d < 0)] = _FAR
        t_high[~(d > 0)] = _FAR
        normal = np.zeros(3, _DT)
        normal[axis] = 1.0
        # ids: 0 floor, 1 ceiling, 2..5 walls (x low, x high, y low, y high)
        low_id, high_id = {0: (2, 3), 1: (4, 5), 2: (0, 1)}[axis]
        hits.offer(t_low, low_id, normal)
        hits.offer(t_high, high_id, -normal)


def _hit_box(hits: _Hits, obj: int, rays, origin: np.ndarray, dirs: np.ndarray, centre, size, yaw) -> None:
    c, s = np.cos(yaw), np.sin(yaw)
    to_local = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]], dtype=_DT)
    o = (to_local @ (origin - centre - np.array([0.0, 0.0, size[2] / 2]))).astype(_DT)[:, None]
    d = to_local @ dirs
    half = (size / 2).astype(_DT)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t0 = (-half - o) * inv
        t1 = (half - o) * inv
    entering, leaving = np.minimum(t0, t1), np.maximum(t0, t1)
    axis = entering.argmax(axis=0)  # the slab entered last is the face hit
    t_near = np.take_along_axis(entering, axis[None], 0)[0]
    t = np.where((t_near <= leaving.min(axis=0)) & (t_near > 0), t_near, _FAR)
    local_normal = np.zeros_like(d)
    np.put_along_axis(local_normal, axis[None], -np.sign(np.take_along_axis(d, axis[None], 0)), 0)
    hits.offer(t, obj, to_local.T @ local_normal, rays)


def _solve_quadratic(a, b, c) -> np.ndarray:
    """Smallest positive root of a t^2 + b t + c = 0 per ray, _FAR where none."""
    disc = b * b - 4 * a * c
    ok = (disc >= 0) & (a > 1e-12)
    root = np.sqrt(np.where(ok, disc, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t0 = (-b - root) / (2 * a)
        t1 = (-b + root) / (2 * a)
    t = np.where(t0 > 1e-4, t0, t1)
    return np.where(ok & (t > 1e-4), t, _FAR).astype(_DT)


def _hit_cylinder(hits: _Hits, obj: int, rays, origin, dirs, centre, size) -> None:
    radius, height = size[0], size[2]
    ox, oy = origin[0] - centre[0], origin[1] - centre[1]
    dx, dy, dz = dirs[0], dirs[1], dirs[2]
    t = _solve_quadratic(dx * dx + dy * dy, 2 * (ox * dx + oy * dy), ox * ox + oy * oy - radius * radius)
    z = origin[2] + t * dz
    t = np.where((z >= centre[2]) & (z <= centre[2] + height), t, _FAR)
    normal = np.stack([(ox + t * dx) / radius, (oy + t * dy) / radius, np.zeros_like(t)]).astype(_DT)
    hits.offer(t, obj, normal, rays)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_cap = ((centre[2] + height - origin[2]) / dz).astype(_DT)
    inside = (ox + t_cap * dx) ** 2 + (oy + t_cap * dy) ** 2 <= radius * radius
    hits.offer(np.where(inside & (dz < 0), t_cap, _FAR), obj, np.array([0, 0, 1], _DT), rays)


def _hit_sphere(hits: _Hits, obj: int, rays, origin, dirs, centre, size) -> None:
    oc = (origin - centre)[:, None]
    t = _solve_quadratic(np.sum(dirs * dirs, 0), 2 * np.sum(oc * dirs, 0), float(np.sum(oc * oc)) - size[0] ** 2)
    normal = ((origin[:, None] + t * dirs - centre[:, None]) / size[0]).astype(_DT)
    hits.offer(t, obj, normal, rays)


def _bounding_sphere(prim) -> tuple[np.ndarray, float]:
    if prim.kind == SPHERE:
        return prim.centre, float(prim.size[0])
    centre = prim.centre + np.array([0.0, 0.0, prim.size[2] / 2])
    if prim.kind == BOX:
        return centre, float(np.linalg.norm(prim.size / 2))
    return centre, float(np.hypot(prim.size[0], prim.size[2] / 2))


def _rays_near(rays_cam: np.ndarray, rotation, position, centre, radius):
    """Indices of the rays that may meet a sphere: a conservative image rectangle, or all rays."""
    c = rotation.T @ (centre - position)  # sphere centre in the camera frame
    if c[2] - radius <= 1e-3:
        return slice(None)  # reaches behind the camera: test every ray
    z = np.array([c[2] - radius, c[2] + radius])
    x_lo, x_hi = np.min((c[0] - radius) / z), np.max((c[0] + radius) / z)
    y_lo, y_hi = np.min((c[1] - radius) / z), np.max((c[1] + radius) / z)
    xs, ys = rays_cam[0, 0, :], rays_cam[1, :, 0]  # ray slopes grow with column and row
    c0, c1 = np.searchsorted(xs, x_lo), np.searchsorted(xs, x_hi, side="right")
    r0, r1 = np.searchsorted(ys, y_lo), np.searchsorted(ys, y_hi, side="right")
    width = rays_cam.shape[2]
    return (np.arange(r0, r1)[:, None] * width + np.arange(c0, c1)[None, :]).ravel()


def cast(scene: Scene, rotation: np.ndarray, position: np.ndarray, rays_cam: np.ndarray) -> _Hits:
    """Nearest surface along each ray (3, H, W) of a camera at (rotation, position) in the world."""
    dirs = (rotation @ rays_cam.reshape(3, -1)).astype(_DT)  # world directions, unit depth along the camera axis
    position = position.astype(_DT)
    hits = _Hits(dirs.shape[1])
    _hit_room(hits, position, dirs, scene.room)
    for k, prim in enumerate(scene.primitives):
        rays = _rays_near(rays_cam, rotation, position, *_bounding_sphere(prim))
        if not isinstance(rays, slice) and rays.size == 0:
            continue
        sub = dirs[:, rays]
        obj = ROOM_SURFACES + k
        if prim.kind == BOX:
            _hit_box(hits, obj, rays, position, sub, prim.centre, prim.size, prim.yaw)
        elif prim.kind == CYLINDER:
            _hit_cylinder(hits, obj, rays, position, sub, prim.centre, prim.size)
        elif prim.kind == SPHERE:
            _hit_sphere(hits, obj, rays, position, sub, prim.centre, prim.size)
    hits.points = position[:, None] + hits.t * dirs
    return hits


def _pattern(material: Material, uv: np.ndarray) -> np.ndarray:
    """Albedo (3, n) of ``material`` at surface coordinates ``uv`` (2, n) in metres."""
    cells = uv / material.scale_m
    if material.pattern == "checker":
        mix = (np.floor(cells[0]) + np.floor(cells[1])) % 2
    elif material.pattern == "stripes":
        mix = 0.5 + 0.5 * np.sin(2 * np.pi * cells[0])
    elif material.pattern == "noise":  # smooth value noise from a few incommensurate sines
        mix = 0.5 + 0.25 * (np.sin(3.1 * cells[0] + 1.3 * np.sin(2.3 * cells[1])) + np.sin(2.7 * cells[1] + 0.7 * cells[0]))
    elif material.pattern == "wood":  # long wavy grain along u
        grain = 4.0 * cells[1] + 0.8 * np.sin(0.9 * cells[0] + 1.7 * np.sin(0.5 * cells[1])) + 0.3 * np.sin(7.1 * cells[0])
        mix = 0.5 + 0.5 * np.sin(2 * np.pi * grain) * (0.6 + 0.4 * np.sin(0.37 * cells[0]))
    elif material.pattern == "tiles":  # square tiles, a little different each, with grout lines
        cell = np.floor(cells)
        grout = (np.min(cells - cell, axis=0) < 0.06)
        mix = np.where(grout, 1.0, 0.12 * ((7 * cell[0] + 13 * cell[1]) % 3))
    elif material.pattern == "bricks":  # held-out only: rows of bricks, every other row shifted half a brick
        row = np.floor(2 * cells[1])
        along = cells[0] + 0.5 * (row % 2)
        mix = ((along - np.floor(along) < 0.05) | (2 * cells[1] - row < 0.1)).astype(np.float64)
    elif material.pattern == "dots":  # held-out only: a grid of round dots
        offset = cells - np.floor(cells) - 0.5
        mix = (np.sum(offset * offset, axis=0) < 0.09).astype(np.float64)
    else:
        mix = np.zeros(uv.shape[1])
    return material.colour[:, None] * (1 - mix) + material.accent[:, None] * mix


def shade(scene: Scene, hits: _Hits) -> np.ndarray:
    """Lambertian colour (3, n) in [0, 1] from the scene's point lights plus ambient."""
    points, normal = hits.points, hits.normal.astype(np.float64)
    albedo = np.zeros_like(points)
    materials = scene.room_materials + [p.material for p in scene.primitives]
    # Texture coordinates: the two world axes most parallel to the surface.
    dominant = np.argmax(np.abs(normal), axis=0)
    u = np.where(dominant == 0, points[1], points[0])
    v = np.where(dominant == 2, points[1], points[2])
    uv = np.stack([u, v])
    for obj in np.unique(hits.obj):
        if obj < 0:
            continue
        sel = hits.obj == obj
        albedo[:, sel] = _pattern(materials[obj], uv[:, sel])
    light = np.full((3, points.shape[1]), scene.ambient)
    colours = np.ones((len(scene.lights), 3)) if scene.light_colour is None else scene.light_colour
    for pos, power, colour in zip(scene.lights, scene.light_power, colours):
        to_light = pos[:, None] - points
        dist2 = np.sum(to_light * to_light, 0)
        cosine = np.sum(normal * to_light, 0) / np.sqrt(dist2)
        light += colour[:, None] * (power * np.clip(cosine, 0, None) / (1.0 + 0.3 * dist2))[None, :]
    return np.clip(albedo * light * scene.exposure, 0, 1)
