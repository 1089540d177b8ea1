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
EXECUTABLES = ["depth_estimator", "rgbd_encoder", "rgbd_decoder", "rgbd_pipeline", "bag_player", "bag_recorder"]


def _setup_call() -> ast.Call:
    tree = ast.parse((ROOT / "setup.py").read_text())
    return next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")


def _console_scripts() -> dict[str, str]:
    keywords = {k.arg: k.value for k in _setup_call().keywords}
    scripts = ast.literal_eval(keywords["entry_points"])["console_scripts"]
    return dict(line.replace(" ", "").split("=", 1) for line in scripts)


def test_package_xml_is_format_3_with_ament_python_build_type():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "rgbd_vae_ros"
    assert root.find("export/build_type").text == "ament_python"
    exec_deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "python3-numpy"} <= exec_deps


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
        module_name, func_name = target.split(":")
        assert callable(getattr(importlib.import_module(module_name), func_name))


def test_training_is_not_installed_as_a_top_level_training_package():
    keywords = {k.arg: k.value for k in _setup_call().keywords}
    assert "training" not in ast.literal_eval(keywords["package_dir"])
    import rgbd_vae_training

    assert Path(rgbd_vae_training.__file__).resolve().parent == ROOT / "training"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


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


def test_the_bag_tools_without_a_bag_say_so_and_fail():
    for executable in ("bag_player", "bag_recorder"):
        result = subprocess.run([Path(sys.executable).with_name(executable)], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 1, result.stderr
        assert f"{executable}: error: no " in result.stderr and "Traceback" not in result.stderr
