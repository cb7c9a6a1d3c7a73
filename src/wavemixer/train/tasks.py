"""Names under which earlier versions offered the tasks (kept for the scripts and tests written against them);
the tasks are :mod:`wavemixer.tasks`."""

from wavemixer.tasks import TASKS, get_task, task_class
from wavemixer.tasks.base import Task
from wavemixer.tasks.classification import ClassificationTask

__all__ = ["TASKS", "ClassificationTask", "Task", "get_task", "task_class"]
