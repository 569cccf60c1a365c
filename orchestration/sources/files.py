"""File connector: a channel's daily files (CSV, JSON Lines, Parquet; UTF-8 with or without
BOM, or GBK) from a local folder or any fsspec URL, staged for landing.

DuckDB's native readers do the work; Python only transcodes GBK and lists files. Lines a
reader cannot parse become quarantine rows with their line number (DuckDB's reject tables for
CSV, json_valid for JSON Lines), so nothing is dropped silently."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb
import fsspec

from data_quality.rules import lit, q
from orchestration.sources.catalog import Channel
from orchestration.sources.errors import SourceError
from orchestration.sources.landing import LoadResult, create_incoming, insert_incoming, land

# Python codec per catalog encoding; utf-8-sig also reads files without a BOM.
CODECS = {"utf-8": "utf-8-sig", "utf8": "utf-8-sig", "gbk": "gbk", "gb18030": "gb18030"}
OTHER_DELIMITERS = (";", "\t", "|")
# Record separator: never unescaped inside JSON text, so each JSON line reads as one field.
LINE_DELIMITER = "\x1e"


class SourceFileError(SourceError):
    """A file-level problem: this channel's partition cannot be loaded."""


def _codec(channel: Channel) -> str:
    try:
        return CODECS[channel.encoding.lower()]
    except KeyError:
        raise SourceFileError(f"{channel.name}: encoding {channel.encoding!r} is not supported ({sorted(CODECS)})") from None


class NotInEncoding(ValueError):
    """A text stream that does not decode in its stated encoding, at byte `offset`."""

    def __init__(self, offset: int):
        super().__init__(f"near byte {offset}")
        self.offset = offset


