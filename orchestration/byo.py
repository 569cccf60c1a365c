"""Bring your own orders: turn one orders export (CSV or Parquet: customer id, order time,
amount) into daily deliveries of the `online_orders` channel, so the whole pipeline — ingest
rules and quarantine, identity, RFM, lifecycle, churn, CLV, checks, publish — runs on it.

The user's customer id becomes the member id, which is what `customers.member_id` and
`customer_scores.member_id` carry back out for joining. An id that is an email address or a phone
number is personal data: it is delivered as the order's email or phone instead, matched as one, and
published only as a keyed hash and masked, like every contact value."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from data_quality.rules import (
    blocklist_reason,
    cleaned_text,
    earliest_timestamp,
    folded_digits,
    is_email,
    is_phone,
    lit,
    normalized_email,
    normalized_phone,
    other_country_phone,
    parsed_amount,
    parsed_timestamp,
    q,
)
from orchestration.sources.catalog import Channel
from orchestration.sources.files import CODECS, NotInEncoding, as_text, copy_as_utf8

# The channel an orders export is delivered as.
ORDERS_CHANNEL = "online_orders"
# Canonical field -> default column name in the user's file.
DEFAULT_COLUMNS = {"customer_id": "customer_id", "ordered_at": "order_time", "amount": "amount", "order_id": None}
REQUIRED = ("customer_id", "ordered_at", "amount")
# The longest history an import takes without --since: one order on a stand-in date (1900-01-01
# for "no date") would otherwise make a daily delivery and a partition of every day since.
MAX_HISTORY_YEARS = 10


class OrdersFileError(ValueError):
    """The orders file cannot be used as given (missing file or columns, no usable dates)."""


@dataclass(frozen=True)
class PreparedOrders:
    first_day: date
    last_day: date
    rows: int
    after_as_of: int
    unparseable_times: int
    files_written: int
    without_customer: int = 0
    unparseable_amounts: int = 0
    # Orders whose customer id the identity rules take for a placeholder (vars.identity.blocklist).
    placeholder_customer: int = 0
    placeholder_ids: tuple[str, ...] = ()
    before_since: int = 0
    # Orders whose customer id is an email address or a phone number (delivered as such).
    contact_customer: int = 0


def parse_column_map(spec: str | None) -> dict[str, str | None]:
    """'customer_id=cust,ordered_at=date' -> the default map with those names replaced."""
    columns = dict(DEFAULT_COLUMNS)
    for item in filter(None, (spec or "").split(",")):
        field, _, name = item.partition("=")
        field, name = field.strip(), name.strip()
        if field not in columns or not name:
            raise OrdersFileError(f"--columns: {item!r} is not FIELD=COLUMN with FIELD one of {', '.join(columns)}")
        columns[field] = name
    return columns


def _reader(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return f"read_parquet({lit(str(path))})"
    if suffix in (".csv", ".txt", ".gz"):
        return f"read_csv({lit(str(path))}, all_varchar = true, header = true)"
    raise OrdersFileError(f"{path.name}: expected a .csv or .parquet file")


def prepare(path: Path, as_of: date, landing_dir: Path, channel: Channel, columns: dict[str, str | None],
            since: date | None = None, encoding: str = "utf-8") -> PreparedOrders:
    """Write one online_orders file per day from the first order day (on or after `since`) to
    `as_of` (empty days get a header-only file, which the ingest reads as 'delivered, nothing
    happened'). A CSV in another `encoding` (gbk) is read through a UTF-8 copy."""
    if not path.exists():
        raise OrdersFileError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise OrdersFileError(f"{path.name} is empty")
    with tempfile.TemporaryDirectory(prefix="cdp-orders-") as scratch:
        readable = _utf8_copy(path, encoding, Path(scratch))
        try:
            return _prepare(readable, as_of, landing_dir, channel, columns, since)
        except duckdb.Error as error:
            message = str(error)
            if "unicode" in message.lower():
                raise OrdersFileError(f"{path.name} is not {encoding} text" + (
                    ": if it is a GBK export, add --encoding gbk" if CODECS[encoding] == "utf-8-sig" else "")) from None
            raise OrdersFileError(f"{path.name} cannot be read: {message.splitlines()[0]}") from None


def _utf8_copy(path: Path, encoding: str, scratch: Path) -> Path:
    """The file itself when DuckDB can read it, else a UTF-8 copy of the same name in `scratch`."""
    if encoding not in CODECS:
        raise OrdersFileError(f"--encoding {encoding!r} is not one of {', '.join(sorted(CODECS))}")
    if CODECS[encoding] == "utf-8-sig" or path.suffix.lower() == ".parquet":
        return path
    target = scratch / path.name
    with path.open("rb") as source:
        try:
            copy_as_utf8(source, CODECS[encoding], target)
        except NotInEncoding as error:
            raise OrdersFileError(f"{path.name} is not {encoding} text ({error})") from None
    return target


def _prepare(path: Path, as_of: date, landing_dir: Path, channel: Channel, columns: dict[str, str | None],
             since: date | None) -> PreparedOrders:
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TEMP VIEW source AS SELECT * FROM {_reader(path)}")
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE source)").fetchall())
        present = list(types)
        wanted = {f: c for f, c in columns.items() if c}
        missing = [f"{c} (for {f})" for f, c in wanted.items() if c not in present]
        if missing:
            raise OrdersFileError(f"{path.name} lacks column(s) {', '.join(missing)}; it has {', '.join(present)}. "
                                  "Map yours with --columns customer_id=...,ordered_at=...,amount=...")
        order_id = (as_text(q(columns["order_id"]), types[columns["order_id"]]) if columns.get("order_id")
                    else "'o' || CAST(row_number() OVER () AS VARCHAR)")
        time_text = f"CAST({q(columns['ordered_at'])} AS VARCHAR)"
        amount_text = f"CAST({q(columns['amount'])} AS VARCHAR)"
        # Readable times are written in a format ingest accepts; the rest stay as given. A time
        # before vars.earliest_timestamp is a stand-in for "no date", which ingest quarantines.
        con.execute(f"""CREATE TEMP TABLE orders AS SELECT
                {order_id} AS order_id,
                coalesce(strftime(_ordered_at, '%Y-%m-%d %H:%M:%S'), {time_text}) AS ordered_at,
                CASE WHEN _kind = 'member' THEN _customer END AS member_id,
                CASE WHEN _kind = 'email' THEN _customer END AS email,
                CASE WHEN _kind = 'phone' THEN _customer END AS phone,
                CAST(NULL AS VARCHAR) AS device_id,
                {amount_text} AS amount,
                {parsed_amount(amount_text)} AS _amount,  -- as ingest will read it (NULL: quarantined)
                CAST(NULL AS VARCHAR) AS currency,
                CASE WHEN _amount < 0 THEN 'refunded' ELSE 'completed' END AS status,
                CAST(_ordered_at AS DATE) AS _day,
                _customer,
                _kind
            FROM (SELECT *, CASE WHEN _parsed_at >= TIMESTAMP {lit(earliest_timestamp())} THEN _parsed_at END
                                AS _ordered_at,
                         {_id_kind('_customer')} AS _kind
                  FROM (SELECT *, {_time(time_text)} AS _parsed_at,
                               {as_text(q(columns['customer_id']), types[columns['customer_id']])} AS _customer
                        FROM source))""")
        if not con.execute("SELECT count(*) FROM orders").fetchone()[0]:
            raise OrdersFileError(f"{path.name} has no orders" + ("" if path.suffix.lower() == ".parquet" else ", only a header"))
        if columns.get("order_id"):
            _refuse_repeated_order_ids(con, path, columns["order_id"])
        before_since = 0
        if since:
            before_since = con.execute("SELECT count(*) FROM orders WHERE _day < ?", [since]).fetchone()[0]
            con.execute("DELETE FROM orders WHERE _day < ?", [since])
        unreadable_contacts = con.execute("SELECT count(*) FROM orders WHERE _kind = 'contact'").fetchone()[0]
        if unreadable_contacts:
            # Values not shown: they are personal data.
            raise OrdersFileError(
                f"{path.name}: {unreadable_contacts:,} order(s) have a customer id in column {columns['customer_id']!r} "
                "that looks like an email address or a phone number the pipeline cannot read as one (an address "
                "without a domain, a number outside +86, a number with a label or prefix, several numbers), or like "
                "a resident ID number: as a member id it would reach the serve file in clear. "
                "Map a customer number instead (--columns customer_id=...), or mend those ids")
        placeholder = (f"coalesce({blocklist_reason('member_id', cleaned_text('member_id'))}, "
                       f"{blocklist_reason('email', normalized_email('email'))}, "
                       f"{blocklist_reason('phone', normalized_phone('phone'))})")
        (rows, first_day, last_day, unparseable, without_customer, bad_amounts, examples, placeholders,
         placeholder_values, contact_ids) = con.execute(
            "SELECT count(*), min(_day), max(_day), count(*) FILTER (WHERE _day IS NULL), "
            "count(*) FILTER (WHERE nullif(trim(_customer), '') IS NULL), "
            "count(*) FILTER (WHERE _amount IS NULL), "
            "(list(DISTINCT amount ORDER BY amount) FILTER (WHERE _amount IS NULL))[1:3], "
            f"count(*) FILTER (WHERE {placeholder} IS NOT NULL), "
            # Only values the blocklist names are shown: one matched by a pattern may be personal.
            f"list(DISTINCT {cleaned_text('member_id')} ORDER BY 1) "
            f"FILTER (WHERE {blocklist_reason('member_id', cleaned_text('member_id'))} = 'blocklisted value'), "
            "count(*) FILTER (WHERE email IS NOT NULL OR phone IS NOT NULL) "
            "FROM orders").fetchone()
        if rows and bad_amounts == rows:
            raise OrdersFileError(f"{path.name}: no amount could be read in column {columns['amount']!r} (e.g. "
                                  f"{', '.join(repr(v) for v in examples if v is not None) or 'empty'}); expected "
                                  "numbers such as 1299.00, ¥1,299.00 or -20 for a refund")
        if first_day is None and before_since:
            raise OrdersFileError(f"{path.name}: no order on or after --since {since}")
        if first_day is None:
            raise OrdersFileError(f"{path.name}: no order time could be read in column {columns['ordered_at']!r} "
                                  f"(expected e.g. 2026-10-31, 2026-10-31 14:05:00 or 19970101, on or after "
                                  f"{earliest_timestamp()})")
        if first_day > as_of:
            raise OrdersFileError(f"--as-of {as_of} is before the first order ({first_day})")
        oldest = _years_before(as_of, MAX_HISTORY_YEARS)
        if since is None and first_day < oldest:
            older, days = con.execute("SELECT count(*), list(DISTINCT _day ORDER BY _day)[1:3] FROM orders "
                                      "WHERE _day < ?", [oldest]).fetchone()
            raise OrdersFileError(
                f"{path.name}: the first order is on {first_day}, more than {MAX_HISTORY_YEARS} years before --as-of "
                f"{as_of}; orders before {oldest}: {older:,} (on {', '.join(str(d) for d in days)}). A placeholder "
                "date? Give --since with the first day to include; orders before it are left out and counted")
        after = con.execute("SELECT count(*) FROM orders WHERE _day > ?", [as_of]).fetchone()[0]
        out = landing_dir / Path(channel.path).parent
        out.mkdir(parents=True, exist_ok=True)
        select = ", ".join(q(c) for c in channel.columns)
        files = 0
        day = first_day
        while day <= as_of:
            # Times no rule can read still land (on the first day) so ingest quarantines them with the reason.
            where = "_day = ?" + (" OR _day IS NULL" if day == first_day else "")
            target = out / Path(channel.path.format(date=day.isoformat()).replace("*", "")).name
            con.execute(f"COPY (SELECT {select} FROM orders WHERE {where} ORDER BY order_id) TO {lit(str(target))} "
                        "(HEADER, DELIMITER ',')", [day])
            files += 1
            day += timedelta(days=1)
    finally:
        con.close()
    return PreparedOrders(first_day, as_of, int(rows), int(after), int(unparseable), files, int(without_customer),
                          int(bad_amounts), int(placeholders), tuple(placeholder_values or ()), int(before_since),
                          int(contact_ids))


