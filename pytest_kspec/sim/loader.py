"""Read Kubernetes objects from YAML files or folders, and write them back as YAML.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from pytest_kspec.errors import SimulatorError
from pytest_kspec.sim.store import gc_paused
from pytest_kspec.sim.yamlstate import load_documents

_SUFFIXES = (".yaml", ".yml", ".json")


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES)
    if path.is_file():
        return [path]
    raise SimulatorError(f"{path}: no such file or folder; pass a YAML file or a folder of them")


def _expand(doc: Any, where: str) -> list[dict[str, Any]]:
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise SimulatorError(f"{where}: expected a Kubernetes object (a mapping), "
                             f"got {type(doc).__name__}")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        out: list[dict[str, Any]] = []
        for i, item in enumerate(doc["items"]):
            out.extend(_expand(item, f"{where} items[{i}]"))
        return out
    if not doc.get("apiVersion") or not kind:
        raise SimulatorError(f"{where}: object without apiVersion/kind; every document needs "
                             "both")
    if not isinstance(doc.get("metadata"), dict) or not (
            doc["metadata"].get("name") or doc["metadata"].get("generateName")):
        raise SimulatorError(f"{where}: {kind} without metadata.name")
    return [doc]


def load_objects(paths: str | Path | Iterable[str | Path]) -> list[dict[str, Any]]:
    """Every object in the given YAML files/folders (multi-document and ``kind: List`` too)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    objects: list[dict[str, Any]] = []
    with gc_paused():
        for path in paths:
            objects.extend(_load_path(Path(path)))
    return objects


def _load_path(path: Path) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for file in _files(path):
        try:
            text = file.read_text(encoding="utf-8")
            docs = [json.loads(text)] if file.suffix == ".json" else load_documents(text)
            for i, doc in enumerate(docs):
                objects.extend(_expand(doc, f"{file} (document {i + 1})"))
        except json.JSONDecodeError as e:
            raise SimulatorError(f"{file}:{e.lineno}: invalid JSON: {e.msg}") from e
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise SimulatorError(f"{file}{line}: invalid YAML: {problem}") from e
        except (OSError, UnicodeDecodeError) as e:
            raise SimulatorError(f"{file}: cannot read: {e}") from e
    return objects


def dump_objects(objects: Iterable[dict[str, Any]]) -> str:
    """Multi-document YAML, in the order given."""
    return yaml.safe_dump_all(list(objects), sort_keys=True, default_flow_style=False)