def copy_as_utf8(source: BinaryIO, codec: str, target: Path) -> None:
    """Stream `source`, text in `codec`, into `target` as UTF-8 (DuckDB reads UTF-8 only)."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    offset = 0
    with open(target, "w", encoding="utf-8", newline="") as out:
        try:
            for block in iter(lambda: source.read(1 << 20), b""):
                out.write(decoder.decode(block))
                offset += len(block)
            out.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:
            raise NotInEncoding(offset + exc.start) from None


def _not_utf8(where: str) -> str:
    return (f"is not UTF-8 text {where}".rstrip() + ": saved in another encoding (GBK?), it needs that "
            "`encoding:` in the channel's catalog entry")


def _digest(fs, path: str) -> str:
    sha = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


@dataclass(frozen=True)
class Delivery:
    """One file to land: where it is, the partition day it belongs to, how raw names it."""

    path: str
    day: str
    location: str


class _FileReader:
    """Stages a channel's files into _incoming / _incoming_rejects: one statement per group of
    files that share a layout (one INSERT per file costs more than reading the file)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, channel: Channel, fs, workdir: Path):
        self.con, self.channel, self.fs, self.workdir = con, channel, fs, workdir
        self.notes: list[str] = []
        self.local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        if not self.local:
            con.register_filesystem(fs)

    def duckdb_path(self, path: str) -> str:
        if self.local:
            return path
        protocol = self.fs.protocol[0] if isinstance(self.fs.protocol, tuple) else self.fs.protocol
        return f"{protocol}://{path}"

    def utf8_copy(self, path: str, n: int) -> str:
        """DuckDB reads UTF-8 only: transcode other encodings into a local UTF-8 copy, streaming."""
        codec = _codec(self.channel)
        if codec == "utf-8-sig":
            return self.duckdb_path(path)
        target = self.workdir / f"{n}-{Path(path).name}.utf8"
        with self.fs.open(path, "rb") as source:
            try:
                copy_as_utf8(source, codec, target)
            except NotInEncoding as exc:
                raise SourceFileError(f"{self.channel.name}: {path} is not valid {self.channel.encoding} {exc}") from None
        return str(target)

    def _check_columns(self, path: str, present: list[str]) -> None:
        """Refuse a file without a column the channel needs (required, or its key); one it can do
        without reads as empty there, and the load's notes name it."""
        needed = {self.channel.source_name(c) for c in (*self.channel.required, self.channel.natural_key)}
        absent = [c for c in self._source_names() if c not in present]
        by_case = {name.strip().lower(): name for name in present}
        # A name in other letter case is a mistake to name, not a column to read as empty; with one
        # column only, the file is not split by the delimiter at all.
        missing = [c for c in absent if c in needed or c.lower() in by_case] if len(present) > 1 else absent
        if missing:
            hint = ""
            if len(present) == 1 and any(d in present[0] for d in OTHER_DELIMITERS):
                hint = f" (the header looks delimited by something other than {self.channel.delimiter!r})"
            near = [f"{by_case[c.lower()]!r}" for c in missing if c.lower() in by_case]
            if near:
                hint = (f" (the header has {', '.join(near)}: names match exactly, so rename them or map them "
                        "with source_names in the catalog)")
            raise SourceFileError(f"{self.channel.name}: {path} lacks columns {missing}{hint}")
        if absent:
            self.notes.append(f"{Path(path).name} has no column {', '.join(absent)}: read as empty")

    def _source_names(self) -> list[str]:
        return [self.channel.source_name(c) for c in self.channel.columns]

    def _select_list(self, expr_for, present=None) -> str:
        """Each catalog column by `expr_for`, or empty where the file has no such column."""
        return ", ".join(expr_for(n) if present is None or n in present else f"CAST(NULL AS VARCHAR) AS {q(n)}"
                         for n in self._source_names())

    def stage(self, deliveries: list[Delivery]) -> None:
        deliveries = [d for d in deliveries if self.fs.size(d.path) > 0]  # an empty delivery is zero rows
        groups: dict[tuple, list[tuple[Delivery, str]]] = {}
        for n, delivery in enumerate(deliveries):
            readable, layout = self._prepare(delivery, n)
            groups.setdefault(layout, []).append((delivery, readable))
        try:
            for layout, group in groups.items():
                self._register(group)
                try:
                    getattr(self, f"_stage_{self.channel.format}")(list(layout), [readable for _, readable in group])
                except duckdb.Error as exc:
                    # Line-level problems become reject rows; what is left here is file-level.
                    shown = group[0][0].path if len(group) == 1 else f"the {len(group)} files {group[0][0].path} .. {group[-1][0].path}"
                    detail = str(exc)
                    if "Invalid unicode" in detail:  # DuckDB names the line, in a scan that read text as CSV
                        line = re.search(r"Line: (\d+)", detail)
                        raise SourceFileError(f"{self.channel.name}: {shown} "
                                              f"{_not_utf8(f'at line {line.group(1)}' if line else '')}") from None
                    raise SourceFileError(f"{self.channel.name}: cannot read {shown}: {detail.splitlines()[0]}") from None
        finally:
            self.con.execute("DROP TABLE IF EXISTS _files")

    def _prepare(self, delivery: Delivery, n: int) -> tuple[str, tuple]:
        """The path DuckDB reads and the file's layout (its header for CSV; files of one layout share a scan)."""
        if self.channel.format == "parquet":
            readable = self.duckdb_path(delivery.path)
            try:
                described = self.con.execute(f"DESCRIBE SELECT * FROM read_parquet({lit(readable)})").fetchall()
            except duckdb.Error:
                raise SourceFileError(f"{self.channel.name}: {delivery.path} is not a readable Parquet file") from None
            self._check_columns(delivery.path, [row[0] for row in described])
            # Files share a scan only with the same columns in the same types: a scan would read a
            # float id as text where another file holds text, and keep its ".0".
            return readable, tuple((name, kind) for name, kind, *_ in described if name in self._source_names())
        readable = self.utf8_copy(delivery.path, n)
        if self.channel.format == "jsonl":
            return readable, ()
        header = self._distinct_names(delivery.path, self._header(delivery.path, readable))
        self._check_columns(delivery.path, header)
        return readable, tuple(header)

    def _distinct_names(self, path: str, header: list[str]) -> list[str]:
        """The header with a name for every column: an unnamed one (a trailing comma) or a repeated
        one the catalog does not ask for is named apart and ignored; a repeated field the
        catalog asks for is refused, since either copy could be meant."""
        wanted = set(self._source_names())
        repeated = sorted({name for name in header if name in wanted and header.count(name) > 1})
        if repeated:
            raise SourceFileError(f"{self.channel.name}: {path} has more than one column named {', '.join(repeated)}; "
                                  "keep one")
        named, seen = [], set(header)
        for i, name in enumerate(header, start=1):
            if not name.strip() or name in named:
                name = f"_column_{i}"
                while name in seen:
                    name += "_"
                seen.add(name)
            named.append(name)
        return named

    def _register(self, group: list[tuple[Delivery, str]]) -> None:
        """_files: each file DuckDB reads (by the name its scan reports) with its day and location."""
        rows = ", ".join(f"({lit(readable)}, DATE {lit(d.day)}, {lit(d.location)})" for d, readable in group)
        self.con.execute("CREATE OR REPLACE TEMP TABLE _files (file VARCHAR, day DATE, location VARCHAR)")
        self.con.execute(f"INSERT INTO _files VALUES {rows}")

    @staticmethod
    def _sources(readables: list[str]) -> str:
        return "[" + ", ".join(lit(r) for r in readables) + "]"

    def _header(self, path: str, readable: str) -> list[str]:
        # The first line only: a later line that is not UTF-8 is DuckDB's to quarantine.
        local_copy = self.local or readable != self.duckdb_path(path)
        with open(readable, "rb") if local_copy else self.fs.open(path, "rb") as handle:
            first = handle.readline()
        try:
            text = first.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SourceFileError(f"{self.channel.name}: {path} {_not_utf8(f'near byte {exc.start} of its header')}") from None
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=self.channel.delimiter), [])

    # A scan's table keeps its files' order and each file's line order (DuckDB preserves
    # insertion order, and scans in parallel), so a row's number within its file is its rowid
    # minus the rowid of the file's first row.
    @staticmethod
    def _numbered(table: str, columns: str) -> str:
        """`columns` of a scanned table with each row's day, location and number within its file."""
        return (
            f"SELECT {columns}, f.day, f.location, t.rowid - first.rowid + 1 AS n FROM {table} AS t "
            "JOIN _files AS f ON f.file = t._file "
            f"JOIN (SELECT _file, min(rowid) AS rowid FROM {table} GROUP BY _file) AS first ON first._file = t._file"
        )

    def _stage_csv(self, header: list[str], readables: list[str]) -> None:
        columns = "{" + ", ".join(f"{lit(c)}: 'VARCHAR'" for c in header) + "}"
        # One scan per file, in one statement: in a scan of five or more files DuckDB (2.0.1)
        # loses the reject of an unclosed quote, and with it the rows the quote swallowed.
        scans = " UNION ALL ".join(
            f"SELECT {self._select_list(q, header)}, _file FROM read_csv([{lit(readable)}], columns={columns}, header=true, "
            f"auto_detect=false, delim={lit(self.channel.delimiter)}, quote='\"', escape='\"', filename='_file', "
            "store_rejects=true, rejects_table='_rejects', rejects_scan='_rejects_scan')"
            for readable in readables
        )
        self.con.execute("DROP TABLE IF EXISTS _rejects")
        self.con.execute("DROP TABLE IF EXISTS _rejects_scan")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE _rows AS {scans}")
        insert_incoming(self.con, self.channel, self._numbered('_rows', self._select_list(lambda name: 't.' + q(name))))
        self.con.execute("DROP TABLE _rows")
        self._insert_rejects("unreadable CSV line")

    def _insert_rejects(self, reason: str) -> None:
        """The lines the last scan stored as rejects, with `reason` and what DuckDB found wrong."""
        self.con.execute(
            "INSERT INTO _incoming_rejects SELECT any_value(r.csv_line), "
            f"{lit(reason + ': ')} || string_agg(DISTINCT lower(CAST(r.error_type AS VARCHAR)), ', '), "
            "any_value(f.day), any_value(f.location), r.line "
            "FROM _rejects AS r JOIN _rejects_scan AS s USING (scan_id, file_id) JOIN _files AS f ON f.file = s.file_path "
            "GROUP BY r.scan_id, r.file_id, r.line"
        )

    def _stage_jsonl(self, _: list[str], readables: list[str]) -> None:
        # One text column per line (a control character no JSON text contains unescaped as the
        # delimiter), so a broken line is one bad row with its line number, not a failed file.
        # Judged once, into its own column: extraction must never meet a broken line.
        # A line too long to read is stored as a reject, not a failed scan of every file.
        self.con.execute("DROP TABLE IF EXISTS _rejects")
        self.con.execute("DROP TABLE IF EXISTS _rejects_scan")
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE _lines AS SELECT line, _file, "
            "CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END AS is_object "
            f"FROM read_csv({self._sources(readables)}, columns={{'line': 'VARCHAR'}}, header=false, "
            f"auto_detect=false, delim={lit(LINE_DELIMITER)}, quote='', escape='', strict_mode=false, filename='_file', "
            "store_rejects=true, rejects_table='_rejects', rejects_scan='_rejects_scan')"
        )
        # A line that is not UTF-8 means a file in another encoding: refused whole, naming the fix.
        not_utf8 = self.con.execute(
            "SELECT f.location, min(r.line) FROM _rejects AS r JOIN _rejects_scan AS s USING (scan_id, file_id) "
            "JOIN _files AS f ON f.file = s.file_path WHERE r.error_type = 'INVALID ENCODING' "
            "GROUP BY f.location ORDER BY f.location LIMIT 1").fetchone()
        if not_utf8:
            raise SourceFileError(f"{self.channel.name}: {not_utf8[0]} {_not_utf8(f'at line {not_utf8[1]}')}")
        self._insert_rejects("unreadable line")
        numbered = self._numbered("_lines", "t.line, t.is_object")
        # One parse per line for all fields: a path list gives their values as one list.
        names = [self.channel.source_name(c) for c in self.channel.columns]
        paths = "[" + ", ".join(lit("$." + json_path_key(name)) for name in names) + "]"
        values = ", ".join(f"v[{i}]" for i in range(1, len(names) + 1))
        insert_incoming(
            self.con, self.channel,
            f"SELECT {values}, day, location, n FROM "
            f"(SELECT json_extract_string(line, {paths}) AS v, day, location, n FROM ({numbered}) WHERE is_object)",
        )
        self.con.execute(
            f"INSERT INTO _incoming_rejects SELECT line, 'malformed JSON line', day, location, n FROM ({numbered}) "
            "WHERE nullif(trim(line), '') IS NOT NULL AND NOT is_object"
        )
        self.con.execute("DROP TABLE _lines")

    def _stage_parquet(self, layout: list[tuple[str, str]], readables: list[str]) -> None:
        # Whatever type a column arrived in, raw keeps its text; the row rules judge the value.
        source = (f"read_parquet({self._sources(readables)}, union_by_name=true, filename='_file', "
                  "file_row_number=true)")
        types = dict(layout)
        present = list(types)
        insert_incoming(
            self.con, self.channel,
            f"SELECT {self._select_list(lambda n: f'{as_text(q(n), types[n])} AS {q(n)}', present)}, f.day, f.location, "
            f"file_row_number + 1 FROM {source} JOIN _files AS f ON f.file = _file",
        )


