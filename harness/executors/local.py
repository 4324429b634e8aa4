"""The default executor: every job in the driver process, one after another."""

from __future__ import annotations

from collections.abc import Generator, Iterable

from harness.executors.base import Executor, JobWorker, ProgressCallback, SweepContext
from harness.jobs import Job, JobResult


class LocalExecutor(Executor):
    """Jobs arrive grouped by model, so each model is loaded once; task data comes from the driver's plan."""

    name = "local"

    def run(
        self, jobs: Iterable[Job], context: SweepContext, progress: ProgressCallback
    ) -> Generator[JobResult, None, None]:
        worker = JobWorker(
            context.suite, context.tasks, context.feature_dir, context.refresh_features, context.job_timeout_s
        )
        try:
            for job in jobs:
                progress(job, None)
                result = worker.execute(job)
                self.stats = worker.stats()
                progress(job, result)
                yield result
        finally:
            worker.close()
            self.stats = worker.stats()
