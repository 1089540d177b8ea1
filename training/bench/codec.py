"""``rgbd-vae bench codec``: bytes per frame against quality, for the latent codecs of SPEC §4.3 and
the trivial codes a latent must beat at equal bytes (:mod:`rgbd_vae_training.codec_baselines`).

The VAE (exported encoder + decoder: ``--model-dir``, or the demo's tiny VAE trained or reused in
``--out``) encodes held-out synthetic 640x480 frames (rooms of a seed the training never used);
μ goes through each codec and is decoded. Baselines are fit on the training split (PCA) and sized
to the bytes of the q8 and q4 codes. Every code is scored at the model's resolution (against the
input resized to it) and at 640x480 (its output upsampled, against the full-resolution frame):
RGB PSNR and SSIM, depth RMSE over the valid truth where the code gives a depth, and the share of
that truth it gives one for ("published": a decoder leaves out depth its validity says is no
reading, and an RMSE over fewer pixels is not a better one). Writes ``codec.json`` and ``codec.png``
(PSNR and depth RMSE against bytes) in ``--out``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

HELD_OUT_SEED = 4242
FULL_SIZE = (480, 640)


def held_out_frames(count: int, width: int = 640, height: int = 480):
    """(RGB u8, depth m) of ``count`` rooms the models never saw (another seed than the training rooms)."""
    from ..synth.generate import generate_scene

    for i in range(count):
        frame = next(generate_scene(seed=HELD_OUT_SEED, scene_index=i, frames=1, width=width, height=height,
                                    synchronised=True))
        yield frame.rgb_u8, frame.depth_rgb_m


def _scores(rgb, depth, true_rgb, true_depth) -> dict:
    from ..metrics import depth_error, psnr, ssim

    error = depth_error(depth, true_depth) if depth is not None else None
    return {"psnr_db": psnr(rgb, true_rgb), "ssim": ssim(rgb, true_rgb),
            "depth_rmse_m": error["rmse"] if error else float("nan"),
            "depth_published": error["published"] if error else float("nan")}


def _upsampled(rgb, depth):
    from rgbd_vae_ros.processing import resize_depth, resize_rgb

    return resize_rgb(rgb, *FULL_SIZE), None if depth is None else resize_depth(depth, *FULL_SIZE)


def _training_vectors(data: Path, height: int, width: int, max_depth_m: float, most: int = 200) -> list:
    """The training split's frames at the model's size (RGB u8, depth m), up to ``most`` spread evenly."""
    from rgbd_vae_ros.processing import resize_depth, resize_rgb

    from ..data import open_dataset

    reader = open_dataset(data, split="train")
    if len(reader) < 2:
        raise ValueError(f"{str(data)!r} has {len(reader)} training frame(s); PCA needs at least 2")
    picks = np.linspace(0, len(reader) - 1, min(most, len(reader))).round().astype(int)
    frames = []
    for i in dict.fromkeys(picks.tolist()):
        frame = reader[i]
        if frame.depth_m is None:
            raise ValueError(f"{str(data)!r} holds frames without depth; the RGB-D baselines need depth")
        frames.append((resize_rgb(frame.rgb_u8, height, width), resize_depth(frame.depth_m, height, width)))
    return frames


def bench_codec(model_dir: Path, data: Path, frames: int) -> list[dict]:
    """One row per code: its bytes per frame and its scores at the model's resolution and at 640x480."""
    from rclpy.serialization import serialize_message

    from rgbd_vae_ros.latent import CODECS, build_latent_message, parse_latent_message
    from rgbd_vae_ros.nodes.processors import quantiser_of
    from rgbd_vae_ros.processing import resize_depth, resize_rgb
    from rgbd_vae_ros.stages import DecodeStage, EncodeStage

    from ..codec_baselines import PCACodec, frame_vector, matched_baselines

    if frames < 1:
        raise ValueError(f"--runs is {frames}; expected at least 1 frame")
    encoder = EncodeStage.open(model_dir, "onnxruntime", "cpu")
    decoder = DecodeStage.open(model_dir, "onnxruntime", "cpu")
    try:
        quantiser, model = quantiser_of(encoder.info), encoder.info.model_id
        height, width, max_depth_m = encoder.height, encoder.width, float(encoder.info.max_depth_m)
        train = _training_vectors(data, height, width, max_depth_m)
        vectors = np.stack([frame_vector(rgb, depth, max_depth_m) for rgb, depth in train])
        dim = encoder.latent_dim
        baselines = {codec: matched_baselines(size, vectors, [rgb for rgb, _ in train[:8]], max_depth_m)
                     for codec, size in (("q8", dim), ("q4", (dim + 1) // 2))}
        rows: dict[str, dict] = {}

        def add(name, family, size, model_res, full_res, message_bytes=None):
            row = rows.setdefault(name, {"code": name, "family": family, "bytes": [], "model": [], "full": [],
                                         "message": []})
            row["bytes"].append(size)
            if message_bytes is not None:
                row["message"].append(message_bytes)
            row["model"].append(model_res)
            row["full"].append(full_res)

        for rgb, depth in held_out_frames(frames):
            small_rgb, small_depth = resize_rgb(rgb, height, width), resize_depth(depth, height, width)
            mu, _ = encoder(rgb, depth)
            for codec in CODECS:
                message = build_latent_message(None, mu, codec=codec, depth="measured", model=model,
                                               quantiser=quantiser)
                _, sent, _ = parse_latent_message(message, quantiser)
                out_rgb, out_depth = decoder(sent)
                add(f"VAE mu {codec}", "VAE", len(message.data), _scores(out_rgb, out_depth, small_rgb, small_depth),
                    _scores(*_upsampled(out_rgb, out_depth), rgb, depth), len(serialize_message(message)))
            for codec, chosen in baselines.items():
                for baseline in chosen:
                    out = baseline.roundtrip(small_rgb, small_depth)
                    # At 640x480 a thumbnail is made from the full frame; PCA only exists at the model's size.
                    full = (_upsampled(out.rgb_u8, out.depth_m) if isinstance(baseline, PCACodec)
                            else (lambda o: (o.rgb_u8, o.depth_m))(baseline.roundtrip(rgb, depth)))
                    add(f"{baseline.name} (at {codec} bytes)", baseline.name.split(" ")[0].split("-")[0], out.bytes,
                        _scores(out.rgb_u8, out.depth_m, small_rgb, small_depth), _scores(*full, rgb, depth))
    finally:
        encoder.close()
        decoder.close()

    def mean(values):
        finite = [v for v in values if math.isfinite(v)]
        return float(np.mean(finite)) if finite else None

    return [{"code": r["code"], "family": r["family"], "bytes": float(np.mean(r["bytes"])),
             "message_bytes": float(np.median(r["message"])) if r["message"] else None,
             "frames": len(r["bytes"]), "resolution": f"{width}x{height}",
             **{f"{key}_{where}": mean([s[key] for s in r[part]])
                for where, part in (("model", "model"), ("640x480", "full"))
                for key in ("psnr_db", "ssim", "depth_rmse_m", "depth_published")}} for r in rows.values()]


def smallest_within(rows: list[dict], tolerance_db: float = 0.2) -> str:
    """The latent codec of fewest bytes whose RGB PSNR (model resolution) is within ``tolerance_db`` of
    f32's: how the default ``latent_codec`` is chosen (SPEC §10)."""
    vae = {r["code"].rsplit(" ", 1)[-1]: r for r in rows if r["family"] == "VAE"}
    reference = vae["f32"]["psnr_db_model"]
    fit = [codec for codec, r in vae.items() if r["psnr_db_model"] >= reference - tolerance_db]
    return min(fit, key=lambda codec: vae[codec]["bytes"])


def format_rows(rows: list[dict]) -> str:
    from .timing import rows_table

    resolution = rows[0]["resolution"] if rows else "model"
    return rows_table(rows, [("code", "code", "s"), ("bytes", "bytes", ".4g"), ("message B", "message_bytes", ".4g"),
                             (f"PSNR dB {resolution}", "psnr_db_model", ".2f"), ("SSIM", "ssim_model", ".3f"),
                             ("depth RMSE m", "depth_rmse_m_model", ".3f"), ("published", "depth_published_model", ".1%"),
                             ("PSNR dB 640x480", "psnr_db_640x480", ".2f"), ("SSIM", "ssim_640x480", ".3f"),
                             ("depth RMSE m", "depth_rmse_m_640x480", ".3f"),
                             ("published", "depth_published_640x480", ".1%")])


_COLOURS = {"VAE": (200, 30, 30), "PCA": (30, 90, 200), "thumbnail": (40, 150, 40), "jpeg": (200, 140, 0),
            "webp": (140, 60, 160)}


def plot(rows: list[dict], path: Path) -> None:
    """Two scatter panels over log2 bytes: RGB PSNR and depth RMSE at the model's resolution, one
    colour per family, with a legend."""
    from PIL import Image, ImageDraw

    from ..figures import write_png

    panel_w, panel_h, margin = 420, 300, 48
    image = Image.new("RGB", (2 * panel_w + 3 * margin, panel_h + 2 * margin + 20), "white")
    draw = ImageDraw.Draw(image)
    sizes = [r["bytes"] for r in rows]
    x_lo, x_hi = math.log2(max(1.0, min(sizes))) - 0.5, math.log2(max(sizes)) + 0.5
    for k, (key, title) in enumerate((("psnr_db_model", "RGB PSNR (dB), higher is better"),
                                      ("depth_rmse_m_model", "depth RMSE (m), lower is better"))):
        values = [r[key] for r in rows if r[key] is not None]
        if not values:
            continue
        y_lo, y_hi = min(values), max(values)
        pad = (y_hi - y_lo) * 0.1 or 0.5
        y_lo, y_hi = y_lo - pad, y_hi + pad
        left, top = margin + k * (panel_w + margin), margin
        draw.rectangle([left, top, left + panel_w, top + panel_h], outline="black")
        draw.text((left, top - 16), title, fill="black")
        for frac in (0.0, 0.5, 1.0):
            value = y_lo + frac * (y_hi - y_lo)
            y = top + panel_h - frac * panel_h
            draw.text((left - 44, y - 6), f"{value:.3g}", fill="black")
        for exponent in range(math.ceil(x_lo), math.floor(x_hi) + 1):
            x = left + (exponent - x_lo) / (x_hi - x_lo) * panel_w
            draw.line([x, top + panel_h, x, top + panel_h + 4], fill="black")
            draw.text((x - 8, top + panel_h + 6), str(2 ** exponent), fill="black")
        draw.text((left + panel_w // 2 - 40, top + panel_h + 20), "bytes per frame", fill="black")
        for r in rows:
            if r[key] is None:
                continue
            x = left + (math.log2(max(1.0, r["bytes"])) - x_lo) / (x_hi - x_lo) * panel_w
            y = top + panel_h - (r[key] - y_lo) / (y_hi - y_lo) * panel_h
            colour = _COLOURS.get(r["family"], (0, 0, 0))
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
    legend_y = panel_h + 2 * margin
    for i, (family, colour) in enumerate(_COLOURS.items()):
        x = margin + i * 120
        draw.ellipse([x, legend_y, x + 8, legend_y + 8], fill=colour)
        draw.text((x + 12, legend_y - 2), family, fill="black")
    write_png(path, np.asarray(image))
