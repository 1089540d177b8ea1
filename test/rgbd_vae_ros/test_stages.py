"""Pipeline stages over numpy: sizes, units, agreement across backends, bad input."""

import numpy as np
import pytest

from rgbd_vae_ros.inference import BackendError, open_backend
from rgbd_vae_ros.stages import DecodeStage, DepthStage, EncodeStage, StageError, check_same_checkpoint

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
    assert eager.has_mask and ort.has_mask  # its decoded validity, exported as the depth part's mask
    mask = ort.estimate(RGB).mask
    assert mask.shape == RGB.shape[:2] and np.all((mask >= 0) & (mask <= 1))
    np.testing.assert_allclose(eager.estimate(RGB).mask, mask, atol=1e-3)


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
    assert (ort.height, ort.width) == (36, 48) and ort.info.max_depth_m == 8.0


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


def test_rep_118_infinities_in_measured_depth_are_no_reading_not_a_refused_frame(exported):
    """REP 118: -inf is "too close to measure" and +inf "nothing in range"; both are pixels without a
    reading, so the frame encodes as it does with NaN there."""
    encode = EncodeStage.open(exported["conv_vae"][0])
    with_nan, with_inf = DEPTH.copy(), DEPTH.copy()
    with_nan[20:30] = np.nan
    with_inf[20:25], with_inf[25:30] = -np.inf, np.inf
    mu_nan, _ = encode(RGB, with_nan)
    mu_inf, _ = encode(RGB, with_inf)
    np.testing.assert_array_equal(mu_inf, mu_nan)
    assert not np.array_equal(mu_nan, encode(RGB, DEPTH)[0])  # the holes do reach the encoder


def test_a_stage_given_the_wrong_part_says_so(exported):
    folder, _ = exported["conv_vae"]
    with pytest.raises(BackendError, match="is a encoder model, not the decoder this needs"):
        DecodeStage.open(folder / "encoder.onnx")
    with pytest.raises(BackendError, match="conv_vae encoder model given where a decoder model is needed"):
        DecodeStage(open_backend(folder / "encoder.onnx"))


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
@pytest.mark.parametrize("sign", [1.0, -1.0, "alternating"])
def test_a_finite_but_huge_latent_is_refused_before_it_is_decoded(backend, sign, exported, small_checkpoints):
    folder, _ = exported["conv_vae"]
    decode = DecodeStage.open(folder if backend == "onnxruntime" else small_checkpoints["conv_vae"], backend=backend)
    signs = np.where(np.arange(16) % 2, 1.0, -1.0) if sign == "alternating" else np.full(16, sign)
    latent = (signs * 3.4e38).astype(np.float32)
    assert np.isfinite(latent).all()  # a latent the input checks accept
    with pytest.raises(StageError, match="latent holds a value of magnitude 3.4e"):
        decode(latent)  # (it would decode to non-finite or saturated pixels)
    rgb, depth = decode(np.zeros(16, np.float32))  # the next good latent is answered
    assert rgb.shape == (32, 32, 3) and np.isfinite(depth).all()


def _hand_built(path, info, nodes, initializers=()):
    """A real ONNX file with our metadata over a graph written by hand: a network whose outputs a
    test controls (e.g. infinite for black pixels)."""
    import onnx
    from onnx import TensorProto, helper

    from rgbd_vae_ros.inference.metadata import METADATA_KEY

    shapes = info.sample_shapes()
    graph = helper.make_graph(
        nodes, "hand_built",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", *shapes[n]]) for n in info.inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", *shapes[n]]) for n in info.outputs],
        list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what the installed ONNX Runtime reads
    helper.set_model_props(model, {METADATA_KEY: info.to_json()})
    onnx.save(model, path)
    return path


