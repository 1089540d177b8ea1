"""Replay an NYU (or synthetic) rosbag2 with bag_player (publishing /clock) and run
rgbd_vae.launch.py (the pipeline) on its topics with simulated time.

    ros2 launch rgbd_vae_ros nyu_replay.launch.py bag:=demo_out/bag model:=demo_out/models/onnx
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    pipeline = PathJoinSubstitution([FindPackageShare("rgbd_vae_ros"), "launch", "rgbd_vae.launch.py"])
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 folder written by rgbd-vae bag"),
        DeclareLaunchArgument("rate", default_value="1.0"),
        DeclareLaunchArgument("loop", default_value="false"),
        DeclareLaunchArgument("model", description="folder holding depth, encoder and decoder models"),
        DeclareLaunchArgument("backend", default_value="auto"),
        Node(
            package="rgbd_vae_ros",
            executable="bag_player",
            name="bag_player",
            parameters=[{"bag": LaunchConfiguration("bag"),
                         "rate": ParameterValue(LaunchConfiguration("rate"), value_type=float),
                         "loop": ParameterValue(LaunchConfiguration("loop"), value_type=bool),
                         "clock": True, "delay": 2.0}],
            output="screen",
        ),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(pipeline), launch_arguments={
            "camera": "/camera", "image": "rgb/image_raw", "depth": "depth/image_raw",
            "camera_info": "rgb/camera_info", "model": LaunchConfiguration("model"),
            "backend": LaunchConfiguration("backend"), "use_sim_time": "true"}.items()),
    ])
