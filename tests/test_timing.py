"""Latency measurement: adaptive sampling, the contention guard, memory by dtype, withheld percentiles.

No assertion here is on a timing value: the contention tests start their own CPU hogs (bounded busy
loops in child processes, one more than this process may use CPUs), so the "contended" mark is produced
deterministically; everything else checks sample counts, stop reasons and arithmetic.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from harness.config import parse_suite
from harness.errors import HarnessError
from harness.models.hf_common import module_bytes
from harness.records import TimingRecord
from harness.timing import (
    Contention,
    ContentionProbe,
    TimingConfig,
    configure_threads,
    contention_verdict,
    hardware_info,
    measure,
    p50_rel_ci,
    usable_cpus,
)

HOG = "import time\nend = time.monotonic() + {seconds}\nprint(flush=True)\nwhile time.monotonic() < end:\n    pass\n"


@contextmanager
def cpu_hogs(seconds: float = 60.0) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two busy loops for every CPU this process may use, plus one; each stops by itself after `seconds`. (One
    per CPU plus one once let a re-measurement find the CPUs free enough under CI's own load: the timing kept
    is the less contended attempt.) It yields once every hog has started its loop: a measurement taken while the
    hogs' interpreters were still starting once found the CPUs free and kept that uncontended attempt."""
    procs = [
        subprocess.Popen([sys.executable, "-c", HOG.format(seconds=seconds)], stdout=subprocess.PIPE)
        for _ in range(2 * len(usable_cpus()) + 1)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            p.stdout.readline()  # the hog's line, printed just before its busy loop
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def busy_predict(batch: list[int]) -> int:
    """A CPU-bound stand-in for a forward pass (pure Python: holds one CPU while it runs)."""
    return sum(i * i for i in range(20_000 * len(batch)))


def test_hogs_mark_the_timing_contended_and_it_is_re_measured() -> None:
    cfg = TimingConfig(warmup=1, min_samples=20, max_samples=40, budget_s=5.0, throughput_batches=1)
    with cpu_hogs():
        timing = measure(busy_predict, list(range(50)), batch_size=2, device="cpu", params=None, cfg=cfg)
    assert timing.contended is True
    assert timing.attempts == 2  # re-measured once; still contended with the hogs running
    assert timing.run_wait_frac is not None and timing.run_wait_frac >= 0.10
    assert timing.others_cpu_frac is not None and timing.others_cpu_frac > 0
    assert timing.cpu_wall_ratio is not None and timing.cpu_wall_ratio < 1


def test_probe_sees_other_processes_use_the_cpus() -> None:
    with cpu_hogs(), ContentionProbe() as probe:
        busy_predict(list(range(100)))
    assert probe.result is not None and probe.result.contended
    assert probe.result.others_cpu_frac > 0.25  # the hogs hold (n+1)/(n+2) of our CPUs


@pytest.mark.parametrize(
    ("wait", "others", "steal", "gpu", "expected"),
    [
        (0.02, 0.9, 0.0, None, False),  # others busy on CPUs we did not want: our threads never waited
        (0.15, 0.2, 0.0, None, True),  # our threads waited while other processes used the CPUs
        (0.16, 0.0, 0.0, None, False),  # our own threads queueing behind each other on an idle machine
        (0.02, 0.0, 0.2, None, True),  # the hypervisor took the CPUs
        (None, 0.30, 0.0, None, True),  # no schedstat (not Linux): fall back to others' CPU share
        (None, 0.10, 0.0, None, False),
        (0.0, 0.0, 0.0, 1, True),  # another process computing on our GPU
    ],
)
def test_contention_rule(wait: float | None, others: float, steal: float, gpu: int | None, expected: bool) -> None:
    c = Contention(1.0, 1.0, 1.0, wait, others, steal, 0.5, gpu)
    assert contention_verdict(c) is expected


def test_adaptive_sampling_stops_for_precision_budget_or_cap() -> None:
    inputs = list(range(10))
    common = {"warmup": 0, "throughput_batches": 1, "remeasure_contended": False}
    loose = measure(busy_predict, inputs, batch_size=1, device="cpu", params=None,
                    cfg=TimingConfig(min_samples=12, max_samples=300, target_rel_ci=0.5, budget_s=600, **common))  # fmt: skip
    # It stops at the first n >= 12 whose p50 CI is within 50% (how soon depends on the machine's noise).
    assert loose.stop_reason == "precision" and 12 <= loose.n_timed < 300
    assert loose.p50_rel_ci is not None and loose.p50_rel_ci <= 0.5
    capped = measure(busy_predict, inputs, batch_size=1, device="cpu", params=None,
                     cfg=TimingConfig(min_samples=5, max_samples=25, target_rel_ci=1e-12, budget_s=600, **common))  # fmt: skip
    assert (capped.n_timed, capped.stop_reason) == (25, "max_samples")
    budget = measure(busy_predict, inputs, batch_size=1, device="cpu", params=None,
                     cfg=TimingConfig(min_samples=7, max_samples=500, target_rel_ci=1e-12, budget_s=1e-6, **common))  # fmt: skip
    assert (budget.n_timed, budget.stop_reason) == (7, "budget")
    fixed = measure(busy_predict, inputs, batch_size=1, device="cpu", params=None,
                    cfg=TimingConfig(batch1_iters=9, **common))  # fmt: skip
    assert (fixed.n_timed, fixed.stop_reason) == (9, "fixed")
    assert fixed.p50_rel_ci is not None and fixed.threads == torch.get_num_threads()


def test_p50_confidence_interval_of_the_median() -> None:
    assert p50_rel_ci(np.full(50, 3.0)) == 0.0
    samples = np.arange(1.0, 101.0)  # median 50.5; order statistics 40 and 61 bound its 95% CI
    assert p50_rel_ci(samples) == pytest.approx((samples[60] - samples[40]) / 2 / 50.5)
    assert p50_rel_ci(np.array([1.0])) == float("inf")


def timing_with(n: int, contended: bool | None = False) -> TimingRecord:
    return TimingRecord("hw", "cpu", 8, 1.0, 2.0, 3.0, 1.2, 0.3, n, 100.0, 10.0, 5, contended=contended)


def test_percentiles_are_withheld_until_n_supports_them() -> None:
    small = timing_with(30)
    assert small.reported("p50") == 1.0 and small.reported("p95") == 2.0
    assert small.reported("p99") is None
    assert small.withheld_reason("p99") == "p99 needs >= 100 samples, this timing has 30"
    assert timing_with(19).reported("p95") is None
    assert timing_with(100).reported("p99") == 3.0


def test_timing_record_from_old_and_new_rows() -> None:
    old = {k: v for k, v in timing_with(30).__dict__.items() if k in ("hardware", "device", "batch_size", "p50_ms",
           "p95_ms", "p99_ms", "mean_ms", "std_ms", "n_timed", "items_per_s", "peak_mem_mb", "params")}  # fmt: skip
    record = TimingRecord.from_mapping({**old, "attempts": None, "contended": None})
    assert record.contended is None and record.attempts == 1
    assert TimingRecord.from_mapping({**old, "contended": 1}).contended is True


def test_weights_counted_by_their_dtype() -> None:
    torch.manual_seed(0)
    fp32 = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.BatchNorm1d(32))
    n_params = sum(p.numel() for p in fp32.parameters())
    n_buffers = sum(b.numel() for b in fp32.buffers() if b.dtype.is_floating_point)
    assert module_bytes(fp32) == 4 * (n_params + n_buffers) + 8  # + num_batches_tracked (int64)
    bf16 = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.BatchNorm1d(32)).to(torch.bfloat16)
    assert module_bytes(bf16) == 2 * (n_params + n_buffers) + 8
    tied = torch.nn.Linear(8, 8, bias=False)
    both = torch.nn.ModuleDict({"a": tied, "b": tied})
    assert module_bytes(both) == 8 * 8 * 4


