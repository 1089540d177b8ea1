"""Pipeline stages over numpy: sizes, units, agreement across backends, bad input."""

import numpy as np
import pytest

from rgbd_vae_ros.inference import BackendError, open_backend
from rgbd_vae_ros.stages import DecodeStage, DepthStage, EncodeStage, StageError

RNG = np.random.default_rng(3)
RGB = RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8)
DEPTH = RNG.uniform(0.5, 6.0, (120, 160)).astype(np.float32)
DEPTH[:10] = np.nan  # no reading


def _both(exported, small_checkpoints, name, stage_cls):
    folder, _ = exported[name]
    return (stage_cls.open(small_checkpoints[name], backend="torch"), stage_cls.open(folder, backend="onnxruntime"))


def test_depth_stage_gives_metres_at_the_input_size_on_every_backend(exported, small_checkpoints):
    eager, ort = _both(exported, small_checkpoints, "unet_depth", DepthStage)
    for rgb in (RGB, RGB[:48, :64], np.zeros((480, 640, 3), np.uint8)):
        a, b = eager(rgb), ort(rgb)
        assert a.shape == rgb.shape[:2] and a.dtype == np.float32
        assert np.all((a >= 0) & (a <= 8.0))  # the checkpoint's max_depth_m
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert ort.describe()["backend"] == "onnxruntime" and eager.describe()["backend"] == "torch"


def test_an_rgb2rgbd_vae_serves_as_a_depth_stage(exported, small_checkpoints):
    eager, ort = _both(exported, small_checkpoints, "rgb2rgbd", DepthStage)
    np.testing.assert_allclose(eager(RGB), ort(RGB), atol=1e-3)


def test_encode_then_decode_on_every_backend(exported, small_checkpoints):
    (enc_t, enc_o), (dec_t, dec_o) = (_both(exported, small_checkpoints, "conv_vae", EncodeStage),
                                      _both(exported, small_checkpoints, "conv_vae", DecodeStage))
    assert enc_o.uses_depth and enc_o.latent_dim == dec_o.latent_dim == 16
    mu, logvar = enc_o(RGB, DEPTH)
    assert mu.shape == logvar.shape == (16,) and mu.dtype == np.float32
    mu_t, logvar_t = enc_t(RGB, DEPTH)
    np.testing.assert_allclose(mu, mu_t, atol=1e-4)
    np.testing.assert_allclose(logvar, logvar_t, atol=1e-4)
    rgb, depth = dec_o(mu)
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8 and depth.shape == (32, 32)
    rgb_t, depth_t = dec_t(mu)
    assert np.abs(rgb.astype(int) - rgb_t).max() <= 1  # rounding to uint8
    np.testing.assert_allclose(depth, depth_t, atol=1e-3)
    big_rgb, big_depth = dec_o(mu, output_size=(120, 160))
    assert big_rgb.shape == (120, 160, 3) and big_depth.shape == (120, 160)


def test_rgb_models_ignore_depth_and_decode_no_depth(exported):
    folder, _ = exported["fc_vae"]
    encode, decode = EncodeStage.open(folder), DecodeStage.open(folder)
    assert not encode.uses_depth
    mu, _ = encode(RGB)
    np.testing.assert_array_equal(mu, encode(RGB, DEPTH)[0])
    rgb, depth = decode(mu)
    assert rgb.shape == (16, 16, 3) and depth is None


def test_a_stage_from_the_onnx_file_alone_has_the_checkpoints_config(exported, small_checkpoints):
    eager, ort = _both(exported, small_checkpoints, "unet_depth", DepthStage)
    assert ort.info.config == eager.info.config and ort.info.model_name == "unet_depth"
    assert (ort.height, ort.width) == (32, 48) and ort.info.max_depth_m == 8.0


@pytest.mark.parametrize("bad, message", [
    (np.zeros((10, 10, 3), np.float32), "expected \\(H, W, 3\\) uint8 RGB"),
    (np.zeros((10, 10), np.uint8), "expected \\(H, W, 3\\) uint8 RGB"),
    (np.zeros((0, 0, 3), np.uint8), "image is 0x0; expected at least 1x1 pixels"),
])
def test_bad_images_are_refused_with_one_sentence(bad, message, exported):
    with pytest.raises(StageError, match=message):
        DepthStage.open(exported["unet_depth"][0])(bad)


def test_bad_depth_and_latents_are_refused_with_one_sentence(exported):
    folder, _ = exported["conv_vae"]
    encode, decode = EncodeStage.open(folder), DecodeStage.open(folder)
    with pytest.raises(StageError, match="takes RGB-D; a depth image is needed"):
        encode(RGB)
    with pytest.raises(StageError, match="depth holds 120 negative values"):
        encode(RGB, np.where(np.arange(160) == 5, -1.0, 1.0).astype(np.float32)[None].repeat(120, 0))
    with pytest.raises(StageError, match="expected a non-empty \\(H, W\\) float image in metres"):
        encode(RGB, np.zeros((120, 160), np.uint16))
    with pytest.raises(StageError, match="latent has shape \\(12,\\); this decoder takes 16 floats"):
        decode(np.zeros(12, np.float32))
    with pytest.raises(StageError, match="NaN or infinite"):
        decode(np.full(16, np.nan, np.float32))
    with pytest.raises(StageError, match="output size \\(0, 64\\) is not a positive"):
        decode(np.zeros(16, np.float32), output_size=(0, 64))


def test_a_stage_given_the_wrong_part_says_so(exported):
    folder, _ = exported["conv_vae"]
    with pytest.raises(BackendError, match="is a encoder model, not the decoder this needs"):
        DecodeStage.open(folder / "encoder.onnx")
    with pytest.raises(BackendError, match="conv_vae encoder model given where a decoder model is needed"):
        DecodeStage(open_backend(folder / "encoder.onnx"))
