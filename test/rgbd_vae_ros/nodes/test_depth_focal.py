"""depth_estimator scales our own depth models' metres by f_camera / f_train (SPEC §4.2), real rclpy
in process: one synthetic room rendered (training/synth) at two focal lengths gives the same depth.

The model is built here so that its output is known: it reads the apparent-size cue that a metric
network learns, f / Z, which the test writes into the red channel (R = C f_image / Z), and answers
Z = K / R, the depth a network trained at focal length f_train would give (K = C f_train / s, s the
input pixels per image pixel). At another focal length that depth is off by f_train / f_camera,
which the node must undo from camera_info; the export's metadata records f_train.
"""

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from rgbd_vae_ros.conversion import image_to_numpy, numpy_to_image

WIDTH, HEIGHT = 160, 120  # the camera's images
INPUT_H, INPUT_W = 48, 64  # the model's 4:3 input: s = 0.4
F1 = 130.0  # px at 160x120; the second camera zooms 1.5x
F2 = 1.5 * F1
F_TRAIN = 1.2 * F1 * INPUT_W / WIDTH  # at the model's input: neither camera's focal length
C = 0.6  # R = C f / Z: 0-255 for depths of 0.5 m and more at either focal length
MAX_DEPTH_M = 10.0


def _model(path):
    """A depth ONNX with our metadata: Z = K / R in [-1, 1] units, f_train recorded."""
    import io
    import warnings

    import onnx
    import torch

    from rgbd_vae_ros.inference.metadata import METADATA_KEY, ModelInfo

    k = C * F_TRAIN / (INPUT_W / WIDTH)

    class ApparentSize(torch.nn.Module):
        def forward(self, rgb):  # (B, 3, H, W) in [-1, 1]
            red = torch.clamp((rgb[:, :1] + 1.0) * 127.5, min=0.5)  # (B, 1, H, W) the cue C f / Z
            return k / red * (2.0 / MAX_DEPTH_M) - 1.0  # metres in the unit range of rgbd_vae_ros.processing

    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter, as rgbd-vae export uses it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(ApparentSize(), torch.zeros(1, 3, INPUT_H, INPUT_W), buffer, input_names=["rgb"],
                          output_names=["depth"], dynamic_axes={"rgb": {0: "batch"}, "depth": {0: "batch"}},
                          opset_version=17, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    info = ModelInfo("unet_depth", "depth", "depth", {"input_height": INPUT_H, "input_width": INPUT_W}, ["rgb"],
                     ["depth"], [3, INPUT_H, INPUT_W], MAX_DEPTH_M, "0" * 64,
                     depth_geometry={"focal_length_px": F_TRAIN, "supervised": "full", "resize": "crop",
                                     "trained_on": "test: the apparent-size cue"})
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_json()
    path.write_bytes(proto.SerializeToString())
    return path


def _render(focal_px: float):
    """One synthetic room seen by a camera of focal length ``focal_px`` (same pose): the image with
    the cue in red, and the true depth."""
    from rgbd_vae_training.synth.render import camera_rays, cast
    from rgbd_vae_training.synth.scene import camera_pose, make_scene

    scene = make_scene(np.random.default_rng(21))
    # toolbox pixel coordinates (pixel c at c + 1): the principal point mid-image
    rays = camera_rays(WIDTH, HEIGHT, focal_px, focal_px, (WIDTH + 1) / 2, (HEIGHT + 1) / 2)
    depth_m = cast(scene, *camera_pose(scene, 0.0), rays).t.reshape(HEIGHT, WIDTH).astype(np.float32)
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    rgb[..., 0] = np.clip(np.rint(C * focal_px / depth_m), 0, 255)
    rgb[..., 1] = 90
    return rgb, depth_m


def _header(sec):
    h = Header(frame_id="camera_rgb")
    h.stamp.sec = sec
    return h


def _camera(focal_px: float, sec: int) -> CameraInfo:
    """camera_info at twice the image's size (same aspect: the node scales it)."""
    f, cx, cy = 2 * focal_px, WIDTH - 0.5, HEIGHT - 0.5
    return CameraInfo(header=_header(sec), width=2 * WIDTH, height=2 * HEIGHT, k=[f, 0, cx, 0, f, cy, 0, 0, 1])


def _ratio(published, truth, rgb):
    """Median published / true depth where the cue is precise (not saturated, not coarse)."""
    red = rgb[..., 0]
    usable = (red >= 20) & (red <= 250) & np.isfinite(published)
    return float(np.median(published[usable] / truth[usable]))


@pytest.mark.slow
def test_one_scene_at_two_focal_lengths_gives_depth_within_5_percent_after_scaling(harness, tmp_path):
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    harness.add(DepthEstimatorNode(context=harness.context, parameter_overrides=[
        Parameter("model", value=str(_model(tmp_path / "depth.onnx"))), Parameter("max_depth", value=MAX_DEPTH_M)]))
    depth = harness.listen(Image, "depth/image")
    diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
    image_pub, info_pub = harness.publisher(Image, "image"), harness.publisher(CameraInfo, "camera_info")
    (rgb1, truth1), (rgb2, truth2) = _render(F1), _render(F2)

    # without camera_info: the model's own scale, off by f_train / f_camera (1.2 and 0.8)
    unscaled = {}
    for sec, rgb in ((1, rgb1), (2, rgb2)):
        assert harness.send(image_pub, numpy_to_image(rgb, "rgb8", _header(sec)),
                            lambda sec=sec: any(m.header.stamp.sec == sec for m in depth))
        unscaled[sec] = image_to_numpy(next(m for m in depth if m.header.stamp.sec == sec))
    assert _ratio(unscaled[1], truth1, rgb1) == pytest.approx(1.2, rel=0.05)
    assert _ratio(unscaled[2], truth2, rgb2) == pytest.approx(0.8, rel=0.05)

    # with each camera's camera_info (paired by stamp): scaled by f_camera / f_train at the model's input
    scaled = {}
    for sec, rgb, focal in ((3, rgb1, F1), (4, rgb2, F2)):
        info_pub.publish(_camera(focal, sec))

        def paired(m, sec=sec, rgb=rgb, truth=truth1 if sec == 3 else truth2):
            # an image that overtakes its camera_info (another topic) goes out unscaled; it is sent again
            return m.header.stamp.sec == sec and abs(_ratio(image_to_numpy(m), truth, rgb) - 1.0) < 0.1

        def sent(sec=sec, focal=focal, paired=paired):
            info_pub.publish(_camera(focal, sec))
            return any(map(paired, depth))

        assert harness.send(image_pub, numpy_to_image(rgb, "rgb8", _header(sec)), sent)
        scaled[sec] = image_to_numpy(next(filter(paired, depth)))
    assert _ratio(scaled[3], truth1, rgb1) == pytest.approx(1.0, abs=0.05)
    assert _ratio(scaled[4], truth2, rgb2) == pytest.approx(1.0, abs=0.05)
    # the same rays in both images: the zoomed image's pixel (r, c) sees what the first sees nearer the centre
    rows, cols = np.mgrid[10:HEIGHT - 10:4, 10:WIDTH - 10:4]
    r1 = np.rint((HEIGHT - 1) / 2 + (rows - (HEIGHT - 1) / 2) * F1 / F2).astype(int)
    c1 = np.rint((WIDTH - 1) / 2 + (cols - (WIDTH - 1) / 2) * F1 / F2).astype(int)
    zoomed, first = scaled[4][rows, cols], scaled[3][r1, c1]
    usable = np.isfinite(zoomed) & np.isfinite(first) & (rgb2[rows, cols, 0] >= 20) & (rgb2[rows, cols, 0] <= 250)
    assert usable.sum() > 200
    assert float(np.median(np.abs(zoomed[usable] / first[usable] - 1.0))) < 0.05
    assert harness.wait_for(lambda: any(
        kv.key == "depth_scaling" and f"f_train {F_TRAIN:g} px at the 64x48 input" in kv.value
        for array in diagnostics for status in array.status for kv in status.values))


@pytest.mark.slow
def test_a_model_without_a_training_focal_length_keeps_its_own_scale_and_says_so(harness, exported):
    from rgbd_vae_ros.nodes.depth_estimator import DepthEstimatorNode

    folder, _ = exported["unet_depth"]  # fresh weights: its checkpoint recorded no geometry
    harness.add(DepthEstimatorNode(context=harness.context, parameter_overrides=[
        Parameter("model", value=str(folder / "depth.onnx"))]))
    depth = harness.listen(Image, "depth/image")
    diagnostics = harness.listen(DiagnosticArray, "/diagnostics")
    image_pub, info_pub = harness.publisher(Image, "image"), harness.publisher(CameraInfo, "camera_info")
    rgb, _ = _render(F1)
    assert harness.send(image_pub, numpy_to_image(rgb, "rgb8", _header(1)), lambda: depth)
    own = image_to_numpy(depth[-1])

    def answered(sec=2):
        info_pub.publish(_camera(3 * F1, sec))
        return any(m.header.stamp.sec == sec for m in depth)

    assert harness.send(image_pub, numpy_to_image(rgb, "rgb8", _header(2)), answered)
    np.testing.assert_array_equal(image_to_numpy(next(m for m in depth if m.header.stamp.sec == 2)), own)
    assert harness.wait_for(lambda: any(
        kv.key == "depth_scaling" and kv.value.startswith("none: the training focal length is unknown")
        for array in diagnostics for status in array.status for kv in status.values))
