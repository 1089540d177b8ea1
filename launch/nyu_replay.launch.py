"""Replay an NYU (or synthetic) rosbag2 with ``ros2 bag play --clock`` and run rgbd_pipeline on it
with simulated time.

    ros2 launch rgbd_vae_ros nyu_replay.launch.py bag:=demo_out/bag model:=demo_out/models/onnx
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 folder written by rgbd-vae bag"),
        DeclareLaunchArgument("rate", default_value="1.0"),
        DeclareLaunchArgument("model", description="folder holding depth, encoder and decoder models"),
        DeclareLaunchArgument("backend", default_value="auto"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution(
            [FindPackageShare("rgbd_vae_ros"), "config", "rgbd_pipeline.yaml"])),
        ExecuteProcess(cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--clock",
                            "--rate", LaunchConfiguration("rate")], output="screen"),
        Node(
            package="rgbd_vae_ros",
            executable="rgbd_pipeline",
            name="rgbd_pipeline",
            namespace="rgbd_vae",
            parameters=[LaunchConfiguration("params_file"),
                        {"model": LaunchConfiguration("model"), "backend": LaunchConfiguration("backend"),
                         "use_sim_time": True}],
            remappings=[
                ("image", "/camera/rgb/image_raw"),
                ("depth", "/camera/depth/image_raw"),
                ("camera_info", "/camera/rgb/camera_info"),
            ],
            output="screen",
        ),
    ])
