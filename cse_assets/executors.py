"""How a run executes its steps, chosen by name (`CSE_EXECUTOR`, read once in `settings.py`).

- `in_process` (default): every step of a run in the run's own process — measured fastest for one symbol
  partition (`definitions.py`). With `K8sRunLauncher` (deploy/k8s/dagster.yaml) each run is one pod, so
  partitions already spread over the cluster's nodes.
- `k8s`: dagster-k8s's `k8s_job_executor`, a Kubernetes Job per step, so the steps of one run spread over
  nodes (the training step on a GPU node through `step_k8s_config` / `per_step_k8s_config` in run config).
  Each step pod imports JAX and compiles again, and steps hand their outputs over through the IO manager,
  so the asset files must live on storage every pod reaches (the S3-compatible store), not on `CSE_HOME`.

dagster-k8s (the `k8s` extra) is imported only when `k8s` is chosen.
"""

from __future__ import annotations

from collections.abc import Callable

from dagster import ExecutorDefinition, in_process_executor

from cse_models.registry import Registry


def _k8s() -> ExecutorDefinition:
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor


EXECUTORS: Registry[Callable[[], ExecutorDefinition]] = Registry("CSE_EXECUTOR")
EXECUTORS.add("in_process", lambda: in_process_executor)
EXECUTORS.add("k8s", _k8s)


def executor_for(name: str) -> ExecutorDefinition:
    """The executor registered as `name`; an unknown name raises `UnknownNameError` listing the known ones."""
    return EXECUTORS.get(name)()
