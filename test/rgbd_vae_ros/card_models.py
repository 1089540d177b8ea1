"""ONNX files and scenes for the model-card tests, built here (no weights can be downloaded).

The models follow the public I/O conventions of Depth-Anything-V2 (input ``pixel_values``
1x3x518x518, ImageNet mean/std, RGB; output ``predicted_depth`` (1, H, W)), but compute a known
function of the image: the red channel, un-normalised. The scenes write their true inverse depth
into the red channel, so the model's output is ``a * inverse depth + b`` with a, b known only to
the test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
# the scene's inverse depth in 1/m, written as red = INV_TO_RED * inverse depth
INV_TO_RED = 255.0


def red_model(path: Path, a: float = 1.0, b: float = 0.0, input_name: str = "pixel_values", output_name: str = "predicted_depth",
              height: int | str = 518, width: int | str = 518, layout: str = "NCHW", rank: int = 3,
              mean=IMAGENET_MEAN, std=IMAGENET_STD) -> Path:
    """An ONNX graph: y = a * red + b, red = the first channel un-normalised (in [0, 1]) times
    255 / INV_TO_RED, i.e. the scene's inverse depth. Sizes may be symbolic (str)."""
    import onnx
    from onnx import TensorProto, helper

    def const(name, values, dtype=TensorProto.FLOAT):
        values = np.asarray(values)
        return helper.make_tensor(name, dtype, list(values.shape), values.ravel().tolist())

    nchw = layout == "NCHW"
    shape_in = [1, 3, height, width] if nchw else [1, height, width, 3]
    channel_axis = 1 if nchw else 3
    nodes = [helper.make_node("Slice", [input_name, "starts", "ends", "axes"], ["red_n"]),  # channel 0
             helper.make_node("Mul", ["red_n", "std0"], ["red_s"]),
             helper.make_node("Add", ["red_s", "mean0"], ["red_unit"]),
             helper.make_node("Mul", ["red_unit", "a"], ["ya"]),
             helper.make_node("Add", ["ya", "b"], ["y4"])]
    initial = [const("starts", [0], TensorProto.INT64), const("ends", [1], TensorProto.INT64),
               const("axes", [channel_axis], TensorProto.INT64), const("std0", std[0]), const("mean0", mean[0]),
               const("a", a * 255.0 / INV_TO_RED), const("b", b)]
    if rank == 3:
        nodes.append(helper.make_node("Squeeze", ["y4", "squeeze_axes"], [output_name]))
        initial.append(const("squeeze_axes", [channel_axis], TensorProto.INT64))
        shape_out = [1, height, width]
    else:
        nodes.append(helper.make_node("Identity", ["y4"], [output_name]))
        shape_out = [1, 1, height, width] if nchw else [1, height, width, 1]
    graph = helper.make_graph(nodes, "red_model", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                                                                 shape_in)],
                              [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, shape_out)], initial)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def card_dict(kind: str = "relative_inverse", input_name: str = "pixel_values", output_name: str = "predicted_depth",
              size=(518, 518), multiple_of=None, resize: str = "pad", layout: str = "NCHW", **output) -> dict:
    """A Depth-Anything-V2-style card as YAML values."""
    card = {"format": "rgbd_vae_ros.card.v1", "name": "test red model", "source": "built by the test",
            "input": {"name": input_name, "size": list(size) if multiple_of is None else size,
                      "layout": layout, "colour_order": "RGB", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                      "resize": resize},
            "output": {"name": output_name, "kind": kind, **output}}
    if multiple_of is not None:
        card["input"]["multiple_of"] = multiple_of
    return card


def write_card_yaml(onnx_path: Path, values: dict) -> Path:
    path = onnx_path.with_name(onnx_path.stem + ".card.yaml")
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def ramp_scene(height: int = 120, width: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A tilted plane (inverse depth linear in the pixel, as a plane's is) from about 1 m to 3.3 m:
    the RGB image (inverse depth in red, texture in green and blue) and the true depth in metres."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    inverse = 0.3 + 0.5 * (rows + 0.5) / height + 0.15 * (cols + 0.5) / width  # 1/m
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    rgb[..., 0] = np.rint(inverse * INV_TO_RED).astype(np.uint8)
    return rgb, (1.0 / inverse).astype(np.float32)


def abs_rel(estimate: np.ndarray, truth: np.ndarray) -> float:
    valid = np.isfinite(estimate) & np.isfinite(truth) & (truth > 0)
    return float(np.mean(np.abs(estimate[valid] - truth[valid]) / truth[valid]))
