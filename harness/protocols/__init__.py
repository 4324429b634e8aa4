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
    from harness.protocols import linear_probe, zero_shot

    defs = [
        ProtocolDef("zero_shot", zero_shot.ZeroShotConfig, zero_shot.run, "no training on task data"),
        ProtocolDef(
            "linear_probe",
            linear_probe.LinearProbeConfig,
            linear_probe.run,
            "frozen features -> logistic regression (C on validation)",
        ),
    ]
    return {d.name: d for d in defs}


def get_protocol(name: str) -> ProtocolDef:
    defs = protocol_defs()
    if name not in defs:
        raise unknown_name("protocol", name, defs)
    return defs[name]