# A Chinese mobile number staging cannot read, once spaces and punctuation are gone: with a
# label ("tel:138…", "手机：138…"), with 0086 before it, or, where the value has separators
# (a customer number has none), with a trunk 0 or several in one value ("0138-…", "138…/139…").
_LABEL = "(tel|phone|mobile|mob|cell|手机号?|电话)"
_MOBILE = "((00)?86)?1[3-9][0-9]{9}"
_LABELLED_PHONE = f"{_LABEL}+{_MOBILE}{_LABEL}*|{_MOBILE}{_LABEL}+|00861[3-9][0-9]{{9}}"
_SEPARATED_PHONES = "0?1[3-9][0-9]{9}(0?1[3-9][0-9]{9})*"
_SEPARATOR = "[[:space:]().:：/,;-]"
# A resident ID number: area, a real birth date, sequence, and its ISO 7064 MOD 11-2 check digit.
_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def _resident_id(bare: str) -> str:
    weighted = "(" + " + ".join(f"{weight} * try_cast(substr({bare}, {position}, 1) AS INTEGER)"
                                for position, weight in enumerate(_ID_WEIGHTS, start=1)) + ")"
    return (f"(regexp_full_match({bare}, '[1-9][0-9]{{16}}[0-9x]') "
            f"AND try_strptime(substr({bare}, 7, 8), '%Y%m%d') BETWEEN DATE '1900-01-01' AND current_date "
            f"AND substr('10x98765432', {weighted} % 11 + 1, 1) = substr({bare}, 18, 1))")


