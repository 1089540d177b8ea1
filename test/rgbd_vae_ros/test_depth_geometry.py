"""Our own depth models keep the camera's aspect and know what their training saw (SPEC §4.2, §5):
the trainer records the focal length and the supervised region, export writes them into the
metadata and the card, and the depth stage crops (never stretches), invalidates what the model did
not see or was never taught, and scales metres by f_camera / f_train."""

import numpy as np
import pytest

from rgbd_vae_ros.cards import card_for_info, check_card_against_info, CardError
from rgbd_vae_ros.inference import BackendError
from rgbd_vae_ros.inference.metadata import ModelInfo
from rgbd_vae_ros.stages import DepthStage

NYU_FX_RGB = 518.858  # at 640x480


@pytest.fixture(scope="module")
def demo_depth(tiny_depth_checkpoint, tmp_path_factory):
    """The demo-style tiny_depth (trained as the demo trains it, test/conftest.py) exported to ONNX."""
    from rgbd_vae_training.export import export_checkpoint

    folder = tmp_path_factory.mktemp("demo_depth")
    export_checkpoint(tiny_depth_checkpoint, folder / "export")
    return folder / "export", tiny_depth_checkpoint


def _image_16_9() -> np.ndarray:
    """A synthetic room at 160x90: the middle rows of a 160x120 render (same camera, 16:9)."""
    from rgbd_vae_training.synth.generate import generate_scene

    frame = next(iter(generate_scene(seed=99, scene_index=3, frames=1, width=160, height=120, synchronised=True)))
    return np.ascontiguousarray(frame.rgb_u8[15:105])


