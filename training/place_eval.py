"""``rgbd-vae eval places``: place recognition on a revisit walk (``synth --walk revisit``), SPEC §7.

Every frame of the walk, in stamp order, is looked up in a :class:`rgbd_vae_ros.places.PlaceIndex`
(every frame a keyframe unless ``keyframe_distance`` says otherwise) and then added; its match is the
best earlier keyframe outside the recent window. Per view-change bin:

- recall@1: the fraction of the bin's revisit frames whose match shows the same room;
- R@100%P (recall at 100 % precision, "precision at full recall" in issue 16): the fraction of the
  bin's revisit frames matched correctly with a score above every wrong match's score, where the
  wrong matches are the bin's and those of every frame whose room was not seen before (a first
  visit). It is the recall a loop-closure threshold can reach with no false loop closure.

Codes: the VAE's μ, PCA-D of the same input (D = the latent size), a 16×12 RGB thumbnail and a joint
RGB histogram (8 bins per channel: the colours a frame shows wherever they are, which a turn of the
view changes least), each scored as plain cosine, as cosine of standardised codes (centred and
scaled per dimension by the quantiser range, :meth:`rgbd_vae_ros.latent.Quantiser.fit`, as the node
does with ``latent/info``) and as cosine of whitened codes (mean and covariance; no message carries a
covariance, so the node cannot), all fit on the fitting frames: ``--train-data`` training frames,
else the walk's first visits.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rgbd_vae_ros.places import Match, PlaceIndex

BINS_DEG = ((0.0, 12.0), (12.0, 48.0), (48.0, math.inf))
TINY_IMAGE = (12, 16)  # height, width
RECENT_WINDOW_S = 10.0  # revisit walks space visits 20 s apart
FIT_FRAMES = 400
SCORINGS = ("cosine", "standardised cosine", "whitened cosine")
SHORT = {"cosine": "cos", "standardised cosine": "std", "whitened cosine": "white"}


def bin_label(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g} deg" if math.isfinite(hi) else f">={lo:g} deg"


def retrieve(stamps_ns, codes: np.ndarray, recent_window_s: float = RECENT_WINDOW_S, keyframe_distance: float = 0.0,
             centre: np.ndarray | None = None, scale: np.ndarray | None = None) -> list[Match | None]:
    """The best earlier keyframe of each frame (in stamp order) through :class:`PlaceIndex`, whatever its score."""
    index = PlaceIndex(min_score=-1.0, recent_window_s=recent_window_s, keyframe_distance=keyframe_distance,
                       centre=centre, scale=scale)
    order = np.argsort(np.asarray(stamps_ns), kind="stable")
    matches: list[Match | None] = [None] * len(order)
    for i in order:
        matches[i] = index.add(int(stamps_ns[i]), codes[i])
    return matches


def place_metrics(matches: list[Match | None], stamps_ns, rooms, view_change_deg, bins=BINS_DEG) -> dict:
    """recall@1 and R@100%P per view-change bin and over all revisit frames (see the module text).

    ``view_change_deg[i]`` is None for a frame of a first visit (no true match exists)."""
    room_at = {int(s): int(r) for s, r in zip(stamps_ns, rooms)}
    correct = np.array([m is not None and room_at[m.stamp_ns] == int(r) for m, r in zip(matches, rooms)])
    scores = np.array([m.score if m is not None else -np.inf for m in matches])
    first = np.array([v is None for v in view_change_deg])
    change = np.array([np.nan if v is None else float(v) for v in view_change_deg])
    wrong_elsewhere = first & np.isfinite(scores)  # any match of a first visit is a false loop closure
    result = {}
    for label, in_bin in [(bin_label(lo, hi), ~first & (change >= lo) & (change < hi)) for lo, hi in bins] + \
            [("all revisits", ~first)]:
        queries = int(in_bin.sum())
        if queries == 0:
            result[label] = {"queries": 0, "recall_at_1": None, "recall_at_100_precision": None}
            continue
        wrong = (in_bin & ~correct & np.isfinite(scores)) | wrong_elsewhere
        threshold = scores[wrong].max() if wrong.any() else -np.inf
        result[label] = {"queries": queries, "recall_at_1": float(correct[in_bin].mean()),
                         "recall_at_100_precision": float((correct & in_bin & (scores > threshold)).sum() / queries),
                         "threshold": None if not np.isfinite(threshold) else float(threshold)}
    return result


def standardisation(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension centre and half-width of the quantiser range fit on ``codes``
    (:meth:`rgbd_vae_ros.latent.Quantiser.fit`): what the node standardises by, from ``latent/info``."""
    from rgbd_vae_ros.latent import Quantiser

    quantiser = Quantiser.fit(codes)
    lo, hi = quantiser.lo.astype(np.float64), quantiser.hi.astype(np.float64)
    return (lo + hi) / 2, (hi - lo) / 2


