"""Latency and throughput measurement with a hardware fingerprint and a contention guard.

Honest timing: warm-up calls excluded; every timed call is bracketed by a device synchronise (CUDA
kernels are asynchronous); batch-1 latency is a distribution (p50/p95/p99 over single items), and
throughput is items / wall time of whole batches at the run batch size — never total time / N of
a mixed workload.

Adaptive sampling: batch-1 samples are taken until the p50 is known to `target_rel_ci` (the half-width
of its distribution-free 95% confidence interval, relative to the p50), or `budget_s` is spent, or
`max_samples` are taken; never fewer than `min_samples`. The sample count n is stored, and p95 / p99 are
reported only when n supports them (records.PERCENTILE_MIN_SAMPLES).

Contention guard: around the timed regions we read the process's CPU time, the scheduler's run-queue
wait of our threads (Linux), the machine's CPU time per CPU we may run on (so: what other processes
used, and hypervisor steal), the load average, and on CUDA the other processes computing on our GPU.
`contention_verdict` turns those into the stored `contended` mark; a contended timing is re-measured
once (`remeasure_contended`) and the less contended of the two kept.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import psutil

from harness.digests import json_digest
from harness.records import TimingRecord
from harness.typed_config import Exclusive

# The contention rule (docs/store.md repeats it). A timing is "contended" when, during its timed region,
# - our runnable threads waited for a CPU for at least 10% of their runnable time (Linux run-queue wait) while
#   other processes used at least 10% of our CPUs (a wait with no one else busy is our own threads queueing
#   behind each other: measured at 16% on an idle 2-core machine, part of this configuration's real latency), or
# - the hypervisor stole at least 10% of our CPUs' time, or
# - where run-queue wait cannot be read (not Linux): other processes used at least 25% of the CPUs we may run on,
# - on CUDA: another process was computing on our GPU (when NVML can tell).
CONTENDED_WAIT_FRAC = 0.10
CONTENDED_STEAL_FRAC = 0.10
CONTENDED_WAIT_OTHERS_FRAC = 0.10
CONTENDED_OTHERS_FRAC = 0.25


# Upper bounds: a fixed count is run in full whatever the time budget, so an absurd one is a hang, not a setting.
MAX_WARMUP = 10_000
MAX_SAMPLES = 100_000
MAX_THROUGHPUT_BATCHES = 10_000


@dataclass(frozen=True)
class TimingConfig:
    warmup: int = 3
    min_samples: int = 20  # batch-1 samples taken at least
    max_samples: int = 300  # ... and at most
    target_rel_ci: float = 0.05  # stop when the p50's 95% CI half-width is within 5% of the p50
    budget_s: float = 10.0  # ... or when batch-1 sampling has taken this long
    throughput_batches: int = 3
    remeasure_contended: bool = True  # time once more when the first timing was contended
    enabled: bool = True
    batch1_iters: int | None = None  # legacy: a fixed sample count (min_samples = max_samples = this)

    # batch1_iters takes exactly that many samples: the adaptive settings beside it would be silently ignored.
    EXCLUSIVE: ClassVar[tuple[Exclusive, ...]] = (
        Exclusive(
            "batch1_iters",
            ("min_samples", "max_samples", "target_rel_ci", "budget_s"),
            "batch1_iters (kept for older suites) takes exactly that many batch-1 samples, so min_samples, "
            "max_samples, target_rel_ci and budget_s would be ignored. Give batch1_iters: {batch1_iters} alone, "
            "or the adaptive keys without it (min_samples: {batch1_iters}, max_samples: {batch1_iters} is the "
            "same fixed count).",
        ),
    )

    def __post_init__(self) -> None:
        checks = (
            (self.warmup >= 0, f"warmup must be 0 or more, got {self.warmup}"),
            (self.warmup <= MAX_WARMUP, f"warmup must be at most {MAX_WARMUP:,} iterations, got {self.warmup}"),
            (self.min_samples >= 2, f"min_samples must be at least 2, got {self.min_samples}"),
            (
                self.max_samples <= MAX_SAMPLES,
                f"max_samples must be at most {MAX_SAMPLES:,} batch-1 samples, got {self.max_samples}",
            ),
            (
                self.max_samples >= self.min_samples,
                f"max_samples ({self.max_samples}) must be at least min_samples ({self.min_samples})",
            ),
            (
                0 < self.target_rel_ci < 1,
                f"target_rel_ci must be between 0 and 1 (0.05 = within 5% of the p50), got {self.target_rel_ci}",
            ),
            (
                math.isfinite(self.budget_s) and self.budget_s > 0,
                f"budget_s must be a positive number of seconds, got {self.budget_s}",
            ),
            (self.throughput_batches >= 1, f"throughput_batches must be 1 or more, got {self.throughput_batches}"),
            (
                self.throughput_batches <= MAX_THROUGHPUT_BATCHES,
                f"throughput_batches must be at most {MAX_THROUGHPUT_BATCHES:,}, got {self.throughput_batches}",
            ),
            (
                self.batch1_iters is None or self.batch1_iters >= 2,
                f"batch1_iters must be at least 2, got {self.batch1_iters}",
            ),
            (
                self.batch1_iters is None or self.batch1_iters <= MAX_SAMPLES,
                f"batch1_iters must be at most {MAX_SAMPLES:,} batch-1 samples, got {self.batch1_iters}",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message + ".")

    @property
    def sample_range(self) -> tuple[int, int]:
        if self.batch1_iters is not None:
            return self.batch1_iters, self.batch1_iters
        return self.min_samples, self.max_samples


# ---- fingerprint ---------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> list[int]:
    """The CPU ids this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def thread_pools() -> list[dict[str, Any]]:
    """BLAS / OpenMP libraries loaded by numpy, scipy, scikit-learn and torch, with their thread counts.

    The libraries are imported first so the list does not depend on what this process happened to load.
    """
    import scipy.linalg  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import torch  # noqa: F401
    from threadpoolctl import threadpool_info

    pools = {
        (p.get("internal_api"), p.get("prefix"), p.get("version"), p.get("num_threads"))
        for p in threadpool_info()
    }
    return [
        {"api": api, "library": prefix, "version": version, "threads": threads}
        for api, prefix, version, threads in sorted(pools, key=lambda p: tuple(str(x) for x in p))
    ]


