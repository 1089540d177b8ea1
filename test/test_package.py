"""The package itself: ament_python layout, executables, dependency direction (SPEC §2, §4.1)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXECUTABLES = ["depth_estimator", "rgbd_encoder", "rgbd_decoder", "rgbd_pipeline", "place_recognition", "bag_player",
               "bag_recorder"]


def _setup_call() -> ast.Call:
    tree = ast.parse((ROOT / "setup.py").read_text())
    return next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")


def _console_scripts() -> dict[str, str]:
    keywords = {k.arg: k.value for k in _setup_call().keywords}
    scripts = ast.literal_eval(keywords["entry_points"])["console_scripts"]
    return dict(line.replace(" ", "").split("=", 1) for line in scripts)


# Import name -> rosdep key: a ROS package's own name, or a key of rosdistro's rosdep/python.yaml
# (`-pip` keys install from PyPI). A new third-party import fails the tests below until it is here
# and its key is in package.xml.
ROSDEP_KEYS = {
    **{name: name for name in ("rclpy", "rcl_interfaces", "std_msgs", "sensor_msgs", "diagnostic_msgs",
                               "rosgraph_msgs", "tf2_msgs", "launch", "launch_ros", "cv_bridge",
                               "lifecycle_msgs")},
    "numpy": "python3-numpy", "yaml": "python3-yaml", "torch": "python3-torch",
    "onnxruntime": "python3-onnxruntime-pip", "rosbags": "python3-rosbags-pip",
    "h5py": "python3-h5py", "scipy": "python3-scipy", "PIL": "python3-pil", "tqdm": "python3-tqdm",
    "tensorboard": "python3-tensorboard-pip", "torch.utils.tensorboard": "python3-tensorboard-pip",
    "pytest": "python3-pytest", "hypothesis": "python3-hypothesis",
}
# Imported, optional, and without any rosdep key (README: `pip install` them where needed).
NO_ROSDEP_KEY = {"onnx": "only `rgbd-vae export`", "tensorrt": "TensorRT engines, NVIDIA GPUs only"}
# In package.xml although no import names them.
NOT_IMPORTED = {"python3-pytest-timeout": "setup.cfg's per-test `timeout`",
                "tf2_msgs": "bag_player imports recorded message types by name (/tf_static)"}
FIRST_PARTY = {"rgbd_vae_ros", "rgbd_vae_training"}


def _dependencies(*tags: str) -> set[str]:
    root = ET.parse(ROOT / "package.xml").getroot()
    return {e.text.strip() for tag in tags for e in root.findall(tag)}


def _third_party_imports(*folders: str) -> dict[str, Path]:
    """{module imported (top level, or a dotted name of ROSDEP_KEYS): a file importing it}."""
    found = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in _imported_modules(path):
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in FIRST_PARTY or top in ("conftest", "test"):
                    continue
                found.setdefault(top, path)
                found.update({name: path for name in ROSDEP_KEYS if "." in name and module.startswith(name)})
    return found


def test_package_xml_is_format_3_with_ament_python_build_type():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "rgbd_vae_ros"
    assert root.find("export/build_type").text == "ament_python"
    exec_deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "python3-numpy"} <= exec_deps


@pytest.mark.slow
def test_every_third_party_import_of_the_runtime_and_tools_is_an_exec_depend():
    exec_deps = _dependencies("exec_depend", "depend")
    for module, path in _third_party_imports("rgbd_vae_ros", "training", "launch").items():
        if module in NO_ROSDEP_KEY:
            continue
        assert module in ROSDEP_KEYS, (f"{path.relative_to(ROOT)} imports {module!r}: add its rosdep key to "
                                       "package.xml and to ROSDEP_KEYS here")
        assert ROSDEP_KEYS[module] in exec_deps, f"{module!r} needs <exec_depend>{ROSDEP_KEYS[module]}</exec_depend>"


@pytest.mark.slow
def test_every_third_party_import_of_the_tests_is_a_dependency():
    deps = _dependencies("exec_depend", "depend", "test_depend")
    for module, path in _third_party_imports("test").items():
        if module in NO_ROSDEP_KEY:
            continue
        assert module in ROSDEP_KEYS, f"{path.relative_to(ROOT)} imports {module!r}, which has no rosdep key here"
        assert ROSDEP_KEYS[module] in deps, f"{module!r} needs <test_depend>{ROSDEP_KEYS[module]}</test_depend>"


@pytest.mark.slow
def test_every_dependency_in_package_xml_is_used():
    used = {ROSDEP_KEYS[module] for module in _third_party_imports("rgbd_vae_ros", "training", "launch", "test")
            if module in ROSDEP_KEYS}
    unused = _dependencies("exec_depend", "depend", "test_depend", "build_depend") - used - set(NOT_IMPORTED)
    assert not unused, f"package.xml names {sorted(unused)}, which nothing imports"


def test_package_version_agrees_between_package_xml_setup_py_and_module():
    import rgbd_vae_ros

    xml_version = ET.parse(ROOT / "package.xml").getroot().findtext("version")
    keywords = {k.arg: k.value for k in _setup_call().keywords}
    assert xml_version == ast.literal_eval(keywords["version"]) == rgbd_vae_ros.__version__


def test_ament_index_marker_and_colcon_script_dir():
    assert (ROOT / "resource" / "rgbd_vae_ros").is_file()
    setup_cfg = (ROOT / "setup.cfg").read_text()
    assert "script_dir=$base/lib/rgbd_vae_ros" in setup_cfg
    assert "install_scripts=$base/lib/rgbd_vae_ros" in setup_cfg


def test_every_executable_and_the_cli_is_a_console_script():
    scripts = _console_scripts()
    assert set(EXECUTABLES) | {"rgbd-vae"} <= set(scripts)
    installed = {ep.name: ep.value.replace(" ", "") for ep in entry_points(group="console_scripts")}
    for name, target in scripts.items():
        assert installed.get(name) == target, f"{name} is not installed as {target}"
        # pip (make's `pip install -e`) puts every one, the CLI included, beside the venv's python
        assert Path(sys.executable).with_name(name).is_file(), f"{name} is not in {Path(sys.executable).parent}"
        module_name, func_name = target.split(":")
        assert callable(getattr(importlib.import_module(module_name), func_name))


def test_training_is_not_installed_as_a_top_level_training_package():
    keywords = {k.arg: k.value for k in _setup_call().keywords}
    assert "training" not in ast.literal_eval(keywords["package_dir"])
    import rgbd_vae_training

    assert Path(rgbd_vae_training.__file__).resolve().parent == ROOT / "training"


def _imported_modules(path: Path) -> set[str]:
    """Every absolute module name `path` imports, at any depth (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imported_modules(path)}


@pytest.mark.parametrize("path", sorted((ROOT / "rgbd_vae_ros").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_never_imports_training_and_only_nodes_import_rclpy(path):
    imports = _imports(path)
    assert not imports & {"rgbd_vae_training", "training"}, f"{path} imports training code"
    if "nodes" not in path.relative_to(ROOT).parts:
        assert "rclpy" not in imports, f"{path} imports rclpy but is not a ROS-facing module"


def test_runtime_package_imports_without_ros_on_the_path():
    code = ("import sys; sys.modules['rclpy'] = None; sys.modules['sensor_msgs'] = None\n"
            "import numpy as np\n"
            "from rgbd_vae_ros.conversion import image_to_numpy\n"
            "from types import SimpleNamespace as M\n"
            "m = M(encoding='mono8', height=1, width=2, step=2, is_bigendian=0, data=b'ab')\n"
            "print(image_to_numpy(m).tolist())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[[97, 98]]"


@pytest.mark.slow
def test_the_bag_tools_without_a_bag_say_so_and_fail():
    for executable in ("bag_player", "bag_recorder"):
        result = subprocess.run([Path(sys.executable).with_name(executable)], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 1, result.stderr
        assert f"{executable}: error: no " in result.stderr and "Traceback" not in result.stderr
