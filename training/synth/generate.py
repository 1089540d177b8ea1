"""Frames of synthetic scenes as the NYU Kinect would record them, and the two NYU layouts.

RGB comes from the RGB camera; depth is rendered from the IR camera (displaced and rotated by
the NYU calibration) and stored as raw 11-bit disparity; the raw layout's images pass through the
calibration's lens distortion, so the real readers must sync, undistort, decode and register them
exactly as they do for NYU.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rgbd_vae_ros.files import atomic_dir, atomic_write_bytes, atomic_write_text

from ..data.netpbm import encode_nyu_pgm, encode_ppm
from ..data.nyu_calibration import (
    R_DEPTH_TO_RGB,
    T_DEPTH_TO_RGB,
    disparity_to_m,
    distort_raw_depth,
    distort_rgb,
    intrinsics,
    m_to_disparity,
    register_depth_to_rgb,
)
from ..data.nyu_mat import LABELED_NAME, SPLITS_NAME, encode_splits, write_labeled
from ..faults import kill_point
from .parallel import in_order
from .render import camera_rays, cast, shade
from .scene import FRAME_RATE_HZ, Scene, camera_pose, make_scene
from .style import style_named

# RGB-from-IR as a proper rigid motion: the toolbox's R is a rotation times -1 (see nyu_calibration).
_RGB_FROM_IR_R = -R_DEPTH_TO_RGB
_RGB_FROM_IR_T = -T_DEPTH_TO_RGB
FIRST_STAMP_S = 1_300_000_000.0
# Kinect v1: the IR projector sits about 7.5 cm to the IR camera's right (+x in its image); opt-in
# IR shadows (cast_ir_shadows) use it.
IR_PROJECTOR_BASELINE_M = 0.075
SCENE_SPACING_S = 1000.0  # scene k starts at FIRST_STAMP_S + k * SCENE_SPACING_S


@dataclass
class SynthFrame:
    rgb_u8: np.ndarray  # RGB camera at rgb_stamp_s
    rgb_stamp_s: float
    depth_ir_m: np.ndarray  # exact depth seen by the IR camera at depth_stamp_s
    depth_stamp_s: float
    depth_rgb_m: np.ndarray | None  # exact depth seen by the RGB camera at depth_stamp_s (what registration
    # targets); None when rendered without ``truth``
    object_id_rgb: np.ndarray | None  # object id per RGB pixel at depth_stamp_s (None without ``truth``)
    pose_rgb: np.ndarray | None = None  # (4, 4) world-from-RGB-camera at depth_stamp_s (ground truth)


class SceneRenderer:
    """Renders one scene through the NYU Kinect's RGB and IR cameras at a given size."""

    def __init__(self, scene: Scene, width: int, height: int, noise_seed: int, yaw_offset_rad: float = 0.0,
                 shift_m: np.ndarray | None = None, ir_shadows: bool = False):
        self.scene = scene
        self.ir_shadows = ir_shadows  # no reading where the IR projector's pattern cannot reach
        self.width, self.height = width, height
        # a revisit's view (revisit.py): the path turned about the vertical by yaw_offset_rad and moved by shift_m
        self.yaw_offset_rad, self.shift_m = float(yaw_offset_rad), None if shift_m is None else np.asarray(shift_m)
        self.rays_rgb = camera_rays(width, height, *intrinsics("rgb", width, height))
        self.rays_ir = camera_rays(width, height, *intrinsics("depth", width, height))
        self.noise = np.random.default_rng(noise_seed)

    def _image(self, values: np.ndarray) -> np.ndarray:
        return values.reshape(self.height, self.width)

    def pose(self, time_s: float) -> tuple[np.ndarray, np.ndarray]:
        """World-from-RGB-camera rotation and position at ``time_s`` (the scene's path, turned and moved
        by this renderer's view offset)."""
        rotation, position = camera_pose(self.scene, time_s)
        if self.yaw_offset_rad:
            c, s = np.cos(self.yaw_offset_rad), np.sin(self.yaw_offset_rad)
            rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ rotation
        if self.shift_m is not None:
            position = position + self.shift_m
        return rotation, position

    def rgb_camera(self, time_s: float, shaded: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """RGB image (None unless ``shaded``), exact depth and object ids seen by the RGB camera at ``time_s``."""
        if not shaded:
            self.skip_rgb()
            hits = cast(self.scene, *self.pose(time_s), self.rays_rgb)
            return None, self._image(hits.t.astype(np.float32)), self._image(hits.obj)
        hits = cast(self.scene, *self.pose(time_s), self.rays_rgb)
        colour = self._through_lens(shade(self.scene, hits).T.reshape(self.height, self.width, 3))
        colour = colour + self.noise.normal(0, self.scene.rgb_noise, colour.shape)  # sensor noise
        rgb = np.clip(np.rint(colour * 255), 0, 255).astype(np.uint8)
        return rgb, self._image(hits.t.astype(np.float32)), self._image(hits.obj)

    def skip_rgb(self) -> None:
        """What an unshaded RGB render draws from the noise generator, without the render: the frames
        after it stay the same."""
        if self.scene.noise_as_before:  # the noise of the image not kept, as the generator before drew it
            self.noise.normal(0, self.scene.rgb_noise, (self.height, self.width, 3))

    def _through_lens(self, colour: np.ndarray) -> np.ndarray:
        """The scene's blur (a share of each pixel spread to its 4 neighbours) and vignetting
        (brightness falling with the squared distance from the centre, by ``vignetting`` at the corners)."""
        if self.scene.blur > 0:
            padded = np.pad(colour, ((1, 1), (1, 1), (0, 0)), mode="edge")
            around = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]) / 4
            colour = (1 - self.scene.blur) * colour + self.scene.blur * around
        if self.scene.vignetting > 0:
            rows = np.linspace(-1, 1, self.height)[:, None] ** 2
            cols = np.linspace(-1, 1, self.width)[None, :] ** 2
            colour = colour * (1 - self.scene.vignetting * (rows + cols) / 2)[..., None]
        return colour

    def depth_ir(self, time_s: float) -> np.ndarray:
        rotation, position = self.pose(time_s)
        # p_rgb = M p_ir + m  =>  IR camera: world_R_ir = world_R_rgb M, centre = pos + world_R_rgb m
        hits = cast(self.scene, rotation @ _RGB_FROM_IR_R, position + rotation @ _RGB_FROM_IR_T, self.rays_ir)
        depth = self._image(hits.t.astype(np.float32))
        return cast_ir_shadows(depth, intrinsics("depth", self.width, self.height)[0]) if self.ir_shadows else depth


