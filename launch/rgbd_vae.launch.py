"""rgbd_pipeline on a live camera: depth estimate, latent code and decoded RGB-D in one process.

    ros2 launch rgbd_vae_ros rgbd_vae.launch.py camera:=/camera model:=/path/to/models
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    camera = LaunchConfiguration("camera")
    return LaunchDescription([
        DeclareLaunchArgument("camera", default_value="/camera", description="camera namespace"),
        DeclareLaunchArgument("image", default_value="rgb/image_raw", description="colour topic under the camera"),
        DeclareLaunchArgument("depth", default_value="depth_registered/image_raw",
                              description="depth topic under the camera (used when use_depth is true)"),
        DeclareLaunchArgument("camera_info", default_value="rgb/camera_info"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution(
            [FindPackageShare("rgbd_vae_ros"), "config", "rgbd_pipeline.yaml"])),
        DeclareLaunchArgument("model", description="folder holding depth, encoder and decoder models"),
        DeclareLaunchArgument("backend", default_value="auto", description="auto | tensorrt | onnxruntime | torch"),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        Node(
            package="rgbd_vae_ros",
            executable="rgbd_pipeline",
            name="rgbd_pipeline",
            namespace="rgbd_vae",
            parameters=[LaunchConfiguration("params_file"),
                        {"model": LaunchConfiguration("model"), "backend": LaunchConfiguration("backend"),
                         "use_sim_time": LaunchConfiguration("use_sim_time")}],
            remappings=[
                ("image", PathJoinSubstitution([camera, LaunchConfiguration("image")])),
                ("depth", PathJoinSubstitution([camera, LaunchConfiguration("depth")])),
                ("camera_info", PathJoinSubstitution([camera, LaunchConfiguration("camera_info")])),
            ],
            output="screen",
        ),
    ])
