"""What each latent codec (SPEC §4.3) costs in quality: the measurement behind the default of the
``latent_codec`` parameter (SPEC §10: the smallest codec within 0.2 dB of f32).

    python -m rgbd_vae_training.bench.latent_codecs [--out DIR] [--frames N]

Trains the demo's tiny VAE on the demo's synthetic training rooms (or reuses it from ``DIR``),
exports it (the quantiser table fit on those rooms' training split), then encodes ``N`` held-out
synthetic 640x480 frames (rooms of another seed), sends μ through each codec and decodes it: RGB
PSNR and depth RMSE against the input at the model's resolution, and the bytes of ``data`` and of
the whole serialised message.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HELD_OUT_SEED = 4242


def held_out_frames(count: int, width: int = 640, height: int = 480):
    """(RGB u8, depth m) of ``count`` rooms the models never saw (another seed than the training rooms)."""
    from ..synth.generate import generate_scene

    for i in range(count):
        frame = next(generate_scene(seed=HELD_OUT_SEED, scene_index=i, frames=1, width=width, height=height,
                                    synchronised=True))
        yield frame.rgb_u8, frame.depth_rgb_m


def measure(models: Path, frames: int) -> list[dict]:
    from rclpy.serialization import serialize_message

    from rgbd_vae_ros.latent import CODECS, build_latent_message, parse_latent_message
    from rgbd_vae_ros.nodes.processors import quantiser_of
    from rgbd_vae_ros.processing import resize_depth, resize_rgb
    from rgbd_vae_ros.stages import DecodeStage, EncodeStage

    from ..metrics import psnr

    encoder = EncodeStage.open(models, "onnxruntime", "cpu")
    decoder = DecodeStage.open(models, "onnxruntime", "cpu")
    quantiser, model = quantiser_of(encoder.info), encoder.info.model_id
    scores = {codec: {"psnr": [], "rmse": [], "data": [], "message": []} for codec in CODECS}
    for rgb, depth in held_out_frames(frames):
        mu, _ = encoder(rgb, depth)
        for codec in CODECS:
            msg = build_latent_message(None, mu, codec=codec, depth="measured", model=model, quantiser=quantiser)
            _, sent, _ = parse_latent_message(msg, quantiser)
            out_rgb, out_depth = decoder(sent)
            true_rgb = resize_rgb(rgb, *out_rgb.shape[:2])
            true_depth = resize_depth(depth, *out_depth.shape)
            valid = np.isfinite(true_depth) & (true_depth > 0) & (true_depth <= encoder.info.max_depth_m)
            s = scores[codec]
            s["psnr"].append(psnr(out_rgb, true_rgb))
            s["rmse"].append(float(np.sqrt(np.mean((out_depth[valid] - true_depth[valid]) ** 2))))
            s["data"].append(len(msg.data))
            s["message"].append(len(serialize_message(msg)))
    encoder.close(), decoder.close()
    reference = float(np.mean(scores["f32"]["psnr"]))
    return [{"codec": codec, "data_bytes": int(np.median(s["data"])), "message_bytes": int(np.median(s["message"])),
             "rgb_psnr_db": float(np.mean(s["psnr"])), "psnr_vs_f32_db": float(np.mean(s["psnr"])) - reference,
             "depth_rmse_m": float(np.mean(s["rmse"])), "frames": len(s["psnr"])} for codec, s in scores.items()]


def smallest_within(rows: list[dict], tolerance_db: float = 0.2) -> str:
    """The codec of fewest bytes whose RGB PSNR is within ``tolerance_db`` of f32 (SPEC §10)."""
    fit = [r for r in rows if r["psnr_vs_f32_db"] >= -tolerance_db]
    return min(fit, key=lambda r: r["data_bytes"])["codec"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("codec_bench_out"), help="work folder (models are reused)")
    parser.add_argument("--frames", type=int, default=40, help="held-out synthetic frames (640x480)")
    args = parser.parse_args(argv)
    from ..demo import train_or_reuse, training_rooms
    from ..export import export_checkpoint
    from ..train.config import load_config

    rooms = training_rooms(args.out)
    checkpoint = train_or_reuse("tiny_vae", load_config("tiny_vae"), rooms, args.out / "models" / "vae")
    onnx = args.out / "models" / "onnx"
    export_checkpoint(str(checkpoint), onnx, data=str(rooms))
    rows = measure(onnx, args.frames)
    print(f"{'codec':<6} {'data B':>7} {'message B':>10} {'RGB PSNR dB':>12} {'vs f32 dB':>10} {'depth RMSE m':>13}")
    for r in rows:
        print(f"{r['codec']:<6} {r['data_bytes']:>7} {r['message_bytes']:>10} {r['rgb_psnr_db']:>12.3f} "
              f"{r['psnr_vs_f32_db']:>10.3f} {r['depth_rmse_m']:>13.4f}")
    print(json.dumps({"rows": rows, "smallest_within_0.2_dB": smallest_within(rows)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
