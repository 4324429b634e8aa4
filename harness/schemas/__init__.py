"""Published JSON Schemas: the exported run record (harness export) and the suite file.

`run_record_schema()` is the contract for `harness export --format json|jsonl` records (a JSON file in this
package). `suite_schema()` is generated from the same dataclasses the suite parser checks against
(ModelSpec, each protocol's config, bootstrap and timing settings), so it cannot drift from the parser.
Both are copied to docs/schemas/ (`harness schema run-record`, `harness schema suite`); a test keeps the
copies equal.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from importlib import resources
from typing import Any, Union, get_args, get_origin

__all__ = ["json_type", "run_record_schema", "suite_schema"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def run_record_schema() -> dict[str, Any]:
    """The JSON Schema of one exported run record."""
    text = resources.files(__name__).joinpath("run_record.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def json_type(tp: Any) -> dict[str, Any]:
    """JSON Schema for a dataclass field type (the types harness.typed_config accepts)."""
    origin = get_origin(tp)
    if tp is Any:
        return {}
    if origin in (Union, types.UnionType):
        options = [json_type(a) for a in get_args(tp)]
        return {} if {} in options else {"anyOf": options}
    if tp is type(None):
        return {"type": "null"}
    if origin is typing.Literal:
        return {"enum": list(get_args(tp))}
    if origin in (tuple, list) or tp in (tuple, list):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return {"type": "array", **({"items": json_type(args[0])} if args else {})}
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return {"type": "object"}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if tp in simple:
        return {"type": simple[tp]}
    return {}


def _properties(cls: type, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        prop = json_type(hints[f.name])
        if f.default is not dataclasses.MISSING and isinstance(f.default, (str, int, float, bool, type(None))):
            prop["default"] = f.default
        props[f.name] = prop
    return props


def _required(cls: type) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


def suite_schema() -> dict[str, Any]:
    """JSON Schema for suite files, for editors (YAML language servers) and CI checks."""
    from harness.config import SUITE_KEYS
    from harness.metrics import BootstrapConfig
    from harness.models import families
    from harness.models.base import ModelSpec
    from harness.protocols import protocol_defs
    from harness.registry import TaskRegistry
    from harness.timing import TimingConfig

    names = {"type": "array", "items": {"type": "string"}}
    model = {
        "type": "object",
        "additionalProperties": False,
        "required": _required(ModelSpec),
        "properties": {
            **_properties(ModelSpec),
            "family": {"enum": sorted(families())},
            "tasks": {**names, "description": "Run this model on these of the suite's tasks only."},
            "protocols": {**names, "description": "Run this model under these of the suite's protocols only."},
        },
    }
    defs = protocol_defs()
    variants: list[dict[str, Any]] = []
    for name, d in defs.items():
        fields = _properties(d.config_cls)
        variants.append({
            "type": "object", "additionalProperties": False, "required": ["name", "protocol"],
            "properties": {"name": {"type": "string"}, "protocol": {"const": name}, **fields},
        })  # fmt: skip
        variants.append({
            "type": "object", "additionalProperties": False, "required": ["name"],
            "properties": {"name": {"const": name}, **fields},
        })  # fmt: skip
    builtin_tasks = sorted(TaskRegistry.discover().names())
    subsample = {
        "type": "object",
        "additionalProperties": False,
        "properties": {k: {"type": "integer", "minimum": 0 if k == "seed" else 1} for k in ("train", "validation", "test", "seed")},
    }
    limit = {
        "description": "Cap the test split: a number of examples, or a fraction of them (harness run --limit).",
        "anyOf": [{"type": "integer", "minimum": 1}, {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}],
    }
    task = {
        "anyOf": [
            {"type": "string", "examples": builtin_tasks},
            {
                "type": "object", "additionalProperties": False, "required": ["name"],
                "properties": {"name": {"type": "string", "examples": builtin_tasks}, "subsample": subsample, "limit": limit},
            },
        ]
    }  # fmt: skip
    properties: dict[str, Any] = {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "seeds": {"type": "array", "minItems": 1, "items": {"type": "integer"}},
        "models": {"type": "array", "minItems": 1, "items": model},
        "tasks": {"type": "array", "minItems": 1, "items": task},
        "protocols": {"type": "array", "minItems": 1, "items": {"anyOf": [{"enum": sorted(defs)}, *variants]}},
        "plugins": {**names, "description": "Task plugin files or folders, relative to the suite file."},
        "bootstrap": {"type": "object", "additionalProperties": False, "properties": _properties(BootstrapConfig)},
        "timing": {"type": "object", "additionalProperties": False, "properties": _properties(TimingConfig)},
        "task_groups": {
            "type": "object",
            "description": "Named groups of the suite's tasks, ranked together on the site.",
            "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        },
    }
    assert set(properties) == set(SUITE_KEYS), "suite_schema() and config.SUITE_KEYS disagree"
    return {
        "$schema": DRAFT,
        "$id": "urn:harness:schema:suite:1",
        "title": "harness suite file",
        "description": "models x tasks x protocols x seeds; see suites/demo.yaml and README.md.",
        "type": "object",
        "additionalProperties": False,
        "required": ["models", "tasks", "protocols"],
        "properties": properties,
    }
