"""NYU Depth V2 Kinect calibration and the raw-depth registration of the NYU toolbox.

Constants from the toolbox's ``camera_params.m``. Pixel coordinates follow the toolbox's
MATLAB convention: the pixel in 0-based column c, row r sits at (c + 1, r + 1). A ROS
CameraInfo (0-based) therefore uses cx - 1, cy - 1 (see :func:`camera_matrix_ros`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

WIDTH, HEIGHT = 640, 480
MAX_DEPTH_M = 10.0

FX_RGB, FY_RGB, CX_RGB, CY_RGB = 518.857901, 519.469611, 325.582449, 253.736166
FX_D, FY_D, CX_D, CY_D = 582.624482, 582.691033, 313.044759, 238.443896

# camera_params.m: R = -[...], reshaped 3x3 column-major, then R = inv(R').
_R_FLAT = -np.array([
    0.99997798940829263, 0.0050518419386157446, 0.0043011152014118693,
    -0.0050359919480810989, 0.99998051861143999, -0.0036879781309514218,
    -0.0043196624923060242, 0.0036662365748484798, 0.99998394948385538,
])
R_DEPTH_TO_RGB = np.linalg.inv(_R_FLAT.reshape(3, 3, order="F").T)
T_DEPTH_TO_RGB = np.array([0.025031875059141302, 0.00066238747008330102, -0.00029342312935846411])

# camera_params.m: lens distortion (k1, k2, p1, p2, k3) of the Brown-Conrady model, normalised coordinates.
KC_RGB = (2.0796615318809061e-01, -5.8613825163911781e-01, 7.2231363135888329e-04, 1.0479627195765181e-03,
          4.9856986684705107e-01)
KC_D = (-9.9897236553084481e-02, 3.9065324602765344e-01, 1.9290592870229277e-03, -1.9422022475975055e-03,
        -5.1031725053400578e-01)
# project_depth_map.m: raw values below this after undistortion are artefacts of the interpolation.
MIN_UNDISTORTED_RAW = 600

# depth_rel2depth_abs.m: metres = 351.3 / (1092.5 - raw); 2047 = no reading.
DISPARITY_A, DISPARITY_B = 351.3, 1092.5
NO_READING = 2047


def disparity_to_m(raw: np.ndarray) -> np.ndarray:
    """Raw 11-bit Kinect disparity to metres, clamped to [0, 10]; 2047 and clamps -> NaN."""
    raw = np.asarray(raw)
    with np.errstate(divide="ignore"):
        depth_m = DISPARITY_A / (DISPARITY_B - raw.astype(np.float64))
    depth_m = np.clip(depth_m, 0.0, MAX_DEPTH_M)
    invalid = (raw >= NO_READING) | (depth_m <= 0.0) | (depth_m >= MAX_DEPTH_M)
    return np.where(invalid, np.nan, depth_m).astype(np.float32)


def m_to_disparity(depth_m: np.ndarray) -> np.ndarray:
    """Metres to raw disparity as the Kinect records it (rounded; out of range -> 2047)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.rint(DISPARITY_B - DISPARITY_A / np.asarray(depth_m, dtype=np.float64))
        ok = np.isfinite(raw) & (raw >= 0) & (raw < NO_READING) & (depth_m < MAX_DEPTH_M)
    return np.where(ok, raw, NO_READING).astype(np.uint16)


def disparity_error_bound_m(depth_m: np.ndarray | float) -> np.ndarray | float:
    """Largest error that rounding the disparity to an integer adds at ``depth_m``.

    d = A / (B - raw); a rounding error e in [-0.5, 0.5] gives d' - d = d^2 e / (A - d e),
    largest at e = +0.5: 0.5 d^2 / (A - 0.5 d).
    """
    return 0.5 * np.square(depth_m) / (DISPARITY_A - 0.5 * np.asarray(depth_m))


