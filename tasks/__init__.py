"""Built-in task definitions: a .yaml file per task, a .py module only where the data needs code.

This is the top-level tasks/ folder of the repository, installed as the package harness.builtin_tasks
(see harness/package_data.py). harness.registry reads every .yaml file here and the Task subclasses of
every module whose name does not start with "_".
"""
