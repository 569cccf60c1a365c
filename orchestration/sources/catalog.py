"""The source catalog (catalog.yml): one declaration per channel, validated at load time."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yml")
CONNECTORS = ("files", "sql", "rest")
FILE_FORMATS = ("csv", "jsonl", "parquet")


class CatalogError(ValueError):
    """The catalog itself is inconsistent; raised at load time, before anything runs."""


@dataclass(frozen=True)
class Rule:
    """A channel-specific row rule: rows where `when` (DuckDB SQL over the raw text fields) is
    true are quarantined with `reason`."""

    reason: str
    when: str


@dataclass(frozen=True)
class Channel:
    name: str
    description: str
    connector: str
    columns: tuple[str, ...]
    natural_key: str
    event_time: str | None
    required: tuple[str, ...]
    # files
    format: str | None = None
    path: str | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    # canonical field -> name in the source (only where they differ)
    source_names: dict[str, str] = field(default_factory=dict)
    timestamps: tuple[str, ...] = ()
    amounts: tuple[str, ...] = ()
    # whole numbers (counts, line numbers)
    integers: tuple[str, ...] = ()
    # contact fields: an invalid value keeps the row but is recorded in audit.field_issues
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    # yes/no fields (consents): an unreadable value keeps the row, is read as unknown and is
    # recorded in audit.field_issues
    flags: tuple[str, ...] = ()
    accepted_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    # a child channel (order lines, ticket messages): (parent channel, column holding its key)
    belongs_to: tuple[str, str] | None = None
    # sql / rest: connection settings as declared (env-var names resolved by the connectors)
    options: dict = field(default_factory=dict)
    # A channel the business does not have: nothing is loaded or awaited, its tables stay empty.
    enabled: bool = True

    def source_name(self, column: str) -> str:
        return self.source_names.get(column, column)

    def location(self, landing: str) -> str:
        """Where a file channel's files live: a local folder or any fsspec URL."""
        return landing.rstrip("/") + "/" + (self.path or "")

    def option(self, key: str, default: str | None = None) -> str | None:
        """A connector option; `<key>_env` names an environment variable that overrides it."""
        env_name = self.options.get(f"{key}_env")
        if env_name and os.environ.get(env_name):
            return os.environ[env_name]
        return self.options.get(key, default)


def _channel(name: str, spec: dict) -> Channel:
    try:
        columns = tuple(spec["columns"])
        channel = Channel(
            name=name,
            description=spec.get("description", ""),
            connector=spec.get("connector", "files"),
            columns=columns,
            natural_key=spec["natural_key"],
            event_time=spec.get("event_time"),
            required=tuple(spec.get("required", [])),
            format=spec.get("format"),
            path=spec.get("path"),
            encoding=spec.get("encoding", "utf-8"),
            delimiter=spec.get("delimiter", ","),
            source_names=dict(spec.get("source_names", {})),
            timestamps=tuple(spec.get("timestamps", [spec["event_time"]] if spec.get("event_time") else [])),
            amounts=tuple(spec.get("amounts", [])),
            integers=tuple(spec.get("integers", [])),
            emails=tuple(spec.get("emails", [])),
            phones=tuple(spec.get("phones", [])),
            flags=tuple(spec.get("flags", [])),
            accepted_values={k: tuple(v) for k, v in (spec.get("accepted_values") or {}).items()},
            rules=tuple(Rule(reason=r["reason"], when=r["when"]) for r in spec.get("rules", [])),
            belongs_to=(spec["belongs_to"]["channel"], spec["belongs_to"]["key"]) if spec.get("belongs_to") else None,
            options={k: v for k, v in spec.items() if k in ("url", "url_env", "table", "cursor", "base_url",
                                                           "base_url_env", "endpoint", "token_env", "pagination",
                                                           "page_size")},
            enabled=spec.get("enabled", True),
        )
    except KeyError as missing:
        raise CatalogError(f"catalog channel {name!r} lacks {missing}") from None
    if not isinstance(channel.enabled, bool):
        raise CatalogError(f"catalog channel {name!r}: enabled must be true or false, not {channel.enabled!r}")
    if channel.connector not in CONNECTORS:
        raise CatalogError(f"catalog channel {name!r}: connector {channel.connector!r} is not one of {CONNECTORS}")
    if channel.connector == "files":
        if channel.format not in FILE_FORMATS:
            raise CatalogError(f"catalog channel {name!r}: format {channel.format!r} is not one of {FILE_FORMATS}")
        if not channel.path or "{date}" not in channel.path:
            raise CatalogError(f"catalog channel {name!r}: a file channel needs a path containing {{date}}")
    named = {channel.natural_key, *([channel.event_time] if channel.event_time else []), *channel.required, *channel.timestamps, *channel.amounts, *channel.integers,
             *channel.emails, *channel.phones, *channel.flags,
             *channel.accepted_values, *channel.source_names,
             *([channel.belongs_to[1]] if channel.belongs_to else [])}
    unknown = named - set(columns)
    if unknown:
        raise CatalogError(f"catalog channel {name!r} names fields that are not in its columns: {sorted(unknown)}")
    return channel


def load_catalog(path: Path = CATALOG_PATH) -> dict[str, Channel]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    catalog = {name: _channel(name, spec) for name, spec in (raw.get("channels") or {}).items()}
    for channel in catalog.values():
        parent = catalog.get(channel.belongs_to[0]) if channel.belongs_to else None
        # A child's records are joined, and erased, through its parent's.
        if channel.enabled and parent is not None and not parent.enabled:
            raise CatalogError(f"catalog channel {channel.name!r} belongs to {parent.name!r}, which is disabled: "
                               f"disable {channel.name!r} too, or enable {parent.name!r}")
    return catalog
