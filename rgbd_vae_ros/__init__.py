"""rgbd_vae_ros: depth from RGB, RGB-D latent codes and decoded RGB-D frames for ROS 2.

Models, pre/post-processing and inference backends work without ROS; only the node modules
import rclpy.
"""

__version__ = "0.1.0"