def test_fingerprint_has_thread_pools_onnxruntime_and_gpu_fields() -> None:
    info = hardware_info()
    assert info["thread_pools"] and {"api", "library", "threads"} <= set(info["thread_pools"][0])
    assert info["onnxruntime"]["version"] and "CPUExecutionProvider" in info["onnxruntime"]["providers"]
    assert info["gpu_count"] == torch.cuda.device_count()
    assert info["threads"] == torch.get_num_threads()


def test_configure_threads_gives_each_worker_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert configure_threads(1) == 1 == torch.get_num_threads()
        assert hardware_info()["threads"] == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert configure_threads(64) == 1  # an explicit OMP_NUM_THREADS wins
    finally:
        torch.set_num_threads(before)
        hardware_info.cache_clear()


@pytest.mark.parametrize(
    ("timing", "message"),
    [
        ("{min_samples: 1}", "key 'timing.min_samples' must be at least 2"),
        ("{min_samples: 50, max_samples: 10}", "key 'timing.max_samples' (10) must be at least min_samples (50)"),
        ("{target_rel_ci: 0}", "key 'timing.target_rel_ci' must be between 0 and 1"),
        ("{budget_s: -1}", "key 'timing.budget_s' must be a positive number of seconds"),
        ("{budget_s: .nan}", "key 'timing.budget_s' must be a number, got nan"),  # the schema engine refuses NaN
        ("{min_sample: 5}", 'unknown key \'timing.min_sample\'. Did you mean "min_samples"?'),
        # a fixed count beside the adaptive keys: one would be silently ignored
        ("{batch1_iters: 3, min_samples: 10}", "key 'timing.batch1_iters' cannot be given with 'timing.min_samples'"),
        ("{batch1_iters: 3, max_samples: 30}", "key 'timing.batch1_iters' cannot be given with 'timing.max_samples'"),
        ("{batch1_iters: 3, target_rel_ci: .1}", "key 'timing.batch1_iters' cannot be given with 'timing.target_rel_ci'"),
        ("{batch1_iters: 3, budget_s: 20}", "key 'timing.batch1_iters' cannot be given with 'timing.budget_s'"),
        ("{batch1_iters: 3, min_samples: 20}", "Give batch1_iters: 3 alone, or the adaptive keys without it (min_samples: 3, max_samples: 3"),
    ],
)
def test_timing_settings_are_checked_when_the_suite_is_parsed(timing: str, message: str) -> None:
    text = f"name: t\nmodels: [{{name: m, family: tfidf}}]\ntasks: [digits]\nprotocols: [linear_probe]\ntiming: {timing}\n"
    with pytest.raises(HarnessError) as err:
        parse_suite(yaml.safe_load(text), Path("suite.yaml"))
    assert message in str(err.value) and "timing" in str(err.value)


@pytest.mark.parametrize("timing", ["{batch1_iters: 3, warmup: 1}", "{batch1_iters: null, min_samples: 10}", "{min_samples: 3, max_samples: 3}"])
def test_a_fixed_count_alone_or_the_adaptive_keys_alone_are_accepted(timing: str) -> None:
    text = f"name: t\nmodels: [{{name: m, family: tfidf}}]\ntasks: [digits]\nprotocols: [linear_probe]\ntiming: {timing}\n"
    assert parse_suite(yaml.safe_load(text), Path("suite.yaml")).timing.sample_range in ((3, 3), (10, 300))
