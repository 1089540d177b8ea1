"""Launch and parameter files, checked without `launch` installed (it is not on PyPI); the real
launch test runs where launch_ros is importable."""

import ast
import importlib.util
import os
import re
import shlex
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


def _node_calls(path, with_action=False):
    """The keyword arguments of each Node / LifecycleNode action (with the action's name if asked)."""
    tree = ast.parse(path.read_text())
    for call in ast.walk(tree):
        action = getattr(call.func, "id", None) if isinstance(call, ast.Call) else None
        if action in ("Node", "LifecycleNode"):
            keywords = {k.arg: k.value for k in call.keywords}
            yield (action, keywords) if with_action else keywords


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
    return set(_argument_defaults(path))


def _argument_defaults(path):
    """{argument: its default_value (None when it has none or it is not a plain string)}."""
    tree = ast.parse(path.read_text())
    defaults = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "DeclareLaunchArgument":
            default = next((k.value for k in call.keywords if k.arg == "default_value"), None)
            defaults[ast.literal_eval(call.args[0])] = default.value if isinstance(default, ast.Constant) else None
    return defaults


def _is_configuration(node, name):
    """Whether `node` is LaunchConfiguration(name), possibly wrapped in ParameterValue(...)."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ParameterValue":
        node = node.args[0]
    return (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "LaunchConfiguration"
            and ast.literal_eval(node.args[0]) == name)


def _parameter_dict(call):
    """The node's inline parameters as {name: value node}."""
    return {ast.literal_eval(k): v for item in call["parameters"].elts if isinstance(item, ast.Dict)
            for k, v in zip(item.keys, item.values)}


def _node_class(executable):
    import importlib

    module, cls = NODE_CLASSES[executable].split(":")
    return getattr(importlib.import_module(module), cls)


def _declared(executable, rclpy_context):
    import importlib

    module, cls = NODE_CLASSES[executable].split(":")
    if executable == "bag_player":  # needs a bag to start; it declares exactly its PARAMETERS table
        from rclpy.parameter import Parameter

        table = importlib.import_module(module).PARAMETERS
        declared = {name: None if isinstance(default, Parameter.Type) else default
                    for name, (default, _, _) in table.items()}
        return declared | {"use_sim_time": False}  # rclpy declares it on every node
    node = getattr(importlib.import_module(module), cls)(context=rclpy_context,
                                                           parameter_overrides=[])
    try:
        return {name: node.get_parameter(name).value for name in node._parameters}
    finally:
        node.destroy_node()


def test_the_three_launch_files_of_the_spec_exist():
    assert {p.name for p in LAUNCH_FILES} == {"rgbd_vae.launch.py", "depth.launch.py", "nyu_replay.launch.py"}


@pytest.mark.slow
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_start_real_executables_remap_real_topics_and_set_declared_parameters(path, rclpy_context):
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


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_take_a_namespace_that_every_node_runs_in(path):
    """Two cameras, two namespaces: node names and relative output topics never collide."""
    assert _argument_defaults(path).get("namespace"), f"{path.name} declares no namespace argument with a default"
    for call in _node_calls(path):
        assert _is_configuration(call.get("namespace"), "namespace"), f"{path.name}: a node ignores `namespace`"
    for name, arguments in _includes(path):
        assert _is_configuration(arguments.get("namespace"), "namespace"), f"{path.name} does not pass it to {name}"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_lifecycle_nodes_are_started_as_lifecycle_nodes(path):
    from rclpy.lifecycle import LifecycleNode

    for action, call in _node_calls(path, with_action=True):
        executable = ast.literal_eval(call["executable"])
        lifecycle = issubclass(_node_class(executable), LifecycleNode)
        assert (action == "LifecycleNode") == lifecycle, f"{path.name} starts {executable} with {action}"
        if lifecycle:  # launch_ros (Humble on) requires both
            assert {"name", "namespace"} <= set(call), f"{path.name}: {executable} needs name= and namespace="
        # The node's own `autostart` parameter walks it to active; launch_ros's `autostart` (Jazzy on)
        # would send the same transitions a second time, and Humble's LifecycleNode rejects it.
        assert "autostart" not in call


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_declare_and_pass_use_sim_time(path):
    replay = path.name == "nyu_replay.launch.py"
    assert _argument_defaults(path).get("use_sim_time") == ("true" if replay else "false")
    for call in _node_calls(path):
        parameters = _parameter_dict(call)
        assert "use_sim_time" in parameters, f"{path.name}: {ast.unparse(call['executable'])} gets no use_sim_time"
        if (clock := parameters.get("clock")) is not None and ast.literal_eval(clock):
            assert ast.literal_eval(parameters["use_sim_time"]) is False  # the clock itself keeps wall time
        else:
            assert _is_configuration(parameters["use_sim_time"], "use_sim_time")
    for name, arguments in _includes(path):
        assert _is_configuration(arguments.get("use_sim_time"), "use_sim_time"), f"{path.name} -> {name}"


# --- the README's `--ros-args` equivalents (the PyPI path has no `ros2 launch`) ----------------------------