def cast_ir_shadows(depth_ir_m: np.ndarray, fx_px: float, baseline_m: float = IR_PROJECTOR_BASELINE_M) -> np.ndarray:
    """The IR camera's depth with no reading (NaN) where the projector's pattern cannot reach, as on
    a real Kinect: the projector is displaced along the image rows, so a point at column u is seen by
    it at u - fx b / z; the point is in shadow when a nearer surface to its right lands at or left of
    that (a band left of each foreground edge, as wide as the disparity step)."""
    height, width = depth_ir_m.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        projector_col = np.arange(width, dtype=np.float64)[None, :] - fx_px * baseline_m / depth_ir_m
    projector_col = np.where(np.isfinite(projector_col) & (depth_ir_m > 0), projector_col, np.inf)
    # the smallest projector column among the pixels strictly to the right of each pixel
    right = np.minimum.accumulate(projector_col[:, ::-1], axis=1)[:, ::-1]
    right = np.concatenate([right[:, 1:], np.full((height, 1), np.inf)], axis=1)
    shadow = right < projector_col - 0.5  # half a pixel: a surface does not shadow itself
    return np.where(shadow, np.float32(np.nan), depth_ir_m).astype(np.float32)


def scene_name(index: int) -> str:
    return f"synth_room_{index:04d}"


def generate_scene(seed: int, scene_index: int, frames: int, width: int = 640, height: int = 480,
                   synchronised: bool = False, ir_shadows: bool = False, style: str = "train",
                   truth: bool = True) -> Iterator[SynthFrame]:
    """``frames`` frames at 30 Hz of scene ``scene_index``; the same arguments give the same frames.

    RGB is taken a few ms after depth, like the real sensor, unless ``synchronised`` (the
    labeled layout, where RGB and depth are one moment). ``ir_shadows``: the IR depth has no reading
    where the projector cannot reach (:func:`cast_ir_shadows`); off by default. ``style``: the ranges
    the scene is drawn from (:data:`.style.STYLES`: ``train``, ``varied``, or ``unseen`` for held-out frames).
    ``truth``: also the RGB camera's exact depth and object ids (not needed by the raw layout, which
    stores the IR camera's depth; without them a raw frame renders a third faster).
    """
    rng = np.random.default_rng([seed, scene_index])
    scene = make_scene(rng, style_named(style))
    renderer = SceneRenderer(scene, width, height, noise_seed=int(rng.integers(2**31)), ir_shadows=ir_shadows)
    yield from render_frames(renderer, rng, frames, FIRST_STAMP_S + SCENE_SPACING_S * scene_index, synchronised,
                             truth)