def _check_nothing_published_outside_the_view_or_the_supervised_region(stage: DepthStage) -> int:
    """On a 16:9 image: every pixel the 4:3 crop cut away, and every one outside the supervised box,
    is invalid (NaN); inside both, nearly all have an estimate. Returns how many pixels the model sees
    outside the supervised box."""
    geometry = stage.info.geometry
    height, width = stage.height, stage.width
    assert height * 4 == width * 3  # tiny_depth takes a 4:3 input, as the demo's camera gives
    # the rooms are 128x96 NYU frames: the RGB camera's fx at the model's input
    assert geometry["focal_length_px"] == pytest.approx(NYU_FX_RGB * width / 640, rel=1e-4)
    box = geometry["supervised"]
    top, left, bottom, right = (0.0, 0.0, 1.0, 1.0) if box == "full" else box
    depth_m = stage(_image_16_9())
    assert depth_m.shape == (90, 160)
    # where each image pixel centre lies in the model input: the 90 rows fill its height, the
    # columns beyond 4:3 are cut away (crop), none is stretched
    scale = height / 90
    rows = (np.arange(90) + 0.5) * scale
    cols = (np.arange(160) + 0.5) * scale - (160 * scale - width) / 2
    seen = ((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]
    taught = (((rows >= top * height) & (rows < bottom * height))[:, None]
              & ((cols >= left * width) & (cols < right * width))[None, :])
    assert (~seen).sum() > 0
    assert not np.isfinite(depth_m[~seen]).any()
    assert not np.isfinite(depth_m[~taught]).any()
    inner = taught & seen
    assert np.isfinite(depth_m[inner]).mean() > 0.9  # inside, an estimate nearly everywhere
    return int((seen & ~taught).sum())


@pytest.mark.slow  # trains tiny_depth once for the session (about a minute), exports it
def test_demo_model_is_supervised_over_the_whole_frame_and_publishes_nothing_outside_its_view(demo_depth):
    folder, _ = demo_depth
    stage = DepthStage.open(folder / "depth.onnx")
    # trained on the labeled layout: depth over the whole frame, every input pixel taught
    assert stage.info.geometry["supervised"] == "full"
    assert _check_nothing_published_outside_the_view_or_the_supervised_region(stage) == 0
    stage.close()


@pytest.mark.slow  # reads the 100 rooms' depth for the supervised region
def test_a_model_trained_on_registered_depth_publishes_nothing_outside_its_supervised_region(learning_data, tmp_path):
    """NYU raw depth registered to the RGB camera has a border without readings: never supervised,
    so never published, whatever the model paints there."""
    from rgbd_vae_training.export import export_checkpoint
    from rgbd_vae_training.train.config import load_config
    from rgbd_vae_training.train.loop import train

    config = load_config("tiny_depth", ["train.max_steps=3"])  # the region comes from the data, not the steps
    result = train(config, learning_data, tmp_path / "run", progress=False)
    export_checkpoint(result.checkpoint, tmp_path / "export")
    stage = DepthStage.open(tmp_path / "export" / "depth.onnx")
    top, left, bottom, right = stage.info.geometry["supervised"]
    assert 0 < top < bottom < 1 and 0 <= left < right < 1
    assert _check_nothing_published_outside_the_view_or_the_supervised_region(stage) > 0  # seen but never taught
    stage.close()


@pytest.mark.slow
def test_the_card_export_writes_says_what_the_metadata_says(demo_depth):
    from rgbd_vae_ros.cards import load_card

    folder, _ = demo_depth
    stage = DepthStage.open(folder / "depth.onnx")  # opens as ours: the card beside it agrees
    card = load_card(folder / "depth.card.yaml")
    assert card.output.focal_length_px == stage.info.geometry["focal_length_px"]
    assert card.input.resize == "crop" and card == card_for_info(stage.info)
    stage.close()


def test_a_checkpoint_without_recorded_geometry_exports_as_unknown_and_is_not_scaled(exported):
    folder, _ = exported["unet_depth"]  # fresh weights, never trained: no geometry recorded
    stage = DepthStage.open(folder / "depth.onnx")
    assert stage.info.geometry["focal_length_px"] == "unknown" and stage.info.geometry["supervised"] == "unknown"
    assert "unknown" in stage.info.geometry["trained_on"] and stage.focal_length_px is None
    assert card_for_info(stage.info).output.focal_length_px is None
    rgb = np.random.default_rng(2).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    np.testing.assert_array_equal(stage(rgb, fx_px=400.0), stage(rgb))  # the model's own scale
    stage.close()


def test_metres_scale_by_camera_focal_over_training_focal_at_the_input(exported):
    folder, _ = exported["unet_depth"]
    stage = DepthStage.open(folder / "depth.onnx")
    stage.info.depth_geometry = {"focal_length_px": 20.0, "supervised": "full", "resize": "crop", "trained_on": "t"}
    rgb = np.random.default_rng(2).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    plain = stage(rgb)
    # 160x120 -> the 48x36 input scales by 0.3: fx 100 px at the image is 30 px at the input, 1.5 x 20
    np.testing.assert_allclose(stage(rgb, fx_px=100.0), plain * 1.5, rtol=1e-6)
    stage.close()


def test_a_card_that_disagrees_on_focal_length_or_resize_is_refused():
    info = _info({"focal_length_px": 77.8, "supervised": "full", "resize": "crop", "trained_on": "rooms"})
    card = card_for_info(info)
    check_card_against_info(card, info, "'depth.onnx'")
    other = card_for_info(_info({"focal_length_px": 60.0, "supervised": "full", "resize": "crop", "trained_on": ""}))
    with pytest.raises(CardError, match=r"output.focal_length_px 60.0 but the model's metadata makes it 77.8"):
        check_card_against_info(other, info, "'depth.onnx'")
    padded = card_for_info(_info({"focal_length_px": 77.8, "supervised": "full", "resize": "pad", "trained_on": ""}))
    with pytest.raises(CardError, match=r"input.resize 'pad' but the model's metadata makes it 'crop'"):
        check_card_against_info(padded, info, "'depth.onnx'")


@pytest.mark.parametrize("geometry", [
    {"focal_length_px": -5.0, "supervised": "full", "resize": "crop", "trained_on": ""},
    {"focal_length_px": float("nan"), "supervised": "full", "resize": "crop", "trained_on": ""},
    {"focal_length_px": 70.0, "supervised": [0.5, 0.0, 0.2, 1.0], "resize": "crop", "trained_on": ""},
    {"focal_length_px": 70.0, "supervised": [0.0, 0.0, 1.0, 1.5], "resize": "crop", "trained_on": ""},
    {"focal_length_px": 70.0, "supervised": "full", "resize": "stretch", "trained_on": ""},
    {"focal_length_px": 70.0, "supervised": "full", "resize": "crop", "trained_on": "", "extra": 1},
])
def test_metadata_with_impossible_geometry_is_refused_in_one_sentence(geometry):
    with pytest.raises(BackendError, match=r"^'m.onnx' carries depth geometry .*; expected, on a depth part"):
        _info(geometry).check("'m.onnx'")


def _info(geometry) -> ModelInfo:
    return ModelInfo("unet_depth", "depth", "depth", {"input_height": 72, "input_width": 96}, ["rgb"], ["depth"],
                     [3, 72, 96], depth_geometry=geometry)


# the trainer's side: frames cropped to the model's aspect, the region its depth covered --------
def test_training_frames_are_cropped_to_the_model_aspect_with_their_intrinsics_moved():
    from rgbd_vae_training.data.frame import RGBDFrame
    from rgbd_vae_training.train.geometry import AspectFrames

    rgb = np.arange(120 * 160 * 3, dtype=np.uint32).reshape(120, 160, 3).astype(np.uint8)
    depth = np.full((120, 160), 2.0, np.float32)
    frames = AspectFrames([RGBDFrame(rgb, depth, intrinsics=(100.0, 100.0, 80.0, 60.0))], 64, 64, "rgbd-png")
    frame = frames[0]
    assert frame.rgb_u8.shape == (120, 120, 3) and frame.depth_m.shape == (120, 120)
    np.testing.assert_array_equal(frame.rgb_u8, rgb[:, 20:140])
    assert frame.intrinsics == (100.0, 100.0, 60.0, 60.0)
    same = AspectFrames([RGBDFrame(rgb, depth)], 72, 96, "nyu-raw")[0]  # 4:3 already; NYU intrinsics filled in
    assert same.rgb_u8 is rgb and same.intrinsics[0] == pytest.approx(NYU_FX_RGB / 4)


def test_the_supervised_region_is_where_training_depth_had_readings():
    from rgbd_vae_training.data.frame import RGBDFrame
    from rgbd_vae_training.train.geometry import training_geometry

    rgb = np.zeros((48, 64, 3), np.uint8)
    bordered = np.full((48, 64), 3.0, np.float32)
    bordered[:6], bordered[:, -8:] = np.nan, np.nan  # a registration border: top rows, right columns
    holey = bordered.copy()
    holey[20:30, 10:20] = np.nan  # a hole inside is not a border
    frames = [RGBDFrame(rgb, d, intrinsics=(50.0, 50.0, 32.0, 24.0)) for d in (bordered, holey)]
    geometry = training_geometry(frames, 24, 32, 10.0, hflip=False, data_name="t")
    assert geometry["supervised"] == [0.125, 0.0, 1.0, 0.875] and geometry["focal_length_px"] == 25.0
    flipped = training_geometry(frames, 24, 32, 10.0, hflip=True, data_name="t")  # the border lands left too
    assert flipped["supervised"] == [0.125, 0.0, 1.0, 1.0]
    full = [RGBDFrame(rgb, np.full((48, 64), 3.0, np.float32))]  # synthetic full-frame depth, no intrinsics
    geometry = training_geometry(full, 24, 32, 10.0, hflip=True, data_name="t")
    assert geometry["supervised"] == "full" and geometry["focal_length_px"] == "unknown"
    mixed = [RGBDFrame(rgb, bordered, intrinsics=(f, f, 32.0, 24.0)) for f in (50.0, 60.0)]
    assert training_geometry(mixed, 24, 32, 10.0, False, "t")["focal_length_px"] == "unknown"


def test_a_cropped_image_is_resized_only_where_it_reaches_the_input_with_the_same_pixels():
    from rgbd_vae_ros.cards import plan_view, preprocess
    from rgbd_vae_ros.processing import resize_rgb

    card = card_for_info(_info({"focal_length_px": 77.8, "supervised": "full", "resize": "crop", "trained_on": ""}))
    rgb = np.random.default_rng(5).integers(0, 256, (90, 160, 3), dtype=np.uint8)  # 16:9 into 96x72
    x, view = preprocess(rgb, card)
    assert view.scaled_hw == (72, 128) and view.offset == (0, -16)
    whole = resize_rgb(rgb, 72, 128)[:, 16:112]  # the whole image scaled, then cropped
    np.testing.assert_allclose(x[0].transpose(1, 2, 0), whole / 127.5 - 1, atol=1e-6)
    tall = np.zeros((16384, 1, 3), np.uint8)  # an extreme aspect: a sliver of it fills the input
    x, view = preprocess(tall, card)
    assert x.shape == (1, 3, 72, 96) and plan_view(tall.shape[:2], card).scaled_hw == (1572864, 96)


@pytest.mark.parametrize("fx_px", [0.0, -500.0, float("nan"), float("inf")])
def test_a_focal_length_that_is_not_a_positive_number_is_refused_not_applied(fx_px):
    """focal_ratio is the one scaling of metres by f_camera / f_train: 0 px would publish 0 m
    everywhere, a negative one negative metres."""
    from rgbd_vae_ros.cards import CardError, View, focal_ratio

    view = View((72, 96), (72, 96), (0, 0), 0.15)
    assert focal_ratio(500.0, view, 75.0) == pytest.approx(1.0)
    with pytest.raises(CardError, match="expected a positive number"):
        focal_ratio(fx_px, view, 75.0)
