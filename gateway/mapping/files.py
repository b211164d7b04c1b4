"""Reading a mapping file as YAML nodes, so every key keeps its line number.

Keys are taken as written (a legacy field called ``on`` or ``yes`` stays that
string, not YAML 1.1's boolean) and a key given twice is an error rather than
YAML's silent "last one wins".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Entry", "YamlFile"]


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    line: int  # 1-based line of the key
    node: yaml.Node

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.node, yaml.MappingNode)


class YamlFile:
    """One YAML file; problems are collected in :attr:`errors` as ``file:line: what``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[str] = []
        self.root: yaml.Node | None = None
        self._loader: yaml.SafeLoader | None = None
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            self.errors.append(f"{path}: cannot read: {exc.strerror}")
            return
        loader = yaml.SafeLoader(text)
        try:
            self.root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f":{mark.line + 1}" if mark else ""
            self.errors.append(f"{path}{line}: not valid YAML: {exc.problem or exc.context}")
            return
        except yaml.YAMLError as exc:
            self.errors.append(f"{path}: not valid YAML: {exc}")
            return
        self._loader = loader

    def error(self, line: int, field: str, message: str) -> None:
        self.errors.append(f"{self.path}:{line}: {field}: {message}")

    def entries(self, node: yaml.Node, where: str, line: int) -> list[Entry]:
        """The keys of a YAML mapping in order; an error (and []) if ``node`` is something else."""
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.MappingNode):
            self.error(line, where or "(top level)", "must be a mapping of keys to values")
            return []
        out: list[Entry] = []
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or not key_node.value.strip():
                self.error(key_line, where or "(top level)", "keys must be non-empty names")
                continue
            key = key_node.value.strip()
            if key in seen:
                label = f"{where}.{key}" if where else key
                self.error(key_line, label, f"given twice (first on line {seen[key]})")
                continue
            seen[key] = key_line
            out.append(Entry(key, key_line, value_node))
        return out

    def name(self, node: yaml.Node) -> str | None:
        """A scalar as written, for names (``on`` stays "on"); None for anything else."""
        if isinstance(node, yaml.ScalarNode) and node.value.strip():
            return str(node.value).strip()
        return None

    def names(self, node: yaml.Node) -> list[str] | None:
        """A sequence of names as written; None if it is something else."""
        if not isinstance(node, yaml.SequenceNode):
            return None
        found = [self.name(item) for item in node.value]
        return [n for n in found if n is not None] if None not in found else None

    def value(self, node: yaml.Node) -> Any:
        assert self._loader is not None
        return self._loader.construct_object(node, deep=True)

    def close(self) -> None:
        if self._loader is not None:
            self._loader.dispose()
