"""The source catalog (catalog.yml): one declaration per channel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yml")
SUPPORTED_FORMATS = ("csv", "jsonl")


@dataclass(frozen=True)
class Channel:
    name: str
    description: str
    format: str
    path: str
    encoding: str
    columns: tuple[str, ...]
    natural_key: str
    event_time: str
    required: tuple[str, ...]

    def file_for(self, landing_dir: Path, day: str) -> Path:
        return landing_dir / self.path.format(date=day)


class CatalogError(ValueError):
    """The catalog itself is inconsistent; raised at load time, before anything runs."""


def load_catalog(path: Path = CATALOG_PATH) -> dict[str, Channel]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    channels: dict[str, Channel] = {}
    for name, spec in (raw.get("channels") or {}).items():
        try:
            channel = Channel(
                name=name,
                description=spec.get("description", ""),
                format=spec["format"],
                path=spec["path"],
                encoding=spec.get("encoding", "utf-8"),
                columns=tuple(spec["columns"]),
                natural_key=spec["natural_key"],
                event_time=spec["event_time"],
                required=tuple(spec.get("required", [])),
            )
        except KeyError as missing:
            raise CatalogError(f"catalog channel {name!r} lacks {missing}") from None
        if channel.format not in SUPPORTED_FORMATS:
            raise CatalogError(f"catalog channel {name!r}: format {channel.format!r} is not one of {SUPPORTED_FORMATS}")
        unknown = {channel.natural_key, channel.event_time, *channel.required} - set(channel.columns)
        if unknown:
            raise CatalogError(f"catalog channel {name!r} names fields that are not in its columns: {sorted(unknown)}")
        channels[name] = channel
    return channels
