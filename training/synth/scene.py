"""Random box rooms with furniture primitives, materials, lights and a smooth camera path, drawn
from the ranges of a :class:`~.style.SceneStyle` (docs/synthetic_data.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .style import TRAIN, SceneStyle, draw, draw_count

# Primitive kinds; the room itself is object id 0..5 (floor, ceiling, four walls).
BOX, CYLINDER, SPHERE = "box", "cylinder", "sphere"
ROOM_SURFACES = 6
FRAME_RATE_HZ = 30.0
KEEP_CLEAR_M = 1.1  # the camera path stays within 0.6 m of its centre; furniture keeps 0.5 m off it
FIXTURE_THICKNESS_M = 0.03  # doors, windows and pictures stand this far out of their wall


@dataclass
class Material:
    colour: np.ndarray  # (3,) albedo in [0, 1]
    accent: np.ndarray  # (3,) second colour of the pattern
    pattern: str  # one of style.TRAIN_PATTERNS + style.UNSEEN_PATTERNS
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
    light_colour: np.ndarray | None = None  # (L, 3) relative colour of each light; None: white
    exposure: float = 1.0
    camera_height_m: float = 1.35
    height_wander_m: float = 0.25
    camera_pitch_rad: float = -0.15
    pitch_wander_rad: float = 0.1
    camera_roll_rad: float = 0.0
    rgb_noise: float = 0.01
    vignetting: float = 0.0
    blur: float = 0.0
    # noise drawn for an RGB image that is not kept (the raw layout's at the depth stamp), as the
    # generator before issue 15 item 6 did: its scenes give the same bytes
    noise_as_before: bool = False


def _material(rng: np.random.Generator, patterns, colour_range=(0.15, 0.9), saturation=1.0) -> Material:
    grey = rng.uniform(*colour_range)
    colour = np.clip(grey + saturation * (rng.uniform(*colour_range, 3) - grey), 0.02, 1.0)
    accent = np.clip(colour * rng.uniform(0.4, 0.8) + rng.uniform(-0.1, 0.1, 3), 0.02, 1.0)
    return Material(colour, accent, str(rng.choice(list(patterns))), float(rng.uniform(0.08, 0.6)))


def _prefer(patterns, preferred) -> list[str]:
    """The style's patterns that are among ``preferred``, or all of them when none is."""
    return [p for p in patterns if p in preferred] or list(patterns)


def _room_materials(rng: np.random.Generator, style: SceneStyle) -> list[Material]:
    """Floor, ceiling and four walls. With the style's surface priors, as rooms are: a darker floor of
    wood or tiles, a near-white plain ceiling, and light walls painted alike (now and then one other)."""
    if not style.surface_priors:
        return [_material(rng, style.patterns) for _ in range(ROOM_SURFACES)]
    floor = _material(rng, _prefer(style.patterns, ("wood", "tiles", "plain", "noise")), (0.12, 0.55), 0.6)
    ceiling = _material(rng, _prefer(style.patterns, ("plain",)), (0.75, 0.95), 0.1)
    wall_patterns = _prefer(style.patterns, ("plain", "noise", "stripes"))
    walls = _material(rng, wall_patterns, (0.45, 0.92), 0.35)
    materials = [floor, ceiling] + [walls] * 4
    if rng.uniform() < 0.25:  # an accent wall
        materials[2 + int(rng.integers(4))] = _material(rng, wall_patterns, (0.3, 0.9), 0.7)
    return materials


def _furniture_size(rng: np.random.Generator, kind: str) -> np.ndarray:
    if kind == BOX:
        return np.array([rng.uniform(0.3, 1.6), rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.8)])
    if kind == CYLINDER:
        radius = rng.uniform(0.1, 0.45)
        return np.array([radius, radius, rng.uniform(0.3, 1.5)])
    return np.full(3, rng.uniform(0.12, 0.45))


def _against_wall(rng: np.random.Generator, room: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, float]:
    """Footprint centre and yaw of a box whose back stands 2 cm off a random wall, square to it."""
    wall = int(rng.integers(4))  # x = 0, x = room, y = 0, y = room
    yaw = 0.0 if wall < 2 else np.pi / 2  # the box's local x (depth size[0]) points out of the wall
    half_along, half_out = size[1] / 2, size[0] / 2
    along_axis, out_axis = (1, 0) if wall < 2 else (0, 1)
    xy = np.zeros(2)
    xy[along_axis] = rng.uniform(half_along, room[along_axis] - half_along)
    xy[out_axis] = half_out + 0.02 if wall % 2 == 0 else room[out_axis] - half_out - 0.02
    return xy, yaw


