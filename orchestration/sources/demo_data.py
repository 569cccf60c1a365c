"""Seeded demo-data generator for the customer-data pipeline.

Simulates people who live across the sales/marketing channels of a retailer and
writes one file per channel per day:

* ``<out>/landing/<channel>/`` -- the drop zone: web_events (JSONL), app_events
  (CSV with a UTF-8 BOM), pos_purchases (GBK-encoded CSV from the Chinese store
  tills), online_orders (+ order_lines), email_events, social_interactions (CSV)
  and mini_program_events (Parquet, every column VARCHAR);
* ``<out>/source_systems/`` -- exports of the operational systems, which reach the
  pipeline through connectors rather than the drop zone: ``crm/crm_members_*.csv``
  (a database loader builds the CRM from them) and ``helpdesk/service_tickets_*.csv``
  + ``helpdesk/service_messages_*.csv`` (served by the helpdesk API);
* ``<out>/ground_truth/`` (persons, record -> person map, identity traps and the
  list of injected real-world mess) that the pipeline never reads but tests use to
  score identity resolution, churn and data-quality handling.

The drop zone is deliberately messy the way real ones are (late and re-sent
events, a re-delivered file, odd encodings, full-width digits, hostile free text,
negative amounts, a missing natural key); every case is listed in
``ground_truth/mess.csv``.

Same arguments + seed give byte-identical files (Parquet included). Work is
vectorised per day with numpy (strings are handled as byte arrays) and only a
few days of events are held in memory at a time.

CLI::

    python -m orchestration.sources.demo_data --out data --customers 2000 \\
        --days 365 --end-date 2026-10-31 --seed 42 [--no-record-truth] [--quiet]
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache, reduce
from pathlib import Path
from typing import BinaryIO

import numpy as np

# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #

CHANNEL_COLUMNS: dict[str, list[str]] = {
    "crm_members": [
        "member_id", "full_name", "email", "phone", "loyalty_card", "city",
        "registered_at", "updated_at", "consent_email", "consent_sms",
    ],
    "web_events": [
        "event_id", "event_time", "device_id", "member_id", "email", "event_type", "page",
    ],
    "app_events": [
        "event_id", "event_time", "device_id", "member_id", "event_type", "platform",
    ],
    "pos_purchases": [
        "transaction_id", "store_id", "store_name", "purchased_at", "member_id", "phone", "amount", "items",
    ],
    "online_orders": [
        "order_id", "ordered_at", "member_id", "email", "phone", "device_id", "amount",
        "currency", "status",
    ],
    "service_tickets": [
        "ticket_id", "created_at", "updated_at", "member_id", "email", "phone",
        "contact_channel", "category", "status", "message",
    ],
    "email_events": [
        "event_id", "event_time", "message_channel", "email", "phone", "campaign_id", "event_type",
    ],
    "service_messages": [
        "message_id", "ticket_id", "sent_at", "author", "body", "updated_at",
    ],
    "mini_program_events": [
        "event_id", "event_time", "open_id", "member_id", "phone", "event_type", "page",
    ],
    "social_interactions": [
        "interaction_id", "occurred_at", "platform", "open_id", "social_handle", "member_id",
        "interaction_type", "group_id",
    ],
    "order_lines": [
        "order_id", "line_no", "sku", "quantity", "unit_price",
    ],
}
CHANNELS = list(CHANNEL_COLUMNS)
# Operational systems (read through connectors) vs. drop-zone channels.
SOURCE_SYSTEMS = {"crm_members": "crm", "service_tickets": "helpdesk", "service_messages": "helpdesk"}
LANDING_CHANNELS = [ch for ch in CHANNELS if ch not in SOURCE_SYSTEMS]
CHANNEL_DIR = {ch: f"source_systems/{SOURCE_SYSTEMS[ch]}" if ch in SOURCE_SYSTEMS else f"landing/{ch}"
               for ch in CHANNELS}  # relative to the output folder
CHANNEL_EXT = {ch: {"web_events": "jsonl", "mini_program_events": "parquet"}.get(ch, "csv") for ch in CHANNELS}
CHANNEL_ENCODING = {ch: {"pos_purchases": "gbk", "app_events": "utf-8-sig"}.get(ch, "utf-8")
                    for ch in CHANNELS}  # Parquet: UTF-8 strings
# Natural key per channel; order_lines has a composite key, recorded as "order_id:line_no".
CHANNEL_KEY: dict[str, str | tuple[str, str]] = {
    "crm_members": "member_id", "web_events": "event_id", "app_events": "event_id",
    "pos_purchases": "transaction_id", "online_orders": "order_id",
    "service_tickets": "ticket_id", "email_events": "event_id",
    "service_messages": "message_id", "mini_program_events": "event_id",
    "social_interactions": "interaction_id", "order_lines": ("order_id", "line_no"),
}
# Kinds of injected mess listed in ground_truth/mess.csv.
MESS_KINDS = (
    "gbk_encoding", "utf8_bom", "local_time_no_zone", "currency_symbol_amount", "late_event",
    "duplicate_file", "duplicate_event", "fullwidth_digits", "control_chars", "sql_like_text",
    "negative_refund", "negative_amount_completed", "null_natural_key",
)


def channel_file(channel: str, day: date | str, suffix: str = "") -> str:
    """Path of a channel's file for ``day``, relative to the output folder."""
    day = day.isoformat() if isinstance(day, date) else day
    return f"{CHANNEL_DIR[channel]}/{channel}_{day}{suffix}.{CHANNEL_EXT[channel]}"


@dataclass(frozen=True)
class DemoConfig:
    customers: int = 2000
    days: int = 365
    end_date: date = date(2026, 10, 31)  # last day that has files (inclusive)
    seed: int = 42

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)


@dataclass
class GenerationSummary:
    people: int
    files_written: int
    rows_per_channel: dict[str, int]  # rows delivered, re-sent copies included
    landing_dir: Path
    ground_truth_dir: Path
    seconds: float = 0.0
    source_systems_dir: Path | None = None


# --------------------------------------------------------------------------- #
# Simulation parameters (rates are per person per day unless noted)
# --------------------------------------------------------------------------- #

PRE_EXISTING_SHARE = 0.45       # people who signed up before the window starts
MEMBER_SHARE = 0.70
BEHAVIOUR_MEAN = 0.16           # web+app events/day while active (~0.085 over everyone)
PURCHASE_MEAN = 1 / 45          # one purchase every ~45 days while active
SPEND_MEDIAN = 300.0            # CNY
CHURN_MEAN_DAYS = 420           # exponential time-to-churn after becoming active
REACTIVATION_SHARE = 0.15
UNSUB_BEFORE_CHURN_SHARE = 0.35
PRE_CHURN_DAYS = 30
TICKET_RATE = 0.0015
CRM_UPDATE_RATE = 0.002
EMAIL_SEND_RATE = 0.04
SMS_SEND_RATE = 0.012
NEWSLETTER_SIGNUP_RATE = 0.004  # per web event of a not-yet-subscribed person
PLACEHOLDER_RATE = 0.012        # per contact field on orders / tickets
STORE_PHONE_RATE = 0.12         # no-phone walk-ins at the two trap stores
OPEN_ID_SHARE = 0.5             # people with an id inside the super-app (mini program, official account)
MP_MEAN = 0.05                  # mini-program events/day while active (people with an open_id)
MP_BIND_SHARE = 0.6             # members with an open_id who bind their membership in the mini program
MP_PHONE_AUTH_RATE = 0.04       # per mini-program event of a person who has not shared the phone yet
WEIBO_SHARE = 0.2               # people with a weibo handle
OA_FOLLOW_RATE = 0.002          # official account follow, per non-follower
GROUP_JOIN_RATE = 0.001         # community group join, per non-member
WEIBO_FOLLOW_RATE = 0.0015
UNFOLLOW_RATE = 0.0004          # baseline unfollow / group leave
GROUP_MENTION_RATE = 0.03       # per group member, scaled by activity
WEIBO_MENTION_RATE = 0.012      # per weibo user, scaled by activity
DECAY_UNFOLLOW_P = {"oa": 0.7, "group": 0.6, "weibo": 0.5}  # on a churner's decay day
SKU_COUNT = 4000
LATE_RATE = 0.01                # web/app events delivered 1-3 days late
RESENT_RATE = 0.003             # web events re-sent in the next day's file
# Rare mess is scheduled (every `period` days from `offset`, carried over until rows exist)
# so every kind shows up at any realistic size while staying "a handful".
MESS_SCHEDULE = {"null_natural_key": (30, 11), "fullwidth_digits": (20, 5), "control_chars": (25, 8),
                 "sql_like_text": (25, 20), "negative_refund": (12, 6)}
RESEND_SCHEDULE = (45, 22)      # online_orders file delivered twice
NEVER = np.iinfo(np.int32).max // 2


def _b(*values: str) -> np.ndarray:
    return np.array([v.encode() for v in values])


GIVEN = _b("ann", "bella", "chen", "david", "emma", "fang", "grace", "hao", "ivy", "jack",
           "jun", "kevin", "lei", "lily", "ming", "nina", "oscar", "ping", "qiang", "rachel",
           "ray", "sophia", "tao", "tina", "victor", "wei", "xin", "yan", "yu", "zoe",
           "alice", "bo", "cindy", "eric", "hui", "jing", "li", "na", "peter", "ying")
SURNAME = _b("wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou",
             "xu", "sun", "ma", "zhu", "hu", "guo", "he", "gao", "lin", "luo",
             "zheng", "liang", "xie", "song", "tang", "han", "feng", "deng", "cao", "lee")
GIVEN_CAP, SURNAME_CAP = np.strings.capitalize(GIVEN), np.strings.capitalize(SURNAME)
DOMAIN = _b("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com", "example.com")
DOMAIN_CAP = _b("QQ.com", "163.com", "126.com", "Gmail.com", "Outlook.com", "Sina.com", "Example.com")
DOMAIN_P = [0.32, 0.22, 0.1, 0.1, 0.1, 0.06, 0.1]
EMAIL_STYLE_P = [0.8, 0.08, 0.07, 0.05]  # clean, Capitalised, "  padded ", "  UPPER "
CITIES = _b("Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Hangzhou", "Chengdu",
            "Nanjing", "Wuhan", "Suzhou", "Xi'an", "Tianjin", "Chongqing")
MOBILE_PREFIX = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152,
                          155, 156, 158, 159, 176, 177, 180, 182, 186, 187, 188, 189])
PHONE_LAYOUTS = ["XXXXXXXXXXX", "XXX-XXXX-XXXX", "+86 XXXXXXXXXXX", "86XXXXXXXXXXX", "XXX XXXX XXXX"]
PHONE_LAYOUT_P = [0.55, 0.12, 0.12, 0.08, 0.13]
PLACEHOLDER_EMAILS = _b("test@test.com", "na@na.com", "unknown")
PLACEHOLDER_PHONES = _b("0000000", "unknown")

