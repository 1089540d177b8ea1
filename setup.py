"""ament_python package: the runtime `rgbd_vae_ros` plus the training tools as `rgbd_vae_training`."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "rgbd_vae_ros"

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
    ],
    python_requires=">=3.10",
    # ROS packages (rclpy, sensor_msgs, ...) come from a ROS install or the PyPI wheels and are
    # listed in package.xml / requirements/ros-pypi.txt; torch is installed first with its pin.
    install_requires=[
        "numpy>=1.24",
        "pyyaml>=6",
    ],
    extras_require={
        "train": ["torch==2.13.0", "h5py>=3.8", "scipy>=1.10", "tqdm>=4.60", "tensorboard>=2.14", "pillow>=10"],
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17", "onnxscript>=0.1"],
        "bag": ["rosbags>=0.10"],
        "tensorrt": ["tensorrt"],
        "test": ["pytest>=7", "hypothesis>=6.80", "pytest-timeout>=2.1"],
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
            "rgbd-vae = rgbd_vae_training.cli:main",
        ],
    },
)
