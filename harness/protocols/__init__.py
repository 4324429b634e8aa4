"""Protocol registry: name -> (config dataclass, run function). Suites may define variants of these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import unknown_name


@dataclass(frozen=True)
class ProtocolDef:
    name: str
    config_cls: type
    run: Callable[..., Any]
    description: str


def protocol_defs() -> dict[str, ProtocolDef]:
    from harness.protocols import finetune, linear_probe, lm_loglik, zero_shot

    defs = [
        ProtocolDef("zero_shot", zero_shot.ZeroShotConfig, zero_shot.run, "no training on task data"),
        ProtocolDef(
            "linear_probe",
            linear_probe.LinearProbeConfig,
            linear_probe.run,
            "frozen features -> logistic regression (C on validation)",
        ),
        ProtocolDef(
            "finetune",
            finetune.FinetuneConfig,
            finetune.run,
            "backbone + new head, all weights trained (AdamW, warm-up + decay), early stopping on validation",
        ),
        ProtocolDef(
            "few_shot_finetune",
            finetune.FewShotFinetuneConfig,
            finetune.run,
            "fine-tune on VTAB-1k style draws (800 train / 200 validation), repeated with seeds",
        ),
        ProtocolDef(
            "lm_loglik",
            lm_loglik.LMLoglikConfig,
            lm_loglik.run,
            "causal LMs: log-likelihood of each label's continuation after a prompt (zero- or in-context k-shot)",
        ),
    ]
    return {d.name: d for d in defs}


def get_protocol(name: str) -> ProtocolDef:
    defs = protocol_defs()
    if name not in defs:
        raise unknown_name("protocol", name, defs)
    return defs[name]
