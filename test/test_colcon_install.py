"""The install tree `colcon build` makes of this package (SPEC §2, §3), without colcon: the same
`setup.py` command colcon-core runs for an ament_python package (setup.cfg honoured), into a
temporary workspace."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "rgbd_vae_ros"
NODES = sorted(re.findall(r'"(\w+) = rgbd_vae_ros\.nodes', (ROOT / "setup.py").read_text()))


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory):
    """(install prefix, its site-packages, the install record) after colcon's non-symlink build."""
    workspace = tmp_path_factory.mktemp("ws")
    build, prefix = workspace / "build" / PACKAGE, workspace / "install" / PACKAGE
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": str(prefix)}))
    site_packages.mkdir(parents=True)  # colcon creates it and puts it on PYTHONPATH
    build.mkdir(parents=True)
    record = build / "install.log"
    # colcon_core.task.python.build.PythonBuildTask, without --symlink-install
    command = [sys.executable, "setup.py",
               "egg_info", "--egg-base", os.path.relpath(build, ROOT),
               "build", "--build-base", str(build / "build"),
               "install", "--prefix", str(prefix), "--record", str(record),
               "--single-version-externally-managed"]
    if "dist-packages" in str(site_packages):
        command += ["--install-layout", "deb"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=os.environ | {"PYTHONPATH": str(site_packages)})
    assert result.returncode == 0, result.stderr[-3000:]
    return prefix, site_packages, record


def _installed_env(site_packages: Path) -> dict[str, str]:
    """What `source install/setup.bash` adds for this package, as far as Python sees it."""
    return os.environ | {"PYTHONPATH": str(site_packages)}


@pytest.mark.slow
def test_launch_config_manifest_and_ament_marker_are_installed_where_ros2_finds_them(colcon_install):
    prefix, _, _ = colcon_install
    share = prefix / "share" / PACKAGE
    assert sorted(p.name for p in (share / "launch").iterdir()) == sorted(
        p.name for p in (ROOT / "launch").glob("*.launch.py"))
    assert sorted(p.name for p in (share / "config").iterdir() if p.is_file()) == sorted(
        p.name for p in (ROOT / "config").glob("*.yaml"))
    # the cards of third-party depth models (docs/model_cards.md), where a launch file can name them
    assert sorted(p.name for p in (share / "config" / "model_cards").iterdir()) == sorted(
        p.name for p in (ROOT / "config" / "model_cards").glob("*.card.yaml"))
    assert (share / "package.xml").read_bytes() == (ROOT / "package.xml").read_bytes()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()


def test_node_executables_are_in_lib_package_for_ros2_run_and_the_cli_in_bin_for_path(colcon_install):
    prefix, _, record = colcon_install
    assert sorted(p.name for p in (prefix / "lib" / PACKAGE).iterdir()) == sorted([*NODES, "rgbd-vae"])
    # colcon's setup.bash puts <prefix>/bin on PATH when it holds a file; only the CLI belongs there
    assert [p.name for p in (prefix / "bin").iterdir()] == ["rgbd-vae"]
    for script in [prefix / "bin" / "rgbd-vae", *((prefix / "lib" / PACKAGE / name) for name in NODES)]:
        assert script.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"
    assert str(prefix / "bin" / "rgbd-vae") in record.read_text().splitlines()  # colcon can undo it


def test_training_installs_as_rgbd_vae_training_never_as_training(colcon_install):
    _, site_packages, _ = colcon_install
    assert (site_packages / "rgbd_vae_training" / "cli.py").is_file()
    assert (site_packages / "rgbd_vae_training" / "configs").is_dir()
    assert not (site_packages / "training").exists()
    assert sorted(p.name for p in site_packages.iterdir() if not p.name.endswith(".egg-info")) == [
        PACKAGE, "rgbd_vae_training"]


def test_the_installed_cli_runs_from_the_install_tree(colcon_install, tmp_path):
    prefix, site_packages, _ = colcon_install
    result = subprocess.run([prefix / "bin" / "rgbd-vae", "--help"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env=_installed_env(site_packages))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: rgbd-vae")
    where = subprocess.run([sys.executable, "-c", "import rgbd_vae_ros, rgbd_vae_training as t; "
                            "print(rgbd_vae_ros.__file__); print(t.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, env=_installed_env(site_packages))
    assert all(Path(line).is_relative_to(site_packages) for line in where.stdout.split()), where.stdout


@pytest.mark.slow
@pytest.mark.ros
def test_an_installed_node_executable_starts_from_the_install_tree(colcon_install, tmp_path):
    prefix, site_packages, _ = colcon_install
    result = subprocess.run([prefix / "lib" / PACKAGE / "bag_player"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env=_installed_env(site_packages))
    assert result.returncode == 1 and "bag_player: error: no " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
