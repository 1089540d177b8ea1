"""``rgbd-vae eval {vae,depth,places} --checkpoint FILE --data PATH [--out DIR]``: metrics JSON + PNG figure.

Depth models are scored with the NYU protocol (:mod:`.metrics`) on the data set's test split at
the ground truth's own resolution, next to a baseline that predicts the mean training depth
everywhere. VAEs are scored at the model resolution: RGB PSNR/SSIM, depth RMSE/AbsRel in metres,
KL, bytes per latent, next to a baseline that outputs the mean training image. ``places`` scores
place recognition on a revisit walk (:mod:`.place_eval`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

FIGURE_SAMPLES = 4
BATCH = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=("vae", "depth", "places"),
                        help="what the checkpoint is scored as (places: a VAE's codes for place recognition on a "
                             "walk written by 'rgbd-vae synth --walk revisit')")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by rgbd-vae train")
    parser.add_argument("--data", required=True, help="data set with a test split (SPEC §6)")
    parser.add_argument("--out", default=None, help="output folder (default: eval/ beside the checkpoint)")
    parser.add_argument("--limit", type=int, default=0, help="score at most this many test frames")
    parser.add_argument("--split", choices=("test", "train", "all"), default="test",
                        help="depth / vae: the frames scored (default test; 'all' for a set without a split)")
    parser.add_argument("--baseline-depth", type=float, default=None, metavar="M",
                        help="depth: the constant depth of the baseline (default: the mean of the training split, "
                             "or of the scored frames when there is none)")
    parser.add_argument("--mask-threshold", type=float, default=None, metavar="P",
                        help="depth models with a validity mask: the mask probability below which a pixel is not "
                             "published, as the nodes' mask_threshold (default 0.5)")
    places = parser.add_argument_group("places")
    places.add_argument("--json", type=Path, default=None, help="also write the metrics JSON to this file")
    places.add_argument("--train-data", default=None,
                        help="fit PCA and the code standardisation on this data set's training frames "
                             "(default: the walk's first visits)")
    places.add_argument("--recent-window", type=float, default=10.0,
                        help="seconds before a frame whose keyframes it is not matched to (default 10)")
    places.add_argument("--keyframe-distance", type=float, default=0.0,
                        help="cosine distance a code moves before it is a new keyframe (default 0: every frame)")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent / "eval"
    if args.task == "places":
        from .place_eval import places_table

        result = evaluate_places_command(args.checkpoint, args.data, out, args.json, args.train_data,
                                         args.recent_window, args.keyframe_distance)
        print(places_table(result))
        print(json.dumps(result["summary"]))
        return 0
    result = evaluate(args.task, args.checkpoint, args.data, out, limit=args.limit, split=args.split,
                      baseline_depth_m=args.baseline_depth, mask_threshold=args.mask_threshold)
    print(metrics_table(result))
    print(json.dumps(result["summary"]))
    return 0


def metrics_table(result: dict) -> str:
    """The scores of :func:`evaluate` as an aligned table, the model next to its baseline."""
    from .bench.timing import rows_table

    if result["task"] == "depth":
        baseline = result["mean_depth_baseline"]
        name = "constant depth" if baseline["source"] == "--baseline-depth" else "mean depth"
        rows = [{"metric": key, "model": value, "baseline": baseline.get(key)}
                for key, value in result["depth"].items() if key != "images"]
    else:
        baseline, name = result["mean_image_baseline"], "mean image"
        rows = [{"metric": "RGB PSNR (dB)", "model": result["rgb"]["psnr_db"], "baseline": baseline["psnr_db"]},
                {"metric": "RGB SSIM", "model": result["rgb"]["ssim"]}]
        rows += [{"metric": f"depth {key} (m)" if key in ("rmse", "mae") else f"depth {key}", "model": value}
                 for key, value in (result["depth_m"] or {}).items() if key != "images"]
        if result.get("holes_published") is not None:
            rows.append({"metric": "depth published in holes", "model": result["holes_published"]})
        rows += [{"metric": "KL (nats)", "model": result["kl"]},
                 {"metric": "bytes per latent (mu, fp32)", "model": result["bytes_per_latent"]["mu_fp32"]}]
    if result.get("mask"):
        from .mask_eval import table_rows

        rows += table_rows(result["mask"])
    table = rows_table(rows, [("metric", "metric", "s"), ("model", "model", ".4g"),
                              (f"{name} baseline", "baseline", ".4g")])
    if result.get("codes"):
        table += "\ncodes at equal bytes (per frame, model resolution):\n" + rows_table(
            result["codes"], [("code", "code", "s"), ("bytes", "bytes", ".4g"), ("RGB PSNR dB", "psnr_db", ".4g"),
                              ("SSIM", "ssim", ".3f"), ("depth RMSE m", "depth_rmse_m", ".4g"),
                              ("depth published", "depth_published", ".3f")])
    header = f"{result['model']} on {result['images']} {result.get('split', 'test')} images"
    if result["task"] == "depth":
        baseline = result["mean_depth_baseline"]
        header += f"; baseline {baseline['depth_m']:.3g} m everywhere ({baseline['source']})"
        if result.get("mask"):
            header += (f"; validity mask at threshold {result['mask']['threshold']:g}, pixels pooled over whole "
                       "frames at the truth's size")
    return header + "\n" + table


def evaluate(task: str, checkpoint: str, data: str, out: Path, limit: int = 0, split: str = "test",
             baseline_depth_m: float | None = None, mask_threshold: float | None = None) -> dict:
    from rgbd_vae_ros.models import load_checkpoint, model_from_checkpoint

    from rgbd_vae_ros.files import atomic_write_text

    from .figures import write_png

    out = Path(out)
    if limit < 0:
        raise ValueError(f"--limit is {limit}; expected 0 (every test frame) or more")
    if baseline_depth_m is not None and not (math.isfinite(baseline_depth_m) and baseline_depth_m > 0):
        raise ValueError(f"--baseline-depth is {baseline_depth_m}; expected a depth in metres above 0")
    if baseline_depth_m is not None and task != "depth":
        raise ValueError("--baseline-depth is for 'eval depth'; a VAE's baseline is the mean image")
    if mask_threshold is not None and not (task == "depth" and 0.0 <= mask_threshold <= 1.0):
        raise ValueError(f"--mask-threshold is {mask_threshold}; expected a probability in [0, 1] with 'eval depth'")
    payload = load_checkpoint(checkpoint)
    model = model_from_checkpoint(payload)
    max_depth_m = float(payload.get("config", {}).get("train", {}).get("max_depth_m", 10.0))
    if task == "depth":
        result, figure = _evaluate_depth(model, data, max_depth_m, limit, split, baseline_depth_m, mask_threshold)
    else:
        result, figure = _evaluate_vae(model, payload, data, max_depth_m, limit, split)
    result["split"] = split
    result["checkpoint"] = str(checkpoint)
    result["model"] = payload["model_name"]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(_finite_or_null(result), indent=2, allow_nan=False) + "\n")
    write_png(out / "figure.png", figure)
    result["summary"] = {"model": payload["model_name"], "images": result["images"],
                         "metrics": str(out / "metrics.json"), "figure": str(out / "figure.png")}
    return result


def evaluate_places_command(checkpoint: str, data: str, out: Path, json_file: Path | None = None,
                            train_data: str | None = None, recent_window_s: float = 10.0,
                            keyframe_distance: float = 0.0) -> dict:
    """``eval places``: metrics into ``out/places.json`` (and ``json_file``)."""
    from rgbd_vae_ros.files import atomic_write_text
    from rgbd_vae_ros.models import load_checkpoint, model_from_checkpoint

    from .figures import write_png
    from .place_eval import evaluate_places

    if not recent_window_s >= 0 or not math.isfinite(recent_window_s):
        raise ValueError(f"--recent-window is {recent_window_s}; expected a finite number of seconds >= 0")
    if not 0.0 <= keyframe_distance <= 2.0:
        raise ValueError(f"--keyframe-distance is {keyframe_distance}; expected a cosine distance in [0, 2]")
    payload = load_checkpoint(checkpoint)
    model = model_from_checkpoint(payload)
    figure, result = evaluate_places(model, payload, data, train_data, recent_window_s, keyframe_distance)
    result.update(checkpoint=str(checkpoint), model=payload["model_name"], data=str(data))
    text = json.dumps(_finite_or_null(result), indent=2, allow_nan=False) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "places.json"] + ([Path(json_file)] if json_file else [])
    for path in written:
        atomic_write_text(path, text)
    write_png(out / "places.png", figure)
    result["summary"] = {"model": payload["model_name"], "images": result["images"],
                         "metrics": [str(p) for p in written], "figure": str(out / "places.png")}
    return result


def _finite_or_null(value):
    """JSON has no inf or NaN (a perfect reconstruction has infinite PSNR): they become null."""
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _spread(count: int, most: int = 200) -> list[int]:
    """Up to ``most`` indices spread evenly over ``count`` items."""
    return np.linspace(0, count - 1, min(most, count)).round().astype(int).tolist()


def has_mask(model) -> bool:
    """Whether a model estimates a validity mask with its depth (mff_depth; an rgb2rgbd VAE's decoded validity)."""
    return hasattr(model.config, "mask_mode") if model.kind == "depth" else model.config.mode == "rgb2rgbd"


def depth_predictor(model, max_depth_m: float, with_mask: bool = False):
    """A function from RGB uint8 (B, H, W, 3) at the model size to metres (B, H, W); ``with_mask``:
    to (metres, mask probability (B, H, W)) for a model with a validity mask."""
    import torch

    from rgbd_vae_ros.models.parts import DepthPart
    from rgbd_vae_ros.processing import depth_from_unit_range, rgb_to_unit_range

    if model.kind == "vae" and model.config.mode != "rgb2rgbd":
        raise ValueError(f"a {model.config.mode!r} VAE does not estimate depth from RGB; "
                         "evaluate it with 'eval vae' or train an rgb2rgbd / depth model")

    part = DepthPart(model)  # what the exported depth part computes: depth, and the mask where there is one

    def predict(rgb_u8: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(rgb_to_unit_range(rgb_u8)).permute(0, 3, 1, 2)  # (B, 3, H, W)
        with torch.no_grad():
            outputs = part(x)  # (B, 1, H, W) each
        depth_m = depth_from_unit_range(outputs[0][:, 0].numpy(), max_depth_m)
        return (depth_m, outputs[1][:, 0].numpy()) if with_mask else depth_m

    return predict


def _model_input_size(model) -> tuple[int, int]:
    config = model.config
    if hasattr(config, "input_height"):
        return config.input_height, config.input_width
    return config.image_size, config.image_size


def _evaluate_depth(model, data: str, max_depth_m: float, limit: int, split: str = "test",
                    baseline_depth_m: float | None = None, mask_threshold: float | None = None):
    from rgbd_vae_ros.processing import colorize_depth, resize_depth, resize_rgb, valid_depth_mask

    from .data import open_dataset
    from .figures import depth_scale_m, labelled_grid
    from .metrics import average, depth_metrics

    from .mask_eval import DEFAULT_THRESHOLD, MaskTally, mask_panels, resize_mask

    masked = has_mask(model)
    if mask_threshold is not None and not masked:
        raise ValueError(f"--mask-threshold is for models with a validity mask; {model.model_name} has none")
    tally = MaskTally(DEFAULT_THRESHOLD if mask_threshold is None else mask_threshold) if masked else None
    predict = depth_predictor(model, max_depth_m, with_mask=masked)
    test = open_dataset(data, split=split)
    if len(test) == 0:
        raise ValueError(f"{data!r} has no {split} frames to evaluate on")
    height, width = _model_input_size(model)
    # the frames as training and the nodes see them: centre-cropped to the model's aspect, never stretched
    from .data.detect import detect_layout
    from .train.geometry import AspectFrames

    test = AspectFrames(test, height, width, detect_layout(data))
    baseline_m, source = _depth_baseline(data, split, test, baseline_depth_m)
    count = min(len(test), limit) if limit else len(test)
    shown = set(_spread(count, FIGURE_SAMPLES))
    scores, baseline_scores, rows = [], [], []
    for start in range(0, count, BATCH):
        frames = [test[i] for i in range(start, min(start + BATCH, count))]
        if any(f.depth_m is None for f in frames):
            raise ValueError(f"{data!r} is read as {_layout_name(data)}, whose frames have no depth to score against")
        predicted = predict(np.stack([resize_rgb(f.rgb_u8, height, width) for f in frames]))
        masks = predicted[1] if masked else [None] * len(frames)
        for index, (frame, pred_small, mask_small) in enumerate(zip(frames, predicted[0] if masked else predicted,
                                                                    masks), start=start):
            gt = frame.depth_m
            pred = resize_depth(pred_small, *gt.shape)
            scores.append(depth_metrics(pred, gt))
            baseline_scores.append(depth_metrics(np.full_like(gt, baseline_m), gt))
            extra = []
            if masked:
                mask = resize_mask(mask_small, *gt.shape)
                tally.add(pred, mask, gt)
                extra = mask_panels(mask, gt, tally.threshold) if index in shown else []
            if index in shown:
                rows.append((frame.rgb_u8, np.where(valid_depth_mask(gt), gt, np.nan), pred, extra))
    scale_m = depth_scale_m([gt for _, gt, _, _ in rows], max_depth_m)
    rows = [[rgb, colorize_depth(gt, scale_m), colorize_depth(pred, scale_m), *extra] for rgb, gt, pred, extra in rows]
    result = {"task": "depth", "protocol": "NYU: gt in (1e-3, 10) m, pred clamped to [1e-3, 10], Eigen crop, "
                                           "per-image mean", "images": count,
              "depth": average(scores),
              "mean_depth_baseline": {"depth_m": baseline_m, "source": source, **average(baseline_scores)}}
    titles = ["input RGB", "true depth", "estimated depth"]
    if masked:
        result["mask"] = tally.result()
        titles += [f"mask (red: < {tally.threshold:g})", "true validity"]
    figure = labelled_grid(rows, titles, scale_m, tile_height=min(240, rows[0][0].shape[0]))
    return result, figure


def _layout_name(data: str) -> str:
    from .data.detect import detect_layout

    return f"the {detect_layout(data)!r} layout"


def _depth_baseline(data: str, split: str, scored, baseline_depth_m: float | None) -> tuple[float, str]:
    """The baseline's constant depth and where it comes from: --baseline-depth, else the training
    split's mean when the test split is scored and a training split exists, else the scored frames'
    own mean (an oracle constant, said so)."""
    from .data import open_dataset

    if baseline_depth_m is not None:
        return float(baseline_depth_m), "--baseline-depth"
    if split == "test":
        train = open_dataset(data, split="train")
        if len(train):
            return mean_depth(train), "mean depth of the training split"
    return mean_depth(scored, "scored"), "mean depth of the scored frames themselves (no training split)"


def mean_image(reader, which: str = "training") -> np.ndarray:
    """Mean RGB (uint8, at the first frame's size) over (up to 200 evenly spread) training frames:
    the image a code that knows nothing of the frame would decode to."""
    from rgbd_vae_ros.processing import resize_rgb

    if len(reader) == 0:
        raise ValueError(f"the data set has no {which} frames for the mean-image baseline")
    indices = _spread(len(reader))
    first = reader[indices[0]].rgb_u8
    total = np.zeros(first.shape, np.float64)
    for i in indices:
        total += resize_rgb(reader[i].rgb_u8, *first.shape[:2])
    return np.clip(np.rint(total / len(indices)), 0, 255).astype(np.uint8)


def mean_depth(reader, which: str = "training") -> float:
    """Mean valid depth over (up to 200 evenly spread) training frames."""
    from rgbd_vae_ros.processing import valid_depth_mask

    if len(reader) == 0:
        raise ValueError(f"the data set has no {which} frames for the mean-depth baseline")
    total, pixels = 0.0, 0
    for i in _spread(len(reader)):
        depth = reader[i].depth_m
        if depth is None:
            raise ValueError(f"the data set has {which} frames without depth; the mean-depth baseline needs depth")
        valid = valid_depth_mask(depth)
        total, pixels = total + float(depth[valid].sum()), pixels + int(valid.sum())
    return total / max(pixels, 1)


def _evaluate_vae(model, payload: dict, data: str, max_depth_m: float, limit: int, split: str = "test"):
    import torch

    from rgbd_vae_ros.processing import decoded_planes, depth_from_unit_range, rgb_from_unit_range

    from .figures import labelled_grid
    from .losses import kl_divergence
    from .metrics import average, depth_error, psnr, ssim
    from .train.config import config_from_values
    from .train.tasks import make_task, open_samples

    if model.kind != "vae":
        raise ValueError(f"{payload['model_name']} is a depth model; score it with 'eval depth'")
    # checkpoints written outside `train` carry no training config: the model's alone will do
    values = payload.get("config") or {"task": "vae", "model": {"name": payload["model_name"],
                                                                  **payload["model_config"]}}
    task = make_task(config_from_values(values))
    test = open_samples(task, data, split, augment=False)
    train = test if split != "test" else _train_samples_or_none(task, data) or test
    mean_rgb = rgb_from_unit_range(_mean_sample(train, "rgb").permute(1, 2, 0).numpy())
    count = min(len(test), limit) if limit else len(test)
    rgb_psnr, rgb_ssim, depth_scores, kl, baseline_psnr, rows = [], [], [], [], [], []
    holes = np.zeros(2, np.int64)  # the true holes' pixels decoded as depth, of all of them
    for start in range(0, count, BATCH):
        batch = torch.utils.data.default_collate([test[i] for i in range(start, min(start + BATCH, count))])
        prepared = task.prepare(batch, torch.device("cpu"))
        with torch.no_grad():
            out = task.forward(model, prepared)
        kl += kl_divergence(out["mu"], out["logvar"]).tolist()
        recon, target = out["recon"].permute(0, 2, 3, 1).numpy(), prepared["target"].permute(0, 2, 3, 1).numpy()
        for i in range(len(recon)):
            pred_rgb, true_rgb = rgb_from_unit_range(recon[i, ..., :3]), rgb_from_unit_range(target[i, ..., :3])
            rgb_psnr.append(psnr(pred_rgb, true_rgb))
            rgb_ssim.append(ssim(pred_rgb, true_rgb))
            baseline_psnr.append(psnr(mean_rgb, true_rgb))
            if target.shape[-1] == 4:
                true_depth = depth_from_unit_range(target[i, ..., 3], max_depth_m)
                truly = prepared["valid"][i, 3].numpy()
                true_depth[~truly] = np.nan
                _, decoded_m, decoded = decoded_planes(recon[i].transpose(2, 0, 1), max_depth_m)
                holes += np.count_nonzero(decoded & ~truly), np.count_nonzero(~truly)
                depth_scores.append(depth_error(decoded_m, true_depth))  # where the decoder publishes depth
        if not rows:  # the figure's samples, all from the first batch (BATCH >= FIGURE_SAMPLES)
            rows = task.panels(out, prepared, FIGURE_SAMPLES)
            titles, scale_m = task.panel_titles(prepared), task.panel_scale_m(prepared, FIGURE_SAMPLES)
    latent = model.config.latent_dim
    codes = _codes_at_equal_bytes(model, task, train, test, count, max_depth_m) if not task.conditional else None
    result = {"task": "vae", "images": count,
              "rgb": {"psnr_db": float(np.mean(rgb_psnr)), "ssim": float(np.mean(rgb_ssim))},
              "depth_m": average(depth_scores) if depth_scores else None,
              # the share of the frames' holes where the decoder publishes depth (depth_m.published: of their readings)
              "holes_published": (float(holes[0] / holes[1]) if holes[1] else None) if task.needs_depth else None,
              "kl": float(np.mean(kl)), "latent_dim": latent,
              "bytes_per_latent": {"mu_fp32": 4 * latent, "mu_fp16": 2 * latent, "message_fp32": 8 * latent},
              "mean_image_baseline": {"psnr_db": float(np.mean(baseline_psnr))},
              "codes": codes}
    return result, labelled_grid(rows, titles, scale_m, tile_height=max(96, rows[0][0].shape[0]))  # room for titles


def _sample_frame(prepared: dict, i: int, max_depth_m: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Sample ``i`` of a prepared batch as the model saw it: RGB uint8 and depth in metres (NaN = none)."""
    from rgbd_vae_ros.processing import depth_from_unit_range, rgb_from_unit_range

    target = prepared["target"][i].permute(1, 2, 0).numpy()
    if target.shape[-1] != 4:
        return rgb_from_unit_range(target[..., :3]), None
    depth = depth_from_unit_range(target[..., 3], max_depth_m)
    return rgb_from_unit_range(target[..., :3]), np.where(prepared["valid"][i, 3].numpy(), depth, np.nan)


def _codes_at_equal_bytes(model, task, train, test, count: int, max_depth_m: float) -> list[dict]:
    """The VAE's μ through each latent codec (SPEC §4.3; the quantiser fit on the training split's μ,
    as export does) next to the baselines of :mod:`.codec_baselines` at the q8 and q4 codes' bytes:
    bytes per frame, RGB PSNR / SSIM and depth RMSE at the model's resolution."""
    import torch

    from rgbd_vae_ros.latent import LatentFormat, Quantiser, decode, encode
    from rgbd_vae_ros.processing import decoded_planes

    from .codec_baselines import frame_vector, matched_baselines
    from .metrics import depth_error, psnr, ssim

    def batches(dataset, indices):
        for start in range(0, len(indices), BATCH):
            batch = torch.utils.data.default_collate([dataset[i] for i in indices[start:start + BATCH]])
            yield task.prepare(batch, torch.device("cpu"))

    def frames(dataset, indices):
        for prepared in batches(dataset, indices):
            yield from (_sample_frame(prepared, i, max_depth_m) for i in range(len(prepared["target"])))

    with torch.no_grad():
        train_idx = _spread(len(train))
        quantiser = Quantiser.fit(np.concatenate([model.encode(p["input"])[0].numpy()
                                                  for p in batches(train, train_idx)]))
        test_frames = list(frames(test, list(range(count))))
        mus = np.concatenate([model.encode(p["input"])[0].numpy() for p in batches(test, list(range(count)))])
    dim = mus.shape[1]
    scores: dict[str, list] = {}

    def score(name: str, size: int, rgb, depth, truth) -> None:
        """Depth where the code publishes it (the VAE's decoded validity), and the share of the true
        readings it publishes (:func:`.metrics.depth_error`)."""
        entry = scores.setdefault(name, {"bytes": [], "psnr_db": [], "ssim": [], "depth_rmse_m": [],
                                         "depth_published": []})
        entry["bytes"].append(size)
        entry["psnr_db"].append(psnr(rgb, truth[0]))
        entry["ssim"].append(ssim(rgb, truth[0]))
        error = depth_error(depth, truth[1]) if truth[1] is not None and depth is not None else None
        entry["depth_rmse_m"].append(error["rmse"] if error else float("nan"))
        entry["depth_published"].append(error["published"] if error else float("nan"))

    for codec in ("f32", "q8", "q4"):
        fmt = LatentFormat(dim=dim, codec=codec, depth="measured", model="0" * 12)
        sent = np.stack([decode(encode(mu, codec, quantiser), fmt, quantiser) for mu in mus])
        with torch.no_grad():
            recon = model.decode(torch.from_numpy(sent)).permute(0, 2, 3, 1).numpy()
        for truth, out in zip(test_frames, recon):
            rgb, depth, _ = decoded_planes(out.transpose(2, 0, 1), max_depth_m)
            score(f"VAE mu {codec}", fmt.mu_bytes, rgb, depth, truth)
    if test_frames[0][1] is not None:
        train_frames = list(frames(train, train_idx))
        vectors = np.stack([frame_vector(rgb, depth, max_depth_m) for rgb, depth in train_frames])
        for codec, size in (("q8", dim), ("q4", (dim + 1) // 2)):
            for baseline in matched_baselines(size, vectors, [rgb for rgb, _ in train_frames[:8]], max_depth_m):
                for truth in test_frames:
                    out = baseline.roundtrip(*truth)
                    score(f"{baseline.name} (vs {codec})", out.bytes, out.rgb_u8, out.depth_m, truth)
    return [{"code": name, **{k: float(np.nanmean(v)) if not np.all(np.isnan(v)) else None
                              for k, v in entry.items()}} for name, entry in scores.items()]


def _train_samples_or_none(task, data: str):
    """The training split's samples, or None when the set has none (then the scored frames' mean is the baseline)."""
    from .data import open_dataset
    from .train.tasks import open_samples

    return open_samples(task, data, "train", augment=False) if len(open_dataset(data, split="train")) else None


def _mean_sample(dataset, key: str):
    import torch

    return torch.stack([dataset[i][key] for i in _spread(len(dataset))]).mean(dim=0)