def scene_frames(job: tuple[tuple, dict]) -> Iterator[SynthFrame]:
    """``generate_scene(*args, **kwargs)`` for ``job = (args, kwargs)``: a job of :func:`.parallel.in_order`."""
    args, kwargs = job
    return generate_scene(*args, **kwargs)


def render_frames(renderer: SceneRenderer, rng: np.random.Generator, frames: int, start_s: float,
                  synchronised: bool = False, truth: bool = True) -> Iterator[SynthFrame]:
    """``frames`` frames at 30 Hz along the renderer's path from path time 0, stamped from ``start_s``;
    ``rng`` draws the RGB clock's offset and jitter. ``truth``: as :func:`generate_scene`'s (a
    synchronised frame has it anyway)."""
    rgb_offset_s = float(rng.uniform(0.003, 0.012))  # the RGB clock runs a few ms behind the depth clock
    for k in range(frames):
        t_depth = k / FRAME_RATE_HZ
        t_rgb = t_depth + rgb_offset_s + float(rng.uniform(-0.001, 0.001))
        if synchronised or truth:
            rgb, depth_rgb, ids = renderer.rgb_camera(t_depth, shaded=synchronised)
        else:
            depth_rgb = ids = None
            renderer.skip_rgb()
        if not synchronised:
            rgb = renderer.rgb_camera(t_rgb)[0]
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = renderer.pose(t_depth)
        yield SynthFrame(rgb, start_s + (t_depth if synchronised else t_rgb), renderer.depth_ir(t_depth),
                         start_s + t_depth, depth_rgb, ids, pose)


def style_setting(style: str) -> dict:
    """The marker's record of a style: none for ``train`` (markers written before styles existed say the same)."""
    style_named(style)  # an unknown name is refused before anything is written
    return {} if style == "train" else {"style": style}


def _stamp_name(kind: str, stamp_s: float, ext: str) -> str:
    device_counter = int(round(stamp_s * 1e6)) % 2**32
    return f"{kind}-{stamp_s:.6f}-{device_counter}.{ext}"


MARKER_NAME = "synth.json"  # written last: the data set is complete, and made with these settings


# What a synth writes at the top of its folder: scene folders (NYU raw, TUM, 7-Scenes) and the
# walk's one folder, names no real data set uses; and the labeled layout's two files, which NYU's
# own download has too, so they go only from a folder a synth finished (its marker is there)
_SCENE_FOLDER = re.compile(r"synth_room_\d{4,}|synth_walk")
_LABELED_FILES = (LABELED_NAME, SPLITS_NAME)


def _begin(out: Path) -> None:
    """The folder is about to change: until the new marker, it is not a complete data set. What an
    earlier synth wrote there goes first, so a smaller or other-layout write (or one after a killed
    run) leaves no stale rooms beside its own; files of any other name are left alone. A bad
    ``$RGBD_VAE_SYNTH_WORKERS`` is refused first, before anything is removed."""
    import shutil

    from .parallel import available_cpus

    available_cpus()
    out.mkdir(parents=True, exist_ok=True)
    finished = (out / MARKER_NAME).is_file()
    (out / MARKER_NAME).unlink(missing_ok=True)
    for entry in out.iterdir():
        if _SCENE_FOLDER.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif finished and entry.name in _LABELED_FILES and entry.is_file():
            entry.unlink()


def _mark_complete(out: Path, layout: str, **settings) -> None:
    atomic_write_text(out / MARKER_NAME, json.dumps({"layout": layout, **settings}, sort_keys=True) + "\n")


