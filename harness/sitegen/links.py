"""Where pages live (slugs, relative links) and how a hardware fingerprint is shown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.store.rows import HardwareMeta


@dataclass(frozen=True)
class Links:
    """Slugs for every named thing; hrefs are relative to a page at `root` ("" or "../")."""

    models: Mapping[str, str]
    tasks: Mapping[str, str]
    protocols: Mapping[str, str]
    groups: Mapping[str, str]

    def model(self, name: str, root: str) -> str:
        return f"{root}models/{self.models[name]}.html"

    def task(self, name: str, root: str) -> str:
        return f"{root}tasks/{self.tasks[name]}.html"

    def protocol(self, name: str, root: str) -> str:
        return f"{root}protocols/{self.protocols[name]}.html"


@dataclass(frozen=True, slots=True)
class HwView:
    id: str
    short: str
    summary: str
    platform: str


def hw_views(hardware: Mapping[str, HardwareMeta], fingerprints: set[str]) -> dict[str, HwView]:
    out = {}
    for fp in sorted(fingerprints):
        meta = hardware.get(fp)
        out[fp] = HwView(
            fp,
            fp[:8],
            meta.summary if meta else "hardware details not recorded",
            meta.platform if meta else "",
        )
    return out
