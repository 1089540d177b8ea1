"""Replay an NYU (or synthetic) rosbag2 with bag_player (publishing /clock) and run
rgbd_vae.launch.py (the pipeline) on its topics with simulated time.

    ros2 launch rgbd_vae_ros nyu_replay.launch.py bag:=demo_out/bag model:=demo_out/models/onnx

Without `ros2 launch`, the README gives the same two command lines.
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
        DeclareLaunchArgument("namespace", default_value="rgbd_vae",
                              description="namespace of the nodes and the pipeline's outputs"),
        DeclareLaunchArgument("bag", description="rosbag2 folder written by rgbd-vae bag"),
        DeclareLaunchArgument("rate", default_value="1.0"),
        DeclareLaunchArgument("loop", default_value="false"),
        DeclareLaunchArgument("model", description="folder holding depth, encoder and decoder models"),
        DeclareLaunchArgument("backend", default_value="auto"),
        DeclareLaunchArgument("use_sim_time", default_value="true",
                              description="the pipeline follows the bag's /clock"),
        # The player is the clock (and a plain node, not a lifecycle one), so it keeps wall time.
        # The bag's topics are absolute (/camera/..., /clock), so the namespace only names the node.
        Node(
            package="rgbd_vae_ros",
            executable="bag_player",
            name="bag_player",
            namespace=LaunchConfiguration("namespace"),
            parameters=[{"bag": ParameterValue(LaunchConfiguration("bag"), value_type=str),
                         "rate": ParameterValue(LaunchConfiguration("rate"), value_type=float),
                         "loop": ParameterValue(LaunchConfiguration("loop"), value_type=bool),
                         "clock": True, "delay": 2.0, "use_sim_time": False}],
            output="screen",
        ),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(pipeline), launch_arguments={
            "namespace": LaunchConfiguration("namespace"),
            "camera": "/camera", "image": "rgb/image_raw", "depth": "depth/image_raw",
            "camera_info": "rgb/camera_info", "model": LaunchConfiguration("model"),
            "backend": LaunchConfiguration("backend"),
            "use_sim_time": LaunchConfiguration("use_sim_time")}.items()),
    ])
