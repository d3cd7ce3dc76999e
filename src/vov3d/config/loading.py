"""``load_config``: defaults <- YAML file (with ``_BASE_``) <- ``KEY VALUE`` overrides, checked (spec §10).

PySlowFast's order and rules (yacs): every key must exist in the defaults and keep its type. On
top of that, every problem is reported with the file and line (or "command line") it came from,
what was expected, and for an unknown key the nearest valid keys; the merged config is then
checked for ranges, choices and consistency (``validation.py``) and returned frozen.
"""

from __future__ import annotations

import ast
import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml
from yacs.config import CfgNode

from vov3d.config.defaults import IGNORED_ORIGINAL_SECTIONS, get_cfg
from vov3d.config.errors import ConfigError, ConfigProblem, Origin, nearest_keys
from vov3d.utils.atomic import atomic_write

logger = logging.getLogger(__name__)

BASE_KEY = "_BASE_"
"""A top-level key naming another YAML file (relative to this one) merged first, as in fvcore."""

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


class _Merge:
    """State of one load: the config being filled, where each value came from, what went wrong."""

    def __init__(self) -> None:
        self.cfg = get_cfg()
        self.origins: dict[str, Origin] = {}
        self.problems: list[ConfigProblem] = []
        self.ignored: list[str] = []
        self.valid_keys = sorted(_leaf_keys(self.cfg))

    # ------------------------------------------------------------------------------ YAML files
    def merge_file(self, path: Path, chain: tuple[Path, ...] = ()) -> None:
        data, lines = _read_yaml(path)
        if path.resolve() in chain:
            loop = " -> ".join(map(str, chain + (path,)))
            raise ConfigError(f"{path}: {BASE_KEY} chain loops back to itself: {loop}")
        base = data.pop(BASE_KEY, None)
        if base is not None:
            where = (Origin(str(path), lines.get(BASE_KEY)),)
            if not isinstance(base, str) or not base:
                self.problems.append(ConfigProblem("expected the path of a YAML file", (BASE_KEY,), where))
            else:
                base_path = Path(base) if os.path.isabs(base) else path.parent / base
                if not base_path.is_file():
                    raise ConfigError([ConfigProblem(f"base config {base_path} does not exist", (BASE_KEY,), where)])
                self.merge_file(base_path, chain + (path.resolve(),))
        self._merge_mapping(self.cfg, data, "", lambda key: Origin(str(path), lines.get(key)))

    def _merge_mapping(self, node: CfgNode, data: dict, prefix: str, origin_of: Callable[[str], Origin]) -> None:
        for key, value in data.items():
            full = f"{prefix}{key}"
            origin = origin_of(full)
            if not isinstance(key, str):
                self.problems.append(ConfigProblem(f"keys must be names, got {key!r}", (), (origin,)))
                continue
            if self._ignore(full, value, origin_of):
                continue
            if key not in node:
                self._unknown(full, origin)
                continue
            default = node[key]
            if isinstance(default, CfgNode):
                if not isinstance(value, dict):
                    self.problems.append(ConfigProblem(
                        f"is a section: expected a mapping of its keys, got {value!r}", (full,), (origin,)))
                else:
                    self._merge_mapping(default, value, f"{full}.", origin_of)
                continue
            self._set(node, key, full, value, origin)

    # -------------------------------------------------------------------------- KEY VALUE pairs
    def merge_overrides(self, opts: Sequence[Any]) -> None:
        opts = list(opts)
        origin = Origin(command_line=True)
        if len(opts) % 2:
            self.problems.append(ConfigProblem(
                f"overrides come in KEY VALUE pairs; {opts[-1]!r} has no value", (), (origin,)))
            opts = opts[:-1]
        for full, value in zip(opts[0::2], opts[1::2]):
            if not isinstance(full, str) or not full:
                self.problems.append(ConfigProblem(f"expected a KEY (e.g. SOLVER.BASE_LR), got {full!r}", (), (origin,)))
                continue
            if self._ignore(full, value, lambda _key: origin):
                continue
            node: Any = self.cfg
            parts = full.split(".")
            for part in parts[:-1]:
                node = node.get(part) if isinstance(node, CfgNode) else None
            if not isinstance(node, CfgNode) or parts[-1] not in node:
                self._unknown(full, origin)
                continue
            if isinstance(node[parts[-1]], CfgNode):
                inside = tuple(k for k in self.valid_keys if k.startswith(full + "."))[:5]
                self.problems.append(ConfigProblem("is a section, not a key: name one of its keys", (full,), (origin,), inside))
                continue
            self._set(node, parts[-1], full, value, origin)

    # ------------------------------------------------------------------------------- helpers
    def _set(self, node: CfgNode, key: str, full: str, value: Any, origin: Origin) -> None:
        try:
            node[key] = coerce_value(value, node[key])
        except ValueError as error:
            self.problems.append(ConfigProblem(str(error), (full,), (origin,)))
            return
        self.origins[full] = origin

    def _unknown(self, full: str, origin: Origin) -> None:
        self.problems.append(ConfigProblem("unknown key", (full,), (origin,), nearest_keys(full, self.valid_keys)))

    def _ignore(self, full: str, value: Any, origin_of: Callable[[str], Origin]) -> bool:
        """True for a key of an original feature vov3d does not have; a switch turning it on is a problem."""
        for section, switches in IGNORED_ORIGINAL_SECTIONS.items():
            if full == section or full.startswith(section + "."):
                flat = _flatten(value, full) if isinstance(value, dict) else {full: value}
                for switch, required in switches.items():
                    name = f"{section}.{switch}"
                    if name in flat and _as_bool(flat[name]) != required:
                        self.problems.append(ConfigProblem(
                            f"the original's {section} feature is not supported by vov3d; "
                            f"expected {required}, got {flat[name]!r}",
                            (name,), (origin_of(name),)))
                self.ignored.append(full)
                return True
        return False