WEB_TYPES = _b("session_start", "page_view", "search", "add_to_cart", "login", "newsletter_signup")
WEB_TYPE_P = [0.18, 0.56, 0.12, 0.07, 0.07, 0.0]  # sign-ups are drawn separately
WEB_PAGE_VIEW, WEB_LOGIN, WEB_SIGNUP = 1, 4, 5
APP_TYPES = _b("app_open", "login", "search", "view_item", "add_to_cart")
APP_TYPE_P = [0.25, 0.06, 0.15, 0.42, 0.12]
APP_OPEN, APP_LOGIN = 0, 1
PLATFORMS = _b("ios", "android")
SEARCH_TERMS = _b("dress", "sneakers", "jacket", "tea", "phone+case", "backpack", "lipstick", "watch")
EMAIL_EVENT_TYPES = _b("send", "open", "click", "unsubscribe")
SEND, OPEN, CLICK, UNSUB = 0, 1, 2, 3
ORDER_STATUS = _b("completed", "cancelled", "refunded")
TICKET_CHANNELS = _b("chat", "call", "email")
TICKET_CATEGORIES = _b("delivery", "refund", "product", "account")
MESSAGES = [  # complaint, neutral, praise
    _b("Parcel is 5 days late, nobody answers the hotline.",
       'The "express" delivery took two weeks. Very disappointed.',
       "Wrong size again, I want a refund, not a voucher.",
       "Item arrived broken; packaging was torn.",
       'Your app says "order not found" but you charged my card!',
       "Cancel my account please, too many problems lately.",
       "Refund still not received after 3 weeks, unacceptable."),
    _b("How do I change my delivery address?",
       "Can I use two coupons on one order?",
       "Where can I find my loyalty points?",
       "Please update my phone number, thanks.",
       "Is the store in Nanjing open on holidays?"),
    _b("Great service, the courier was very friendly!",
       'Thanks, the "same-day" delivery really was same day.',
       "Love the new collection, quality is excellent.",
       "Quick refund, thank you, will shop again."),
]
# Follow-up messages: the words carry the sentiment (angry / neutral / thankful customers).
CUSTOMER_FOLLOW_UPS = [
    _b("Still nothing. This is unacceptable, I am really angry.",
       "Third time I write! Terrible service, I will never buy here again.",
       "Useless answer. I want my money back now.",
       "Disappointed again. Please close my account.",
       "Why is nobody helping? Worst customer service ever."),
    _b("Ok, here is the order number you asked for.",
       "Got it, I will wait for the courier.",
       "Can you confirm this by email, please?"),
    _b("Thank you so much, problem solved!",
       "Great, thanks for the quick help.",
       "Received it today, thanks a lot, very happy.",
       "Thanks, excellent support as always."),
]
AGENT_REPLIES = _b(
    "Sorry for the trouble, I have escalated this to our logistics team.",
    "Thank you for contacting us. Could you share your order number?",
    "We have issued the refund; it should arrive in 3-5 working days.",
    "I have updated your details. Is there anything else I can help with?",
    "Apologies for the delay, a replacement is on its way.",
)
AUTHORS = _b("customer", "agent")
SQL_LIKE = _b("'; DROP TABLE customers; --",
              "Robert'); DROP TABLE tickets;--",
              "where is my order 1' OR '1'='1",
              "<script>alert('refund')</script> please check")
CONTROL_TEXT = _b("Refund please\x07\x07 where is it",
                  "\x1b[31mURGENT\x1b[0m parcel missing",
                  "line one\x0bline two\x08\x08 still waiting",
                  "ok\x1f thanks\t\tbye")

MP_TYPES = _b("page_view", "login", "coupon_claim", "share", "add_to_cart", "phone_authorized")
MP_TYPE_P = [0.62, 0.09, 0.1, 0.06, 0.13, 0.0]  # phone authorisation is drawn separately
MP_PHONE_AUTH = 5
MP_PAGES = _b("pages/index/index", "pages/member/login", "pages/coupon/center", "pages/goods/detail?sku=",
              "pages/goods/detail?sku=", "pages/member/bind")
MP_BROWSE_PAGES = _b("pages/index/index", "pages/category/index", "pages/activity/index", "pages/goods/detail?sku=")
SOCIAL_PLATFORMS = _b("official_account", "community_group", "weibo")
SOCIAL_TYPES = _b("follow", "unfollow", "mention", "group_join", "group_leave")
FOLLOW, UNFOLLOW, MENTION, GROUP_JOIN, GROUP_LEAVE = range(5)
OA, GROUP, WEIBO = range(3)
OPEN_ID_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8)

# Chinese store names (GBK-encodable): flagship street per city, then malls, then numbered branches.
CITIES_CN = ["上海", "北京", "深圳", "广州", "杭州", "成都", "南京", "武汉", "苏州", "西安", "天津", "重庆"]
FLAGSHIP_CN = ["南京路", "王府井", "华强北", "天河路", "湖滨", "春熙路", "新街口", "江汉路", "观前街", "钟楼",
               "滨江道", "解放碑"]
MALLS_CN = ["万达广场", "万象城", "大悦城", "来福士", "天街", "银泰城", "印象城", "凯德广场", "吾悦广场",
            "中山路", "人民广场", "龙湖"]
POS_YUAN = "￥"  # GBK has no U+00A5; Chinese tills print the full-width yen sign
FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")

# Relative activity by hour of day in China (CST), rolled to UTC hours.
_CST_PROFILE = np.array([0.3, 0.15, 0.1, 0.05, 0.05, 0.1, 0.4, 1.0, 1.6, 1.8, 2.0, 2.2,
                         2.4, 2.2, 2.0, 2.0, 2.1, 2.3, 2.6, 3.0, 3.3, 3.2, 2.4, 1.2])
UTC_PROFILE = np.roll(_CST_PROFILE, -8) / _CST_PROFILE.sum()


# --------------------------------------------------------------------------- #
# Vectorised byte-string helpers
# --------------------------------------------------------------------------- #

_DIGITS4 = np.array([f"{i:04d}".encode() for i in range(10000)]).view(np.uint8).reshape(10000, 4)
_HMS = np.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}".encode() for s in range(86400)])


@lru_cache(maxsize=None)
def _template_runs(template: str) -> tuple[int, list[tuple[int, int, bytes | None]]]:
    """Split a template into (start, end, literal-or-None-for-digits) runs."""
    runs = [(m.start(), m.end(), None if m.group()[0] == "X" else m.group().encode())
            for m in re.finditer(r"X+|[^X]+", template)]
    return template.count("X"), runs


