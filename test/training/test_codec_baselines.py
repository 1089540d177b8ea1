"""Equal-byte baselines for the latent codes: each keeps its byte count and reconstructs what it can."""

import io

import numpy as np
import pytest

from rgbd_vae_training.codec_baselines import (
    ImageThumbnail,
    PCACodec,
    Thumbnail,
    _jpeg_entropy_bytes,
    frame_vector,
    matched_baselines,
)
from rgbd_vae_training.metrics import psnr


def _frame(rng, size=(24, 32)):
    """A smooth random RGB-D frame (gradients plus a box), depth in metres with a few holes."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    a, b, c = rng.uniform(0, 1, 3)
    rgb = np.stack([a * x + 0.2, b * y + 0.3, c * (x + y) / 2 + 0.1], axis=-1)
    rgb[h // 3:h // 2, w // 4:w // 2] = rng.uniform(0, 1, 3)
    depth = (1.0 + 4.0 * rng.uniform() + 2.0 * y).astype(np.float32)
    depth[0, 0] = np.nan
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8), depth


def test_a_thumbnail_costs_four_bytes_a_pixel_and_keeps_a_flat_frame():
    rgb = np.full((24, 32, 3), (10, 120, 240), np.uint8)
    depth = np.full((24, 32), 3.0, np.float32)
    out = Thumbnail(4, 3, max_depth_m=10.0).roundtrip(rgb, depth)
    assert out.bytes == 4 * 3 * 4
    assert np.array_equal(out.rgb_u8, rgb)
    assert np.all(np.abs(out.depth_m - 3.0) <= 10.0 / 254 / 2 + 1e-6)  # half an 8-bit step
    holes = depth.copy()
    holes[:] = np.nan
    assert np.isnan(Thumbnail(4, 3).roundtrip(rgb, holes).depth_m).all()  # no reading stays no reading


def test_pca_reconstructs_frames_of_its_subspace_to_the_quantisation_step():
    rng = np.random.default_rng(0)
    frames = [_frame(rng) for _ in range(3)]
    vectors = np.stack([frame_vector(rgb, np.nan_to_num(d, nan=5.0), 10.0) for rgb, d in frames])
    # Training frames: mixtures of the three, so the data lies in a 2-d affine subspace.
    weights = rng.dirichlet(np.ones(3), size=40)
    train = weights @ vectors
    codec = PCACodec(dim=2, bits=8).fit(train)
    assert codec.dim == 2 and codec.roundtrip(*frames[0]).bytes == 2
    mixed = weights[5] @ vectors
    h, w = frames[0][1].shape
    rgb = np.clip(np.rint((mixed[:h * w * 3].reshape(h, w, 3) + 1) * 127.5), 0, 255).astype(np.uint8)
    depth = ((mixed[h * w * 3:].reshape(h, w) + 1) * 5.0).astype(np.float32)
    out = codec.roundtrip(rgb, depth)
    assert psnr(out.rgb_u8, rgb) > 35
    assert np.nanmax(np.abs(out.depth_m - depth)) < 0.1
    assert PCACodec(dim=3, bits=4).fit(train).roundtrip(rgb, depth).bytes == 2  # 3 x 4 bits -> 2 bytes
    with pytest.raises(ValueError, match="at least 2"):
        PCACodec(dim=2, bits=8).fit(train[:1])


def test_jpeg_counts_its_entropy_coded_data_only():
    from PIL import Image

    rgb = _frame(np.random.default_rng(1))[0]
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=50)
    blob = buffer.getvalue()
    entropy = _jpeg_entropy_bytes(blob)
    assert 0 < entropy < len(blob) - 300  # tables and headers are several hundred bytes
    assert blob.endswith(b"\xff\xd9")
    depth = Thumbnail(4, 3)
    out = ImageThumbnail("JPEG", 32, 24, 50, depth).roundtrip(rgb, _frame(np.random.default_rng(1))[1])
    assert out.bytes == entropy + 12
    assert psnr(out.rgb_u8, rgb) > 20


@pytest.mark.slow
def test_matched_baselines_fit_the_budget():
    rng = np.random.default_rng(2)
    frames = [_frame(rng) for _ in range(12)]
    train = np.stack([frame_vector(rgb, d, 10.0) for rgb, d in frames])
    for budget in (32, 64, 200):
        baselines = matched_baselines(budget, train, [rgb for rgb, _ in frames[:4]])
        names = [b.name for b in baselines]
        assert any(n.startswith("PCA") for n in names) and any(n.startswith("thumbnail") for n in names)
        for baseline in baselines:
            sizes = [baseline.roundtrip(rgb, d).bytes for rgb, d in frames[:4]]
            assert np.mean(sizes) <= budget, (baseline.name, sizes)
    assert [b.name for b in matched_baselines(64, None, [frames[0][0]], image_formats=())] == ["thumbnail 4x3"]


def test_pca_fills_holes_with_the_training_mean_not_with_far_depth():
    rng = np.random.default_rng(3)
    frames = []
    for _ in range(10):
        rgb, depth = _frame(rng)
        depth[rng.uniform(size=depth.shape) < 0.3] = np.nan  # sensor holes in the training frames
        frames.append((rgb, depth))
    codec = PCACodec(dim=4, bits=8).fit(np.stack([frame_vector(rgb, d, 10.0) for rgb, d in frames]))
    rgb, depth = _frame(rng)
    out = codec.roundtrip(rgb, depth)
    assert np.nanmean(np.abs(out.depth_m - depth)) < 1.0  # holes as 10 m would pull every depth far
