"""The same runs on Ray when one machine is not enough: ``executor=RayExecutor(...)`` in
:func:`criticlab.evaluate`, ``run_refine``, ``run_select``, ``label_mc`` and ``label_synth``
(``--executor ray`` on the command line). Importing this package does not import Ray;
:func:`~criticlab.scale.ray.map_ray` does, and says how to install it."""

from criticlab.scale.executor import RayExecutor
from criticlab.scale.ray import RayStats, map_ray
from criticlab.scale.worker import Work, Worker, WorkerStore

__all__ = ["RayExecutor", "RayStats", "Work", "Worker", "WorkerStore", "map_ray"]