def _furniture(rng: np.random.Generator, style: SceneStyle, room: np.ndarray, centre: np.ndarray) -> list[Primitive]:
    primitives: list[Primitive] = []
    for _ in range(draw_count(rng, style.furniture)):
        kind = str(rng.choice([BOX, BOX, CYLINDER, SPHERE]))
        walled = kind == BOX and rng.uniform() < style.against_wall
        for _attempt in range(50):
            size = _furniture_size(rng, kind)
            reach = float(np.hypot(size[0], size[1])) if kind == BOX else float(size[0])
            if np.any(room[:2] <= 2 * reach):  # too large for this room: draw another
                continue
            xy, yaw = _against_wall(rng, room, size) if walled else (rng.uniform(reach, room[:2] - reach),
                                                                      float(rng.uniform(0, np.pi)))
            if np.linalg.norm(xy - centre) > KEEP_CLEAR_M + reach:
                break
        else:
            continue
        base = size[2] if kind == SPHERE else 0.0  # spheres rest on the floor
        primitives.append(Primitive(kind, np.array([xy[0], xy[1], base]), size, yaw, _material(rng, style.patterns)))
    return primitives


def _wall_fixtures(rng: np.random.Generator, style: SceneStyle, room: np.ndarray) -> list[Primitive]:
    """Doors (on the floor), windows (bright, on a sill) and pictures: thin boxes on the walls."""
    fixtures = []
    for _ in range(draw_count(rng, style.wall_fixtures)):
        kind = str(rng.choice(["door", "window", "picture"]))
        width, height, base = {"door": (rng.uniform(0.75, 1.0), rng.uniform(1.95, 2.1), 0.0),
                               "window": (rng.uniform(0.8, 1.6), rng.uniform(0.9, 1.3), rng.uniform(0.8, 1.0)),
                               "picture": (rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.7), rng.uniform(1.2, 1.6))}[kind]
        wall = int(rng.integers(4))
        along_axis, out_axis = (1, 0) if wall < 2 else (0, 1)
        if room[along_axis] < width + 0.4 or room[2] < base + height + 0.1:
            continue
        xy = np.zeros(2)
        xy[along_axis] = rng.uniform(width / 2 + 0.2, room[along_axis] - width / 2 - 0.2)
        xy[out_axis] = FIXTURE_THICKNESS_M / 2 if wall % 2 == 0 else room[out_axis] - FIXTURE_THICKNESS_M / 2
        size = np.array([FIXTURE_THICKNESS_M, width, height]) if wall < 2 else np.array([width, FIXTURE_THICKNESS_M,
                                                                                          height])
        if kind == "window":  # daylight: bright and plain
            material = Material(np.clip(rng.uniform(0.85, 1.0) - rng.uniform(0, 0.15, 3), 0, 1), np.ones(3), "plain", 1.0)
        else:
            material = _material(rng, style.patterns)
        fixtures.append(Primitive(BOX, np.array([xy[0], xy[1], base]), size, 0.0, material))
    return fixtures


def make_scene(rng: np.random.Generator, style: SceneStyle = TRAIN) -> Scene:
    """A room of the style's size with furniture away from the camera path, wall fixtures, lights,
    and the camera's height, pitch, roll and sensor settings for its path."""
    if style.draws_as_before:
        return _scene_as_before(rng)
    side = [draw(rng, style.room_side_m), draw(rng, style.room_side_m)]
    room = np.array([*side, draw(rng, style.room_height_m)])
    centre = room[:2] / 2 + rng.uniform(-0.3, 0.3, 2)
    primitives = _furniture(rng, style, room, centre) + _wall_fixtures(rng, style, room)
    n_lights = draw_count(rng, style.lights)
    lights = np.column_stack([rng.uniform(0.3, room[0] - 0.3, n_lights), rng.uniform(0.3, room[1] - 0.3, n_lights),
                              np.full(n_lights, room[2] - 0.15)])
    tint = np.array([draw(rng, style.light_tint) for _ in range(n_lights)])
    warm_cool = rng.choice([-1.0, 1.0], n_lights)  # warm (reddish) or cool (bluish) light
    light_colour = 1.0 + (tint * warm_cool)[:, None] * np.array([1.0, 0.1, -1.0])[None, :]
    roll = draw(rng, style.camera_roll_deg) * float(rng.choice([-1.0, 1.0]))
    height = min(draw(rng, style.camera_height_m), room[2] - 0.2 - style.height_wander_m)
    pitches = style.low_camera_pitch_deg if height < style.low_camera_m else style.camera_pitch_deg
    return Scene(room=room, room_materials=_room_materials(rng, style), primitives=primitives,
                 lights=lights, light_power=np.full(n_lights, draw(rng, style.light_power)) / n_lights
                 * rng.uniform(0.7, 1.3, n_lights),
                 ambient=draw(rng, style.ambient), path_centre=centre, path_phase=rng.uniform(0, 2 * np.pi, 6),
                 light_colour=light_colour, exposure=draw(rng, style.exposure), camera_height_m=height,
                 height_wander_m=style.height_wander_m, camera_pitch_rad=np.radians(draw(rng, pitches)),
                 pitch_wander_rad=np.radians(style.pitch_wander_deg), camera_roll_rad=np.radians(roll),
                 rgb_noise=draw(rng, style.rgb_noise), vignetting=draw(rng, style.vignetting),
                 blur=draw(rng, style.blur))