def _onnxruntime_info() -> dict[str, Any] | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    return {"version": ort.__version__, "providers": list(ort.get_available_providers())}


def _nvidia_driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # NVML absent or unusable: ask nvidia-smi
        pass
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.splitlines()[0].strip() if out.returncode == 0 and out.stdout.strip() else None


def _gpu_info() -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"gpu": None, "gpu_count": 0, "cuda": None, "cudnn": None, "driver": None}
    return {
        "gpu": torch.cuda.get_device_name(0),
        "gpu_count": torch.cuda.device_count(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "driver": _nvidia_driver(),
    }


def host() -> tuple[str, str]:
    """(cpu, platform) as hardware_info records them: the part of the fingerprint known without importing
    torch (a stored fingerprint whose cpu or platform differs is not this machine's)."""
    return _cpu_model(), f"{platform.system()} {platform.machine()}"


@lru_cache(maxsize=1)
def hardware_info() -> dict[str, Any]:
    """What the timings depend on. The fingerprint id hashes all of it; timings compare only within one id."""
    import torch

    info: dict[str, Any] = {
        "cpu": host()[0],
        "cpu_count": os.cpu_count(),
        "affinity": len(usable_cpus()),
        **_gpu_info(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "thread_pools": thread_pools(),
        "onnxruntime": _onnxruntime_info(),
        "platform": host()[1],
        "python": platform.python_version(),
    }
    info["fingerprint"] = json_digest(info, 12)
    return info


def configure_threads(cpus_per_worker: float | None = None) -> int:
    """Set torch's intra-op threads for a worker sharing this machine; returns the count now in use.

    An explicit OMP_NUM_THREADS wins (Ray sets it to the worker's num_cpus). Otherwise a worker given
    `cpus_per_worker` gets that many threads (at least 1); idle OpenMP threads busy-wait, so more threads
    than CPUs makes every worker slower. The count is part of the hardware fingerprint.
    """
    import torch

    if os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        wanted = max(1, int(os.environ["OMP_NUM_THREADS"]))
    elif cpus_per_worker is not None:
        wanted = max(1, min(len(usable_cpus()), int(cpus_per_worker)))
    else:
        return torch.get_num_threads()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
        hardware_info.cache_clear()
    return wanted


# ---- contention ----------------------------------------------------------------------------------------


def _schedstat_ns() -> tuple[int, int] | None:
    """(on-CPU ns, run-queue wait ns) summed over this process's threads; None where unavailable."""
    run = wait = 0
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        run, wait = run + int(fields[0]), wait + int(fields[1])
    return run, wait


def _cpu_times(cpus: Sequence[int]) -> tuple[float, float]:
    """(busy seconds, steal seconds) summed over `cpus`, from the kernel's per-CPU counters."""
    per_cpu = psutil.cpu_times(percpu=True)
    busy = steal = 0.0
    for i in cpus:
        if i >= len(per_cpu):
            continue
        t = per_cpu[i]
        busy += t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        steal += getattr(t, "steal", 0.0)
    return busy, steal


def _gpu_other_processes(device: str) -> int | None:
    if not device.startswith("cuda"):
        return None
    try:
        import pynvml
        import torch

        pynvml.nvmlInit()
        index = torch.device(device).index or 0
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
        # We hold a CUDA context on this GPU, so we are one of them. Pids are not compared: inside a
        # container NVML reports host pids, which never equal os.getpid().
        return max(0, len(procs) - 1)
    except Exception:  # NVML missing, or the GPU is not observable from here (containers, MIG)
        return None


@dataclass(frozen=True)
class Contention:
    wall_s: float
    cpu_s: float
    cpu_wall_ratio: float
    run_wait_frac: float | None
    others_cpu_frac: float
    steal_frac: float
    load_avg: float | None
    gpu_other_procs: int | None

    @property
    def contended(self) -> bool:
        return contention_verdict(self)

    @property
    def severity(self) -> float:
        """For choosing the less contended of two measurements."""
        return max(self.run_wait_frac or 0.0, self.others_cpu_frac, self.steal_frac) + (self.gpu_other_procs or 0)


def contention_verdict(c: Contention) -> bool:
    """The documented rule (see the constants at the top of this module)."""
    if c.gpu_other_procs:
        return True
    if c.steal_frac >= CONTENDED_STEAL_FRAC:
        return True
    if c.run_wait_frac is not None:
        return c.run_wait_frac >= CONTENDED_WAIT_FRAC and c.others_cpu_frac >= CONTENDED_WAIT_OTHERS_FRAC
    return c.others_cpu_frac >= CONTENDED_OTHERS_FRAC


class ContentionProbe:
    """Reads the counters at enter and exit; `result` holds the Contention of the block."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.cpus = usable_cpus()
        self.process = psutil.Process()
        self.result: Contention | None = None

    def __enter__(self) -> ContentionProbe:
        self._gpu = _gpu_other_processes(self.device)
        self._sched = _schedstat_ns()
        self._machine = _cpu_times(self.cpus)
        cpu = self.process.cpu_times()
        self._cpu = cpu.user + cpu.system
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(time.perf_counter() - self._t0, 1e-9)
        cpu_now = self.process.cpu_times()
        own = max(0.0, cpu_now.user + cpu_now.system - self._cpu)
        busy, steal = _cpu_times(self.cpus)
        sched = _schedstat_ns()
        capacity = wall * len(self.cpus)
        wait_frac = None
        if self._sched is not None and sched is not None:
            ran, waited = sched[0] - self._sched[0], sched[1] - self._sched[1]
            wait_frac = waited / (ran + waited) if ran + waited > 0 else 0.0
        try:
            load = os.getloadavg()[0] / len(self.cpus)
        except OSError:
            load = None
        gpu = _gpu_other_processes(self.device)
        self.result = Contention(
            wall_s=wall,
            cpu_s=own,
            cpu_wall_ratio=own / wall,
            run_wait_frac=wait_frac,
            others_cpu_frac=min(1.0, max(0.0, busy - self._machine[0] - own) / capacity),
            steal_frac=min(1.0, max(0.0, steal - self._machine[1]) / capacity),
            load_avg=load,
            gpu_other_procs=max(self._gpu, gpu) if self._gpu is not None and gpu is not None else gpu,
        )


# ---- memory --------------------------------------------------------------------------------------------


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def rss_bytes() -> int:
    """This process's resident memory (psutil: every OS)."""
    return int(psutil.Process().memory_info().rss)


class RssPeak:
    """Samples resident memory in a thread while a block runs (CPU has no allocator peak counter)."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        return int(self._process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssPeak:
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


# ---- sampling ------------------------------------------------------------------------------------------


def p50_rel_ci(samples: np.ndarray) -> float:
    """Half-width of the distribution-free 95% CI of the median (binomial order statistics), over the median."""
    n = len(samples)
    if n < 2:
        return math.inf
    ordered = np.sort(samples)
    half = 1.96 * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half))
    hi = min(n - 1, math.ceil(n / 2 + half))
    median = float(np.median(ordered))
    if median <= 0:
        return math.inf
    return float(ordered[hi] - ordered[lo]) / 2 / median


@dataclass(frozen=True)
class _Attempt:
    lat_s: np.ndarray
    stop_reason: str
    wall_s: float
    peak_mem_mb: float | None
    rss_peak_mb: float
    contention: Contention


def _sample(
    predict: Callable[[Sequence[Any]], Any],
    take: Callable[[int, int], Sequence[Any]],
    *,
    batch_size: int,
    device: str,
    weights_mb: float | None,
    cfg: TimingConfig,
) -> _Attempt:
    is_cuda = device.startswith("cuda")
    if is_cuda:
        import torch

        torch.cuda.reset_peak_memory_stats(device)
    base_rss = rss_bytes()
    lo, hi = cfg.sample_range
    lat: list[float] = []
    stop_reason = "fixed" if cfg.batch1_iters is not None else "max_samples"
    with ContentionProbe(device) as probe, RssPeak() as rss:
        started = time.perf_counter()
        for i in range(hi):
            item = take(i, 1)
            _synchronize(device)
            t0 = time.perf_counter()
            predict(item)
            _synchronize(device)
            lat.append(time.perf_counter() - t0)
            if len(lat) >= lo and cfg.batch1_iters is None:
                if p50_rel_ci(np.asarray(lat)) <= cfg.target_rel_ci:
                    stop_reason = "precision"
                    break
                if time.perf_counter() - started >= cfg.budget_s:
                    stop_reason = "budget"
                    break
        batches = [take(i * batch_size, batch_size) for i in range(cfg.throughput_batches)]
        _synchronize(device)
        t0 = time.perf_counter()
        for batch in batches:
            predict(batch)
        _synchronize(device)
        wall = time.perf_counter() - t0
    assert probe.result is not None
    if is_cuda:
        import torch

        peak_mb: float | None = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        # weights by their dtype plus what the timed calls added on top of the resident set
        peak_mb = (weights_mb or 0.0) + max(0, rss.peak - base_rss) / 2**20
    return _Attempt(np.asarray(lat), stop_reason, wall, peak_mb, rss.peak / 2**20, probe.result)


def measure(
    predict: Callable[[Sequence[Any]], Any],
    inputs: Sequence[Any],
    *,
    batch_size: int,
    device: str,
    params: int | None,
    cfg: TimingConfig,
    weight_bytes: int | None = None,
    load_s: float | None = None,
) -> TimingRecord:
    """Time `predict` (raw inputs -> predictions, the full inference path) on real test inputs.

    peak_mem_mb: on CUDA, torch's max allocated bytes during the timed region; on CPU, the weights'
    bytes by their actual dtype plus the peak resident-memory growth sampled during the timed region.
    """
    import torch

    n = len(inputs)
    if n == 0:
        raise ValueError("no inputs to time")

    def take(start: int, size: int) -> Sequence[Any]:
        idx = [(start + i) % n for i in range(size)]
        if isinstance(inputs, np.ndarray):
            return inputs[idx]
        return [inputs[i] for i in idx]

    for i in range(cfg.warmup):
        predict(take(i, 1))
        predict(take(i, batch_size))
    _synchronize(device)

    weights_mb = weight_bytes / 2**20 if weight_bytes is not None else None
    attempt = _sample(predict, take, batch_size=batch_size, device=device, weights_mb=weights_mb, cfg=cfg)
    attempts = 1
    if attempt.contention.contended and cfg.remeasure_contended:
        again = _sample(predict, take, batch_size=batch_size, device=device, weights_mb=weights_mb, cfg=cfg)
        attempts = 2
        if again.contention.severity <= attempt.contention.severity:
            attempt = again
    return timing_record(
        attempt,
        batch_size=batch_size,
        device=device,
        params=params,
        cfg=cfg,
        weights_mb=weights_mb,
        load_s=load_s,
        threads=torch.get_num_threads(),
        attempts=attempts,
    )


def timing_record(
    attempt: _Attempt,
    *,
    batch_size: int,
    device: str,
    params: int | None,
    cfg: TimingConfig,
    weights_mb: float | None,
    load_s: float | None,
    threads: int,
    attempts: int,
) -> TimingRecord:
    ms = attempt.lat_s * 1000
    c = attempt.contention
    return TimingRecord(
        hardware=hardware_info()["fingerprint"],
        device=device,
        batch_size=batch_size,
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=float(ms.mean()),
        std_ms=float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
        n_timed=len(ms),
        items_per_s=float(batch_size * cfg.throughput_batches / attempt.wall_s) if attempt.wall_s > 0 else math.inf,
        peak_mem_mb=attempt.peak_mem_mb,
        params=params,
        p50_rel_ci=_finite(p50_rel_ci(attempt.lat_s)),
        stop_reason=attempt.stop_reason,
        weights_mb=weights_mb,
        rss_peak_mb=attempt.rss_peak_mb,
        load_s=load_s,
        threads=threads,
        cpu_wall_ratio=c.cpu_wall_ratio,
        run_wait_frac=c.run_wait_frac,
        others_cpu_frac=c.others_cpu_frac,
        steal_frac=c.steal_frac,
        load_avg=c.load_avg,
        gpu_other_procs=c.gpu_other_procs,
        contended=c.contended,
        attempts=attempts,
    )


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None