def is_complete(out: str | os.PathLike, layout: str, **settings) -> bool:
    """Whether ``out`` holds what a write of ``layout`` with ``settings`` finished (not one that
    was killed or ran out of disk part way, nor one made with other settings)."""
    try:
        found = json.loads((Path(out) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    return found == {"layout": layout, **settings}


def write_nyu_raw(out: str | os.PathLike, scenes: int, frames: int, seed: int = 0, width: int = 640,
                  height: int = 480, progress=None, ir_shadows: bool = False, style: str = "train") -> list[Path]:
    """Scene folders of ``r-*.ppm`` / ``d-*.pgm`` files, byte for byte in the NYU raw layout.

    Each scene is written in a staging folder and appears whole (never half a scene); the marker
    ``synth.json`` is written last (see :func:`is_complete`)."""
    out = Path(out)
    _begin(out)
    folders = []
    jobs = [((seed, s, frames, width, height), {"ir_shadows": ir_shadows, "style": style, "truth": False})
            for s in range(scenes)]
    with in_order(scene_frames, jobs, frames_per_job=frames) as results:
        for s, rendered in enumerate(results):
            folder = out / scene_name(s)
            with atomic_dir(folder) as staging:
                for frame in rendered:
                    _write_raw_frame(staging, frame, progress=progress)
            folders.append(folder)
    shadows = {"ir_shadows": True} if ir_shadows else {}  # a marker without it: a data set made without
    _mark_complete(out, "nyu-raw", scenes=scenes, frames=frames, seed=seed, width=width, height=height, **shadows,
                   **style_setting(style))
    return folders


def _write_raw_frame(folder: Path, frame: SynthFrame, shift_s: float = 0.0, progress=None) -> None:
    """``r-*.ppm`` and ``d-*.pgm`` of one frame, its stamps moved by ``shift_s``."""
    # through the Kinect's lenses, as the sensor records them (the reader undistorts, as the toolbox does)
    atomic_write_bytes(folder / _stamp_name("r", frame.rgb_stamp_s + shift_s, "ppm"),
                       encode_ppm(distort_rgb(frame.rgb_u8)))
    atomic_write_bytes(folder / _stamp_name("d", frame.depth_stamp_s + shift_s, "pgm"),
                       encode_nyu_pgm(distort_raw_depth(m_to_disparity(frame.depth_ir_m))))
    kill_point("synth-frame")
    if progress:
        progress()


def write_nyu_raw_walk(out: str | os.PathLike, rooms: int, frames_per_room: int, seed: int = 0, width: int = 640,
                      height: int = 480, progress=None, style: str = "train") -> Path:
    """One NYU raw scene folder, ``synth_walk``, of a camera carried through ``rooms`` rooms:
    ``frames_per_room`` frames of each (the rooms of :func:`write_nyu_raw` with the same seed),
    stamped as one continuous 30 Hz recording."""
    out = Path(out)
    _begin(out)
    folder = out / "synth_walk"
    jobs = [((seed, room, frames_per_room, width, height), {"style": style, "truth": False}) for room in range(rooms)]
    with atomic_dir(folder) as staging, \
            in_order(scene_frames, jobs, frames_per_job=frames_per_room) as results:
        for room, rendered in enumerate(results):
            shift_s = room * frames_per_room / FRAME_RATE_HZ - SCENE_SPACING_S * room  # onto one continuous clock
            for frame in rendered:
                _write_raw_frame(staging, frame, shift_s, progress)
    _mark_complete(out, "nyu-raw-walk", rooms=rooms, frames_per_room=frames_per_room, seed=seed, width=width,
                   height=height, **style_setting(style))
    return folder


def test_scene_indices(scenes: int) -> list[int]:
    """Scenes held out for testing: about 45 % (NYU: 654 of 1449 frames), at least one when there are
    two; the rooms the NYU raw reader holds out of the same scenes (data.splits, by room), so that the
    two layouts of one synth have the same held-out rooms."""
    from ..data.splits import split_scenes

    held_out = set(split_scenes([scene_name(s) for s in range(scenes)])["test"])
    return [s for s in range(scenes) if scene_name(s) in held_out]


def write_nyu_mat(out: str | os.PathLike, scenes: int, frames: int, seed: int = 0, width: int = 640,
                  height: int = 480, progress=None, style: str = "train") -> Path:
    """``nyu_depth_v2_labeled.mat`` and ``splits.mat`` (split by scene) of synthetic frames."""
    out = Path(out)
    _begin(out)
    images, depths, raw_depths, names = [], [], [], []
    jobs = [((seed, s, frames, width, height), {"synchronised": True, "style": style}) for s in range(scenes)]
    with in_order(scene_frames, jobs, frames_per_job=frames) as results:
        for s, rendered in enumerate(results):
            for frame in rendered:
                images.append(frame.rgb_u8)
                depths.append(np.where(frame.depth_rgb_m < 10.0, frame.depth_rgb_m, 0.0))
                registered = register_depth_to_rgb(disparity_to_m(m_to_disparity(frame.depth_ir_m)))
                raw_depths.append(np.nan_to_num(registered, nan=0.0))
                names.append(scene_name(s))
                kill_point("synth-frame")
                if progress:
                    progress()
    write_labeled(out / LABELED_NAME, np.stack(images), np.stack(depths), np.stack(raw_depths), names)
    test_scenes = {scene_name(s) for s in test_scene_indices(scenes)}
    is_test = np.array([n in test_scenes for n in names])
    atomic_write_bytes(out / SPLITS_NAME, encode_splits(np.flatnonzero(~is_test), np.flatnonzero(is_test)))
    _mark_complete(out, "nyu-mat", scenes=scenes, frames=frames, seed=seed, width=width, height=height,
                   **style_setting(style))
    return out / LABELED_NAME