def _inverse_brightness_depth(tmp_path):
    """depth = 1 / (mean RGB in [-1, 1] + 1): infinite on black pixels, 0.5 (6 m of 8) on white."""
    from onnx import helper, numpy_helper

    from rgbd_vae_ros.inference.metadata import ModelInfo

    info = ModelInfo("hand_built", "depth", "depth", {"input_height": 4, "input_width": 6}, ["rgb"], ["depth"],
                     [3, 4, 6], 8.0, "0" * 64)
    nodes = [helper.make_node("ReduceMean", ["rgb"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Add", ["mean", "one"], ["shifted"]),
             helper.make_node("Reciprocal", ["shifted"], ["depth"])]
    path = _hand_built(tmp_path / "depth.onnx", info, nodes, [numpy_helper.from_array(np.ones(1, np.float32), "one")])
    return DepthStage.open(path, backend="onnxruntime")


def test_depth_pixels_the_network_leaves_non_finite_are_invalid_never_values(tmp_path):
    depth = _inverse_brightness_depth(tmp_path)
    rgb = np.full((4, 6, 3), 255, np.uint8)
    rgb[:, :2] = 0  # black: the network answers infinity there
    depth_m = depth(rgb)
    assert np.isnan(depth_m[:, :2]).all()  # not 8 m (infinity clipped to max_depth_m)
    np.testing.assert_allclose(depth_m[:, 2:], 6.0)


def test_a_depth_output_that_is_all_non_finite_is_refused(tmp_path):
    depth = _inverse_brightness_depth(tmp_path)
    with pytest.raises(StageError, match="depth model output holds only NaN or infinite values for this image"):
        depth(np.zeros((4, 6, 3), np.uint8))
    assert depth(np.full((4, 6, 3), 255, np.uint8)).shape == (4, 6)  # the next good image is answered


def test_an_encoder_output_that_is_not_finite_is_refused(tmp_path):
    from onnx import helper

    from rgbd_vae_ros.inference.metadata import ModelInfo

    # mu = log(RGB in [-1, 1]): NaN for dark pixels, finite (0) for white ones
    info = ModelInfo("hand_built", "vae", "encoder", {"image_size": 2, "latent_dim": 12, "mode": "rgb"}, ["input"],
                     ["mu", "logvar"], [3, 2, 2], 8.0, "0" * 64)
    nodes = [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
             helper.make_node("Log", ["flat"], ["mu"]),
             helper.make_node("Identity", ["flat"], ["logvar"])]
    encode = EncodeStage.open(_hand_built(tmp_path / "encoder.onnx", info, nodes), backend="onnxruntime")
    with pytest.raises(StageError, match="encoder output holds NaN or infinite values for this image"):
        encode(np.zeros((2, 2, 3), np.uint8))
    mu, _ = encode(np.full((2, 2, 3), 255, np.uint8))
    np.testing.assert_array_equal(mu, np.zeros(12, np.float32))


@pytest.fixture(scope="module")
def other_conv_vae_export(tmp_path_factory, small_configs):
    """The conv_vae of the ``exported`` fixture trained again: same config, another checkpoint."""
    import torch

    from rgbd_vae_ros.models import build_model
    from rgbd_vae_ros.models.checkpoint import checkpoint_payload
    from rgbd_vae_training.export import export_checkpoint

    folder = tmp_path_factory.mktemp("other_conv_vae")
    torch.manual_seed(1)
    torch.save(checkpoint_payload(build_model("conv_vae", small_configs["conv_vae"]).eval(),
                                  config={"train": {"max_depth_m": 8.0}}), folder / "conv_vae.pt")
    export_checkpoint(folder / "conv_vae.pt", folder)
    return folder


@pytest.mark.slow
def test_encoder_and_decoder_from_different_checkpoints_are_refused(exported, other_conv_vae_export, tmp_path):
    import shutil

    folder, _ = exported["conv_vae"]
    shutil.copy(folder / "encoder.onnx", tmp_path / "encoder.onnx")
    shutil.copy(other_conv_vae_export / "decoder.onnx", tmp_path / "decoder.onnx")
    encode, decode = EncodeStage.open(tmp_path), DecodeStage.open(tmp_path)  # each part alone is a good file
    with pytest.raises(BackendError, match="come from different checkpoints; use the parts of one export") as error:
        check_same_checkpoint(encode, decode)
    message = str(error.value)
    assert str(tmp_path / "encoder.onnx") in message and str(tmp_path / "decoder.onnx") in message
    assert "\n" not in message


def test_parts_of_one_checkpoint_match_whatever_file_kind_holds_them(exported, small_checkpoints,
                                                                      other_conv_vae_export):
    folder, _ = exported["conv_vae"]
    check_same_checkpoint(EncodeStage.open(folder), DecodeStage.open(folder))
    check_same_checkpoint(EncodeStage.open(small_checkpoints["conv_vae"], backend="torch"), DecodeStage.open(folder))
    check_same_checkpoint(EncodeStage.open(other_conv_vae_export),
                          DecodeStage.open(other_conv_vae_export / "conv_vae.pt"))


def test_a_part_that_records_no_checkpoint_hash_cannot_be_matched(exported, tmp_path):
    import shutil

    import onnx

    from rgbd_vae_ros.inference.metadata import METADATA_KEY, ModelInfo

    folder, _ = exported["conv_vae"]
    proto = onnx.load(folder / "decoder.onnx")
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    info = ModelInfo.from_json(entry.value, "test")
    info.checkpoint_sha256 = ""
    entry.value = info.to_json()
    onnx.save(proto, tmp_path / "decoder.onnx")
    shutil.copy(folder / "encoder.onnx", tmp_path / "encoder.onnx")
    with pytest.raises(BackendError, match=r"decoder.onnx' records no checkpoint hash, so the encoder .* cannot be "
                                           "matched"):
        check_same_checkpoint(EncodeStage.open(tmp_path), DecodeStage.open(tmp_path))
