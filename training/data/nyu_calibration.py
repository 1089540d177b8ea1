"""NYU Depth V2 Kinect calibration and the raw-depth registration of the NYU toolbox.

Constants from the toolbox's ``camera_params.m``. Pixel coordinates follow the toolbox's
MATLAB convention: the pixel in 0-based column c, row r sits at (c + 1, r + 1). A ROS
CameraInfo (0-based) therefore uses cx - 1, cy - 1 (see :func:`camera_matrix_ros`).
"""

from __future__ import annotations

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