def coerce_value(value: Any, default: Any) -> Any:
    """`value` (from YAML or the command line) as the type of `default`, or a ValueError saying what was expected.

    Like yacs, a string is read as a Python literal first ("0.1", "[1, 2]", "True"); unlike yacs,
    an integer is accepted for a float key, "true"/"false" for a bool key, and an empty value for a
    string key.
    """
    if isinstance(value, str) and not isinstance(default, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
    elif isinstance(value, str):
        try:
            decoded = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            decoded = value
        value = decoded if isinstance(decoded, str) else value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError(f"expected true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(default, str):
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"expected a string, got {value!r}")
    if isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return type(default)(value)
        raise ValueError(f"expected a list like {list(default)!r}, got {value!r}")
    raise ValueError(f"unsupported default type {type(default).__name__}")  # pragma: no cover


def _as_bool(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    return value


def _flatten(data: dict, prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def _leaf_keys(node: CfgNode, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        if isinstance(value, CfgNode):
            keys.extend(_leaf_keys(value, f"{prefix}{key}."))
        else:
            keys.append(f"{prefix}{key}")
    return keys


def all_keys(cfg: CfgNode | None = None) -> list[str]:
    """Every leaf key of `cfg` (default: the defaults) as ``SECTION.KEY``, sorted."""
    return sorted(_leaf_keys(get_cfg() if cfg is None else cfg))


def _read_yaml(path: Path) -> tuple[dict, dict[str, int]]:
    """The mapping in a YAML file and the line of every key (``SECTION.KEY`` -> 1-based line)."""
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder, not a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path} cannot be read: {error}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise ConfigError(
            f"{path}: expected a mapping of SECTION: {{KEY: VALUE}} at the top level, got {type(data).__name__}")
    lines: dict[str, int] = {}
    duplicates: list[ConfigProblem] = []
    _key_lines(root, "", lines, duplicates, str(path))
    if duplicates:
        raise ConfigError(duplicates)
    return data, lines


def _key_lines(node: yaml.MappingNode, prefix: str, lines: dict[str, int], duplicates: list, file: str) -> None:
    for key_node, value_node in node.value:
        name = f"{prefix}{key_node.value}"
        line = key_node.start_mark.line + 1
        if name in lines:
            duplicates.append(ConfigProblem(f"given twice (also on line {lines[name]}); keep one",
                                            (name,), (Origin(file, line),)))
        lines[name] = line
        if isinstance(value_node, yaml.MappingNode):
            _key_lines(value_node, f"{name}.", lines, duplicates, file)


def load_config(cfg_file: str | os.PathLike[str] | None = None, opts: Sequence[Any] = ()) -> CfgNode:
    """The defaults, then `cfg_file` (YAML, may name a ``_BASE_``), then `opts` (KEY VALUE pairs); checked and frozen.

    Raises ConfigError naming the file and line (or the command line), the key, what was expected
    and what was given, with the nearest valid keys for an unknown one; every problem found is
    listed. Keys of original features vov3d does not have (``IGNORED_ORIGINAL_SECTIONS``) are
    ignored with a warning.
    """
    from vov3d.config.validation import validate

    merge = _Merge()
    if cfg_file is not None:
        merge.merge_file(Path(cfg_file))
    merge.merge_overrides(opts)
    for split in (merge.cfg.TRAIN, merge.cfg.TEST):
        split.DATASET = split.DATASET.lower()  # the original capitalised the name: any case worked
    # A value that failed to merge left its default in place, so the types are right for the checks.
    problems = merge.problems + [_locate(p, merge.origins) for p in validate(merge.cfg)]
    if problems:
        raise ConfigError(problems)
    if merge.ignored:
        logger.warning("ignored keys of original features vov3d does not have: %s", ", ".join(merge.ignored))
    merge.cfg.freeze()
    return merge.cfg


def _locate(problem: ConfigProblem, origins: dict[str, Origin]) -> ConfigProblem:
    """`problem` with the origin of each of its keys that did not come from the defaults."""
    found = tuple(origins[k] for k in problem.keys if k in origins)
    return ConfigProblem(problem.message, problem.keys, found or problem.origins, problem.suggestions)


def dump_config(cfg: CfgNode, path: str | os.PathLike[str]) -> Path:
    """Write the full resolved config as YAML to `path`, atomically; returns the path.

    ``load_config(path)`` gives back an equal config.
    """
    path = Path(path)
    with atomic_write(path, "w") as f:
        f.write(cfg.dump())
    return path
