"""Protocol registry: name -> (config dataclass, run function). Suites may define variants of these.

The built-in protocols are listed here; an installed package adds more under the "harness.protocols"
entry point group (a ProtocolDef or a list of them; docs/adding-a-protocol.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from harness.entry_points import items, load_group
from harness.errors import ConfigError, unknown_name

PROTOCOL_ENTRY_POINT_GROUP = "harness.protocols"


@dataclass(frozen=True)
class ProtocolDef:
    """A protocol: `run(adapter, task data, config, ctx) -> ProtocolOutput` (harness.protocols.base) and the
    frozen dataclass of its options (a suite's protocol entry sets them; unknown keys are refused)."""

    name: str
    config_cls: type
    run: Callable[..., Any]
    description: str
    # Distributions whose code computes the protocol's results beyond the model's (the probe's classifier):
    # their versions are part of the job key.
    packages: tuple[str, ...] = ()
    # (config, device kind "cpu"/"cuda", the GPU supports bf16) -> the precision a protocol that trains runs in
    # (fine-tune's precision: auto is bf16 on one GPU and fp16 on another). Resolved at plan time for the workers
    # and part of the job key where the GPU's bf16 support changes it; a worker that resolves otherwise fails the job.
    training_precision: Callable[[Any, str, bool], str] | None = None


def protocol_defs() -> dict[str, ProtocolDef]:
    """The built-in protocols and the installed ones (entry point group "harness.protocols"), by name; the
    entry points are read once per process (reload_protocols reads them again)."""
    return dict(_table())


def reload_protocols() -> None:
    """Read the entry points again (after a package is installed in this process)."""
    _table.cache_clear()


@cache
def _table() -> dict[str, ProtocolDef]:
    defs = {d.name: d for d in _builtin_defs()}
    origins = dict.fromkeys(defs, "built-in")
    for obj, origin in load_group(PROTOCOL_ENTRY_POINT_GROUP):
        for d in items(obj, ProtocolDef):
            _check(d, origin)
            if d.name in defs:
                raise ConfigError(
                    f'Two protocols are named "{d.name}": one from {origins[d.name]}, one from {origin}. '
                    "Rename the plugin's protocol (protocol names must be unique)."
                )
            defs[d.name], origins[d.name] = d, origin
    return defs


def _check(d: Any, origin: str) -> None:
    if not isinstance(d, ProtocolDef):
        raise ConfigError(f"{origin}: expected a harness.protocols.ProtocolDef, got {type(d).__name__}.")
    if not (dataclasses.is_dataclass(d.config_cls) and isinstance(d.config_cls, type)):
        raise ConfigError(f"{origin}: protocol {d.name!r}: config_cls must be a dataclass (its options), got {d.config_cls!r}.")
    if not callable(d.run):
        raise ConfigError(f"{origin}: protocol {d.name!r}: run must be a function, got {type(d.run).__name__}.")
    if d.training_precision is not None and not callable(d.training_precision):
        raise ConfigError(
            f"{origin}: protocol {d.name!r}: training_precision must be a function or None, got "
            f"{type(d.training_precision).__name__}."
        )


def _builtin_defs() -> list[ProtocolDef]:
    from harness.protocols import finetune, linear_probe, lm_loglik, zero_shot

    defs = [
        ProtocolDef("zero_shot", zero_shot.ZeroShotConfig, zero_shot.run, "no training on task data"),
        ProtocolDef(
            "linear_probe",
            linear_probe.LinearProbeConfig,
            linear_probe.run,
            "frozen features -> logistic regression (C on validation)",
            packages=("scikit-learn",),
        ),
        ProtocolDef(
            "finetune",
            finetune.FinetuneConfig,
            finetune.run,
            "backbone + new head, all weights trained (AdamW, warm-up + decay), early stopping on validation",
            training_precision=finetune.training_precision,
        ),
        ProtocolDef(
            "few_shot_finetune",
            finetune.FewShotFinetuneConfig,
            finetune.run,
            "fine-tune on VTAB-1k style draws (800 train / 200 validation), repeated with seeds",
            training_precision=finetune.training_precision,
        ),
        ProtocolDef(
            "lm_loglik",
            lm_loglik.LMLoglikConfig,
            lm_loglik.run,
            "causal LMs: log-likelihood of each label's continuation after a prompt (zero- or in-context k-shot)",
        ),
    ]
    return defs


def get_protocol(name: str) -> ProtocolDef:
    defs = protocol_defs()
    if name not in defs:
        raise unknown_name("protocol", name, defs)
    return defs[name]
