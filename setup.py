"""ament_python package: the runtime `rgbd_vae_ros` plus the training tools as `rgbd_vae_training`."""

import shutil
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.develop import develop
from setuptools.command.install_scripts import install_scripts

PACKAGE = "rgbd_vae_ros"
CLI = "rgbd-vae"


def _cli_also_on_path(script_dir, outputs):
    """When setup.cfg sends the executables to <prefix>/lib/rgbd_vae_ros (colcon, for `ros2 run`),
    copy the `rgbd-vae` command to <prefix>/bin, which colcon's setup.bash puts on PATH.

    pip builds a wheel instead and installs every console script into its own bin folder, so
    nothing is copied there."""
    script_dir = Path(script_dir)
    if script_dir.parts[-2:] != ("lib", PACKAGE) or not (script_dir / CLI).is_file():
        return
    bin_dir = script_dir.parent.parent / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(script_dir / CLI, bin_dir / CLI)
    outputs.append(str(bin_dir / CLI))


class InstallScripts(install_scripts):
    """`colcon build`: setup.py install (setup.cfg [install] install_scripts)."""

    def run(self):
        super().run()
        _cli_also_on_path(self.install_dir, self.outfiles)


class Develop(develop):
    """`colcon build --symlink-install`: setup.py develop (setup.cfg [develop] script_dir), with the
    setuptools of a ROS distribution (before 80, where develop still writes the scripts itself)."""

    def install_wrapper_scripts(self, dist):
        super().install_wrapper_scripts(dist)
        _cli_also_on_path(self.script_dir, self.outputs)

# The training tools live in training/ but install as rgbd_vae_training, never as a
# top-level package called `training` (SPEC §2).
training_packages = ["rgbd_vae_training"] + [
    "rgbd_vae_training." + name for name in find_packages("training")
]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, PACKAGE + ".*"]) + training_packages,
    package_dir={"rgbd_vae_training": "training"},
    package_data={PACKAGE: ["py.typed"], "rgbd_vae_training": ["configs/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml")),
        ("share/" + PACKAGE + "/config/model_cards", glob("config/model_cards/*.yaml")),
    ],
    python_requires=">=3.10",
    # ROS packages (rclpy, sensor_msgs, ...) come from a ROS install or the PyPI wheels and are
    # listed in package.xml / requirements/ros-pypi.txt; torch is installed first with its pin.
    install_requires=[
        "numpy>=1.24",
        "pyyaml>=6",
        "pillow>=10",  # compressed image input (jpeg, png)
    ],
    extras_require={
        "train": ["torch==2.13.0", "h5py>=3.8", "scipy>=1.10", "tqdm>=4.60", "tensorboard>=2.14", "pillow>=10"],
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17", "onnxscript>=0.1"],
        "bag": ["rosbags>=0.10"],
        "tensorrt": ["tensorrt"],
        "test": ["pytest>=7", "hypothesis>=6.80", "pytest-timeout>=2.1", "pytest-xdist>=3.5"],
    },
    zip_safe=True,
    maintainer="rgbd_vae_ros developers",
    maintainer_email="rgbd-vae-ros@users.noreply.github.com",
    description="Depth from RGB, RGB-D latent codes and decoded frames for ROS 2, with training tools.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "depth_estimator = rgbd_vae_ros.nodes.depth_estimator:main",
            "rgbd_encoder = rgbd_vae_ros.nodes.rgbd_encoder:main",
            "rgbd_decoder = rgbd_vae_ros.nodes.rgbd_decoder:main",
            "rgbd_pipeline = rgbd_vae_ros.nodes.rgbd_pipeline:main",
            "bag_player = rgbd_vae_ros.nodes.bag_player:main",
            "bag_recorder = rgbd_vae_ros.nodes.bag_recorder:main",
            "place_recognition = rgbd_vae_ros.nodes.place_recognition:main",
            "rgbd-vae = rgbd_vae_training.cli:main",
        ],
    },
    cmdclass={"install_scripts": InstallScripts, "develop": Develop},
)
