"""Tests for the seeded demo-data generator (orchestration.sources.demo_data)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from orchestration.sources.demo_data import (
    CHANNEL_COLUMNS,
    CHANNEL_EXT,
    CHANNEL_KEY,
    CHANNELS,
    DemoConfig,
    generate,
    main,
)

END = date(2026, 10, 31)
CONFIG = DemoConfig(customers=800, days=90, end_date=END, seed=42)
PURCHASE_TIME = {"pos_purchases": "purchased_at", "online_orders": "ordered_at"}
PLACEHOLDERS = {"test@test.com", "na@na.com", "unknown", "0000000"}


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _read_channel(landing: Path, channel: str) -> pd.DataFrame:
    frames = []
    for path in sorted((landing / channel).iterdir()):
        if channel == "web_events":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            df = pd.DataFrame(rows, columns=CHANNEL_COLUMNS[channel]).fillna("")
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        frames.append(df.assign(file_date=path.stem[-10:]))
    return pd.concat(frames, ignore_index=True)


def _norm_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    summary = generate(out, CONFIG)
    landing = out / "landing"
    truth = out / "ground_truth"
    return {
        "out": out,
        "summary": summary,
        "data": {ch: _read_channel(landing, ch) for ch in CHANNELS},
        "records": pd.read_csv(truth / "records.csv", dtype=str, keep_default_na=False),
        "persons": pd.read_csv(truth / "persons.csv", dtype=str, keep_default_na=False),
        "traps": pd.read_csv(truth / "traps.csv", dtype=str, keep_default_na=False),
    }


def _with_person(demo, channel: str) -> pd.DataFrame:
    rec = demo["records"]
    rec = rec[rec.channel == channel][["record_id", "person_id"]]
    df = demo["data"][channel]
    return df.merge(rec, left_on=CHANNEL_KEY[channel], right_on="record_id", how="left", validate="many_to_one")


# --------------------------------------------------------------------------- #


def test_same_seed_gives_byte_identical_tree_and_rerun_replaces_old_output(tmp_path):
    cfg = DemoConfig(customers=150, days=20, seed=7)
    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, cfg)
    generate(b, cfg)
    first = _tree_hashes(a)
    assert first == _tree_hashes(b)
    assert len(first) == 7 * 20 + 3

    # Stale files from an earlier run must not survive a re-run.
    (a / "landing" / "web_events" / "web_events_2000-01-01.jsonl").write_text("stale")
    (a / "ground_truth" / "old.csv").write_text("stale")
    generate(a, cfg)
    assert _tree_hashes(a) == first

    generate(b, DemoConfig(customers=150, days=20, seed=8))
    assert _tree_hashes(b) != first


def test_layout_one_file_per_channel_per_day_with_exact_headers(demo):
    landing = demo["out"] / "landing"
    start = END - timedelta(days=CONFIG.days - 1)
    dates = [(start + timedelta(days=i)).isoformat() for i in range(CONFIG.days)]
    assert sorted(p.name for p in landing.iterdir()) == sorted(CHANNELS)
    for ch in CHANNELS:
        expected = [f"{ch}_{d}.{CHANNEL_EXT[ch]}" for d in dates]
        assert sorted(p.name for p in (landing / ch).iterdir()) == expected
        if ch == "web_events":
            line = next(p for p in sorted((landing / ch).iterdir()) if p.stat().st_size).read_text().splitlines()[0]
            assert list(json.loads(line)) == CHANNEL_COLUMNS[ch]
        else:
            for path in (landing / ch).iterdir():
                assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(CHANNEL_COLUMNS[ch])
    assert demo["summary"].files_written == 7 * CONFIG.days
    assert demo["summary"].rows_per_channel == {ch: len(demo["data"][ch]) for ch in CHANNELS}


def test_empty_days_still_get_a_file(tmp_path):
    generate(tmp_path, DemoConfig(customers=3, days=6, seed=1))
    landing = tmp_path / "landing"
    empty_csv = [p for ch in CHANNELS if ch != "web_events" for p in (landing / ch).iterdir()
                 if len(p.read_text().splitlines()) == 1]
    assert empty_csv, "expected header-only CSV files for days without rows"
    for ch in CHANNELS:
        assert len(list((landing / ch).iterdir())) == 6
    for path in empty_csv:
        assert path.read_text() == ",".join(CHANNEL_COLUMNS[path.parent.name]) + "\n"
    assert any(p.stat().st_size == 0 for p in (landing / "web_events").iterdir())


def test_timestamps_formats_and_enumerations(demo):
    data = demo["data"]
    iso = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
    plain = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
    for ch, col in [("web_events", "event_time"), ("app_events", "event_time"),
                    ("online_orders", "ordered_at"), ("email_events", "event_time")]:
        assert data[ch][col].str.match(iso).all(), ch
        assert (data[ch][col].str[:10] == data[ch].file_date).all(), ch
    for ch, cols in [("crm_members", ["registered_at", "updated_at"]), ("pos_purchases", ["purchased_at"]),
                     ("service_tickets", ["created_at", "updated_at"])]:
        for col in cols:
            assert data[ch][col].str.match(plain).all(), (ch, col)
    # Store times are Shanghai local within opening hours.
    hours = data["pos_purchases"].purchased_at.str[11:13].astype(int)
    assert hours.between(10, 21).all()
    assert set(data["web_events"].event_type) == {"page_view", "session_start", "login", "search",
                                                  "add_to_cart", "newsletter_signup"}
    assert set(data["app_events"].platform) == {"ios", "android"}
    assert set(data["online_orders"].currency) == {"CNY"}
    assert data["online_orders"].status.value_counts().idxmax() == "completed"
    assert set(data["crm_members"].consent_email) <= {"true", "false"}
    web = data["web_events"]
    assert (web[web.event_type == "login"].member_id != "").all()
    assert (web[web.event_type != "newsletter_signup"].email == "").all()
    assert (web[web.event_type == "newsletter_signup"].email != "").all()
    assert (data["app_events"].query("event_type == 'login'").member_id != "").all()


def test_ground_truth_covers_every_record_and_keys_are_unique(demo):
    records, persons = demo["records"], demo["persons"]
    assert not records.duplicated(["channel", "record_id"]).any()
    assert set(records.person_id) <= set(persons.person_id)
    for ch in CHANNELS:
        keys = demo["data"][ch][CHANNEL_KEY[ch]]
        truth = set(records.loc[records.channel == ch, "record_id"])
        assert set(keys) == truth, ch
        if ch not in ("crm_members", "service_tickets"):
            assert keys.is_unique, ch
    # Members in the CRM map back to the person that owns that member id.
    crm = _with_person(demo, "crm_members").merge(persons[["person_id", "member_id"]], on="person_id",
                                                  suffixes=("", "_truth"))
    assert (crm.member_id == crm.member_id_truth).all()


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


def test_identifier_variation_normalises_back_to_one_person(demo):
    phones = pd.concat([_with_person(demo, ch)[["phone", "person_id"]]
                        for ch in ("crm_members", "pos_purchases", "online_orders", "service_tickets", "email_events")])
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


def test_traps_are_present_listed_and_rare(demo):
    traps, data = demo["traps"], demo["data"]
    assert list(traps.columns) == ["trap_type", "value", "person_ids", "count", "note"]
    assert set(traps.trap_type) == {"shared_device", "store_phone", "placeholder_email",
                                    "placeholder_phone", "phone_change"}
    counts = traps.assign(count=traps["count"].astype(int)).groupby("trap_type")["count"].sum()
    assert (counts > 0).all()

    # Shared tablets: listed people share a device, and the landing data shows it.
    devices = pd.concat([_with_person(demo, ch)[["device_id", "person_id"]] for ch in ("web_events", "online_orders")])
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
    contact = pd.concat([data["online_orders"][["email", "phone"]], tickets[["email", "phone"]]])
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
    events = events[["person_id", "file_date"]].join(persons, on="person_id")
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
    online = demo["data"]["online_orders"].amount
    assert pos.str.match(r"^(\d+|¥\d{1,3}(,\d{3})*)\.\d{2}$").all()
    assert online.str.match(r"^\d+\.\d{2}$").all()
    assert pos.str.startswith("¥").any() and pos.str.contains(",").any()
    parsed = pd.concat([pos, online]).str.replace("¥", "").str.replace(",", "").astype(float)
    assert (parsed > 0).all()
    assert 150 < parsed.median() < 800
    assert demo["data"]["pos_purchases"]["items"].astype(int).min() >= 1


def test_cli_writes_tree_and_can_skip_record_truth(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["--out", str(out), "--customers", "40", "--days", "4", "--end-date", "2026-01-31",
                 "--seed", "3", "--no-record-truth"]) == 0
    assert not (out / "ground_truth" / "records.csv").exists()
    assert len(pd.read_csv(out / "ground_truth" / "persons.csv")) == 40
    assert (out / "landing" / "pos_purchases" / "pos_purchases_2026-01-28.csv").exists()
    assert (out / "landing" / "web_events" / "web_events_2026-01-31.jsonl").exists()
    assert "day 4/4" in capsys.readouterr().err
