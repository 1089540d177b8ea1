"""Picture grids for TensorBoard, ``eval`` figures and the demo report (uint8 RGB, no plotting library)."""

from __future__ import annotations

import io
import os

import numpy as np

from rgbd_vae_ros.files import atomic_write_bytes
from rgbd_vae_ros.processing import resize_rgb


def tile_grid(rows: list[list[np.ndarray]], tile_height: int | None = None, pad: int = 2) -> np.ndarray:
    """Lay (H, W, 3) uint8 tiles out row by row on a white background, each scaled to ``tile_height``."""
    tile_height = tile_height or max(t.shape[0] for row in rows for t in row)

    def scaled(tile: np.ndarray) -> np.ndarray:
        width = max(1, round(tile.shape[1] * tile_height / tile.shape[0]))
        return resize_rgb(tile, tile_height, width)

    rows = [[scaled(t) for t in row] for row in rows]
    width = max(sum(t.shape[1] + pad for t in row) + pad for row in rows)
    canvas = np.full((len(rows) * (tile_height + pad) + pad, width, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        x = pad
        y = pad + r * (tile_height + pad)
        for tile in row:
            canvas[y:y + tile_height, x:x + tile.shape[1]] = tile
            x += tile.shape[1] + pad
    return canvas


def depth_scale_m(depths_m: list[np.ndarray], max_depth_m: float) -> float:
    """A figure's colour scale: the 99th percentile of its true depth, rounded up to 0.5 m."""
    values = np.concatenate([d[np.isfinite(d) & (d > 0)] for d in depths_m] or [np.zeros(0)])
    if values.size == 0:
        return max_depth_m
    return float(min(max_depth_m, np.ceil(np.percentile(values, 99) * 2) / 2))


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 image as PNG, atomically."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def label_columns(grid: np.ndarray, titles: list[str], widths: list[int], note: str = "", pad: int = 2) -> np.ndarray:
    """``grid`` (from :func:`tile_grid`, whose columns are ``widths`` pixels wide) with a title
    above each column and an optional note below, in PIL's built-in font."""
    from PIL import Image, ImageDraw

    line = 14
    canvas = Image.new("RGB", (grid.shape[1], grid.shape[0] + line + (line if note else 0)), "white")
    canvas.paste(Image.fromarray(grid), (0, line))
    draw = ImageDraw.Draw(canvas)
    x = pad
    for title, width in zip(titles, widths):
        draw.text((x + 2, 1), title, fill="black")
        x += width + pad
    if note:
        draw.text((pad + 2, grid.shape[0] + line + 1), note, fill="black")
    return np.asarray(canvas)


def colour_bar(scale_m: float, width: int, pad: int = 2) -> np.ndarray:
    """The depth colours of a figure as a strip from 0 to ``scale_m``, its ticks labelled in metres."""
    from PIL import Image, ImageDraw

    from rgbd_vae_ros.processing import colorize_depth

    strip, line = 10, 14
    ramp = np.tile(np.linspace(0.0, scale_m, width, dtype=np.float32), (strip, 1))
    ramp[:, 0] = scale_m * 0.5 / width  # 0 m itself would be drawn as "no reading"
    caption = "depth colour scale (metres); black = no reading"
    caption_width = round(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(caption))
    canvas = Image.new("RGB", (max(width, caption_width) + 2 * pad, strip + 2 * line), "white")
    canvas.paste(Image.fromarray(colorize_depth(ramp, scale_m)), (pad, 0))
    draw = ImageDraw.Draw(canvas)
    for fraction in (0.0, 0.5, 1.0):
        label = f"{fraction * scale_m:g} m"
        x = pad + round(fraction * (width - 1))
        draw.line([(x, strip), (x, strip + 3)], fill="black")
        left = min(max(0, x - draw.textlength(label) * fraction), width + pad - draw.textlength(label))
        draw.text((left, strip + 3), label, fill="black")
    draw.text((pad, strip + line + 1), caption, fill="black")
    return np.asarray(canvas)


def labelled_grid(rows: list[list[np.ndarray]], titles: list[str], scale_m: float | None = None,
                  tile_height: int | None = None, pad: int = 2) -> np.ndarray:
    """A figure: :func:`tile_grid` of ``rows`` with a title over each column and, when the figure
    shows depth coloured on ``scale_m``, a colour bar in metres below."""
    if len(titles) != len(rows[0]):
        raise ValueError(f"{len(titles)} column titles for {len(rows[0])} columns")
    tile_height = tile_height or max(t.shape[0] for row in rows for t in row)
    widths = [max(1, round(t.shape[1] * tile_height / t.shape[0])) for t in rows[0]]
    figure = label_columns(tile_grid(rows, tile_height, pad), titles, widths, pad=pad)
    if scale_m is None:
        return figure
    bar = colour_bar(scale_m, max(120, min(figure.shape[1] - 2 * pad, 320)), pad)
    canvas = np.full((figure.shape[0] + bar.shape[0], max(figure.shape[1], bar.shape[1]), 3), 255, dtype=np.uint8)
    canvas[:figure.shape[0], :figure.shape[1]] = figure
    canvas[figure.shape[0]:, :bar.shape[1]] = bar
    return canvas
