"""Replay an NYU (or synthetic) rosbag2 with ``ros2 bag play --clock`` and run rgbd_vae.launch.py
(the pipeline) on its topics with simulated time.

    ros2 launch rgbd_vae_ros nyu_replay.launch.py bag:=demo_out/bag model:=demo_out/models/onnx
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    pipeline = PathJoinSubstitution([FindPackageShare("rgbd_vae_ros"), "launch", "rgbd_vae.launch.py"])
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 folder written by rgbd-vae bag"),
        DeclareLaunchArgument("rate", default_value="1.0"),
        DeclareLaunchArgument("model", description="folder holding depth, encoder and decoder models"),
        DeclareLaunchArgument("backend", default_value="auto"),
        ExecuteProcess(cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--clock",
                            "--rate", LaunchConfiguration("rate")], output="screen"),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(pipeline), launch_arguments={
            "camera": "/camera", "image": "rgb/image_raw", "depth": "depth/image_raw",
            "camera_info": "rgb/camera_info", "model": LaunchConfiguration("model"),
            "backend": LaunchConfiguration("backend"), "use_sim_time": "true"}.items()),
    ])
