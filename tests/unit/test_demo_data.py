"""Tests for the seeded demo-data generator (orchestration.sources.demo_data)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.sources.demo_data import (
    CHANNEL_COLUMNS,
    CHANNEL_DIR,
    CHANNEL_ENCODING,
    CHANNEL_EXT,
    CHANNEL_KEY,
    CHANNELS,
    LANDING_CHANNELS,
    MESS_KINDS,
    SOURCE_SYSTEMS,
    DemoConfig,
    generate,
    main,
)

END = date(2026, 10, 31)
CONFIG = DemoConfig(customers=800, days=90, end_date=END, seed=42)
RESEND_DAYS = [d for d in range(CONFIG.days) if d % 45 == 22]
PURCHASE_TIME = {"pos_purchases": "purchased_at", "online_orders": "ordered_at"}
PLACEHOLDERS = {"test@test.com", "na@na.com", "unknown", "0000000"}
ANGRY = re.compile(r"angry|unacceptable|terrible|worst|useless|disappointed", re.I)
THANKFUL = re.compile(r"thank|great|happy|excellent", re.I)


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _dates(cfg: DemoConfig = CONFIG) -> list[str]:
    return [(cfg.start_date + timedelta(days=i)).isoformat() for i in range(cfg.days)]


def _sql(query: str) -> list[tuple]:
    with duckdb.connect() as con:
        return con.execute(query).fetchall()


def _parquet(path: Path) -> pd.DataFrame:
    with duckdb.connect() as con:
        return con.execute(f"SELECT * FROM read_parquet('{path}')").df()


def _read_file(path: Path, channel: str) -> pd.DataFrame:
    cols = CHANNEL_COLUMNS[channel]
    if CHANNEL_EXT[channel] == "jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return pd.DataFrame(rows, columns=cols).fillna("")
    if CHANNEL_EXT[channel] == "parquet":
        return _parquet(path).fillna("").astype(str)
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=CHANNEL_ENCODING[channel])


def _read_channel(out: Path, channel: str) -> pd.DataFrame:
    frames = []
    for path in sorted((out / CHANNEL_DIR[channel]).glob(f"{channel}_*")):
        df = _read_file(path, channel)
        frames.append(df.assign(file=path.name, file_date=re.search(r"\d{4}-\d{2}-\d{2}", path.name).group()))
    return pd.concat(frames, ignore_index=True)


def _once(df: pd.DataFrame, channel: str) -> pd.DataFrame:
    """Drop re-deliveries: rows identical to an earlier one (re-sent events, resend files)."""
    return df.drop_duplicates(CHANNEL_COLUMNS[channel])


def _record_ids(df: pd.DataFrame, channel: str) -> pd.Series:
    key = CHANNEL_KEY[channel]
    return df[key[0]] + ":" + df[key[1]] if isinstance(key, tuple) else df[key]


def _norm_phone(value: str) -> str:
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", value))
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    summary = generate(out, CONFIG)
    truth = out / "ground_truth"
    return {
        "out": out,
        "summary": summary,
        "data": {ch: _read_channel(out, ch) for ch in CHANNELS},
        "records": pd.read_csv(truth / "records.csv", dtype=str, keep_default_na=False),
        "persons": pd.read_csv(truth / "persons.csv", dtype=str, keep_default_na=False),
        "traps": pd.read_csv(truth / "traps.csv", dtype=str, keep_default_na=False),
        "mess": pd.read_csv(truth / "mess.csv", dtype=str, keep_default_na=False),
    }


def _with_person(demo, channel: str) -> pd.DataFrame:
    rec = demo["records"]
    rec = rec[rec.channel == channel][["record_id", "person_id"]]
    df = demo["data"][channel]
    return (df.assign(record_id=_record_ids(df, channel))
            .merge(rec, on="record_id", how="left", validate="many_to_one"))


# --------------------------------------------------------------------------- #


def test_same_seed_gives_byte_identical_tree_and_rerun_replaces_old_output(tmp_path):
    cfg = DemoConfig(customers=150, days=25, seed=7)
    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, cfg)
    generate(b, cfg)
    first = _tree_hashes(a)
    assert first == _tree_hashes(b)  # Parquet included
    assert len(first) == 11 * 25 + 1 + 4  # one resend file; records, persons, traps, mess
    assert sum(name.endswith(".parquet") for name in first) == 25

    # Stale files from an earlier run must not survive a re-run.
    (a / "landing" / "web_events" / "web_events_2000-01-01.jsonl").write_text("stale")
    (a / "source_systems" / "crm" / "crm_members_2000-01-01.csv").write_text("stale")
    (a / "ground_truth" / "old.csv").write_text("stale")
    generate(a, cfg)
    assert _tree_hashes(a) == first

    generate(b, DemoConfig(customers=150, days=25, seed=8))
    assert _tree_hashes(b) != first


def test_layout_one_file_per_channel_per_day_with_exact_headers(demo):
    out, dates = demo["out"], _dates()
    assert sorted(p.name for p in (out / "landing").iterdir()) == sorted(LANDING_CHANNELS)
    assert sorted(p.name for p in (out / "source_systems").iterdir()) == ["crm", "helpdesk"]
    assert set(SOURCE_SYSTEMS) == {"crm_members", "service_tickets", "service_messages"}
    for ch in CHANNELS:
        folder = out / CHANNEL_DIR[ch]
        expected = [f"{ch}_{d}.{CHANNEL_EXT[ch]}" for d in dates]
        if ch == "online_orders":
            expected += [f"{ch}_{dates[d]}_resend.csv" for d in RESEND_DAYS]
        assert sorted(p.name for p in folder.glob(f"{ch}_*")) == sorted(expected), ch
        if CHANNEL_EXT[ch] == "jsonl":
            line = next(p for p in sorted(folder.iterdir()) if p.stat().st_size).read_text().splitlines()[0]
            assert list(json.loads(line)) == CHANNEL_COLUMNS[ch]
        elif CHANNEL_EXT[ch] == "parquet":
            for path in folder.iterdir():
                schema = _sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')")
                assert [(c[0], c[1]) for c in schema] == [(c, "VARCHAR") for c in CHANNEL_COLUMNS[ch]]
        else:
            for path in folder.glob(f"{ch}_*"):
                header = path.read_text(encoding=CHANNEL_ENCODING[ch]).splitlines()[0]
                assert header == ",".join(CHANNEL_COLUMNS[ch]), path
    assert demo["summary"].files_written == 11 * CONFIG.days + len(RESEND_DAYS)
    assert demo["summary"].source_systems_dir == out / "source_systems"
    assert demo["summary"].rows_per_channel == {ch: len(demo["data"][ch]) for ch in CHANNELS}
    assert all(len(demo["data"][ch]) for ch in CHANNELS)


def test_empty_days_still_get_a_file(tmp_path):
    generate(tmp_path, DemoConfig(customers=3, days=6, seed=1))
    csv_files = [p for ch in CHANNELS if CHANNEL_EXT[ch] == "csv"
                 for p in (tmp_path / CHANNEL_DIR[ch]).glob(f"{ch}_*")]
    empty_csv = [p for p in csv_files if len(p.read_bytes().splitlines()) == 1]
    assert empty_csv, "expected header-only CSV files for days without rows"
    for ch in CHANNELS:
        assert len(list((tmp_path / CHANNEL_DIR[ch]).glob(f"{ch}_*"))) == 6
    for path in empty_csv:
        ch = path.name.rsplit("_", 1)[0]
        bom = b"\xef\xbb\xbf" if ch == "app_events" else b""
        assert path.read_bytes() == bom + (",".join(CHANNEL_COLUMNS[ch]) + "\n").encode()
    assert any(p.stat().st_size == 0 for p in (tmp_path / "landing" / "web_events").iterdir())
    parquet = sorted((tmp_path / "landing" / "mini_program_events").iterdir())
    counts = [_sql(f"SELECT count(*) FROM read_parquet('{p}')")[0][0] for p in parquet]
    assert 0 in counts
    empty = parquet[counts.index(0)]
    assert [c[0] for c in _sql(f"DESCRIBE SELECT * FROM read_parquet('{empty}')")] \
        == CHANNEL_COLUMNS["mini_program_events"]


def test_timestamps_formats_and_enumerations(demo):
    data = demo["data"]
    iso = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
    plain = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
    for ch, col in [("online_orders", "ordered_at"), ("email_events", "event_time"),
                    ("mini_program_events", "event_time"), ("social_interactions", "occurred_at")]:
        assert data[ch][col].str.match(iso).all(), ch
        assert (data[ch][col].str[:10] == data[ch].file_date).all(), ch
    for ch in ("web_events", "app_events"):  # late events land in a later file
        df = data[ch]
        assert df.event_time.str.match(iso).all(), ch
        lag = (pd.to_datetime(df.file_date) - pd.to_datetime(df.event_time.str[:10])).dt.days
        assert lag.between(0, 3).all() and (lag == 0).mean() > 0.97, ch
    for ch, cols in [("crm_members", ["registered_at", "updated_at"]), ("pos_purchases", ["purchased_at"]),
                     ("service_tickets", ["created_at", "updated_at"]),
                     ("service_messages", ["sent_at", "updated_at"])]:
        for col in cols:
            assert data[ch][col].str.match(plain).all(), (ch, col)
    assert (data["service_messages"].sent_at.str[:10] == data["service_messages"].file_date).all()
    assert (data["service_messages"].sent_at == data["service_messages"].updated_at).all()
    # Store times are Shanghai local within opening hours.
    hours = data["pos_purchases"].purchased_at.str[11:13].astype(int)
    assert hours.between(10, 21).all()
    assert set(data["web_events"].event_type) == {"page_view", "session_start", "login", "search",
                                                  "add_to_cart", "newsletter_signup"}
    assert set(data["app_events"].platform) == {"ios", "android"}
    assert set(data["online_orders"].currency) == {"CNY"}
    assert data["online_orders"].status.value_counts().idxmax() == "completed"
    assert set(data["crm_members"].consent_email) <= {"true", "false"}
    assert set(data["mini_program_events"].event_type) == {"page_view", "login", "coupon_claim", "share",
                                                           "add_to_cart", "phone_authorized"}
    assert set(data["social_interactions"].platform) == {"official_account", "community_group", "weibo"}
    assert set(data["social_interactions"].interaction_type) == {"follow", "unfollow", "mention",
                                                                 "group_join", "group_leave"}
    assert set(data["service_messages"].author) == {"customer", "agent"}
    web = data["web_events"]
    assert (web[web.event_type == "login"].member_id != "").all()
    assert (web[web.event_type != "newsletter_signup"].email == "").all()
    assert (web[web.event_type == "newsletter_signup"].email != "").all()
    assert (data["app_events"].query("event_type == 'login'").member_id != "").all()


def test_ground_truth_covers_every_record_and_keys_are_unique(demo):
    records, persons = demo["records"], demo["persons"]
    assert not records.duplicated(["channel", "record_id"]).any()
    assert set(records.person_id) <= set(persons.person_id)
    assert set(records.channel) == set(CHANNELS)
    for ch in CHANNELS:
        keys = _record_ids(_once(demo["data"][ch], ch), ch)
        keys = keys[keys != ""]  # null natural keys are listed in mess.csv, not records.csv
        truth = set(records.loc[records.channel == ch, "record_id"])
        assert set(keys) == truth, ch
        if ch not in ("crm_members", "service_tickets"):
            assert keys.is_unique, ch
    # Members in the CRM map back to the person that owns that member id.
    crm = _with_person(demo, "crm_members").merge(persons[["person_id", "member_id"]], on="person_id",
                                                  suffixes=("", "_truth"))
    assert (crm.member_id == crm.member_id_truth).all()
    # Messages belong to the person of their ticket.
    msgs = _with_person(demo, "service_messages")
    tickets = _with_person(demo, "service_tickets").drop_duplicates("ticket_id").set_index("ticket_id")
    assert (msgs.person_id.values == tickets.loc[msgs.ticket_id, "person_id"].values).all()


def test_versions_crm_updates_and_closed_tickets(demo):
    crm = demo["data"]["crm_members"]
    assert not crm.duplicated(["member_id", "file_date"]).any()
    assert (crm.member_id.value_counts() > 1).any()
    assert (crm.updated_at.str[:10] == crm.file_date).all()
    flips = crm.groupby("member_id").consent_email.nunique()
    assert (flips > 1).any(), "some consent should change between CRM versions"

    tickets = demo["data"]["service_tickets"]
    versions = tickets.groupby("ticket_id")
    assert versions.size().max() == 2
    closed = tickets[tickets.status == "closed"]
    opened = tickets[tickets.status == "open"].set_index("ticket_id")
    assert len(closed) > 0
    assert closed.ticket_id.isin(opened.index).all()
    assert (closed.updated_at.values > opened.loc[closed.ticket_id, "updated_at"].values).all()
    assert (closed.created_at.values == opened.loc[closed.ticket_id, "created_at"].values).all()
    assert (closed.updated_at.str[:10] == closed.file_date).all()
    messages = tickets.message
    assert messages.str.contains(",").any() and messages.str.contains('"').any()


def test_service_messages_follow_their_tickets(demo):
    msgs = demo["data"]["service_messages"]
    tickets = demo["data"]["service_tickets"]
    opened = tickets[tickets.status == "open"].set_index("ticket_id")
    assert msgs.ticket_id.isin(opened.index).all()
    per_ticket = msgs.groupby("ticket_id").size()
    assert per_ticket.between(1, 4).all() and per_ticket.nunique() == 4
    # Tickets opened early enough have their opening message: sent at creation by the customer,
    # with the ticket's text; later messages come after it and before the ticket closes.
    first = msgs.sort_values(["ticket_id", "sent_at", "message_id"]).groupby("ticket_id").head(1).set_index("ticket_id")
    assert set(first.index) == set(opened.index)
    assert (first.sent_at == opened.loc[first.index, "created_at"]).all()
    assert (first.author == "customer").all()
    clean = ~first.index.isin(demo["mess"].detail.str.extract(r"ticket_id=(\S+)")[0])
    assert (first.body[clean] == opened.loc[first.index[clean], "message"]).all()
    closed = tickets[tickets.status == "closed"].set_index("ticket_id")
    late = msgs[msgs.ticket_id.isin(closed.index)]
    assert (late.sent_at.values < closed.loc[late.ticket_id, "updated_at"].values).all()
    # Sentiment is in the words: angry and thankful customers, more anger before churn.
    cust = _with_person(demo, "service_messages").query("author == 'customer'")
    assert cust.body.str.contains(ANGRY).any() and cust.body.str.contains(THANKFUL).any()
    persons = demo["persons"].set_index("person_id")
    churn = pd.to_datetime(persons.loc[cust.person_id, "churn_date"].replace("", None).values)
    to_churn = (churn - pd.to_datetime(cust.sent_at.str[:10]).values).days
    pre = (to_churn > 0) & (to_churn <= 30)
    angry = cust.body.str.contains(ANGRY).values
    assert pre.sum() > 10 and angry[pre].mean() > angry[~pre].mean()


def test_identifier_variation_normalises_back_to_one_person(demo):
    phones = pd.concat([_with_person(demo, ch)[["phone", "person_id"]]
                        for ch in ("crm_members", "pos_purchases", "online_orders", "service_tickets",
                                   "email_events", "mini_program_events")])
    phones = phones[phones.phone != ""]
    assert phones.phone.str.contains("-").any()
    assert phones.phone.str.startswith("+86 ").any()
    assert phones.phone.str.match(r"^86\d{11}$").any()
    assert phones.phone.str.match(r"^\d{3} \d{4} \d{4}$").any()
    assert phones.phone.str.match(r"^1\d{10}$").mean() > 0.4

    emails = pd.concat([_with_person(demo, ch)[["email", "person_id"]]
                        for ch in ("crm_members", "web_events", "online_orders", "service_tickets", "email_events")])
    emails = emails[emails.email != ""]
    assert emails.email.str.contains(r"[A-Z]").any()
    assert (emails.email != emails.email.str.strip()).any()

    # Apart from the flagged traps, a normalised identifier belongs to exactly one person.
    trap_values = set(demo["traps"].value)
    phones = phones.assign(norm=phones.phone.map(_norm_phone))
    phones = phones[~phones.phone.isin(PLACEHOLDERS) & ~phones.norm.isin(trap_values)]
    assert phones.norm.str.match(r"^1\d{10}$").all()
    assert phones.groupby("norm").person_id.nunique().max() == 1
    emails = emails.assign(norm=emails.email.str.strip().str.lower())
    emails = emails[~emails.norm.isin(PLACEHOLDERS)]
    assert emails.groupby("norm").person_id.nunique().max() == 1
    assert emails.groupby("person_id").norm.nunique().max() == 1

    # open_id: one per person, the one in persons.csv; a weibo handle is one person's too.
    persons = demo["persons"]
    assert persons.open_id.str.match(r"^(oX[A-Za-z0-9_-]{26})?$").all()
    assert 0.4 < (persons.open_id != "").mean() < 0.6
    assert persons.open_id[persons.open_id != ""].is_unique
    ids = pd.concat([_with_person(demo, ch)[["open_id", "person_id"]]
                     for ch in ("mini_program_events", "social_interactions")])
    ids = ids[ids.open_id != ""].merge(persons[["person_id", "open_id"]], on="person_id", suffixes=("", "_truth"))
    assert len(ids) and (ids.open_id == ids.open_id_truth).all()
    handles = _with_person(demo, "social_interactions").query("social_handle != ''")
    assert handles.groupby("social_handle").person_id.nunique().max() == 1


def test_mini_program_and_social_columns(demo):
    mp = _with_person(demo, "mini_program_events")
    persons = demo["persons"].set_index("person_id")
    assert mp.open_id.str.match(r"^oX[A-Za-z0-9_-]{26}$").all()
    assert ((mp.phone != "") == (mp.event_type == "phone_authorized")).all()
    assert not mp[mp.event_type == "phone_authorized"].duplicated("person_id").any()
    bound = mp[mp.member_id != ""]
    assert len(bound) and (bound.member_id.values == persons.loc[bound.person_id, "member_id"].values).all()
    assert (mp.member_id == "").any()

    social = demo["data"]["social_interactions"]
    weibo = social.platform == "weibo"
    group = social.platform == "community_group"
    assert ((social.open_id != "") == ~weibo).all()
    assert ((social.social_handle != "") == weibo).all()
    assert ((social.group_id != "") == group).all()
    assert social.interaction_type[group].isin(["group_join", "group_leave", "mention"]).all()
    assert social.interaction_type[~group].isin(["follow", "unfollow", "mention"]).all()
    assert 0 < (social.member_id != "").mean() < 0.1


def test_social_unfollows_cluster_around_churn(demo):
    social = _with_person(demo, "social_interactions")
    persons = demo["persons"].set_index("person_id")
    drops = social[social.interaction_type.isin(["unfollow", "group_leave"])]
    churn = pd.to_datetime(persons.loc[drops.person_id, "churn_date"].replace("", None).values)
    offset = (pd.to_datetime(drops.occurred_at.str[:10]).values - churn).days
    near = pd.Series(offset).between(-30, 14).values
    churned = persons[persons.churn_date != ""]
    start = pd.Timestamp(CONFIG.start_date)
    # Person-days at risk near churn vs. everywhere else.
    churn_days = pd.to_datetime(churned.churn_date)
    near_days = ((churn_days + pd.Timedelta(days=14)).clip(upper=pd.Timestamp(END))
                 - (churn_days - pd.Timedelta(days=30)).clip(lower=start)).dt.days.sum()
    other_days = len(persons) * CONFIG.days - near_days
    assert near.sum() >= 10
    assert near.sum() / near_days > 10 * (~near).sum() / other_days


def test_traps_are_present_listed_and_rare(demo):
    traps, data = demo["traps"], demo["data"]
    assert list(traps.columns) == ["trap_type", "value", "person_ids", "count", "note"]
    assert set(traps.trap_type) == {"shared_device", "store_phone", "placeholder_email",
                                    "placeholder_phone", "phone_change"}
    counts = traps.assign(count=traps["count"].astype(int)).groupby("trap_type")["count"].sum()
    assert (counts > 0).all()

    # Shared tablets: listed people share a device, and the landing data shows it.
    devices = pd.concat([_once(_with_person(demo, ch), ch)[["device_id", "person_id"]]
                         for ch in ("web_events", "online_orders")])
    shared = traps[traps.trap_type == "shared_device"]
    for row in shared.itertuples():
        users = devices[devices.device_id == row.value]
        assert len(users) == int(row.count)
        assert set(users.person_id) <= set(row.person_ids.split(";"))
        assert len(row.person_ids.split(";")) in (2, 3)
    assert devices[devices.device_id.isin(shared.value)].groupby("device_id").person_id.nunique().max() >= 2
    non_trap = devices[~devices.device_id.isin(shared.value)]
    assert non_trap.groupby("device_id").person_id.nunique().max() == 1

    # Shop-assistant phones: same phone on several different people's POS purchases.
    pos = _with_person(demo, "pos_purchases")
    for row in traps[traps.trap_type == "store_phone"].itertuples():
        assert (pos.phone == row.value).sum() == int(row.count)
    store_rows = pos[pos.phone.isin(traps.loc[traps.trap_type == "store_phone", "value"])]
    assert store_rows.person_id.nunique() >= 2
    assert (store_rows.member_id == "").all()

    # Counts are per record: a closed ticket's second version is the same record.
    tickets = data["service_tickets"].drop_duplicates("ticket_id")
    contact = pd.concat([_once(data["online_orders"], "online_orders")[["email", "phone"]],
                         tickets[["email", "phone"]]])
    for row in traps[traps.trap_type.str.startswith("placeholder_")].itertuples():
        column = "email" if row.trap_type == "placeholder_email" else "phone"
        assert (contact[column] == row.value).sum() == int(row.count)

    # Phone change: the member's CRM rows switch from the old to the new number on the change day.
    crm = _with_person(demo, "crm_members")
    for row in traps[traps.trap_type == "phone_change"].itertuples():
        old, changed_on = re.match(r"old=(\d+) changed_on=(\S+)", row.note).groups()
        rows = crm[crm.person_id == row.person_ids].assign(norm=lambda df: df.phone.map(_norm_phone))
        assert set(rows[rows.file_date < changed_on].norm) == {old}
        assert set(rows[rows.file_date >= changed_on].norm) == {row.value}
        assert (rows.file_date == changed_on).any()
        later = pd.concat([_with_person(demo, ch) for ch in ("pos_purchases", "online_orders", "service_tickets")])
        later = later[(later.person_id == row.person_ids) & (later.phone != "") & ~later.phone.isin(PLACEHOLDERS)]
        assert (later[later.file_date >= changed_on].phone.map(_norm_phone) == row.value).all()

    total_records = sum(len(df) for df in data.values())
    assert counts.drop("phone_change").sum() / total_records < 0.02


def test_churned_people_stop_buying_unless_reactivated(demo):
    persons = demo["persons"]
    churned = persons[persons.churn_date != ""]
    assert 0 < len(churned) < len(persons)
    assert (persons.churned_by_end == ((persons.churn_date != "") & (persons.reactivated_date == ""))
            .map({True: "true", False: "false"})).all()
    assert (persons.reactivated_date == "").where(persons.churn_date == "", True).all()

    purchases = pd.concat([_with_person(demo, ch).assign(day=lambda df, c=col: df[c].str[:10])
                           for ch, col in PURCHASE_TIME.items()])
    purchases = purchases.merge(persons, on="person_id")
    after_churn = (purchases.churn_date != "") & (purchases.day >= purchases.churn_date)
    not_back = (purchases.reactivated_date == "") | (purchases.day < purchases.reactivated_date)
    assert not (after_churn & not_back).any()
    assert (purchases.day >= purchases.signup_date).all()
    # Not vacuous: churners did buy before they churned.
    assert ((purchases.churn_date != "") & (purchases.day < purchases.churn_date)).sum() > 10


def test_app_and_web_activity_fades_after_churn(demo):
    persons = demo["persons"].set_index("person_id")
    events = pd.concat([_with_person(demo, ch) for ch in ("web_events", "app_events")])
    events = events[events.person_id.notna()][["person_id", "file_date"]].join(persons, on="person_id")
    lost = persons[(persons.churn_date != "") & (persons.reactivated_date == "")]
    churn = pd.to_datetime(lost.churn_date)
    start = pd.Timestamp(END - timedelta(days=CONFIG.days - 1))
    active_from = pd.to_datetime(lost.signup_date).clip(lower=start)
    before_days = ((churn - active_from).dt.days.clip(upper=30)).sum()
    after_days = ((pd.Timestamp(END) - churn).dt.days - 13).clip(lower=0).sum()
    day = pd.to_datetime(events.file_date)
    churn_ev = pd.to_datetime(events.churn_date.where(events.person_id.isin(lost.index)))
    before = ((day < churn_ev) & (day >= churn_ev - pd.Timedelta(days=30))).sum()
    after = (day >= churn_ev + pd.Timedelta(days=14)).sum()
    assert before_days > 0 and after_days > 0 and before > 50
    assert after / after_days < 0.15 * before / before_days


def test_amount_strings_parse(demo):
    pos = demo["data"]["pos_purchases"].amount
    orders = _once(demo["data"]["online_orders"], "online_orders")
    assert pos.str.match(r"^(\d+|￥\d{1,3}(,\d{3})*)\.\d{2}$").all()
    assert orders.amount.str.match(r"^-?\d+\.\d{2}$").all()
    assert pos.str.startswith("￥").any() and pos.str.contains(",").any()
    parsed = pos.str.replace("￥", "").str.replace(",", "").astype(float)
    online = orders.amount.astype(float)
    assert (parsed > 0).all()
    # Negative amounts: legit refunds, plus 1-3 bad completed rows -- all listed in mess.csv.
    negative = orders[online < 0]
    mess = demo["mess"]
    listed = mess[mess.kind.isin(["negative_refund", "negative_amount_completed"])].detail.str.extract(
        r"order_id=(\S+)")[0]
    assert set(negative.order_id) == set(listed)
    assert (negative.status == "refunded").sum() >= 3
    assert 1 <= (negative.status == "completed").sum() <= 3
    assert len(negative) < 0.05 * len(orders)
    assert 150 < pd.concat([parsed, online[online > 0]]).median() < 800
    assert demo["data"]["pos_purchases"]["items"].astype(int).min() >= 1


def test_order_lines_sum_to_order_amounts(demo):
    orders = _once(demo["data"]["online_orders"], "online_orders").set_index("order_id")
    lines = demo["data"]["order_lines"]
    assert lines.unit_price.str.match(r"^\d+\.\d{2}$").all()
    assert set(lines.order_id) == set(orders.index)
    assert (lines.file_date.values == orders.loc[lines.order_id, "file_date"].values).all()
    cents = lines.quantity.astype(int) * (lines.unit_price.astype(float) * 100).round().astype(int)
    total = cents.groupby(lines.order_id).sum()
    expected = (orders.amount.astype(float) * 100).round().astype(int)
    assert (total == expected.loc[total.index]).all()
    numbering = lines.groupby("order_id").line_no.apply(lambda s: list(s.astype(int)))
    assert all(n == list(range(1, len(n) + 1)) for n in numbering)
    assert numbering.map(len).max() > 1 and numbering.map(len).max() <= 4
    assert (lines.sku.str.match(r"^SKU\d{6}$")).all()


def test_pos_files_are_gbk_with_chinese_store_names(demo):
    folder = demo["out"] / CHANNEL_DIR["pos_purchases"]
    with_rows = [p for p in sorted(folder.iterdir()) if len(p.read_bytes().splitlines()) > 1]
    assert with_rows
    for path in with_rows:
        raw = path.read_bytes()
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        text = raw.decode("gbk")
        assert re.match(r"^T\d+,S\d+,[\u4e00-\u9fff\d]+店,", text.splitlines()[1])
    names = set(demo["data"]["pos_purchases"].store_name)
    assert "上海南京路店" in names and all(n.endswith("店") for n in names)
    stores = demo["data"]["pos_purchases"].groupby("store_id").store_name.nunique()
    assert (stores == 1).all()


def test_app_event_files_start_with_a_bom(demo):
    for path in (demo["out"] / CHANNEL_DIR["app_events"]).iterdir():
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbfevent_id,") and raw.count(b"\xef\xbb\xbf") == 1
    for ch in set(CHANNELS) - {"app_events", "mini_program_events"}:
        assert not next((demo["out"] / CHANNEL_DIR[ch]).glob("*")).read_bytes().startswith(b"\xef\xbb\xbf")


def test_late_and_resent_events(demo):
    mess = demo["mess"]
    for ch in ("web_events", "app_events"):
        df = _once(demo["data"][ch], ch)
        late = df[df.event_time.str[:10] < df.file_date]
        assert 0.003 < len(late) / len(df) < 0.03, ch
        listed = mess[(mess.kind == "late_event") & (mess.channel == ch)]
        observed = late.groupby(["file", late.event_time.str[:10]]).size()
        parsed = listed.assign(file=listed.file.str.rsplit("/", n=1).str[-1],
                               count=listed.detail.str.extract(r"count=(\d+)")[0].astype(int),
                               event_date=listed.detail.str.extract(r"event_date=(\S+)")[0])
        assert parsed.groupby(["file", "event_date"])["count"].sum().sort_index().equals(observed.sort_index())

    # At-least-once: some web events are delivered again, unchanged, in the next day's file.
    web = demo["data"]["web_events"]
    web = web[web.event_id != ""]
    again = web[web.duplicated("event_id", keep=False)]
    assert len(again) > 0
    groups = again.groupby("event_id")
    assert (groups.size() == 2).all()
    assert (groups[CHANNEL_COLUMNS["web_events"]].nunique() == 1).all().all()
    days = groups.file_date.agg(["min", "max"])
    assert ((pd.to_datetime(days["max"]) - pd.to_datetime(days["min"])).dt.days == 1).all()
    resent = mess[mess.kind == "duplicate_event"].detail.str.extract(r"count=(\d+)")[0].astype(int).sum()
    assert resent == groups.ngroups


def test_resend_files_are_identical_copies(demo):
    folder = demo["out"] / CHANNEL_DIR["online_orders"]
    resends = sorted(folder.glob("*_resend.csv"))
    assert [p.name[14:24] for p in resends] == [_dates()[d] for d in RESEND_DAYS]
    for path in resends:
        original = folder / path.name.replace("_resend", "")
        assert path.read_bytes() == original.read_bytes()
    listed = demo["mess"].query("kind == 'duplicate_file'").file.str.rsplit("/", n=1).str[-1]
    assert sorted(listed) == [p.name for p in resends]


def test_mess_csv_lists_every_kind_and_points_at_real_rows(demo):
    mess, data, out = demo["mess"], demo["data"], demo["out"]
    assert list(mess.columns) == ["kind", "channel", "file", "detail"]
    assert set(mess.kind) == set(MESS_KINDS)
    for row in mess.itertuples():
        assert row.channel in CHANNELS
        assert "*" in row.file or (out / row.file).is_file(), row.file

    def ids(kind: str, field: str) -> pd.Series:
        return mess[mess.kind == kind].detail.str.extract(rf"{field}=(\S+)")[0]

    pos = data["pos_purchases"].set_index("transaction_id")
    fullwidth = pos.loc[ids("fullwidth_digits", "transaction_id"), "phone"]
    assert len(fullwidth) >= 2 and fullwidth.str.contains("[０-９]").all()
    assert not pos.drop(fullwidth.index).phone.str.contains("[０-９]").any()

    msgs = data["service_messages"].set_index("message_id")
    control = msgs.loc[ids("control_chars", "message_id"), "body"]
    assert len(control) >= 2 and control.str.contains(r"[\x00-\x08\x0b-\x1f]").all()
    sql = msgs.loc[ids("sql_like_text", "message_id"), "body"]
    assert len(sql) >= 2 and sql.str.contains(r"DROP TABLE|' OR '|<script>").all()
    assert not msgs.drop(control.index).body.str.contains(r"[\x00-\x08\x0b-\x1f]").any()

    web = data["web_events"]
    nulls = web[web.event_id == ""]
    assert 2 <= len(nulls) == len(ids("null_natural_key", "line"))
    for row in mess[mess.kind == "null_natural_key"].itertuples():
        line = int(re.search(r"line=(\d+)", row.detail).group(1))
        path = out / row.file
        assert json.loads(path.read_text().splitlines()[line - 1])["event_id"] is None

    total = sum(len(df) for df in data.values())
    record_level = mess[~mess.kind.isin(["late_event", "duplicate_event", "duplicate_file", "gbk_encoding",
                                         "utf8_bom", "local_time_no_zone", "currency_symbol_amount"])]
    assert len(record_level) < 0.01 * total


def test_cli_writes_tree_and_can_skip_record_truth(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["--out", str(out), "--customers", "40", "--days", "4", "--end-date", "2026-01-31",
                 "--seed", "3", "--no-record-truth"]) == 0
    assert not (out / "ground_truth" / "records.csv").exists()
    assert (out / "ground_truth" / "mess.csv").exists()
    persons = pd.read_csv(out / "ground_truth" / "persons.csv")
    assert len(persons) == 40 and "open_id" in persons.columns
    assert (out / "landing" / "pos_purchases" / "pos_purchases_2026-01-28.csv").exists()
    assert (out / "landing" / "web_events" / "web_events_2026-01-31.jsonl").exists()
    assert (out / "landing" / "mini_program_events" / "mini_program_events_2026-01-31.parquet").exists()
    assert (out / "source_systems" / "crm" / "crm_members_2026-01-31.csv").exists()
    assert (out / "source_systems" / "helpdesk" / "service_messages_2026-01-31.csv").exists()
    assert not (out / "landing" / "crm_members").exists()
    assert "day 4/4" in capsys.readouterr().err
