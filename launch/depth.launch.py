"""depth_estimator alone: metric depth from a colour camera.

    ros2 launch rgbd_vae_ros depth.launch.py camera:=/camera model:=/path/to/depth.onnx

Two cameras: one namespace each (`namespace:=front_depth camera:=/front`). Without `ros2 launch`,
the README gives the same command line.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    camera = LaunchConfiguration("camera")
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="rgbd_vae",
                              description="namespace of the node and its outputs (one per camera)"),
        DeclareLaunchArgument("camera", default_value="/camera", description="camera namespace"),
        DeclareLaunchArgument("image", default_value="rgb/image_raw", description="colour topic under the camera"),
        DeclareLaunchArgument("camera_info", default_value="rgb/camera_info"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution(
            [FindPackageShare("rgbd_vae_ros"), "config", "depth_estimator.yaml"])),
        DeclareLaunchArgument("model", description="depth model: .onnx, .engine or .pt"),
        DeclareLaunchArgument("backend", default_value="auto", description="auto | tensorrt | onnxruntime | torch"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock (bag replay)"),
        # A lifecycle node: its own `autostart` parameter walks it to active.
        LifecycleNode(
            package="rgbd_vae_ros",
            executable="depth_estimator",
            name="depth_estimator",
            namespace=LaunchConfiguration("namespace"),
            parameters=[LaunchConfiguration("params_file"),
                        {"model": ParameterValue(LaunchConfiguration("model"), value_type=str),
                         "backend": LaunchConfiguration("backend"),
                         "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}],
            remappings=[
                ("image", PathJoinSubstitution([camera, LaunchConfiguration("image")])),
                ("camera_info", PathJoinSubstitution([camera, LaunchConfiguration("camera_info")])),
            ],
            output="screen",
        ),
    ])
