"""Random box rooms with furniture primitives, materials, lights and a smooth camera path."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Primitive kinds; the room itself is object id 0..5 (floor, ceiling, four walls).
BOX, CYLINDER, SPHERE = "box", "cylinder", "sphere"
ROOM_SURFACES = 6
FRAME_RATE_HZ = 30.0


@dataclass
class Material:
    colour: np.ndarray  # (3,) albedo in [0, 1]
    accent: np.ndarray  # (3,) second colour of the pattern
    pattern: str  # "plain" | "checker" | "stripes" | "noise"
    scale_m: float  # size of one pattern cell


@dataclass
class Primitive:
    kind: str
    centre: np.ndarray  # (3,) world metres; boxes and cylinders: centre of the footprint at z = base
    size: np.ndarray  # box: (sx, sy, sz); cylinder: (radius, radius, height); sphere: (radius,) * 3
    yaw: float
    material: Material


@dataclass
class Scene:
    room: np.ndarray  # (3,) extent; the room spans [0, room] on each axis, z up
    room_materials: list[Material]
    primitives: list[Primitive]
    lights: np.ndarray  # (L, 3) positions
    light_power: np.ndarray  # (L,)
    ambient: float
    path_centre: np.ndarray  # (2,) xy of the camera path's centre
    path_phase: np.ndarray = field(default_factory=lambda: np.zeros(6))


def _material(rng: np.random.Generator) -> Material:
    colour = rng.uniform(0.15, 0.9, 3)
    accent = np.clip(colour * rng.uniform(0.4, 0.8) + rng.uniform(-0.1, 0.1, 3), 0.02, 1.0)
    pattern = str(rng.choice(["plain", "checker", "stripes", "noise"]))
    return Material(colour, accent, pattern, float(rng.uniform(0.08, 0.6)))


def make_scene(rng: np.random.Generator) -> Scene:
    """A room 3.5-7 m by 3.5-7 m by 2.4-3.2 m with 3-12 pieces of furniture away from the camera path."""
    room = np.array([rng.uniform(3.5, 7.0), rng.uniform(3.5, 7.0), rng.uniform(2.4, 3.2)])
    centre = room[:2] / 2 + rng.uniform(-0.3, 0.3, 2)
    keep_clear_m = 1.1  # the camera path stays within 0.6 m of centre; furniture keeps off it
    primitives: list[Primitive] = []
    for _ in range(int(rng.integers(3, 13))):
        kind = str(rng.choice([BOX, BOX, CYLINDER, SPHERE]))
        for _attempt in range(50):
            if kind == BOX:
                size = np.array([rng.uniform(0.3, 1.6), rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.8)])
            elif kind == CYLINDER:
                radius = rng.uniform(0.1, 0.45)
                size = np.array([radius, radius, rng.uniform(0.3, 1.5)])
            else:
                size = np.full(3, rng.uniform(0.12, 0.45))
            reach = float(np.hypot(size[0], size[1])) if kind == BOX else float(size[0])
            if np.any(room[:2] <= 2 * reach):  # too large for this room: draw another
                continue
            xy = rng.uniform(reach, room[:2] - reach)
            if np.linalg.norm(xy - centre) > keep_clear_m + reach:
                break
        else:
            continue
        base = size[2] if kind == SPHERE else 0.0  # spheres rest on the floor
        primitives.append(Primitive(kind, np.array([xy[0], xy[1], base]), size,
                                    float(rng.uniform(0, np.pi)), _material(rng)))
    n_lights = int(rng.integers(1, 4))
    lights = np.column_stack([rng.uniform(0.3, room[0] - 0.3, n_lights), rng.uniform(0.3, room[1] - 0.3, n_lights),
                              np.full(n_lights, room[2] - 0.15)])
    return Scene(room=room, room_materials=[_material(rng) for _ in range(ROOM_SURFACES)], primitives=primitives,
                 lights=lights, light_power=rng.uniform(2.0, 6.0, n_lights) / n_lights,
                 ambient=float(rng.uniform(0.15, 0.35)), path_centre=centre,
                 path_phase=rng.uniform(0, 2 * np.pi, 6))


def camera_pose(scene: Scene, time_s: float) -> tuple[np.ndarray, np.ndarray]:
    """World-from-camera rotation (3, 3) and position (3,) of the RGB camera at ``time_s``.

    Camera axes follow the optical convention: x right, y down, z forward. The path is a
    smooth wander of at most 0.6 m around the room centre at 1.1-1.6 m height, turning
    slowly and looking slightly down.
    """
    ph = scene.path_phase
    x = scene.path_centre[0] + 0.4 * np.sin(0.31 * time_s + ph[0]) + 0.2 * np.sin(0.73 * time_s + ph[1])
    y = scene.path_centre[1] + 0.4 * np.sin(0.27 * time_s + ph[2]) + 0.2 * np.sin(0.61 * time_s + ph[3])
    z = 1.35 + 0.25 * np.sin(0.19 * time_s + ph[4])
    yaw = ph[5] + 0.35 * time_s
    pitch = -0.15 + 0.1 * np.sin(0.23 * time_s + ph[0])
    forward = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.cross(forward, right)
    return np.column_stack([right, down, forward]), np.array([x, y, z])