def _material_as_before(rng: np.random.Generator) -> Material:
    colour = rng.uniform(0.15, 0.9, 3)
    accent = np.clip(colour * rng.uniform(0.4, 0.8) + rng.uniform(-0.1, 0.1, 3), 0.02, 1.0)
    pattern = str(rng.choice(["plain", "checker", "stripes", "noise"]))
    return Material(colour, accent, pattern, float(rng.uniform(0.08, 0.6)))


def _scene_as_before(rng: np.random.Generator) -> Scene:
    """The ``train`` style's scene, drawn exactly as the generator before issue 15 item 6 drew it (same
    seed, same bytes): the data sets, tests and numbers made with it stay as they were."""
    room = np.array([rng.uniform(3.5, 7.0), rng.uniform(3.5, 7.0), rng.uniform(2.4, 3.2)])
    centre = room[:2] / 2 + rng.uniform(-0.3, 0.3, 2)
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
            if np.linalg.norm(xy - centre) > KEEP_CLEAR_M + reach:
                break
        else:
            continue
        base = size[2] if kind == SPHERE else 0.0  # spheres rest on the floor
        primitives.append(Primitive(kind, np.array([xy[0], xy[1], base]), size,
                                    float(rng.uniform(0, np.pi)), _material_as_before(rng)))
    n_lights = int(rng.integers(1, 4))
    lights = np.column_stack([rng.uniform(0.3, room[0] - 0.3, n_lights), rng.uniform(0.3, room[1] - 0.3, n_lights),
                              np.full(n_lights, room[2] - 0.15)])
    return Scene(room=room, room_materials=[_material_as_before(rng) for _ in range(ROOM_SURFACES)], primitives=primitives,
                 lights=lights, light_power=rng.uniform(2.0, 6.0, n_lights) / n_lights,
                 ambient=float(rng.uniform(0.15, 0.35)), path_centre=centre,
                 path_phase=rng.uniform(0, 2 * np.pi, 6), noise_as_before=True)


def camera_pose(scene: Scene, time_s: float) -> tuple[np.ndarray, np.ndarray]:
    """World-from-camera rotation (3, 3) and position (3,) of the RGB camera at ``time_s``.

    Camera axes follow the optical convention: x right, y down, z forward. The path is a
    smooth wander of at most 0.6 m around the path's centre at the scene's camera height, turning
    slowly, its pitch swaying about the scene's pitch, rolled by the scene's roll.
    """
    ph = scene.path_phase
    x = scene.path_centre[0] + 0.4 * np.sin(0.31 * time_s + ph[0]) + 0.2 * np.sin(0.73 * time_s + ph[1])
    y = scene.path_centre[1] + 0.4 * np.sin(0.27 * time_s + ph[2]) + 0.2 * np.sin(0.61 * time_s + ph[3])
    z = scene.camera_height_m + scene.height_wander_m * np.sin(0.19 * time_s + ph[4])
    yaw = ph[5] + 0.35 * time_s
    pitch = scene.camera_pitch_rad + scene.pitch_wander_rad * np.sin(0.23 * time_s + ph[0])
    forward = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.cross(forward, right)
    if scene.camera_roll_rad:  # turn right and down about the optical axis
        c, s = np.cos(scene.camera_roll_rad), np.sin(scene.camera_roll_rad)
        right, down = c * right + s * down, c * down - s * right
    return np.column_stack([right, down, forward]), np.array([x, y, z])