def as_text(column: str, column_type: str) -> str:
    """A typed column as text. A whole number stored as a float or decimal (pandas writes an
    integer column with gaps, such as ids or phone numbers, as float64) is written without its
    ".0", as the number it stands for: `13800138000.0` would be no phone."""
    if column_type in ("FLOAT", "DOUBLE") or column_type.startswith("DECIMAL"):
        return (f"CASE WHEN {column} = trunc({column}) AND abs({column}) < 1e18 "
                f"THEN CAST(CAST({column} AS BIGINT) AS VARCHAR) ELSE CAST({column} AS VARCHAR) END")
    return f"CAST({column} AS VARCHAR)"


def json_path_key(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


def load_partition(
    con: duckdb.DuckDBPyConnection, channel: Channel, landing: str | Path, days: list[str], load_id: str
) -> LoadResult:
    """Land the files of `days` for one channel; re-loading the same days replaces them."""
    started = time.monotonic()
    fs, root = fsspec.core.url_to_fs(str(landing))
    files_by_day = {day: sorted(fs.glob(f"{root.rstrip('/')}/{channel.path.format(date=day)}")) for day in days}
    missing = [channel.path.format(date=day) for day, files in files_by_day.items() if not files]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise SourceFileError(f"{channel.name}: no file delivered in {landing} for {len(missing)} day(s): {shown}")

    result = LoadResult(
        channel=channel.name, load_id=load_id, partition_start=min(days), partition_end=max(days),
        source_location=channel.location(str(landing)),
    )
    create_incoming(con, channel)
    deliveries = []
    for day, files in files_by_day.items():
        seen: dict[str, str] = {}
        for path in files:
            name = Path(path).name
            if len(files) > 1:  # a re-sent copy of a file already read today is skipped, not doubled
                digest = _digest(fs, path)
                if digest in seen:
                    result.notes.append(f"{name} is a duplicate delivery of {seen[digest]}: skipped")
                    continue
                seen[digest] = name
            deliveries.append(Delivery(path, day, f"{Path(path).parent.name}/{name}"))
    with tempfile.TemporaryDirectory(prefix="cdp-ingest-") as workdir:
        reader = _FileReader(con, channel, fs, Path(workdir))
        reader.stage(deliveries)
    result.notes.extend(reader.notes)
    result.units = len(deliveries)
    return land(con, channel, result, started)