def _readme_ros_args_lines():
    """Each command line in the README's bash blocks that passes --ros-args, as its words."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip().removesuffix("&").strip()
            if "--ros-args" in line:
                lines.append(shlex.split(line))
    return lines


def _parse_ros_args(words):
    """(executable, {remapped name: target}, {parameter: text}, [parameter files]) of one command line."""
    executable, remaps, parameters, files = Path(words[0]).name, {}, {}, []
    assert words[1] == "--ros-args", words
    flags = iter(words[2:])
    for flag in flags:
        value = next(flags)
        if flag in ("-r", "--remap"):
            remaps.update([value.split(":=", 1)])
        elif flag in ("-p", "--param"):
            parameters.update([value.split(":=", 1)])
        elif flag == "--params-file":
            files.append(value)
        else:
            raise AssertionError(f"unexpected {flag!r} in {' '.join(words)}")
    return executable, remaps, parameters, files


def _evaluate(node, names, config):
    """A launch substitution's text with `config` as the argument values (FindPackageShare = the checkout)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return _evaluate(names[node.id], names, config)
    action = node.func.id
    if action == "LaunchConfiguration":
        return config[ast.literal_eval(node.args[0])]
    if action == "ParameterValue":
        return _evaluate(node.args[0], names, config)
    if action == "FindPackageShare":
        return ""
    assert action == "PathJoinSubstitution", ast.unparse(node)
    return os.path.join(*(_evaluate(part, names, config) for part in node.args[0].elts))


def _launched(path, arguments=None):
    """What a launch file starts with its default arguments (and `arguments` given by an includer):
    [(executable, {remapped name: target}, {parameter: value}, [parameter files])]."""
    tree = ast.parse(path.read_text())
    names = {n.targets[0].id: n.value for n in ast.walk(tree)
             if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)}
    config = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "DeclareLaunchArgument":
            default = next((k.value for k in call.keywords if k.arg == "default_value"), None)
            config[ast.literal_eval(call.args[0])] = None if default is None else _evaluate(default, names, config)
    config.update(arguments or {})
    started = []
    for call in _node_calls(path):
        remaps = {"__ns": "/" + config["namespace"]}
        remaps |= {ast.literal_eval(pair.elts[0]): _evaluate(pair.elts[1], names, config)
                   for pair in getattr(call.get("remappings"), "elts", [])}
        parameters = {name: _evaluate(value, names, config) for name, value in _parameter_dict(call).items()}
        files = [_evaluate(item, names, config) for item in call["parameters"].elts if not isinstance(item, ast.Dict)]
        started.append((ast.literal_eval(call["executable"]), remaps, parameters, files))
    for name, given in _includes(path):
        started += _launched(ROOT / "launch" / name, {k: _evaluate(v, names, config) for k, v in given.items()})
    return started


def _text(value):
    """A parameter value as a command line writes it."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _same_command(readme_line, launched):
    """Whether a README command line starts what a launch file starts (a launch argument without a
    default, such as `model`, may have any value)."""
    executable, remaps, parameters, files = launched
    readme_executable, readme_remaps, readme_parameters, readme_files = readme_line
    return (readme_executable == executable and readme_remaps == remaps and readme_files == files
            and set(readme_parameters) == set(parameters)
            and all(yaml.safe_load(readme_parameters[name]) == yaml.safe_load(_text(value))
                    for name, value in parameters.items() if value is not None))


def test_the_readme_gives_the_ros_args_line_of_every_node_each_launch_file_starts():
    lines = [_parse_ros_args(words) for words in _readme_ros_args_lines()]
    for path in LAUNCH_FILES:
        for launched in _launched(path):
            executable, remaps, parameters, files = launched
            expected = " ".join([executable, "--ros-args", *(f"-r {k}:={v}" for k, v in remaps.items()),
                                 *(f"--params-file {f}" for f in files),
                                 *(f"-p {k}:={'<value>' if v is None else _text(v)}" for k, v in parameters.items())])
            assert any(_same_command(line, launched) for line in lines), (
                f"the README lacks the equivalent of {path.name}: {expected}")


def test_readme_ros_args_lines_name_real_executables_declared_parameters_and_existing_files(rclpy_context):
    lines = _readme_ros_args_lines()
    assert lines, "the README gives no --ros-args command line"
    scripts = re.findall(r'"(\w+) = rgbd_vae_ros\.nodes', (ROOT / "setup.py").read_text())
    for words in lines:
        executable, remaps, parameters, files = _parse_ros_args(words)
        assert executable in scripts and executable in NODE_CLASSES, executable
        assert set(remaps) - {"__ns", "__node"} <= INPUTS[executable], remaps
        assert remaps.get("__ns", "/").startswith("/"), remaps
        declared = _declared(executable, rclpy_context)
        assert set(parameters) <= set(declared), f"{executable}: {sorted(set(parameters) - set(declared))}"
        for name in files:
            values = yaml.safe_load((ROOT / name).read_text())["/**"]["ros__parameters"]
            assert set(values) <= set(declared), name


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