def _id_kind(text: str) -> str:
    """What a customer id is: 'email' or 'phone' when staging reads it as one (it is then
    delivered as such, so it leaves only hashed and masked), 'contact' when it looks like one
    staging cannot read, or like a resident ID number (refused: as a member id it would be
    published in clear), else 'member'."""
    folded = folded_digits(f"trim({text})")
    phone_shaped = f"regexp_full_match({folded}, '[+]?[0-9][0-9 ().-]{{5,}}[0-9]')"
    bare = f"regexp_replace(lower({folded}), '[[:space:]().:：/,;+-]', '', 'g')"
    return (f"CASE WHEN {is_email(text)} THEN 'email' "
            f"WHEN {phone_shaped} AND {is_phone(text)} THEN 'phone' "
            f"WHEN contains({text}, '@') OR ({phone_shaped} AND {other_country_phone(text)}) "
            f"OR regexp_full_match({bare}, {lit(_LABELLED_PHONE)}) "
            f"OR (regexp_matches({folded}, {lit(_SEPARATOR)}) AND regexp_full_match({bare}, {lit(_SEPARATED_PHONES)})) "
            f"OR {_resident_id(bare)} "
            "THEN 'contact' ELSE 'member' END")


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _refuse_repeated_order_ids(con: duckdb.DuckDBPyConnection, path: Path, column: str) -> None:
    """One row per order: the channel keeps the newest row of an order id, so order lines or a
    refund sharing its order's id would silently replace each other."""
    repeated, rows, examples = con.execute("""SELECT count(*), sum(n), list(order_id ORDER BY order_id)[1:3]
        FROM (SELECT order_id, count(*) AS n FROM orders WHERE order_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1)""").fetchone()
    if repeated:
        raise OrdersFileError(
            f"{path.name}: {repeated:,} order id(s) in column {column!r} appear on more than one row ({rows:,} rows; "
            f"e.g. {', '.join(examples)}). One row per order is expected: sum order lines per order, give a "
            "refund its own id, or leave order_id out of --columns if every row is an order of its own")


def _time(text: str) -> str:
    """The order time from the formats ingest accepts, plus compact yyyymmdd (CDNOW-style)."""
    return f"coalesce({parsed_timestamp(text)}, try_strptime(trim({text}), '%Y%m%d'))"