def intrinsics(camera: str, width: int = WIDTH, height: int = HEIGHT) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of the 'rgb' or 'depth' camera at ``width`` x ``height`` (toolbox convention).

    Other sizes scale the 640x480 calibration; pixel edges sit at 0.5 and W + 0.5.
    """
    fx, fy, cx, cy = (FX_RGB, FY_RGB, CX_RGB, CY_RGB) if camera == "rgb" else (FX_D, FY_D, CX_D, CY_D)
    sx, sy = width / WIDTH, height / HEIGHT
    return fx * sx, fy * sy, (cx - 0.5) * sx + 0.5, (cy - 0.5) * sy + 0.5


def register_depth_to_rgb(depth_ir_m: np.ndarray) -> np.ndarray:
    """Depth seen by the IR camera, re-projected into the RGB camera (toolbox ``project_depth_map``).

    Each IR pixel becomes a 3-D point, moves into the RGB camera with R, t, and lands on the
    nearest RGB pixel; where several land on one pixel the nearest surface wins (z-buffer).
    Unlike the toolbox, the value stored is the point's depth along the RGB camera's axis
    (the toolbox keeps the IR camera's, up to ~1 cm different). Holes stay NaN.
    """
    height, width = depth_ir_m.shape
    fx_d, fy_d, cx_d, cy_d = intrinsics("depth", width, height)
    fx_rgb, fy_rgb, cx_rgb, cy_rgb = intrinsics("rgb", width, height)
    rows, cols = np.nonzero(np.isfinite(depth_ir_m) & (depth_ir_m > 0))
    z = depth_ir_m[rows, cols].astype(np.float32)
    # Unit-depth ray of each IR pixel, scaled by its depth, then moved into the RGB camera.
    # The toolbox's R is a rotation times -1; the projection divides the sign out.
    rays = np.stack([(cols + 1 - cx_d) / fx_d, (rows + 1 - cy_d) / fy_d, np.ones(len(z))]).astype(np.float32)
    rgb_from_ir = (-R_DEPTH_TO_RGB).astype(np.float32)
    points_rgb = (rgb_from_ir @ rays) * z - T_DEPTH_TO_RGB.astype(np.float32)[:, None]
    z_rgb = points_rgb[2]
    col = np.rint(points_rgb[0] * fx_rgb / z_rgb + cx_rgb).astype(np.int64) - 1
    row = np.rint(points_rgb[1] * fy_rgb / z_rgb + cy_rgb).astype(np.int64) - 1
    inside = (z_rgb > 0) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
    out = np.full(height * width, np.inf, dtype=np.float32)
    np.minimum.at(out, row[inside] * width + col[inside], z_rgb[inside])  # z-buffer: the nearest wins
    out[np.isinf(out)] = np.nan
    return out.reshape(height, width)


def camera_matrix_ros(camera: str, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """K of the 'rgb' or 'depth' camera in ROS's 0-based pixel convention."""
    fx, fy, cx, cy = intrinsics(camera, width, height)
    return np.array([[fx, 0.0, cx - 1.0], [0.0, fy, cy - 1.0], [0.0, 0.0, 1.0]])


def distort_normalised(x: np.ndarray, y: np.ndarray, kc: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Where the lens puts the normalised point (x, y): radial k1, k2, k3 and tangential p1, p2."""
    k1, k2, p1, p2, k3 = kc
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    return (x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x),
            y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y)


def undistort_normalised(xd: np.ndarray, yd: np.ndarray, kc: tuple[float, ...],
                         iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The point the lens moved to (xd, yd): the inverse of :func:`distort_normalised` by fixed-point
    iteration (converges to well under 0.01 px inside the Kinect's view)."""
    k1, k2, p1, p2, k3 = kc
    x, y = xd.copy(), yd.copy()
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        x = (xd - 2.0 * p1 * x * y - p2 * (r2 + 2.0 * x * x)) / radial
        y = (yd - p1 * (r2 + 2.0 * y * y) - 2.0 * p2 * x * y) / radial
    return x, y


@lru_cache(maxsize=8)
def _sampling_coordinates(camera: str, width: int, height: int, inverse: bool) -> np.ndarray:
    """(2, H, W) 0-based (row, col) to sample for each output pixel: undistorting samples the recorded
    (distorted) image where the lens put each pixel's ray; distorting (``inverse``) samples a pinhole
    image where each recorded pixel's ray really points."""
    fx, fy, cx, cy = intrinsics(camera, width, height)
    kc = KC_RGB if camera == "rgb" else KC_D
    cols, rows = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    x, y = (cols + 1 - cx) / fx, (rows + 1 - cy) / fy  # toolbox convention: 0-based pixel c sits at c + 1
    x, y = undistort_normalised(x, y, kc) if inverse else distort_normalised(x, y, kc)
    coords = np.stack([y * fy + cy - 1, x * fx + cx - 1])
    coords.setflags(write=False)
    return coords


def _resample(image: np.ndarray, camera: str, inverse: bool, order: int, outside: float) -> np.ndarray:
    from scipy.ndimage import map_coordinates

    height, width = image.shape[:2]
    coords = _sampling_coordinates(camera, width, height, inverse)
    planes = image[..., None] if image.ndim == 2 else image
    out = np.stack([map_coordinates(planes[..., c].astype(np.float32), coords, order=order, mode="constant",
                                    cval=outside) for c in range(planes.shape[-1])], axis=-1)
    return out[..., 0] if image.ndim == 2 else out


def undistort_rgb(rgb_u8: np.ndarray) -> np.ndarray:
    """A recorded RGB frame with the lens distortion removed (toolbox ``undistort``: bilinear, black
    outside), so that the pinhole K of :func:`camera_matrix_ros` with D = 0 describes it."""
    return np.clip(np.rint(_resample(rgb_u8, "rgb", False, 1, 0.0)), 0, 255).astype(np.uint8)


def undistort_raw_depth(raw: np.ndarray) -> np.ndarray:
    """Raw disparity with the IR lens distortion removed, as ``project_depth_map`` does: bilinear
    interpolation; every pixel that took anything from a no-reading pixel, and every value below
    :data:`MIN_UNDISTORTED_RAW` (blends with the empty outside), becomes :data:`NO_READING`.

    (The toolbox marks the frame's maximum as no reading; that is 2047 wherever a frame has a hole,
    and here it is always 2047, so a frame without holes keeps its farthest pixels.)"""
    raw = np.asarray(raw)
    values = _resample(raw.astype(np.float32), "depth", False, 1, 0.0)
    touched_hole = _resample((raw >= NO_READING).astype(np.float32), "depth", False, 1, 0.0) > 0
    return np.where(touched_hole | (values < MIN_UNDISTORTED_RAW), float(NO_READING), values)


def distort_rgb(rgb_u8: np.ndarray) -> np.ndarray:
    """What the RGB lens records of a pinhole image (for the synthetic Kinect): bilinear, black outside."""
    return np.clip(np.rint(_resample(rgb_u8, "rgb", True, 1, 0.0)), 0, 255).astype(np.uint8)


def distort_raw_depth(raw: np.ndarray) -> np.ndarray:
    """What the IR lens records of a pinhole raw-disparity image (for the synthetic Kinect): nearest
    sample (no invented depths between surfaces), no reading where the ray leaves the pinhole view."""
    return np.rint(_resample(np.asarray(raw, dtype=np.float32), "depth", True, 0, float(NO_READING))
                   ).astype(np.uint16)
