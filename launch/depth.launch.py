"""depth_estimator alone: metric depth from a colour camera.

    ros2 launch rgbd_vae_ros depth.launch.py camera:=/camera model:=/path/to/depth.onnx
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    camera = LaunchConfiguration("camera")
    return LaunchDescription([
        DeclareLaunchArgument("camera", default_value="/camera"),
        DeclareLaunchArgument("image", default_value="rgb/image_raw"),
        DeclareLaunchArgument("camera_info", default_value="rgb/camera_info"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution(
            [FindPackageShare("rgbd_vae_ros"), "config", "depth_estimator.yaml"])),
        DeclareLaunchArgument("model", description="depth model: .onnx, .engine or .pt"),
        DeclareLaunchArgument("backend", default_value="auto"),
        Node(
            package="rgbd_vae_ros",
            executable="depth_estimator",
            name="depth_estimator",
            namespace="rgbd_vae",
            parameters=[LaunchConfiguration("params_file"),
                        {"model": LaunchConfiguration("model"), "backend": LaunchConfiguration("backend")}],
            remappings=[
                ("image", PathJoinSubstitution([camera, LaunchConfiguration("image")])),
                ("camera_info", PathJoinSubstitution([camera, LaunchConfiguration("camera_info")])),
            ],
            output="screen",
        ),
    ])
