"""Model cards (SPEC §5.1): parsing, the card against its graph, pre-processing that keeps the aspect,
the robust relative -> metric fit, and carded models run by the depth stage."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from rgbd_vae_ros.cards import (CardError, card_for_info, check_card_against_info, load_card, parse_card, plan_view,
                                preprocess, write_card)
from rgbd_vae_ros.carded_depth import CardedDepthStage, open_carded, to_image_grid
from rgbd_vae_ros.inference import BackendError
from rgbd_vae_ros.scale_fit import fit_inverse_depth
from rgbd_vae_ros.stages import DepthStage, StageError

from .card_models import abs_rel, card_dict, ramp_scene, red_model, write_card_yaml

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "model_cards"


def _carded(tmp_path, card=None, **model):
    onnx_path = red_model(tmp_path / "model.onnx", **model)
    write_card_yaml(onnx_path, card if card is not None else card_dict())
    return onnx_path


# parsing ----------------------------------------------------------------------------------------
def test_the_shipped_cards_load_and_say_what_each_model_expects():
    cards = {p.name: load_card(p) for p in sorted(SHIPPED.glob("*.card.yaml"))}
    assert set(cards) == {"depth_anything_v2.card.yaml", "depth_anything_v2_metric_indoor.card.yaml",
                          "midas_v3_1.card.yaml", "dpt.card.yaml"}
    da2 = cards["depth_anything_v2.card.yaml"]
    assert (da2.input.name, da2.input.size, da2.input.multiple_of, da2.output.kind) == (
        "pixel_values", 518, 14, "relative_inverse")
    assert da2.input.mean == pytest.approx((0.485, 0.456, 0.406)) and da2.input.resize in ("pad", "crop")
    metric = cards["depth_anything_v2_metric_indoor.card.yaml"]
    assert metric.is_metric and metric.output.focal_length_px > 0
    assert not any(c.is_metric for name, c in cards.items() if name != "depth_anything_v2_metric_indoor.card.yaml")


@pytest.mark.parametrize("edit, words", [
    (lambda c: c["input"].update(colour="RGB"), "input' has unknown key 'colour'"),
    (lambda c: c.update(weights="x.bin"), "top level has unknown key 'weights'"),
    (lambda c: c["input"].update(layout="CHW"), "input.layout 'CHW'; expected one of NCHW, NHWC"),
    (lambda c: c["input"].update(resize="stretch"), "input.resize 'stretch'; expected one of pad, crop"),
    (lambda c: c["input"].update(std=[0.2, 0.0, 0.2]), "input.std 0.0; expected a finite number > 0"),
    (lambda c: c["input"].update(size=[518]), "input.size [518]; expected [height, width]"),
    (lambda c: c["output"].update(kind="depth"), "output.kind 'depth'; expected one of metric"),
    (lambda c: c["output"].update(focal_length_px=500.0), "training focal length scales metric outputs only"),
    (lambda c: c["output"].update(shift=0.1), "output.shift 0.1 without output.scale"),
    (lambda c: c["output"].pop("name"), "missing output.name"),
    (lambda c: c.update(format="v0"), "format 'v0'; expected 'rgbd_vae_ros.card.v1'"),
])
def test_a_bad_card_is_refused_in_one_sentence_naming_the_field(edit, words):
    values = card_dict()
    edit(values)
    with pytest.raises(CardError, match=None) as error:
        parse_card(values, "'m.card.yaml'")
    assert words in str(error.value) and "\n" not in str(error.value)


def test_a_card_file_that_is_not_yaml_is_refused(tmp_path):
    path = tmp_path / "m.card.yaml"
    path.write_text("input: [unclosed\n")
    with pytest.raises(CardError, match="not valid YAML"):
        load_card(path)


# the card against its graph ---------------------------------------------------------------------
@pytest.mark.parametrize("card, model, words", [
    (card_dict(input_name="image"), {}, "input.name 'image' but the graph's inputs are 'pixel_values'"),
    (card_dict(output_name="depth"), {}, "output.name 'depth' but the graph's outputs are 'predicted_depth'"),
    (card_dict(size=(384, 384)), {}, "input.size [384, 384] but the graph's 'pixel_values' is (518, 518)"),
    (card_dict(layout="NHWC"), {}, "input.layout NHWC (3 colour channels on axis 3)"),
    (card_dict(size=518, multiple_of=14), {}, "input.multiple_of 14 (a graph of dynamic size) but the graph's"),
])
def test_a_card_that_disagrees_with_its_graph_is_refused_with_both_values(tmp_path, card, model, words):
    path = _carded(tmp_path, card, **model)
    with pytest.raises(CardError) as error:
        DepthStage.open(path)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_a_carded_model_asked_for_on_another_backend_is_refused(tmp_path):
    with pytest.raises(BackendError, match="runs on ONNX Runtime; backend 'tensorrt'"):
        DepthStage.open(_carded(tmp_path), backend="tensorrt")


# pre-processing ---------------------------------------------------------------------------------
def test_pad_keeps_the_aspect_and_fills_the_rest_with_the_mean_colour():
    card = parse_card(card_dict(size=(56, 56)))
    rgb = np.full((30, 40, 3), 200, np.uint8)
    x, view = preprocess(rgb, card)
    assert x.shape == (1, 3, 56, 56) and view.scaled_hw == (42, 56) and view.offset == (7, 0)
    assert np.all(x[0, :, :7] == 0) and np.all(x[0, :, 49:] == 0)  # the pad: mean colour, 0 once normalised
    np.testing.assert_allclose(x[0, 0, 7:49], (200 / 255 - 0.485) / 0.229, rtol=1e-5)


def test_crop_fills_the_input_and_the_cut_borders_come_back_invalid():
    card = parse_card(card_dict(size=(56, 56), resize="crop"))
    view = plan_view((30, 40), card)
    assert view.scaled_hw == (56, 75) and view.offset == (0, -10)
    values = to_image_grid(np.ones((56, 56), np.float32), view, (30, 40))
    seen = np.isfinite(values)
    assert seen[:, 20].all() and not seen[:, 0].any() and not seen[:, -1].any()
    assert 0.6 < seen.mean() < 0.8  # about 56 of 75 columns


def test_an_output_map_of_another_size_is_laid_back_over_the_image_where_the_model_saw_it():
    card = parse_card(card_dict(size=(56, 56)))
    view = plan_view((30, 40), card)  # the image fills rows 7..49 of the 56x56 input
    rows = (np.arange(28) + 0.5) * 2  # a half-resolution output: its value is the input row it covers
    values = to_image_grid(np.repeat(rows[:, None], 28, axis=1).astype(np.float32), view, (30, 40))
    expected = 7 + (np.arange(30) + 0.5) * 42 / 30  # each image row's centre in input rows
    inside = (expected > 1) & (expected < 55)  # away from the clamped output border
    np.testing.assert_allclose(values[inside, 5], expected[inside], atol=1e-4)


def test_a_multiple_of_card_rounds_each_side_after_scaling_the_short_side():
    pad = parse_card(card_dict(size=518, multiple_of=14))
    crop = parse_card(card_dict(size=518, multiple_of=14, resize="crop"))
    assert plan_view((480, 640), pad).input_hw == (518, 700)
    assert plan_view((480, 640), crop).input_hw == (518, 686)


def test_bgr_nhwc_cards_get_the_colours_and_axes_they_ask_for():
    card = parse_card({**card_dict(size=(4, 4), layout="NHWC"),
                       "input": {**card_dict(size=(4, 4), layout="NHWC")["input"], "colour_order": "BGR",
                                 "mean": [0, 0, 0], "std": [1, 1, 1]}})
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255
    x, _ = preprocess(rgb, card)
    assert x.shape == (1, 4, 4, 3) and np.all(x[..., 2] == 1) and np.all(x[..., 0] == 0)


# the fit ----------------------------------------------------------------------------------------
def test_the_fit_recovers_scale_and_shift_despite_outliers_and_holes():
    rng = np.random.default_rng(1)
    truth_m = rng.uniform(0.5, 8.0, (60, 80))
    relative = (1 / truth_m - 0.05) / 0.02  # inverse = 0.02 * relative + 0.05
    measured = truth_m.copy()
    measured[rng.random(measured.shape) < 0.3] = np.nan
    wrong = rng.random(measured.shape) < 0.2
    measured[wrong] = rng.uniform(0.3, 10.0, wrong.sum())
    fit = fit_inverse_depth(relative, measured)
    assert fit.ok and fit.scale == pytest.approx(0.02, rel=1e-3) and fit.shift == pytest.approx(0.05, abs=1e-4)
    assert 0.7 < fit.inlier_fraction < 0.95 and fit.residual < 1e-3


def test_the_fit_is_refused_with_too_few_points_or_a_model_that_disagrees():
    relative = np.linspace(1, 2, 100).reshape(10, 10)
    sparse = np.full((10, 10), np.nan)
    sparse[0, :5] = 2.0
    assert not fit_inverse_depth(relative, sparse).ok
    noise = np.random.default_rng(2).uniform(0.5, 8.0, (10, 10))
    fit = fit_inverse_depth(relative, noise)
    assert not fit.ok and "agree" in fit.reason


def test_a_disparity_fit_has_no_shift():
    relative = np.linspace(1, 5, 400).reshape(20, 20)
    fit = fit_inverse_depth(relative, 1 / (0.1 * relative), with_shift=False)
    assert fit.ok and fit.shift == 0 and fit.scale == pytest.approx(0.1)


# carded models in the depth stage ---------------------------------------------------------------
@pytest.mark.parametrize("size, multiple_of, resize, model", [
    ((518, 518), None, "pad", {}),
    (56, 14, "crop", {"height": "h", "width": "w", "rank": 4}),
])
def test_a_relative_model_gives_metres_only_with_measured_depth(tmp_path, size, multiple_of, resize, model):
    path = _carded(tmp_path, card_dict(size=size, multiple_of=multiple_of, resize=resize), a=3.0, b=-0.4, **model)
    stage = DepthStage.open(path)
    assert isinstance(stage, CardedDepthStage) and stage.needs_measured_depth
    rgb, truth_m = ramp_scene()
    without = stage.estimate_carded(rgb)
    assert without.depth_m is None and without.relative.shape == (120, 160)
    with pytest.raises(StageError, match="only depth/relative"):
        stage(rgb)
    sparse = np.full((60, 80), np.nan, np.float32)  # a sparse sensor at half resolution
    sparse[::3, ::2] = truth_m[::6, ::4]
    result = stage.estimate_carded(rgb, measured_m=sparse)
    assert result.scale_from == "fit" and result.fit.ok
    assert abs_rel(result.depth_m, truth_m) < 0.02
    if resize == "crop":  # 160x120 -> 75x56 cropped to 70x56: the side columns were not seen
        assert np.isnan(result.depth_m[:, 0]).all() and np.isfinite(result.depth_m[:, 80]).all()


def test_a_metric_card_is_scaled_by_the_camera_focal_length_over_the_training_one(tmp_path):
    card = card_dict(kind="metric", size=(60, 80), focal_length_px=50.0)
    path = _carded(tmp_path, card, a=0.0, b=2.0, height=60, width=80)  # 2 m everywhere
    stage = DepthStage.open(path)
    rgb, _ = ramp_scene()
    plain = stage.estimate_carded(rgb)
    assert plain.scale_from == "model" and np.allclose(plain.depth_m, 2.0)
    # 160 px wide image into an 80 px input: fx 200 px at the image is 100 px at the model's input
    scaled = stage.estimate_carded(rgb, fx_px=200.0)
    assert scaled.scale_from == "model+focal" and np.allclose(scaled.depth_m, 2.0 * 100 / 50)


def test_a_fixed_card_scale_gives_metres_without_measured_depth(tmp_path):
    path = _carded(tmp_path, card_dict(size=(60, 80), scale=1 / 3.0, shift=0.4 / 3.0), a=3.0, b=-0.4,
                   height=60, width=80)
    rgb, truth_m = ramp_scene()
    depth_m = DepthStage.open(path)(rgb)
    assert abs_rel(depth_m, truth_m) < 0.02


def test_an_onnx_without_card_or_metadata_says_how_to_use_it(tmp_path):
    path = red_model(tmp_path / "foreign.onnx", 1.0, 0.0)
    assert open_carded(path) is None
    with pytest.raises(BackendError, match="without rgbd_vae_ros metadata"):
        DepthStage.open(path)


# our own exports --------------------------------------------------------------------------------
@pytest.mark.slow
def test_export_writes_a_card_that_agrees_with_the_metadata(exported, tmp_path):
    folder, _ = exported["unet_depth"]
    card = load_card(folder / "depth.card.yaml")
    stage = DepthStage.open(folder, backend="onnxruntime")
    assert not isinstance(stage, CardedDepthStage)  # its metadata drives it
    check_card_against_info(card, stage.info, "depth.onnx")
    assert card == card_for_info(stage.info) and card.output.scale == stage.info.max_depth_m / 2
    for name in ("encoder.onnx", "decoder.onnx"):
        assert not (exported["conv_vae"][0] / name.replace(".onnx", ".card.yaml")).exists()


@pytest.mark.slow
def test_a_card_beside_our_export_that_disagrees_with_its_metadata_is_refused(exported, tmp_path):
    import shutil

    folder, _ = exported["unet_depth"]
    copy = tmp_path / "models"
    shutil.copytree(folder, copy)
    card = card_for_info(DepthStage.open(folder, backend="onnxruntime").info)
    values = card.to_dict()
    values["output"]["scale"] = 10.0
    (copy / "depth.card.yaml").write_text(yaml.safe_dump(values))
    with pytest.raises(CardError, match=r"output.scale 10.0 but the model's metadata makes it 4.0"):
        DepthStage.open(copy)
    write_card(copy / "depth.card.yaml", card)
    assert not isinstance(DepthStage.open(copy), CardedDepthStage)
