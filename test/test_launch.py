"""Launch and parameter files, checked without `launch` installed (it is not on PyPI); the real
launch test runs where launch_ros is importable."""

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
# what each executable subscribes to: a remapping must name one of these
INPUTS = {"depth_estimator": {"image", "camera_info"}, "rgbd_encoder": {"image", "depth"},
          "rgbd_decoder": {"latent"}, "rgbd_pipeline": {"image", "depth", "camera_info"}, "bag_player": set()}
NODE_CLASSES = {"depth_estimator": "rgbd_vae_ros.nodes.depth_estimator:DepthEstimatorNode",
                "rgbd_encoder": "rgbd_vae_ros.nodes.rgbd_encoder:RgbdEncoderNode",
                "rgbd_decoder": "rgbd_vae_ros.nodes.rgbd_decoder:RgbdDecoderNode",
                "rgbd_pipeline": "rgbd_vae_ros.nodes.rgbd_pipeline:RgbdPipelineNode",
                "bag_player": "rgbd_vae_ros.nodes.bag_player:BagPlayerNode"}


def _node_calls(path):
    tree = ast.parse(path.read_text())
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node":
            yield {k.arg: k.value for k in call.keywords}


def _includes(path):
    """(included launch file name, {argument: value}) for each IncludeLaunchDescription."""
    tree = ast.parse(path.read_text())
    names = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and str(n.value).endswith(".launch.py")]
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "IncludeLaunchDescription":
            assert len(names) == 1, names  # the file names the one launch file it includes
            arguments = next(k.value for k in call.keywords if k.arg == "launch_arguments").func.value
            yield names[0], {ast.literal_eval(k): v for k, v in zip(arguments.keys, arguments.values)}


def _arguments(path):
    tree = ast.parse(path.read_text())
    return {ast.literal_eval(c.args[0]) for c in ast.walk(tree)
            if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "DeclareLaunchArgument"}


def _declared(executable, rclpy_context):
    import importlib

    module, cls = NODE_CLASSES[executable].split(":")
    if executable == "bag_player":  # needs a bag to start; it declares exactly its PARAMETERS table
        from rclpy.parameter import Parameter

        table = importlib.import_module(module).PARAMETERS
        return {name: None if isinstance(default, Parameter.Type) else default
                for name, (default, _, _) in table.items()}
    node = getattr(importlib.import_module(module), cls)(context=rclpy_context,
                                                           parameter_overrides=[])
    try:
        return {name: node.get_parameter(name).value for name in node._parameters}
    finally:
        node.destroy_node()


def test_the_three_launch_files_of_the_spec_exist():
    assert {p.name for p in LAUNCH_FILES} == {"rgbd_vae.launch.py", "depth.launch.py", "nyu_replay.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_start_real_executables_remap_real_topics_and_set_declared_parameters(path, rclpy_context):
    import re

    scripts = re.findall(r'"(\w+) = rgbd_vae_ros\.nodes', (ROOT / "setup.py").read_text())
    calls, includes = list(_node_calls(path)), list(_includes(path))
    assert calls or includes, f"{path.name} starts no node"
    for name, arguments in includes:  # an included file of ours, given only arguments it declares
        assert (ROOT / "launch" / name).is_file(), name
        undeclared = set(arguments) - _arguments(ROOT / "launch" / name)
        assert not undeclared, f"{path.name} passes {sorted(undeclared)} that {name} does not declare"
    for call in calls:
        assert ast.literal_eval(call["package"]) == "rgbd_vae_ros"
        executable = ast.literal_eval(call["executable"])
        assert executable in scripts
        for pair in getattr(call.get("remappings"), "elts", []):
            assert ast.literal_eval(pair.elts[0]) in INPUTS[executable], ast.unparse(pair)
        declared = _declared(executable, rclpy_context)
        for item in call["parameters"].elts:
            if isinstance(item, ast.Dict):
                for key in item.keys:
                    assert ast.literal_eval(key) in declared, ast.literal_eval(key)


@pytest.mark.parametrize("executable", sorted(NODE_CLASSES))
def test_each_executable_has_a_parameter_file_with_declared_names_and_their_defaults(executable, rclpy_context):
    values = yaml.safe_load((ROOT / "config" / f"{executable}.yaml").read_text())["/**"]["ros__parameters"]
    declared = _declared(executable, rclpy_context)
    assert values, executable
    for key, value in values.items():
        assert key in declared, f"{executable}.yaml sets {key!r}, which the node does not declare"
        assert value == declared[key], f"{executable}.yaml: {key} is {value!r}, the node's default is {declared[key]!r}"


def test_setup_installs_launch_and_config_files():
    text = (ROOT / "setup.py").read_text()
    assert "launch/*.launch.py" in text and "config/*.yaml" in text


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None,
                    reason="launch_ros is not installed here (not on PyPI); the static checks above cover the files")
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_build_a_launch_description(path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate_launch_description().entities