def _fmt(numbers: np.ndarray, template: str) -> np.ndarray:
    """Fill the X slots of ``template`` with each number's zero-padded digits.

    Works on a uint8 matrix, 4 digits per table lookup, so formatting
    millions of ids stays at C speed.
    """
    rest = np.asarray(numbers, dtype=np.int64).ravel()
    width, runs = _template_runs(template)
    groups = -(-width // 4)
    digits = np.empty((rest.size, groups * 4), dtype=np.uint8)
    for g in range(groups - 1, -1, -1):
        rest, low = np.divmod(rest, 10000)
        digits[:, 4 * g:4 * g + 4] = _DIGITS4[low]
    mat = np.empty((digits.shape[0], len(template)), dtype=np.uint8)
    used = groups * 4 - width
    for start, end, literal in runs:
        if literal is None:
            mat[:, start:end] = digits[:, used:used + end - start]
            used += end - start
        else:
            mat[:, start:end] = np.frombuffer(literal, dtype=np.uint8)
    return mat.view(f"S{len(template)}").ravel()


def _cat(*parts) -> np.ndarray:
    return reduce(np.strings.add, parts)


def _num(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).astype("S")


def _hms(seconds: np.ndarray) -> np.ndarray:
    return _HMS[np.asarray(seconds, dtype=np.int64)]


def _day_ts(day: date, seconds: np.ndarray, iso: bool) -> np.ndarray:
    """``YYYY-MM-DDTHH:MM:SSZ`` (iso) or ``YYYY-MM-DD HH:MM:SS`` for seconds of ``day``."""
    prefix = (day.isoformat() + ("T" if iso else " ")).encode()
    suffix = b"Z" if iso else b""
    p = len(prefix)
    mat = np.empty((len(seconds), p + 8 + len(suffix)), dtype=np.uint8)
    mat[:, :p] = np.frombuffer(prefix, dtype=np.uint8)
    mat[:, p:p + 8] = _hms(seconds).view(np.uint8).reshape(-1, 8)
    mat[:, p + 8:] = np.frombuffer(suffix, dtype=np.uint8)
    return mat.view(f"S{mat.shape[1]}").ravel()


def _dates(start: date, day_offsets: np.ndarray) -> np.ndarray:
    offsets = np.asarray(day_offsets, dtype=np.int64).astype("timedelta64[D]")
    return (np.datetime64(start, "D") + offsets).astype("S10")


def _bools(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, b"true", b"false")


def _affine(index: np.ndarray, modulus: int, mult: int, offset: int) -> np.ndarray:
    """Bijective scramble of 0..modulus-1: identifiers are unique but not sequential."""
    return (np.asarray(index, dtype=np.int64) * mult + offset) % modulus


def _coprime_to_10(rng: np.random.Generator, modulus: int) -> int:
    m = int(rng.integers(modulus // 10, modulus - 1))
    while m % 2 == 0 or m % 5 == 0:
        m += 1
    return m


def _pick(rng: np.random.Generator, choices: np.ndarray, n: int, p=None) -> np.ndarray:
    return choices[rng.choice(len(choices), size=n, p=p)]


def _times(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds of the UTC day following the Chinese daily activity curve."""
    return rng.choice(24, size=n, p=UTC_PROFILE) * 3600 + rng.integers(0, 3600, size=n)


def _email_styles(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(len(EMAIL_STYLE_P), size=n, p=EMAIL_STYLE_P).astype(np.int8)


def _phone_styles(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(len(PHONE_LAYOUTS), size=n, p=PHONE_LAYOUT_P).astype(np.int8)


def render_phones(phones: np.ndarray, styles: np.ndarray) -> np.ndarray:
    """Format 11-digit numbers in the given PHONE_LAYOUTS style each."""
    out = np.empty(len(phones), dtype="S15")
    for style, layout in enumerate(PHONE_LAYOUTS):
        mask = styles == style
        if mask.any():
            out[mask] = _fmt(phones[mask], layout)
    return out


def _money(cents: np.ndarray) -> np.ndarray:
    """``1299.00`` / ``-1299.00`` from integer cents."""
    cents = np.asarray(cents, dtype=np.int64)
    mag = np.abs(cents)
    plain = _cat(_num(mag // 100), b".", _fmt(mag % 100, "XX"))
    neg = cents < 0
    return np.where(neg, np.strings.add(b"-", plain), plain) if neg.any() else plain


def _amounts(rng: np.random.Generator, cents: np.ndarray, yen_share: float, symbol: str = "¥") -> np.ndarray:
    """``1299.00``; a share written by the till as ``¥1,299.00``."""
    plain = _cat(_num(cents // 100), b".", _fmt(cents % 100, "XX"))
    yen = rng.random(cents.size) < yen_share
    if not yen.any():
        return plain
    out = plain.astype(f"S{plain.dtype.itemsize + 8}")
    # ~10% of POS rows only, so a comprehension over them is cheap.
    out[yen] = [f"{symbol}{c // 100:,}.{c % 100:02d}".encode() for c in cents[yen].tolist()]
    return out


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a bijection on uint64, used to derive stable opaque ids."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _store_names(count: int) -> np.ndarray:
    """UTF-8 names of stores 0..count-1 (store s is in city s % 12, like the home-store city)."""
    names = []
    for s in range(count):
        city, rank = CITIES_CN[s % len(CITIES_CN)], s // len(CITIES_CN)
        if rank == 0:
            names.append(f"{city}{FLAGSHIP_CN[s % len(CITIES_CN)]}店")
        else:
            branch = (rank - 1) // len(MALLS_CN)
            names.append(f"{city}{MALLS_CN[(rank - 1) % len(MALLS_CN)]}{'' if branch == 0 else branch + 1}店")
    return np.array([n.encode() for n in names])


def _purchase_cents(rng: np.random.Generator, spend: np.ndarray) -> np.ndarray:
    yuan = np.maximum(9, np.round(spend * rng.lognormal(0, 0.35, spend.size))).astype(np.int64)
    # Mostly whole-yuan prices, some .50/.90 endings.
    return yuan * 100 + rng.choice(np.array([0, 50, 90]), size=spend.size, p=[0.75, 0.1, 0.15])


# --------------------------------------------------------------------------- #
# Population
# --------------------------------------------------------------------------- #

class _People:
    """Per-person attributes (static) and state (mutated day by day)."""

    def __init__(self, cfg: DemoConfig):
        rng = np.random.default_rng([cfg.seed, 0])
        n = self.n = cfg.customers
        self.cfg = cfg
        self.pid_width = max(7, len(str(n)))

        pre = rng.random(n) < PRE_EXISTING_SHARE
        self.signup_day = np.where(pre, -rng.integers(1, 1096, n), rng.integers(0, cfg.days, n)).astype(np.int32)
        self.signup_sec = _times(rng, n).astype(np.int32)

        self.is_member = rng.random(n) < MEMBER_SHARE
        # Member numbers follow registration order, like a real CRM sequence.
        members = np.flatnonzero(self.is_member)
        order = members[np.lexsort((self.signup_sec[members], self.signup_day[members]))]
        self.member_no = np.zeros(n, dtype=np.int64)
        self.member_no[order] = np.arange(1, order.size + 1)
        self.member_width = max(6, len(str(order.size)))
        self.loyalty = _affine(np.arange(n), 10**8, _coprime_to_10(rng, 10**8), int(rng.integers(10**8)))

        self.given = rng.integers(0, len(GIVEN), n).astype(np.int16)
        self.surname = rng.integers(0, len(SURNAME), n).astype(np.int16)
        self.domain = rng.choice(len(DOMAIN), size=n, p=DOMAIN_P).astype(np.int8)
        # Unique numeric suffix => unique canonical emails.
        k_mod = 10 ** (len(str(n)) + 1)
        self.email_k = _affine(np.arange(n), k_mod, _coprime_to_10(rng, k_mod), int(rng.integers(k_mod)))
        self.crm_email_style = _email_styles(rng, n)
        self.crm_phone_style = _phone_styles(rng, n)

        # Phones: unique 8-digit suffix behind a real mobile prefix; slots >= n are
        # reserved for number changes and the shop-assistant phones.
        self._phone_mult, self._phone_off = _coprime_to_10(rng, 10**8), int(rng.integers(10**8))
        self._prefix_mult = int(rng.integers(1, 2**20)) * 2 + 1
        self.phone = self._phone_numbers(np.arange(n))

        self._dev_mult, self._dev_off = _coprime_to_10(rng, 10**9), int(rng.integers(10**9))
        self.device_a = self.device_num(np.arange(n))
        self.device_b = np.where(rng.random(n) < 0.55, self.device_num(n + np.arange(n)), -1)
        self.platform = rng.integers(0, 2, n).astype(np.int8)

        # Channel mix: mostly online, mostly in store, or both.
        kind = rng.choice(3, size=n, p=[0.4, 0.3, 0.3])
        self.store_share = np.array([0.1, 0.85, 0.5], dtype=np.float32)[kind]
        has_app = rng.random(n) < np.array([0.65, 0.25, 0.55])[kind]
        self.app_share = np.where(has_app, rng.uniform(0.5, 0.9, n), 0.0).astype(np.float32)
        activity = np.array([1.3, 0.5, 1.0])[kind]
        self.behaviour_rate = (rng.gamma(0.8, BEHAVIOUR_MEAN / 0.8, n) * activity).astype(np.float32)
        self.purchase_rate = rng.gamma(0.9, PURCHASE_MEAN / 0.9, n).astype(np.float32)
        self.spend = np.exp(rng.normal(np.log(SPEND_MEDIAN), 0.5, n)).astype(np.float32)
        self.engagement = rng.beta(2, 5, n).astype(np.float32)

        self.n_stores = int(np.clip(n // 2000, 10, 300))
        store_w = 1 / np.arange(1, self.n_stores + 1) ** 0.8
        self.home_store = rng.choice(self.n_stores, size=n, p=store_w / store_w.sum()).astype(np.int16)
        self.city = (self.home_store % len(CITIES)).astype(np.int16)

        # Churn clock starts when the person becomes active in the window.
        active_from = np.maximum(self.signup_day, 0)
        churn = active_from + 14 + rng.exponential(CHURN_MEAN_DAYS, n).astype(np.int32)
        self.churn_day = np.where(churn < cfg.days, churn, NEVER).astype(np.int32)
        churned = self.churn_day < NEVER
        react = self.churn_day + 30 + rng.exponential(60, n).astype(np.int32)
        react_ok = churned & (rng.random(n) < REACTIVATION_SHARE) & (react < cfg.days)
        self.react_day = np.where(react_ok, react, NEVER).astype(np.int32)
        unsub = self.churn_day - rng.integers(0, 15, n)
        unsub_ok = churned & (rng.random(n) < UNSUB_BEFORE_CHURN_SHARE) & (unsub >= np.maximum(active_from, 1))
        self.unsub_day = np.where(unsub_ok, unsub, NEVER).astype(np.int32)

        # Mutable state.
        self.consent_email = self.is_member & (rng.random(n) < 0.65)
        self.consent_sms = self.is_member & (rng.random(n) < 0.45)
        self.subscribed = self.consent_email.copy()  # on the email marketing list

        self._make_traps(rng)
        self._make_social(np.random.default_rng([cfg.seed, 4]))

    def _make_social(self, rng: np.random.Generator) -> None:
        """Super-app and social presence; a separate stream keeps the other channels' draws unchanged."""
        n, days = self.n, self.cfg.days
        self.store_names = _store_names(self.n_stores)
        self._open_id_keys = rng.integers(0, 2**63, 3, dtype=np.uint64)
        self.has_open_id = rng.random(n) < OPEN_ID_SHARE
        self.mp_idx = np.flatnonzero(self.has_open_id)
        self.mp_rate = rng.gamma(0.8, MP_MEAN / 0.8, self.mp_idx.size).astype(np.float32)
        binds = self.is_member & self.has_open_id & (rng.random(n) < MP_BIND_SHARE)
        bind = np.maximum(self.signup_day, rng.integers(-365, days, n))
        self.bind_day = np.where(binds, bind, NEVER).astype(np.int32)
        self.mp_phone_shared = np.zeros(n, dtype=bool)
        self.has_weibo = rng.random(n) < WEIBO_SHARE
        h_mod = 10 ** (len(str(n)) + 2)
        self.handle_k = _affine(np.arange(n), h_mod, _coprime_to_10(rng, h_mod), int(rng.integers(h_mod)))
        # Follower state at the window start (only people who already knew the brand).
        pre = self.signup_day < 0
        oa_follower = self.has_open_id & pre & (rng.random(n) < 0.45)
        weibo_follower = self.has_weibo & pre & (rng.random(n) < 0.45)
        group_of = np.where(self.has_open_id & pre & (rng.random(n) < 0.2),
                            self.home_store.astype(np.int32) * 3 + rng.integers(0, 3, n), -1)
        # Churners drop the brand's social channels around their churn date.
        decay = np.where(self.churn_day < NEVER, self.churn_day + rng.integers(-14, 8, n), NEVER)
        # Social state is kept only for people with a social presence (index = position in social_idx).
        idx = self.social_idx = np.flatnonzero(self.has_open_id | self.has_weibo)
        self.soc_open_id, self.soc_weibo = self.has_open_id[idx], self.has_weibo[idx]
        self.soc_decay_day = decay[idx].astype(np.int32)
        self.soc_group_base = self.home_store[idx].astype(np.int32) * 3
        self.oa_follower, self.weibo_follower = oa_follower[idx], weibo_follower[idx]
        self.group_of = group_of[idx].astype(np.int32)

    def device_num(self, slot: np.ndarray) -> np.ndarray:
        return _affine(slot, 10**9, self._dev_mult, self._dev_off)

    def _phone_numbers(self, slot: np.ndarray) -> np.ndarray:
        prefix = MOBILE_PREFIX[(np.asarray(slot, dtype=np.int64) * self._prefix_mult >> 7) % len(MOBILE_PREFIX)]
        return prefix * 10**8 + _affine(slot, 10**8, self._phone_mult, self._phone_off)

    def _make_traps(self, rng: np.random.Generator) -> None:
        n, days = self.n, self.cfg.days
        # Shared family tablets: 2-3 people of one household browse on one device.
        self.households: list[tuple[int, np.ndarray]] = []
        sizes = rng.choice([2, 3], size=max(2, n // 1000))
        picks = rng.permutation(n)
        start = 0
        for h, size in enumerate(sizes.tolist()):
            people = np.sort(picks[start:start + size])
            start += size
            if people.size < 2:
                break
            tablet = int(self.device_num(2 * n + h))
            self.device_b[people] = tablet
            self.households.append((tablet, people))
        self.tablets = np.array([t for t, _ in self.households], dtype=np.int64)

        # Members who change phone number mid-window (CRM update; later records use the new one).
        eligible = np.flatnonzero(self.is_member & (self.signup_day < days // 3)
                                  & (self.churn_day > days * 2 // 3 + 30))
        changers = np.sort(rng.permutation(eligible)[:max(2, n // 2000)])
        self.change_day = np.full(n, NEVER, dtype=np.int32)
        self.change_day[changers] = rng.integers(days // 3, max(days // 3 + 1, days * 2 // 3), changers.size)
        self.old_phone = self.phone.copy()
        self.new_phone = np.zeros(n, dtype=np.int64)
        self.new_phone[changers] = self._phone_numbers(n + np.arange(changers.size))

        # Two shop-assistant phones, typed at the two busiest stores.
        self.store_phones = self._phone_numbers(n + changers.size + np.arange(2))

    # -- rendering ---------------------------------------------------------- #

    def person_ids(self, idx: np.ndarray) -> np.ndarray:
        return _fmt(np.asarray(idx) + 1, "P" + "X" * self.pid_width)

    def member_ids(self, idx: np.ndarray, shown: np.ndarray | bool = True) -> np.ndarray:
        ids = _fmt(self.member_no[idx], "M" + "X" * self.member_width)
        return np.where(self.is_member[idx] & shown, ids, b"")

    def device_ids(self, nums: np.ndarray) -> np.ndarray:
        return _fmt(nums, "D" + "X" * 9)

    def emails(self, idx: np.ndarray, styles: np.ndarray) -> np.ndarray:
        """Canonical email in a style: clean, Capitalised, space-padded, or upper-cased + padded."""
        cap = styles >= 1
        email = _cat(np.where(cap, GIVEN_CAP[self.given[idx]], GIVEN[self.given[idx]]), b".",
                     np.where(cap, SURNAME_CAP[self.surname[idx]], SURNAME[self.surname[idx]]),
                     _num(self.email_k[idx]), b"@",
                     np.where(cap, DOMAIN_CAP[self.domain[idx]], DOMAIN[self.domain[idx]]))
        upper = styles == 3
        if upper.any():
            email[upper] = np.strings.upper(email[upper])
        return np.where(styles >= 2, _cat(b"  ", email, b" "), email)

    def phones(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return render_phones(self.phone[idx], _phone_styles(rng, len(idx)))

    def open_ids(self, idx: np.ndarray) -> np.ndarray:
        """``oX`` + 26 url-safe characters, stable per person (empty without a super-app id).

        The first 64 bits come from a bijective hash of the person index, so ids are unique.
        """
        idx = np.asarray(idx, dtype=np.uint64)
        mat = np.empty((idx.size, 28), dtype=np.uint8)
        mat[:, :2] = np.frombuffer(b"oX", dtype=np.uint8)
        col = 2
        for key, chars in zip(self._open_id_keys, (11, 11, 4)):
            h = _mix64(idx + key)
            for c in range(chars):
                mat[:, col] = OPEN_ID_ALPHABET[((h >> np.uint64(6 * c)) & np.uint64(63)).astype(np.intp)]
                col += 1
        return np.where(self.has_open_id[idx.astype(np.int64)], mat.view("S28").ravel(), b"")

    def handles(self, idx: np.ndarray) -> np.ndarray:
        return _cat(GIVEN[self.given[idx]], b"_", _num(self.handle_k[idx]))


# --------------------------------------------------------------------------- #
# Daily simulation: one function per channel
# --------------------------------------------------------------------------- #

@dataclass
class _Batch:
    """One day's rows of a channel, plus the person behind each row (ground truth)."""

    channel: str
    columns: dict[str, np.ndarray]
    person: np.ndarray
    new_key: np.ndarray | None = None  # crm/tickets: rows that introduce a key (not a later version)

    def __len__(self) -> int:
        return len(self.person)

    def take(self, rows: np.ndarray) -> _Batch:
        return _Batch(self.channel, {k: v[rows] for k, v in self.columns.items()}, self.person[rows],
                      None if self.new_key is None else self.new_key[rows])

    def keyed(self) -> np.ndarray:
        """Rows that introduce a record (ground truth is written for these only)."""
        return np.ones(len(self), dtype=bool) if self.new_key is None else self.new_key


def _concat(batches: list[_Batch]) -> _Batch:
    first = batches[0]
    mixed = any(b.new_key is not None for b in batches)
    return _Batch(first.channel,
                  {k: np.concatenate([b.columns[k] for b in batches]) for k in first.columns},
                  np.concatenate([b.person for b in batches]),
                  np.concatenate([b.keyed() for b in batches]) if mixed else None)


class _Simulation:
    def __init__(self, cfg: DemoConfig):
        self.cfg = cfg
        self.p = _People(cfg)
        self.counters = dict.fromkeys(CHANNELS, 0)
        self.pending_closures: dict[int, list[_Batch]] = {}
        self.pending_messages: dict[int, list[_Batch]] = {}
        self.pending_late: dict[tuple[str, int], list[_Batch]] = {}
        self.pending_resent: dict[int, _Batch] = {}
        self.trap_counts: dict[tuple[str, str], int] = {}
        # Injected mess: rows of ground_truth/mess.csv, and scheduled rare cases still to place.
        self.mess: list[tuple[str, str, str, str]] = []
        self.mess_due = dict.fromkeys(MESS_SCHEDULE, 0)
        self.mess_due["negative_amount_completed"] = 0
        k = int(np.random.default_rng([cfg.seed, 5]).integers(1, 4))  # 1-3 over the whole period
        self.bad_amount_days = [cfg.days * (i + 1) // (k + 1) for i in range(k)]
        self.yuan_amounts = 0
        self.store_phone_text = _fmt(self.p.store_phones, PHONE_LAYOUTS[0])

    def _next_ids(self, channel: str, n: int) -> np.ndarray:
        start = self.counters[channel]
        self.counters[channel] = start + n
        return np.arange(start + 1, start + n + 1, dtype=np.int64)

    def _count_trap(self, trap_type: str, values: np.ndarray) -> None:
        uniq, counts = np.unique(values, return_counts=True)
        for value, c in zip(uniq.tolist(), counts.tolist()):
            key = (trap_type, value.decode())
            self.trap_counts[key] = self.trap_counts.get(key, 0) + c

    def _device_column(self, devices: np.ndarray) -> np.ndarray:
        shared = np.isin(devices, self.p.tablets)
        ids = self.p.device_ids(devices)
        if shared.any():
            self._count_trap("shared_device", ids[shared])
        return ids

    def _maybe_placeholder(self, rng, values: np.ndarray, placeholders: np.ndarray, trap_type: str) -> np.ndarray:
        hit = rng.random(values.size) < PLACEHOLDER_RATE
        values = values.astype(f"S{max(values.dtype.itemsize, placeholders.dtype.itemsize)}")
        values[hit] = placeholders[rng.integers(0, len(placeholders), int(hit.sum()))]
        self._count_trap(trap_type, values[hit])
        return values

    def log_mess(self, kind: str, channel: str, file: str, detail: str) -> None:
        self.mess.append((kind, channel, file, detail))

    def _due(self, kind: str, available: int) -> int:
        """How many scheduled cases of ``kind`` to place now, given ``available`` candidate rows."""
        take = min(self.mess_due[kind], available)
        self.mess_due[kind] -= take
        return take

    def resend_today(self, d: int) -> bool:
        period, offset = RESEND_SCHEDULE
        return d % period == offset

    def day(self, d: int) -> list[_Batch]:
        p = self.p
        rng = np.random.default_rng([self.cfg.seed, 1, d])
        rng_new = np.random.default_rng([self.cfg.seed, 2, d])   # newer channels: the older keep their draws
        rng_mess = np.random.default_rng([self.cfg.seed, 3, d])  # delivery mess: own stream
        day = self.cfg.start_date + timedelta(days=d)
        for kind, (period, offset) in MESS_SCHEDULE.items():
            self.mess_due[kind] += d % period == offset
        self.mess_due["negative_amount_completed"] += self.bad_amount_days.count(d)

        signed = p.signup_day <= d
        churned = (p.churn_day <= d) & (p.react_day > d)
        to_churn = p.churn_day - d
        pre_churn = signed & (to_churn > 0) & (to_churn <= PRE_CHURN_DAYS) & (p.react_day > d)
        # Activity dips in the month before churn, then fades to near zero after it.
        ramp = np.where(pre_churn, 0.5 + 0.5 * to_churn / PRE_CHURN_DAYS, 1.0)
        fade = np.where(churned, np.maximum(np.exp(np.minimum(to_churn, 0) / 7.0), 0.02), 1.0)
        behaviour = np.where(signed, fade * ramp, 0.0)
        buying = np.where(signed & ~churned, ramp, 0.0)

        crm_touch: list[tuple[np.ndarray, np.ndarray]] = []  # (person idx, second of day)
        self._phone_changes(d, rng, crm_touch)
        web, app = self._web_and_app(day, rng, behaviour, crm_touch)
        emails = self._email_events(d, day, rng, signed, churned, crm_touch)
        pos, (orders, cents) = self._purchases(day, rng, buying)
        tickets = self._tickets(d, day, rng, signed, churned, pre_churn, rng_new)
        crm = self._crm_members(d, day, rng, signed, crm_touch)
        messages = self._service_messages(d, day, rng_mess)
        mini = self._mini_program_events(d, day, rng_new, behaviour)
        social = self._social_interactions(d, day, rng_new, signed & ~churned, behaviour)

        pos = self._pos_mess(day, rng_mess, pos)
        orders, cents = self._order_mess(day, rng_mess, orders, cents)
        lines = self._order_lines(rng_new, orders, cents)
        web, app = (self._deliver(d, day, rng_mess, batch) for batch in (web, app))
        return [crm, web, app, pos, orders, tickets, emails, messages, mini, social, lines]

    def _phone_changes(self, d, rng, crm_touch) -> None:
        who = np.flatnonzero(self.p.change_day == d)
        if who.size:
            self.p.phone[who] = self.p.new_phone[who]
            crm_touch.append((who, _times(rng, who.size)))

    def _web_and_app(self, day, rng, factor, crm_touch) -> tuple[_Batch, _Batch]:
        p = self.p
        counts = rng.poisson(p.behaviour_rate * factor)
        active = np.flatnonzero(counts)
        who = np.repeat(active, counts[active])
        secs = _times(rng, who.size)
        order = np.argsort(secs, kind="stable")
        who, secs = who[order], secs[order]
        is_app = rng.random(who.size) < p.app_share[who]
        web = self._web_events(day, rng, who[~is_app], secs[~is_app], crm_touch)
        app = self._app_events(day, rng, who[is_app], secs[is_app])
        return web, app

    def _web_events(self, day, rng, who, secs, crm_touch) -> _Batch:
        p, n = self.p, who.size
        etype = rng.choice(len(WEB_TYPES), size=n, p=WEB_TYPE_P)
        member = p.is_member[who]
        etype[(etype == WEB_LOGIN) & ~member] = WEB_PAGE_VIEW
        signup = ~p.subscribed[who] & (rng.random(n) < NEWSLETTER_SIGNUP_RATE)
        signup[_repeats(who, signup)] = False  # at most once per person
        etype[signup] = WEB_SIGNUP
        logged_in = member & ((etype == WEB_LOGIN) | (rng.random(n) < 0.3))
        # Browser cookie of either device; the second device may be a shared family tablet.
        use_b = (p.device_b[who] >= 0) & (rng.random(n) < 0.5)
        signup_emails = p.emails(who[signup], _email_styles(rng, int(signup.sum())))
        email = np.zeros(n, dtype=signup_emails.dtype if signup_emails.size else "S1")
        email[signup] = signup_emails

        # Sign-ups join the email list; for members the CRM consent follows.
        new_subs, new_s = who[signup], secs[signup]
        joins = p.is_member[new_subs] & ~p.consent_email[new_subs]
        p.subscribed[new_subs] = True
        p.consent_email[new_subs[joins]] = True
        crm_touch.append((new_subs[joins], new_s[joins]))

        return _Batch("web_events", {
            "event_id": _fmt(self._next_ids("web_events", n), "WE" + "X" * 12),
            "event_time": _day_ts(day, secs, iso=True),
            "device_id": self._device_column(np.where(use_b, p.device_b[who], p.device_a[who])),
            "member_id": p.member_ids(who, logged_in),
            "email": email,
            "event_type": WEB_TYPES[etype],
            "page": _web_pages(rng, etype),
        }, who)

    def _app_events(self, day, rng, who, secs) -> _Batch:
        p, n = self.p, who.size
        etype = rng.choice(len(APP_TYPES), size=n, p=APP_TYPE_P)
        member = p.is_member[who]
        etype[(etype == APP_LOGIN) & ~member] = APP_OPEN
        logged_in = member & ((etype == APP_LOGIN) | (rng.random(n) < 0.75))
        return _Batch("app_events", {
            "event_id": _fmt(self._next_ids("app_events", n), "AE" + "X" * 12),
            "event_time": _day_ts(day, secs, iso=True),
            "device_id": p.device_ids(p.device_a[who]),  # the app lives on the phone
            "member_id": p.member_ids(who, logged_in),
            "event_type": APP_TYPES[etype],
            "platform": PLATFORMS[p.platform[who]],
        }, who)

    def _email_events(self, d, day, rng, signed, churned, crm_touch) -> _Batch:
        p = self.p
        parts: list[tuple[np.ndarray, np.ndarray, bool, int]] = []  # (who, secs, is_email, type)

        # Email campaign: morning send, opens/clicks later that day; churned people rarely open.
        sent = np.flatnonzero(signed & p.subscribed & (rng.random(p.n) < EMAIL_SEND_RATE))
        send_s = rng.integers(1 * 3600, 3 * 3600, sent.size)
        opened = rng.random(sent.size) < p.engagement[sent] * np.where(churned[sent], 0.15, 1.0)
        open_s = np.minimum(send_s + rng.exponential(3 * 3600, sent.size).astype(np.int64), 86390)
        clicked = opened & (rng.random(sent.size) < 0.15)
        unsub = opened & (rng.random(sent.size) < 0.004)
        later_s = open_s + rng.integers(5, 9, sent.size)
        parts += [(sent, send_s, True, SEND), (sent[opened], open_s[opened], True, OPEN),
                  (sent[clicked], later_s[clicked], True, CLICK), (sent[unsub], later_s[unsub], True, UNSUB)]
        # Some churners unsubscribe shortly before they leave.
        leaving = np.flatnonzero((p.unsub_day == d) & p.subscribed)
        leaving = leaving[~np.isin(leaving, sent[unsub])]
        parts.append((leaving, _times(rng, leaving.size), True, UNSUB))

        # SMS campaign to members with SMS consent; a "TD" reply unsubscribes.
        sms = np.flatnonzero(signed & p.consent_sms & (rng.random(p.n) < SMS_SEND_RATE))
        sms_s = rng.integers(2 * 3600, 4 * 3600, sms.size)
        sms_click = rng.random(sms.size) < 0.04 * np.where(churned[sms], 0.2, 1.0)
        sms_unsub = rng.random(sms.size) < 0.003
        reply_s = sms_s + rng.integers(30, 7200, sms.size)
        parts += [(sms, sms_s, False, SEND), (sms[sms_click], reply_s[sms_click], False, CLICK),
                  (sms[sms_unsub], reply_s[sms_unsub], False, UNSUB)]

        who = np.concatenate([x[0] for x in parts])
        secs = np.concatenate([x[1] for x in parts]).astype(np.int64)
        is_email = np.concatenate([np.full(x[0].size, x[2]) for x in parts])
        etype = np.concatenate([np.full(x[0].size, x[3], dtype=np.int8) for x in parts])
        order = np.argsort(secs, kind="stable")
        who, secs, is_email, etype = who[order], secs[order], is_email[order], etype[order]

        # Unsubscribes change state; members' CRM consent follows the same day.
        email_out = np.concatenate([sent[unsub], leaving])
        p.subscribed[email_out] = False
        crm_email = email_out[p.is_member[email_out] & p.consent_email[email_out]]
        p.consent_email[crm_email] = False
        sms_out = sms[sms_unsub]
        crm_sms = sms_out[p.consent_sms[sms_out]]
        p.consent_sms[crm_sms] = False
        touched = np.concatenate([crm_email, crm_sms])
        if touched.size:
            unsub_who, first = np.unique(who[etype == UNSUB], return_index=True)
            crm_touch.append((touched, secs[etype == UNSUB][first][np.searchsorted(unsub_who, touched)]))

        styles = _email_styles(rng, who.size)
        styles[rng.random(who.size) < 0.5] = 0  # ESP data is cleaner than hand-typed data
        iso_year, week, _ = day.isocalendar()
        campaign = f"{iso_year}W{week:02d}".encode()
        return _Batch("email_events", {
            "event_id": _fmt(self._next_ids("email_events", who.size), "EE" + "X" * 12),
            "event_time": _day_ts(day, secs, iso=True),
            "message_channel": np.where(is_email, b"email", b"sms"),
            "email": np.where(is_email, p.emails(who, styles), b""),
            "phone": np.where(is_email, b"", p.phones(who, rng)),
            "campaign_id": np.where(is_email, b"EM" + campaign, b"SM" + campaign),
            "event_type": EMAIL_EVENT_TYPES[etype],
        }, who)

    def _purchases(self, day, rng, factor) -> tuple[_Batch, tuple[_Batch, np.ndarray]]:
        p = self.p
        counts = rng.poisson(p.purchase_rate * factor)
        buyers = np.flatnonzero(counts)
        who = np.repeat(buyers, counts[buyers])
        in_store = rng.random(who.size) < p.store_share[who]
        return self._pos_purchases(day, rng, who[in_store]), self._online_orders(day, rng, who[~in_store])

    def _pos_purchases(self, day, rng, who) -> _Batch:
        p, n = self.p, who.size
        # Stores open 10:00-22:00 Shanghai time, so the local date equals the UTC day.
        local_s = np.sort(rng.integers(10 * 3600, 22 * 3600, n))
        store = np.where(rng.random(n) < 0.85, p.home_store[who], rng.integers(0, p.n_stores, n))
        card = p.is_member[who] & (rng.random(n) < 0.65)
        gives_phone = rng.random(n) < np.where(card, 0.1, 0.35)
        phone = np.where(gives_phone, p.phones(who, rng), b"")
        # Walk-ins without a phone at the two busiest stores get the assistant's phone typed in.
        assistant = ~card & ~gives_phone & (store < 2) & (rng.random(n) < STORE_PHONE_RATE)
        if assistant.any():
            phone[assistant] = _fmt(p.store_phones[store[assistant]], PHONE_LAYOUTS[0])
            self._count_trap("store_phone", phone[assistant])
        items = 1 + rng.poisson(1.2, n)
        amount = _amounts(rng, _purchase_cents(rng, p.spend[who] * (0.7 + 0.3 * items)), 0.1, POS_YUAN)
        self.yuan_amounts += int(np.strings.startswith(amount, POS_YUAN.encode()).sum())
        return _Batch("pos_purchases", {
            "transaction_id": _fmt(self._next_ids("pos_purchases", n), "T" + "X" * 10),
            "store_id": _fmt(store + 1, "SXXX"),
            "purchased_at": _day_ts(day, local_s, iso=False),
            "member_id": p.member_ids(who, card),
            "phone": phone,
            "amount": amount,
            "items": _num(items),
            "store_name": p.store_names[store],
        }, who)

    def _online_orders(self, day, rng, who) -> tuple[_Batch, np.ndarray]:
        p, n = self.p, who.size
        secs = _times(rng, n)
        order = np.argsort(secs, kind="stable")
        who, secs = who[order], secs[order]
        logged_in = p.is_member[who] & (rng.random(n) < 0.8)  # others check out as guests
        email = self._maybe_placeholder(rng, p.emails(who, _email_styles(rng, n)),
                                        PLACEHOLDER_EMAILS, "placeholder_email")
        phone = np.where(rng.random(n) < 0.8, p.phones(who, rng), b"")
        phone = self._maybe_placeholder(rng, phone, PLACEHOLDER_PHONES, "placeholder_phone")
        use_b = (p.device_b[who] >= 0) & (rng.random(n) < 0.4)
        cents = _purchase_cents(rng, p.spend[who])
        amount = _amounts(rng, cents, 0.0)
        return _Batch("online_orders", {
            "order_id": _fmt(self._next_ids("online_orders", n), "O" + "X" * 10),
            "ordered_at": _day_ts(day, secs, iso=True),
            "member_id": p.member_ids(who, logged_in),
            "email": email,
            "phone": phone,
            "device_id": self._device_column(np.where(use_b, p.device_b[who], p.device_a[who])),
            "amount": amount,
            "currency": np.full(n, b"CNY"),
            "status": ORDER_STATUS[rng.choice(3, size=n, p=[0.9, 0.06, 0.04])],
        }, who), cents

    def _tickets(self, d, day, rng, signed, churned, pre_churn, rng_new) -> _Batch:
        p = self.p
        # Complaints pile up before churn and linger for a month after it.
        rate = np.where(signed & ~churned, TICKET_RATE, 0.0)
        rate = np.where(pre_churn, 4 * TICKET_RATE, rate)
        rate = np.where(churned & (d - p.churn_day < 30), TICKET_RATE, rate)
        who = np.flatnonzero(rng.random(p.n) < rate)
        n = who.size
        secs = np.sort(_times(rng, n))
        via = rng.choice(3, size=n, p=[0.45, 0.3, 0.25])  # chat, call, email
        complaint_p = np.where(pre_churn[who], 0.8, 0.35)
        u = rng.random(n)
        mood = np.where(u < complaint_p, 0, np.where(u < complaint_p + 0.15, 2, 1))
        message = np.zeros(n, dtype="S80")
        for m, texts in enumerate(MESSAGES):
            sel = mood == m
            message[sel] = _pick(rng, texts, int(sel.sum()))
        email = np.where((via != 1) | (rng.random(n) < 0.2), p.emails(who, _email_styles(rng, n)), b"")
        phone = np.where((via == 1) | (rng.random(n) < 0.3), p.phones(who, rng), b"")
        created = _day_ts(day, secs, iso=False)
        batch = _Batch("service_tickets", {
            "ticket_id": _fmt(self._next_ids("service_tickets", n), "TK" + "X" * 8),
            "created_at": created,
            "updated_at": created,
            "member_id": p.member_ids(who, rng.random(n) < 0.6),
            "email": self._maybe_placeholder(rng, email, PLACEHOLDER_EMAILS, "placeholder_email"),
            "phone": self._maybe_placeholder(rng, phone, PLACEHOLDER_PHONES, "placeholder_phone"),
            "contact_channel": TICKET_CHANNELS[via],
            "category": _pick(rng, TICKET_CATEGORIES, n, [0.4, 0.2, 0.25, 0.15]),
            "status": np.full(n, b"open"),
            "message": message,
        }, who, new_key=np.ones(n, dtype=bool))

        # Most tickets are closed 1-6 days later: a second version lands in that day's file.
        closes = rng.random(n) < 0.85
        close_day = d + rng.integers(1, 7, n)
        self._queue_messages(d, rng_new, batch, secs, mood, pre_churn[who], np.where(closes, close_day, NEVER))
        for cd in np.unique(close_day[closes]).tolist():
            if cd < self.cfg.days:
                self.pending_closures.setdefault(cd, []).append(batch.take(closes & (close_day == cd)))
        closing = self.pending_closures.pop(d, [])
        if not closing:
            return batch
        closed = _concat(closing)
        k = len(closed)
        closed.columns["updated_at"] = _day_ts(day, rng.integers(1 * 3600, 13 * 3600, k), iso=False)
        closed.columns["status"] = np.full(k, b"closed")
        closed.new_key = np.zeros(k, dtype=bool)
        both = _concat([batch, closed])
        return both.take(np.argsort(both.columns["updated_at"], kind="stable"))

    def _crm_members(self, d, day, rng, signed, crm_touch) -> _Batch:
        p = self.p
        members = p.is_member & signed
        # Day 0 carries the initial export of members registered before the window.
        initial = np.flatnonzero(members & (p.signup_day < 0)) if d == 0 else np.empty(0, np.int64)
        inserts = np.flatnonzero(p.is_member & (p.signup_day == d))
        # Random profile edits: city moves and consent flips.
        edits = np.flatnonzero(members & (p.signup_day < d) & (rng.random(p.n) < CRM_UPDATE_RATE))
        kind = rng.choice(3, size=edits.size, p=[0.5, 0.25, 0.25])
        moved, flip_email, flip_sms = edits[kind == 0], edits[kind == 1], edits[kind == 2]
        p.city[moved] = rng.integers(0, len(CITIES), moved.size)
        p.consent_email[flip_email] = ~p.consent_email[flip_email]
        p.subscribed[flip_email] = p.consent_email[flip_email]
        p.consent_sms[flip_sms] = ~p.consent_sms[flip_sms]

        touches = [(initial, np.zeros(initial.size)), (inserts, p.signup_sec[inserts]),
                   (edits, _times(rng, edits.size)), *crm_touch]
        who = np.concatenate([t[0] for t in touches]).astype(np.int64)
        secs = np.concatenate([t[1] for t in touches]).astype(np.int64)
        is_insert = np.arange(who.size) < initial.size + inserts.size
        # One row per member per day, showing the state after the day's last change.
        order = np.lexsort((-secs, who))
        who, secs, is_insert = who[order], secs[order], is_insert[order]
        first = np.ones(who.size, dtype=bool)
        first[1:] = who[1:] != who[:-1]
        if who.size:
            is_insert = np.logical_or.reduceat(is_insert, np.flatnonzero(first))
        who, secs = who[first], secs[first]
        order = np.argsort(secs, kind="stable")
        who, secs, is_insert = who[order], secs[order], is_insert[order]

        return _Batch("crm_members", {
            "member_id": p.member_ids(who),
            "full_name": _cat(GIVEN_CAP[p.given[who]], b" ", SURNAME_CAP[p.surname[who]]),
            "email": p.emails(who, p.crm_email_style[who]),
            "phone": render_phones(p.phone[who], p.crm_phone_style[who]),
            "loyalty_card": _fmt(p.loyalty[who], "8800" + "X" * 8),
            "city": CITIES[p.city[who]],
            "registered_at": _cat(_dates(self.cfg.start_date, p.signup_day[who]), b" ", _hms(p.signup_sec[who])),
            "updated_at": _day_ts(day, secs, iso=False),
            "consent_email": _bools(p.consent_email[who]),
            "consent_sms": _bools(p.consent_sms[who]),
        }, who, new_key=is_insert)


    # -- channels added with the super-app / helpdesk / order-line feeds -------- #

    def _queue_messages(self, d, rng, tickets: _Batch, secs, mood, pre_churn, close_day) -> None:
        """1-4 messages per new ticket: the customer's opening message at creation, then an
        agent/customer exchange before the ticket closes (or within 3 days); queued per day."""
        n = len(tickets)
        if not n:
            return
        k = rng.choice(np.array([1, 2, 3, 4]), size=n, p=[0.3, 0.35, 0.2, 0.15])
        t = np.repeat(np.arange(n), k)
        j = np.arange(t.size) - (np.cumsum(k) - k)[t]
        created = d * 86400 + np.asarray(secs, dtype=np.int64)
        end = np.where(close_day < NEVER, close_day.astype(np.int64) * 86400 + 3600, created + 3 * 86400)
        u = np.where(j == 0, 0.0, rng.uniform(0.02, 1.0, t.size))
        u = u[np.lexsort((u, t))]  # ascending within each ticket; the opening message stays first
        when = created[t] + (u * (end - created)[t]).astype(np.int64)
        author = (j % 2).astype(np.int8)  # customer, agent, customer, agent

        body = np.zeros(t.size, dtype="S120")
        body[j == 0] = tickets.columns["message"][t[j == 0]]
        agent = author == 1
        body[agent] = _pick(rng, AGENT_REPLIES, int(agent.sum()))
        follow = np.flatnonzero((author == 0) & (j > 0))
        fm, fp = mood[t[follow]], pre_churn[t[follow]]
        # (angry, neutral) shares by the ticket's mood; the rest are thankful.
        angry = np.select([fp & (fm == 0), fm == 0, fm == 1], [0.8, 0.55, 0.05], default=0.0)
        neutral = np.select([fp & (fm == 0), fm == 0, fm == 1], [0.1, 0.2, 0.45], default=0.1)
        v = rng.random(follow.size)
        senti = np.where(v < angry, 0, np.where(v < angry + neutral, 1, 2))
        for m, texts in enumerate(CUSTOMER_FOLLOW_UPS):
            sel = follow[senti == m]
            body[sel] = _pick(rng, texts, sel.size)

        msg_day = when // 86400
        for md in np.unique(msg_day).tolist():
            if md < self.cfg.days:  # later messages are not written yet when the window ends
                rows = msg_day == md
                self.pending_messages.setdefault(md, []).append(_Batch("service_messages", {
                    "ticket_id": tickets.columns["ticket_id"][t[rows]],
                    "sec": when[rows] % 86400,
                    "author": AUTHORS[author[rows]],
                    "body": body[rows],
                }, tickets.person[t[rows]]))

    def _service_messages(self, d, day, rng) -> _Batch:
        parts = self.pending_messages.pop(d, [])
        if parts:
            msgs = _concat(parts)
            msgs = msgs.take(np.argsort(msgs.columns["sec"], kind="stable"))
        else:
            msgs = _Batch("service_messages", {"ticket_id": np.empty(0, "S10"), "sec": np.empty(0, np.int64),
                                               "author": np.empty(0, "S8"), "body": np.empty(0, "S1")},
                          np.empty(0, np.int64))
        n = len(msgs)
        ids = _fmt(self._next_ids("service_messages", n), "MG" + "X" * 10)
        sent = _day_ts(day, msgs.columns["sec"], iso=False)
        body = msgs.columns["body"].astype("S200")
        # Hostile free text: control characters and SQL-looking text in a few customer messages.
        free = np.flatnonzero(msgs.columns["author"] == b"customer")
        free = free[rng.permutation(free.size)]
        for kind, texts in (("control_chars", CONTROL_TEXT), ("sql_like_text", SQL_LIKE)):
            take = self._due(kind, free.size)
            rows, free = np.sort(free[:take]), free[take:]
            hostile = _pick(rng, texts, take)
            # Control characters replace the text; SQL-looking text is pasted after it.
            body[rows] = hostile if kind == "control_chars" else _cat(body[rows], b" ", hostile)
            for r in rows.tolist():
                self.log_mess(kind, "service_messages", channel_file("service_messages", day),
                          f"message_id={ids[r].decode()} ticket_id={msgs.columns['ticket_id'][r].decode()}")
        return _Batch("service_messages", {
            "message_id": ids,
            "ticket_id": msgs.columns["ticket_id"],
            "sent_at": sent,
            "author": msgs.columns["author"],
            "body": body,
            "updated_at": sent,
        }, msgs.person)

    def _mini_program_events(self, d, day, rng, factor) -> _Batch:
        p = self.p
        counts = rng.poisson(p.mp_rate * factor[p.mp_idx])
        active = np.flatnonzero(counts)
        who = np.repeat(p.mp_idx[active], counts[active])
        secs = _times(rng, who.size)
        order = np.argsort(secs, kind="stable")
        who, secs = who[order], secs[order]
        n = who.size
        etype = rng.choice(len(MP_TYPES), size=n, p=MP_TYPE_P)
        # Sharing the phone number (WeChat phone authorisation) happens once per person.
        auth = ~p.mp_phone_shared[who] & (rng.random(n) < MP_PHONE_AUTH_RATE)
        auth[_repeats(who, auth)] = False
        etype[auth] = MP_PHONE_AUTH
        p.mp_phone_shared[who[auth]] = True
        k = int(auth.sum())
        phone = np.zeros(n, dtype="S15")
        phone[auth] = render_phones(p.phone[who[auth]], np.where(rng.random(k) < 0.15, 2, 0))
        base = np.where(etype == 0, MP_BROWSE_PAGES[rng.integers(0, len(MP_BROWSE_PAGES), n)], MP_PAGES[etype])
        sku = _fmt(100000 + rng.integers(0, SKU_COUNT, n), "SKUXXXXXX")
        page = np.where(np.strings.endswith(base, b"sku="), np.strings.add(base, sku), base)
        return _Batch("mini_program_events", {
            "event_id": _fmt(self._next_ids("mini_program_events", n), "MP" + "X" * 12),
            "event_time": _day_ts(day, secs, iso=True),
            "open_id": p.open_ids(who),
            "member_id": p.member_ids(who, p.bind_day[who] <= d),
            "phone": phone,
            "event_type": MP_TYPES[etype],
            "page": page,
        }, who)

    def _social_interactions(self, d, day, rng, active, factor) -> _Batch:
        """Official account / community group (open_id) and weibo (handle) interactions.

        Churners unfollow and leave groups around their churn date (decay day), on top of a
        small baseline; mentions fade with activity."""
        p = self.p
        idx = p.social_idx
        m = idx.size
        act, f = active[idx], factor[idx]
        decay = p.soc_decay_day == d
        oid, wb = p.soc_open_id, p.soc_weibo

        u = rng.random(m)
        fol = p.oa_follower
        follow = oid & ~fol & act & (u < OA_FOLLOW_RATE)
        unfollow = fol & (u < UNFOLLOW_RATE + decay * DECAY_UNFOLLOW_P["oa"])

        u = rng.random(m)
        in_group = p.group_of >= 0
        join = oid & ~in_group & act & (u < GROUP_JOIN_RATE)
        leave = in_group & (u < UNFOLLOW_RATE + decay * DECAY_UNFOLLOW_P["group"])
        g_mention = in_group & ~leave & (u > 1 - GROUP_MENTION_RATE * f)
        group_col = p.group_of.copy()
        group_col[join] = p.soc_group_base[join] + rng.integers(0, 3, int(join.sum()))

        u = rng.random(m)
        wfol = p.weibo_follower
        w_follow = wb & ~wfol & act & (u < WEIBO_FOLLOW_RATE)
        w_unfollow = wfol & (u < UNFOLLOW_RATE + decay * DECAY_UNFOLLOW_P["weibo"])
        w_mention = wb & ~w_unfollow & (u > 1 - WEIBO_MENTION_RATE * f)

        p.oa_follower = (fol | follow) & ~unfollow
        p.group_of = np.where(leave, -1, group_col).astype(np.int32)
        p.weibo_follower = (wfol | w_follow) & ~w_unfollow

        spec = [(follow, OA, FOLLOW), (unfollow, OA, UNFOLLOW), (join, GROUP, GROUP_JOIN),
                (g_mention, GROUP, MENTION), (leave, GROUP, GROUP_LEAVE), (w_follow, WEIBO, FOLLOW),
                (w_unfollow, WEIBO, UNFOLLOW), (w_mention, WEIBO, MENTION)]
        sel = [np.flatnonzero(mask) for mask, _, _ in spec]
        pos = np.concatenate(sel)
        plat = np.concatenate([np.full(s.size, pf, dtype=np.int8) for s, (_, pf, _) in zip(sel, spec)])
        kind = np.concatenate([np.full(s.size, k, dtype=np.int8) for s, (_, _, k) in zip(sel, spec)])
        secs = _times(rng, pos.size)
        order = np.argsort(secs, kind="stable")
        pos, plat, kind, secs = pos[order], plat[order], kind[order], secs[order]
        who, n = idx[pos], pos.size
        return _Batch("social_interactions", {
            "interaction_id": _fmt(self._next_ids("social_interactions", n), "SI" + "X" * 12),
            "occurred_at": _day_ts(day, secs, iso=True),
            "platform": SOCIAL_PLATFORMS[plat],
            "open_id": np.where(plat != WEIBO, p.open_ids(who), b""),
            "social_handle": np.where(plat == WEIBO, p.handles(who), b""),
            "member_id": p.member_ids(who, (plat != WEIBO) & (rng.random(n) < 0.05)),
            "interaction_type": SOCIAL_TYPES[kind],
            "group_id": np.where(plat == GROUP, _fmt(np.maximum(group_col[pos], 0), "GRPXXXXX"), b""),
        }, who)

    def _order_lines(self, rng, orders: _Batch, cents: np.ndarray) -> _Batch:
        """1-4 lines per order; sum(quantity * unit_price) equals the order amount to the cent.

        Refund rows (negative amounts) carry negative quantities."""
        n = len(orders)
        k = np.minimum(1 + rng.poisson(0.7, n), 4)
        t = np.repeat(np.arange(n), k)
        first = np.cumsum(k) - k
        line_no = np.arange(t.size) - first[t] + 1
        total = np.abs(np.asarray(cents, dtype=np.int64))
        weight = rng.integers(50, 150, t.size)
        wsum = np.add.reduceat(weight, first) if n else np.zeros(0, np.int64)
        qty = rng.choice(np.array([1, 2, 3]), size=t.size, p=[0.75, 0.18, 0.07])
        line_total = qty * (total[t] * weight // wsum[t] // qty)
        last = line_no == k[t]
        line_total[last] = 0
        rest = total - (np.add.reduceat(line_total, first) if n else 0)
        # The last line takes the remainder, with a quantity that divides it.
        v = rng.random(n)
        q_last = np.where((rest % 3 == 0) & (v < 0.1), 3, np.where((rest % 2 == 0) & (v < 0.25), 2, 1))
        qty[last] = q_last[t[last]]
        line_total[last] = rest[t[last]]
        sign = np.where(np.asarray(cents)[t] < 0, -1, 1)
        return _Batch("order_lines", {
            "order_id": orders.columns["order_id"][t],
            "line_no": _num(line_no),
            "sku": _fmt(100000 + rng.integers(0, SKU_COUNT, t.size), "SKUXXXXXX"),
            "quantity": _num(sign * qty),
            "unit_price": _money(line_total // qty),
        }, orders.person[t])

    # -- real-world mess in the drop zone ----------------------------------------- #

    def _pos_mess(self, day, rng, pos: _Batch) -> _Batch:
        """A few phones typed with full-width digits (IME left in full-width mode)."""
        phone = pos.columns["phone"]
        cand = np.flatnonzero((phone != b"") & ~np.isin(phone, self.store_phone_text))
        take = self._due("fullwidth_digits", cand.size)
        if take:
            rows = np.sort(rng.choice(cand, take, replace=False))
            phone = phone.astype("S45")
            for r in rows.tolist():
                phone[r] = phone[r].decode().translate(FULLWIDTH_DIGITS).encode()
                self.log_mess("fullwidth_digits", "pos_purchases", channel_file("pos_purchases", day),
                          f"transaction_id={pos.columns['transaction_id'][r].decode()} column=phone")
            pos.columns["phone"] = phone
        return pos

    def _order_mess(self, day, rng, orders: _Batch, cents: np.ndarray) -> tuple[_Batch, np.ndarray]:
        """Legit refunds booked as negative amounts, and (1-3 times overall) a negative amount
        on a completed order -- bad data the pipeline should quarantine."""
        status = orders.columns["status"]
        perm = rng.permutation(len(orders))
        completed = perm[status[perm] == b"completed"]
        bad = completed[:self._due("negative_amount_completed", completed.size)]
        rest = perm[~np.isin(perm, bad)]
        refund = rest[:self._due("negative_refund", rest.size)]
        if not (bad.size or refund.size):
            return orders, cents
        cents = cents.copy()
        cents[bad] = -cents[bad]
        cents[refund] = -cents[refund]
        status = status.copy()
        status[refund] = b"refunded"
        orders.columns["status"] = status
        orders.columns["amount"] = _money(cents)
        for kind, rows in (("negative_amount_completed", bad), ("negative_refund", refund)):
            for r in np.sort(rows).tolist():
                self.log_mess(kind, "online_orders", channel_file("online_orders", day),
                          f"order_id={orders.columns['order_id'][r].decode()} "
                          f"amount={orders.columns['amount'][r].decode()} status={status[r].decode()}")
        return orders, cents

    def _null_keys(self, day, rng, web: _Batch) -> _Batch:
        """A few web events arrive without an event_id (rows are kept, the key is null)."""
        take = self._due("null_natural_key", len(web))
        if not take:
            return web
        rows = np.sort(rng.choice(len(web), take, replace=False))
        ids = web.columns["event_id"].copy()
        ids[rows] = b""
        web.columns["event_id"] = ids
        web.new_key = web.keyed().copy()
        web.new_key[rows] = False  # no key, so no ground-truth record
        for r in rows.tolist():
            self.log_mess("null_natural_key", "web_events", channel_file("web_events", day),
                      f"line={r + 1} event_time={web.columns['event_time'][r].decode()} "
                      f"device_id={web.columns['device_id'][r].decode()} "
                      f"person_id={self.p.person_ids(web.person[r:r + 1])[0].decode()}")
        return web

    def _deliver(self, d, day, rng, batch: _Batch) -> _Batch:
        """What the day's file really contains: ~1% of events held back 1-3 days (appended to a
        later file, event_time unchanged), earlier late arrivals, and for web events ~0.3%
        re-sent in the next day's file (at-least-once delivery)."""
        ch, n, last = batch.channel, len(batch), self.cfg.days - 1
        late = (rng.random(n) < LATE_RATE) & (d < last)
        target = np.minimum(d + rng.integers(1, 4, n), last)
        for t in np.unique(target[late]).tolist():
            rows = late & (target == t)
            self.pending_late.setdefault((ch, t), []).append(batch.take(rows))
            self.log_mess("late_event", ch, channel_file(ch, self.cfg.start_date + timedelta(days=t)),
                      f"count={int(rows.sum())} event_date={day.isoformat()}")
        on_time = batch.take(~late)
        if ch == "web_events":
            on_time = self._null_keys(day, rng, on_time)
        parts = [on_time, *self.pending_late.pop((ch, d), [])]
        if ch == "web_events":
            if d in self.pending_resent:
                parts.append(self.pending_resent.pop(d))
            again = (rng.random(len(on_time)) < RESENT_RATE) & (on_time.columns["event_id"] != b"")
            if again.any() and d < last:
                copy = on_time.take(again)
                copy.new_key = np.zeros(len(copy), dtype=bool)
                self.pending_resent[d + 1] = copy
                self.log_mess("duplicate_event", ch, channel_file(ch, day + timedelta(days=1)),
                          f"count={len(copy)} resent_from={channel_file(ch, day)}")
        return _concat(parts) if len(parts) > 1 else on_time

    def mess_rows(self) -> list[tuple[str, str, str, str]]:
        pos = f"{CHANNEL_DIR['pos_purchases']}/pos_purchases_*.csv"
        static = [
            ("gbk_encoding", "pos_purchases", pos,
             "store till export: every file is GBK-encoded (Chinese store_name, full-width yen sign)"),
            ("utf8_bom", "app_events", f"{CHANNEL_DIR['app_events']}/app_events_*.csv",
             "every file starts with a UTF-8 byte-order mark (EF BB BF)"),
            ("local_time_no_zone", "pos_purchases", pos,
             "purchased_at is Asia/Shanghai local time (UTC+8) without a zone; other channels are UTC"),
            ("currency_symbol_amount", "pos_purchases", pos,
             f"count={self.yuan_amounts} amounts written like {POS_YUAN}1,299.00 (symbol + thousands separator)"),
        ]
        return static + self.mess

def _repeats(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Positions of masked entries whose value already occurred at an earlier masked position."""
    pos = np.flatnonzero(mask)
    _, first = np.unique(values[pos], return_index=True)
    keep = np.zeros(pos.size, dtype=bool)
    keep[first] = True
    return pos[~keep]


def _web_pages(rng: np.random.Generator, etype: np.ndarray) -> np.ndarray:
    n = etype.size
    product = np.strings.add(b"/product/", _num(rng.integers(10000, 99999, n)))
    return np.select(
        [etype == 0, etype == 1, etype == 2, etype == 3, etype == 4],
        [np.where(rng.random(n) < 0.5, b"/", product), product,
         np.strings.add(b"/search?q=", _pick(rng, SEARCH_TERMS, n)), b"/cart", b"/account/login"],
        default=b"/newsletter",
    )


# --------------------------------------------------------------------------- #
# Writing
# --------------------------------------------------------------------------- #

def _rows_bytes(parts: list[np.ndarray | bytes], n: int) -> bytes:
    """Concatenate per-row byte-string columns and literals into one buffer.

    Columns are laid side by side in a NUL-padded uint8 matrix and the padding
    is dropped (generated text never contains NUL): far cheaper than repeated
    string concatenation or Python-level joins on millions of rows.
    """
    widths = [len(x) if isinstance(x, bytes) else x.dtype.itemsize for x in parts]
    mat = np.empty((n, sum(widths)), dtype=np.uint8)
    offset = 0
    for part, width in zip(parts, widths):
        if isinstance(part, bytes):
            mat[:, offset:offset + width] = np.frombuffer(part, dtype=np.uint8)
        else:
            mat[:, offset:offset + width] = np.ascontiguousarray(part).view(np.uint8).reshape(n, width)
        offset += width
    flat = mat.ravel()
    return flat[flat != 0].tobytes()


def _csv_field(values: np.ndarray) -> np.ndarray:
    """RFC 4180 quoting, applied only to values that need it."""
    needs = ((np.strings.find(values, b",") >= 0) | (np.strings.find(values, b'"') >= 0)
             | (np.strings.find(values, b"\n") >= 0) | (np.strings.find(values, b"\r") >= 0))
    if not needs.any():
        return values
    out = values.astype(f"S{values.dtype.itemsize * 2 + 2}")
    out[needs] = _cat(b'"', np.strings.replace(values[needs], b'"', b'""'), b'"')
    return out


_FREE_TEXT = {"full_name", "email", "phone", "city", "amount", "message", "body", "store_name"}


def _file_bytes(batch: _Batch) -> bytes:
    cols = CHANNEL_COLUMNS[batch.channel]
    n = len(batch)
    if batch.channel == "web_events":
        # Values are generated without quotes/backslashes, so wrapping them is valid JSON.
        parts: list[np.ndarray | bytes] = []
        for i, c in enumerate(cols):
            values = batch.columns[c]
            parts.append(("{" if i == 0 else ",").encode() + f'"{c}":'.encode())
            if (values == b"").any():
                parts.append(np.where(values == b"", b"null", _cat(b'"', values, b'"')))
            else:
                parts += [b'"', values, b'"']
        parts.append(b"}\n")
        return _rows_bytes(parts, n) if n else b""
    parts = []
    for c in cols:
        values = batch.columns[c]
        parts += [_csv_field(values) if c in _FREE_TEXT and n else values, b","]
    parts[-1] = b"\n"
    header = (",".join(cols) + "\n").encode()
    return header + (_rows_bytes(parts, n) if n else b"")


def _encoded_file(batch: _Batch) -> bytes:
    """CSV/JSONL bytes in the channel's encoding (GBK for the store tills, BOM for the app export)."""
    data = _file_bytes(batch)
    encoding = CHANNEL_ENCODING[batch.channel]
    if encoding == "gbk":
        return data.decode("utf-8").encode("gbk")
    if encoding == "utf-8-sig":
        return b"\xef\xbb\xbf" + data
    return data


class _ParquetWriter:
    """Writes a batch as Parquet through DuckDB (no pyarrow): the CSV bytes go to a scratch file
    that DuckDB reads with every column VARCHAR (empty -> NULL) and copies to Parquet.

    One thread and a fixed row-group size keep the bytes identical from run to run."""

    def __init__(self):
        import duckdb

        self._scratch = tempfile.TemporaryDirectory(prefix="demo_data_")
        self._con = duckdb.connect()
        self._con.execute("SET threads=1")

    def write(self, path: Path, batch: _Batch) -> None:
        cols = CHANNEL_COLUMNS[batch.channel]
        scratch = Path(self._scratch.name) / "batch.csv"
        scratch.write_bytes(_file_bytes(batch))
        types = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
        source, target = (str(x).replace("'", "''") for x in (scratch, path))
        self._con.execute(
            f"COPY (SELECT * FROM read_csv('{source}', header=true, auto_detect=false, columns={types}, "
            f"quote='\"', escape='\"')) TO '{target}' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 1000000)")

    def close(self) -> None:
        self._con.close()
        self._scratch.cleanup()


def _truth_bytes(batch: _Batch, people: _People) -> bytes:
    rows = batch.keyed()
    n = int(rows.sum())
    if not n:
        return b""
    key_cols = CHANNEL_KEY[batch.channel]
    if isinstance(key_cols, tuple):
        key = _cat(*[part for c in key_cols for part in (b":", batch.columns[c][rows])][1:])
    else:
        key = batch.columns[key_cols][rows]
    parts = [batch.channel.encode() + b",", key, b",", people.person_ids(batch.person[rows]), b"\n"]
    return _rows_bytes(parts, n)


def _write_persons(path: Path, p: _People) -> None:
    start = p.cfg.start_date
    churned = p.churn_day < NEVER
    reactivated = p.react_day < NEVER
    idx = np.arange(p.n)
    parts = [
        p.person_ids(idx), b",", _dates(start, p.signup_day), b",", _bools(p.is_member), b",",
        p.member_ids(idx), b",",
        np.where(churned, _dates(start, np.where(churned, p.churn_day, 0)), b""), b",",
        np.where(reactivated, _dates(start, np.where(reactivated, p.react_day, 0)), b""), b",",
        _bools(churned & ~reactivated), b",", p.open_ids(idx), b"\n",
    ]
    header = b"person_id,signup_date,is_member,member_id,churn_date,reactivated_date,churned_by_end,open_id\n"
    path.write_bytes(header + _rows_bytes(parts, p.n))


def _write_traps(path: Path, sim: _Simulation) -> None:
    """One row per trap value; person_ids for person-level traps, count = records carrying it."""
    p, counts = sim.p, sim.trap_counts
    rows = []
    for tablet, people in p.households:
        dev = p.device_ids(np.array([tablet]))[0].decode()
        rows.append(("shared_device", dev, b";".join(p.person_ids(people).tolist()).decode(),
                     counts.get(("shared_device", dev), 0), "family tablet (web events + online orders)"))
    for phone in p.store_phones.tolist():
        rows.append(("store_phone", str(phone), "", counts.get(("store_phone", str(phone)), 0),
                     "shop-assistant phone typed for walk-ins (pos_purchases)"))
    for trap_type, values in (("placeholder_email", PLACEHOLDER_EMAILS), ("placeholder_phone", PLACEHOLDER_PHONES)):
        for v in values.tolist():
            rows.append((trap_type, v.decode(), "", counts.get((trap_type, v.decode()), 0),
                         "online_orders + service_tickets"))
    for who in np.flatnonzero(p.change_day < NEVER).tolist():
        changed = p.cfg.start_date + timedelta(days=int(p.change_day[who]))
        rows.append(("phone_change", str(p.new_phone[who]), p.person_ids(np.array([who]))[0].decode(), 1,
                     f"old={p.old_phone[who]} changed_on={changed.isoformat()}"))
    lines = ["trap_type,value,person_ids,count,note"] + [",".join(str(x) for x in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_mess(path: Path, sim: _Simulation) -> None:
    """One row per injected mess case (file-wide kinds once, with a glob as file)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["kind", "channel", "file", "detail"])
    writer.writerows(sim.mess_rows())
    path.write_text(buf.getvalue(), encoding="utf-8")


# --------------------------------------------------------------------------- #
# Entry points
# --------------------------------------------------------------------------- #

def generate(out_dir: Path, config: DemoConfig = DemoConfig(), progress: bool = False,
             record_truth: bool = True) -> GenerationSummary:
    """Write landing files, source-system exports and ground truth under ``out_dir``,
    replacing earlier output."""
    if config.customers < 1 or config.days < 1:
        raise ValueError("customers and days must be >= 1")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    landing, systems, truth_dir = out_dir / "landing", out_dir / "source_systems", out_dir / "ground_truth"
    for owned in (landing, systems, truth_dir):
        shutil.rmtree(owned, ignore_errors=True)
    for ch in CHANNELS:
        (out_dir / CHANNEL_DIR[ch]).mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)

    sim = _Simulation(config)
    rows = dict.fromkeys(CHANNELS, 0)
    files = 0
    step = max(1, config.days // 10)
    parquet = _ParquetWriter()
    truth: BinaryIO | None = open(truth_dir / "records.csv", "wb") if record_truth else None
    try:
        if truth:
            truth.write(b"channel,record_id,person_id\n")
        for d in range(config.days):
            day = config.start_date + timedelta(days=d)
            for batch in sim.day(d):
                ch = batch.channel
                path = out_dir / channel_file(ch, day)
                copies = [path]
                if ch == "online_orders" and sim.resend_today(d):
                    copies.append(out_dir / channel_file(ch, day, "_resend"))
                    sim.log_mess("duplicate_file", ch, channel_file(ch, day, "_resend"),
                             f"identical copy of {channel_file(ch, day)} ({len(batch)} rows)")
                if CHANNEL_EXT[ch] == "parquet":
                    parquet.write(path, batch)
                else:
                    data = _encoded_file(batch)
                    for target in copies:
                        target.write_bytes(data)
                rows[ch] += len(batch) * len(copies)
                files += len(copies)
                if truth:
                    truth.write(_truth_bytes(batch, sim.p))
            if progress and ((d + 1) % step == 0 or d + 1 == config.days):
                print(f"[demo_data] day {d + 1}/{config.days} ({day.isoformat()}) rows={sum(rows.values()):,} "
                      f"elapsed={time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    finally:
        parquet.close()
        if truth:
            truth.close()

    _write_persons(truth_dir / "persons.csv", sim.p)
    _write_traps(truth_dir / "traps.csv", sim)
    _write_mess(truth_dir / "mess.csv", sim)
    return GenerationSummary(config.customers, files, rows, landing, truth_dir,
                             round(time.perf_counter() - t0, 2), systems)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate seeded multi-channel demo data.")
    ap.add_argument("--out", type=Path, default=Path("data"))
    ap.add_argument("--customers", type=int, default=DemoConfig.customers)
    ap.add_argument("--days", type=int, default=DemoConfig.days)
    ap.add_argument("--end-date", type=date.fromisoformat, default=DemoConfig.end_date)
    ap.add_argument("--seed", type=int, default=DemoConfig.seed)
    ap.add_argument("--no-record-truth", action="store_true", help="skip ground_truth/records.csv")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    args = ap.parse_args(argv)
    cfg = DemoConfig(args.customers, args.days, args.end_date, args.seed)
    summary = generate(args.out, cfg, progress=not args.quiet, record_truth=not args.no_record_truth)
    if not args.quiet:
        print(f"[demo_data] {summary.people:,} people, {summary.files_written:,} files, "
              f"{sum(summary.rows_per_channel.values()):,} rows in {summary.seconds:.1f}s -> {args.out}",
              file=sys.stderr)
        for ch, n in summary.rows_per_channel.items():
            print(f"[demo_data]   {ch:<20} {n:>12,}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
