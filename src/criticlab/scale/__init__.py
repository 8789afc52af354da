"""The same runs on Ray when one machine is not enough. Importing this package does not
import Ray; :func:`~criticlab.scale.ray.map_ray` does, and says how to install it."""

from criticlab.scale.jobs import evaluate_ray, label_mc_ray, select_ray
from criticlab.scale.ray import RayStats, map_ray
from criticlab.scale.worker import Work, Worker, WorkerStore

__all__ = ["RayStats", "Work", "Worker", "WorkerStore", "evaluate_ray", "label_mc_ray",
           "map_ray", "select_ray"]
