"""The one YAML reader (suites, task files, compare policies): safe, bounded, strict, YAML 1.2 scalars.

- safe: PyYAML's SafeLoader underneath, so no tag can build a Python object;
- bounded: files over MAX_BYTES, nesting deeper than MAX_DEPTH and documents whose aliases expand to more
  than MAX_NODES values (a "billion laughs" document) or refer to themselves are refused before any of
  our code walks them;
- strict: a key given twice in one mapping is an error naming the file, both lines and the key
  (YAML merge keys ``<<: *defaults`` still override as usual);
- YAML 1.2 core scalars: only true/false are booleans and only null/~/empty are null, so the values we
  document as words (``dedupe: off``) mean what was written; ``010`` is ten, ``1:30`` and ``2024-01-01`` are
  strings, ``1e-3`` is a number. Boolean settings accept yes/no/on/off as well (see ``as_bool``);
- every error is a ConfigError: one paragraph naming the file and the line (or byte offset).
"""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import ConfigError

MAX_BYTES = 8 * 2**20
MAX_DEPTH = 64
MAX_NODES = 200_000

_MERGE_TAG = "tag:yaml.org,2002:merge"
_SURROGATE = re.compile("[\ud800-\udfff]")
TRUE_WORDS = ("true", "yes", "on")
FALSE_WORDS = ("false", "no", "off")


class _Limit(Exception):
    """Raised inside the loader; turned into a ConfigError with the file name by `parse_yaml`."""

    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(message)
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema resolvers, a depth bound and duplicate-key detection."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Limit(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], Any] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            ident = (key_node.tag, key_node.value)
            if ident in seen:
                first = seen[ident]
                raise _Limit(
                    f"duplicate key '{key_node.value}' (first given at line {first.line + 1}); "
                    "each key may appear once in a mapping",
                    key_node.start_mark,
                )
            seen[ident] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        value = str(self.construct_scalar(node))
        sign = -1 if value.startswith("-") else 1
        digits = value.lstrip("+-")
        if len(digits) > 1000:  # Python converts no more than 4300 decimal digits, to or from text
            raise _Limit(f"an integer of {len(digits):,} digits (no setting takes one that large)", node.start_mark)
        if digits.startswith("0o"):
            return sign * int(digits[2:], 8)
        if digits.startswith("0x"):
            return sign * int(digits[2:], 16)
        return sign * int(digits, 10)

    def construct_scalar(self, node: ScalarNode | MappingNode) -> str:
        value = super().construct_scalar(node)
        if isinstance(value, str) and _SURROGATE.search(value):  # from a "\ud800" escape: no UTF-8 for it
            raise _Limit(
                "a \\uD800-\\uDFFF escape is half of a UTF-16 pair, not a character (it cannot be stored or "
                "printed); write the character itself or a \\U0001F600-style escape",
                node.start_mark,
            )
        return value


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    (_MERGE_TAG, r"^(?:<<)$", "<"),
):
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _expanded_size(root: Node) -> int:
    """Number of values the document has once every alias is expanded (memoised: linear in the file)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        ident = id(node)
        if ident in sizes:
            return sizes[ident]
        if ident in active:
            raise _Limit(
                "an alias refers to the node that contains it (a recursive document)", node.start_mark
            )
        active.add(ident)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(ident)
        if total > MAX_NODES:
            raise _Limit(
                f"its aliases expand to more than {MAX_NODES:,} values (an alias bomb such as 'billion laughs'?)",
                node.start_mark,
            )
        sizes[ident] = total
        return total

    return size(root)


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text (from `source`, used in errors). Empty documents give None."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML forbids anywhere (NUL, other C0 controls)
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            f"{source}: not valid YAML at line {line}: character U+{exc.character:04X} is not allowed in a "
            "YAML file (YAML allows no control character but tab and newline, and no noncharacter); remove it."
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    except _Limit as exc:
        raise ConfigError(f"{source}: refused{_at(exc.mark)}: {exc}.") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise ConfigError(f"{source}: not valid YAML{_at(mark)}: {problem}.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(exc).split())}.") from None
    except RecursionError:
        raise ConfigError(f"{source}: refused: nested too deeply.") from None
    finally:
        loader.dispose()


def read_text(path: Path, what: str = "File") -> str:
    """A UTF-8 text file (BOM allowed), at most MAX_BYTES, with errors naming the file and byte offset."""
    try:
        if path.is_dir():
            raise ConfigError(f"{what} {path} is a directory, not a file.")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{what} {path} is {size:,} bytes; the limit is {MAX_BYTES:,} bytes.")
        if not path.is_file():  # a device or a pipe (/dev/zero, a FIFO) has no size and may never end
            raise ConfigError(f"{what} {path} is not a regular file (a device or a pipe); give a YAML file.")
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)  # the file may have grown since stat
        if len(raw) > MAX_BYTES:
            raise ConfigError(f"{what} {path} is more than {MAX_BYTES:,} bytes; the limit is {MAX_BYTES:,} bytes.")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{what} {path} is a symbolic link that leads back to itself (a loop); give the file itself.") from None
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}.") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        utf16 = " (it starts with a UTF-16 byte order mark: saved as UTF-16)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ConfigError(
            f"{path}: not UTF-8 text{utf16}: byte 0x{raw[exc.start]:02x} at byte offset {exc.start} (line {line}). "
            "Save the file as UTF-8."
        ) from None


def load_yaml(path: str | Path, what: str = "YAML file") -> Any:
    """Read and parse a YAML file with every bound above; errors are ConfigError naming `path`."""
    path = Path(path)
    return parse_yaml(read_text(path, what), str(path))


def as_bool(value: Any) -> bool | None:
    """True/False for a boolean or one of the words yes/no/on/off/true/false (any case); None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None
