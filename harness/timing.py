"""Latency and throughput measurement with a hardware fingerprint.

Honest timing: warm-up calls excluded; every timed call is bracketed by a device synchronise (CUDA
kernels are asynchronous); batch-1 latency is a distribution (p50/p95/p99 over single items), and
throughput is items / wall time of whole batches at the run batch size — never total time / N of
a mixed workload.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from harness.records import TimingRecord


@dataclass(frozen=True)
class TimingConfig:
    warmup: int = 3
    batch1_iters: int = 30
    throughput_batches: int = 3
    enabled: bool = True


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def hardware_info() -> dict[str, Any]:
    """What the timings depend on. The fingerprint id hashes all of it; timings compare only within one id."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "cuda": torch.version.cuda if gpu else None,
        "threads": torch.get_num_threads(),
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
    }
    info["fingerprint"] = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:12]
    return info


def hardware_row() -> dict[str, Any]:
    info = hardware_info()
    return {
        "fingerprint": info["fingerprint"],
        "cpu": info["cpu"],
        "gpu": info["gpu"],
        "torch": info["torch"],
        "cuda": info["cuda"],
        "threads": info["threads"],
        "platform": info["platform"],
        "details_json": json.dumps(info, sort_keys=True),
    }


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


class RssPeak:
    """Samples resident memory in a thread while a block runs (CPU has no allocator peak counter)."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssPeak:
        self.peak = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def measure(
    predict: Callable[[Sequence[Any]], Any],
    inputs: Sequence[Any],
    *,
    batch_size: int,
    device: str,
    params: int | None,
    cfg: TimingConfig,
) -> TimingRecord:
    """Time `predict` (raw inputs -> predictions, the full inference path) on real test inputs.

    peak_mem_mb: on CUDA, torch's max allocated bytes during the timed region; on CPU, parameter
    memory (4 bytes/param) plus the peak resident-memory growth sampled during the timed region.
    """
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

    is_cuda = device.startswith("cuda")
    if is_cuda:
        import torch

        torch.cuda.reset_peak_memory_stats(device)
    base_rss = _rss_bytes()

    lat = np.empty(cfg.batch1_iters)
    with RssPeak() as rss:
        for i in range(cfg.batch1_iters):
            item = take(i, 1)
            _synchronize(device)
            t0 = time.perf_counter()
            predict(item)
            _synchronize(device)
            lat[i] = time.perf_counter() - t0
        batches = [take(i * batch_size, batch_size) for i in range(cfg.throughput_batches)]
        _synchronize(device)
        t0 = time.perf_counter()
        for batch in batches:
            predict(batch)
        _synchronize(device)
        wall = time.perf_counter() - t0

    if is_cuda:
        import torch

        peak_mb: float | None = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = (max(0, rss.peak - base_rss) + 4 * (params or 0)) / 2**20

    ms = lat * 1000
    return TimingRecord(
        hardware=hardware_info()["fingerprint"],
        device=device,
        batch_size=batch_size,
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=float(ms.mean()),
        std_ms=float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
        n_timed=cfg.batch1_iters,
        items_per_s=float(batch_size * cfg.throughput_batches / wall) if wall > 0 else float("inf"),
        peak_mem_mb=peak_mb,
        params=params,
    )