def whitening(codes: np.ndarray, floor: float = 0.01):
    """x -> (x - mean) Σ^-1/2 over the fit codes' covariance, its eigenvalues floored at ``floor``
    times their mean (fewer fit codes than dimensions leave some directions without spread)."""
    mean = codes.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(codes - mean, rowvar=False))
    values = np.maximum(values, floor * max(float(values.mean()), 1e-12))
    matrix = vectors / np.sqrt(values)

    def whiten(x: np.ndarray) -> np.ndarray:
        return (x - mean) @ matrix

    return whiten


class PCA:
    """PCA-D: the top ``dim`` principal directions of flattened inputs."""

    def __init__(self, inputs: np.ndarray, dim: int):
        self.mean = inputs.mean(axis=0)
        _, _, vt = np.linalg.svd(inputs - self.mean, full_matrices=False)
        self.components = vt[:dim]

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        return (inputs - self.mean) @ self.components.T


def tiny_image(rgb_u8: np.ndarray) -> np.ndarray:
    from rgbd_vae_ros.processing import resize_rgb

    return resize_rgb(rgb_u8, *TINY_IMAGE).astype(np.float32).ravel() / 255.0


HISTOGRAM_BINS = 8  # per channel: 8^3 = 512 joint RGB bins


def colour_histogram(rgb_u8: np.ndarray, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """The square root of the frame's joint RGB histogram (``bins`` per channel), normalised to sum 1
    before the root (the Hellinger kernel as a cosine): what colours the frame shows, wherever they are."""
    levels = (rgb_u8.reshape(-1, 3).astype(np.int64) * bins) // 256
    counts = np.bincount((levels[:, 0] * bins + levels[:, 1]) * bins + levels[:, 2], minlength=bins ** 3)
    return np.sqrt(counts / max(int(counts.sum()), 1)).astype(np.float32)


def _walk_codes(model, task, dataset, indices, batch: int = 16) -> dict[str, np.ndarray]:
    """μ, the flattened model input, the tiny image and the colour histogram of each frame of
    ``dataset`` at ``indices``."""
    import torch

    mus, inputs, tiny, histograms, stamps = [], [], [], [], []
    for start in range(0, len(indices), batch):
        chunk = indices[start:start + batch]
        frames = [dataset.frame(i) for i in chunk]  # as read, once: the sample and the baselines' images
        samples = [dataset.sample(f) for f in frames]
        prepared = task.prepare(torch.utils.data.default_collate(samples), torch.device("cpu"))
        with torch.no_grad():
            out = task.forward(model, prepared)
        mus.append(out["mu"].float().numpy())
        inputs.append(prepared["input"].flatten(1).numpy())
        tiny += [tiny_image(f.rgb_u8) for f in frames]
        histograms += [colour_histogram(f.rgb_u8) for f in frames]
        stamps += [f.stamp_s for f in frames]
    return {"vae": np.concatenate(mus), "input": np.concatenate(inputs), "tiny": np.stack(tiny),
            "histogram": np.stack(histograms),
            "stamp_s": np.array(stamps, dtype=np.float64)}


def evaluate_places(model, payload: dict, data: str, train_data: str | None = None,
                    recent_window_s: float = RECENT_WINDOW_S, keyframe_distance: float = 0.0) -> tuple[np.ndarray, dict]:
    """(figure, metrics): recall@1 and R@100%P by view-change bin for the VAE's μ, PCA-D and the tiny
    image (see the module text); the figure shows queries of the middle bin and each method's match."""
    from .evaluate import _spread
    from .synth.revisit import read_places
    from .train.config import config_from_values
    from .train.tasks import make_task, open_samples

    if model.kind != "vae":
        raise ValueError(f"{payload['model_name']} is a depth model; place recognition needs a VAE checkpoint")
    rows = read_places(data)
    values = payload.get("config") or {"task": "vae", "model": {"name": payload["model_name"],
                                                                  **payload["model_config"]}}
    task = make_task(config_from_values(values))
    walk_path = Path(data).parent if Path(data).is_file() else Path(data)
    walk = open_samples(task, walk_path, None, augment=False)  # each frame is read once
    if len(walk) != len(rows):
        raise ValueError(f"{str(data)!r} has {len(walk)} frames but its places.csv {len(rows)} rows; "
                         "expected one row per depth frame")
    codes = _walk_codes(model, task, walk, list(range(len(walk))))
    by_stamp = {round(r["depth_stamp_s"], 4): r for r in rows}
    try:
        frame_rows = [by_stamp[round(float(s), 4)] for s in codes["stamp_s"]]
    except KeyError as exc:
        raise ValueError(f"a frame of {str(data)!r} at {exc.args[0]} s has no row in places.csv") from None
    first_visits = [i for i, r in enumerate(frame_rows) if r["room_visit"] == 0]
    if train_data:
        fit_set = open_samples(task, train_data, "train", augment=False)  # each frame is read once
        fit = _walk_codes(model, task, fit_set, _spread(len(fit_set), FIT_FRAMES))
        fitted_on = f"{len(fit['vae'])} training frames of {train_data}"
    else:
        fit = {key: value[first_visits] for key, value in codes.items()}
        fitted_on = f"the walk's {len(first_visits)} first-visit frames"
    latent = model.config.latent_dim
    pca = PCA(fit["input"], latent)
    methods = {"vae": (codes["vae"], fit["vae"]), f"pca-{latent}": (pca(codes["input"]), pca(fit["input"])),
               "tiny-image-16x12": (codes["tiny"], fit["tiny"]),
               f"rgb-histogram-{HISTOGRAM_BINS}^3": (codes["histogram"], fit["histogram"])}
    stamps_ns = np.rint(codes["stamp_s"] * 1e9).astype(np.int64)
    rooms = [r["room"] for r in frame_rows]
    changes = [r["view_change_deg"] for r in frame_rows]
    results, all_matches = {}, {}
    for name, (walk_codes, fit_codes) in methods.items():
        for scoring in SCORINGS:
            centre, scale = standardisation(fit_codes) if scoring == "standardised cosine" else (None, None)
            scored = whitening(fit_codes)(walk_codes) if scoring == "whitened cosine" else walk_codes
            matches = retrieve(stamps_ns, scored, recent_window_s, keyframe_distance, centre, scale)
            results[f"{name}, {scoring}"] = place_metrics(matches, stamps_ns, rooms, changes)
            all_matches[f"{name}, {scoring}"] = matches
    figure = match_figure(walk, stamps_ns, rooms, changes, results, all_matches)
    rooms_count = len(set(rooms))
    return figure, {"task": "places", "images": len(walk), "rooms": rooms_count, "first_visit_frames": len(first_visits),
            "recent_window_s": recent_window_s, "keyframe_distance": keyframe_distance,
            "normalisation_and_pca_fit_on": fitted_on, "latent_dim": latent, "methods": results,
            "metrics_note": "recall_at_100_precision: revisit frames matched correctly above every wrong match's "
                            "score (the bin's and every first-visit frame's)"}


FIGURE_QUERIES = 4


def match_figure(walk, stamps_ns, rooms, changes, results: dict, all_matches: dict) -> np.ndarray:
    """Queries of the 12-48 degree bin (or any revisits) and, per method under its better scoring
    (by recall@1 over all revisits), the frame it matched: a green frame when right, red when wrong."""
    from .figures import labelled_grid

    lo, hi = BINS_DEG[1]
    queries = [i for i, c in enumerate(changes) if c is not None and lo <= c < hi] or \
        [i for i, c in enumerate(changes) if c is not None]
    shown = [queries[k] for k in np.linspace(0, len(queries) - 1, min(FIGURE_QUERIES, len(queries))).round().astype(int)]
    best = {}
    for key in results:
        method = key.split(", ")[0]
        recall = results[key]["all revisits"]["recall_at_1"] or 0.0
        if method not in best or recall > (results[best[method]]["all revisits"]["recall_at_1"] or 0.0):
            best[method] = key
    at = {int(s): i for i, s in enumerate(stamps_ns)}

    def framed(index: int | None, right: bool) -> np.ndarray:
        if index is None:
            return np.full_like(walk.frame(shown[0]).rgb_u8, 255)
        tile = walk.frame(index).rgb_u8.copy()
        tile[:3], tile[-3:], tile[:, :3], tile[:, -3:] = [(40, 170, 60) if right else (210, 40, 40)] * 4
        return tile

    rows = []
    for q in shown:
        row = [walk.frame(q).rgb_u8]
        for key in best.values():
            match = all_matches[key][q]
            index = None if match is None else at[match.stamp_ns]
            row.append(framed(index, index is not None and rooms[index] == rooms[q]))
        rows.append(row)
    titles = ["query"] + [f"{key.split(', ')[0].replace('-image-16x12', ' image')} "
                          f"({SHORT[key.split(', ')[1]]})" for key in best.values()]
    return labelled_grid(rows, titles, tile_height=max(96, rows[0][0].shape[0]))


def places_table(result: dict) -> str:
    from .bench.timing import rows_table

    rows = []
    for method, bins in result["methods"].items():
        for label, values in bins.items():
            rows.append({"method": method, "bin": label, "queries": values["queries"],
                         "recall@1": values["recall_at_1"], "R@100%P": values["recall_at_100_precision"]})
    header = (f"{result['model']}: place recognition on {result['images']} frames of {result['rooms']} rooms "
              f"(recent window {result['recent_window_s']:g} s; normalisation and PCA fit on "
              f"{result['normalisation_and_pca_fit_on']})")
    return header + "\n" + rows_table(rows, [("method", "method", "s"), ("view change", "bin", "s"),
                                             ("queries", "queries", "d"), ("recall@1", "recall@1", ".3f"),
                                             ("R@100%P", "R@100%P", ".3f")])
