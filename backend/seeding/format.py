"""The seed-set format on disk: a folder of YAML files, one per table, each a list of rows.

YAML rather than JSON: hand-edited fixtures want comments, no quoting of plain words and
clean diffs; PyYAML's `safe_load` builds only plain data (no objects).
"""

import datetime as dt
import enum
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from backend.config import PROJECT_ROOT

SEED_ROOT = PROJECT_ROOT / "seed"
# libyaml's C parser and emitter when PyYAML has them (10x faster on big dumps); same safe
# constructor as yaml.safe_load: plain data only.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SUFFIXES = (".yaml", ".yml")


class SeedError(Exception):
    """A seed set cannot be loaded or written; the message names the file, row and field."""


def shown_path(path: Path) -> str:
    """`path` relative to the working directory when it is below it, else absolute."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def describe_value(value: Any) -> str:
    """A short, one-line rendering of a seed value for error messages."""
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {describe_value(v)}" for k, v in value.items())
        text = "{" + inner + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(describe_value(v) for v in value) + "]"
    elif isinstance(value, str):
        text = value if value and value.strip() == value and "\n" not in value else repr(value)
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def set_directory(name: str) -> Path:
    """The folder of seed set `name`: `seed/<name>`, or `name` itself when it is a path."""
    if os.sep in name or name.startswith("."):
        return Path(name).resolve()
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise SeedError(f"seed set name {name!r} must be letters, digits, - and _ (or a path)")
    return SEED_ROOT / name


def available_sets() -> list[str]:
    """Names of the seed sets under `seed/`."""
    if not SEED_ROOT.is_dir():
        return []
    return sorted(p.name for p in SEED_ROOT.iterdir() if p.is_dir() and any(_yaml_files(p)))


def _yaml_files(directory: Path) -> Iterator[Path]:
    return (p for p in sorted(directory.iterdir()) if p.is_file() and p.suffix in SUFFIXES)


@dataclass(frozen=True)
class SeedFile:
    """One table's file: its path and its rows (1-based numbers as people count them)."""

    path: Path
    table: str
    rows: list[Any]

    @property
    def shown(self) -> str:
        return shown_path(self.path)


def read_set(directory: Path) -> dict[str, SeedFile]:
    """Parse every table file of the seed set in `directory`, keyed by table (resource) name."""
    if not directory.is_dir():
        available = ", ".join(available_sets()) or "none"
        raise SeedError(f"no seed set at {shown_path(directory)} (available sets: {available})")
    files: dict[str, SeedFile] = {}
    for path in _yaml_files(directory):
        table = path.stem
        if table in files:
            raise SeedError(f"{shown_path(path)}: table {table!r} has two files in this set")
        files[table] = SeedFile(path, table, _read_rows(path))
    if not files:
        raise SeedError(f"{shown_path(directory)}: no .yaml files in this seed set")
    return files


def _read_rows(path: Path) -> list[Any]:
    try:
        with path.open(encoding="utf-8") as stream:
            data = yaml.load(stream, Loader=_Loader)  # a safe loader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise SeedError(f"{shown_path(path)}{where}: malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise SeedError(f"{shown_path(path)}: malformed YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SeedError(f"{shown_path(path)}: not UTF-8 text ({exc.reason})") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise SeedError(
            f"{shown_path(path)}: expected a list of rows (lines starting with '- '), "
            f"found a {type(data).__name__}"
        )
    return data


class _Flow(list[Any]):
    """A list written on one line: `tags: [desk, led]`."""


class _FlowMapping(dict[str, Any]):
    """A mapping written on one line: `order: {customer: a@example.com, reference: R-1}`."""


class _SeedDumper(_Dumper):  # type: ignore[valid-type,misc]
    """PyYAML's safe dumper, taught Decimals, enums, times, durations, UUIDs and one-line lists.

    Every value is written as plain YAML that `safe_load` reads back into something the create
    schemas turn into the same value: times, durations and UUIDs as strings, bytes as `!!binary`
    (PyYAML's own base64 tag, which `safe_load` reads as bytes).
    """


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    # Written as a plain number; loading reads a float that the schemas turn back into
    # the same Decimal (at most 15 significant digits survive a float, Numeric(10, 2) needs 10).
    return dumper.represent_scalar("tag:yaml.org,2002:float", format(value, "f"))


def _represent_enum(dumper: yaml.SafeDumper, value: enum.Enum) -> yaml.ScalarNode:
    return dumper.represent_str(str(value.value))


def _represent_flow(dumper: yaml.SafeDumper, value: _Flow) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


def _represent_flow_mapping(dumper: yaml.SafeDumper, value: _FlowMapping) -> yaml.MappingNode:
    node = dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=True)
    return node


def _represent_datetime(dumper: yaml.SafeDumper, value: dt.datetime) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", value.isoformat())


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Text of several lines as a `|` block, as a person writes it (the emitter falls back to
    # quotes where a block cannot hold the text exactly).
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_time(dumper: yaml.SafeDumper, value: dt.time) -> yaml.ScalarNode:
    # A string: the dumper quotes 12:30:00, which YAML 1.1 would read as the integer 45000.
    return dumper.represent_str(value.isoformat())


_DURATION: TypeAdapter[dt.timedelta] = TypeAdapter(dt.timedelta)


def _represent_timedelta(dumper: yaml.SafeDumper, value: dt.timedelta) -> yaml.ScalarNode:
    # ISO 8601 (`P1DT2H30M`), as pydantic writes and reads durations: exact to the microsecond.
    return dumper.represent_str(_DURATION.dump_python(value, mode="json"))


def _represent_uuid(dumper: yaml.SafeDumper, value: uuid.UUID) -> yaml.ScalarNode:
    return dumper.represent_str(str(value))


_SeedDumper.add_representer(str, _represent_str)
_SeedDumper.add_representer(Decimal, _represent_decimal)
_SeedDumper.add_representer(dt.time, _represent_time)
_SeedDumper.add_representer(dt.timedelta, _represent_timedelta)
_SeedDumper.add_multi_representer(uuid.UUID, _represent_uuid)  # asyncpg's UUID subclasses it
_SeedDumper.add_multi_representer(enum.Enum, _represent_enum)
_SeedDumper.add_representer(_Flow, _represent_flow)
_SeedDumper.add_representer(_FlowMapping, _represent_flow_mapping)
_SeedDumper.add_representer(dt.datetime, _represent_datetime)


def flow(values: list[Any]) -> list[Any]:
    """Mark a list to be written on one line."""
    return _Flow(values)


def flow_mapping(values: dict[str, Any]) -> dict[str, Any]:
    """Mark a mapping to be written on one line."""
    return _FlowMapping(values)


def write_rows(path: Path, rows: list[dict[str, Any]], header: str) -> None:
    """Write `rows` as a YAML list to `path`, after a comment `header`."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    body = yaml.dump(
        rows,
        Dumper=_SeedDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    path.write_text(comment + body, encoding="utf-8")
