"""Point-in-time features: nothing after the cut-off counts, the label looks only after it, and
each channel's details reach the customer whose touch it is."""

from datetime import date, datetime

import duckdb
import pytest

from ml.features import FEATURES, customer_features

CUTOFF = date(2026, 6, 30)


@pytest.fixture()
def con():
    con = duckdb.connect()
    for schema in ("marts", "intermediate", "staging"):
        con.execute(f"create schema {schema}")
    con.execute("create table marts.orders (customer_id varchar, order_date date, amount decimal(18, 2), "
                "sales_channel varchar, is_purchase boolean)")
    con.execute("create table intermediate.int_touchpoints_linked (customer_id varchar, source_channel varchar, "
                "source_record_id varchar, touch_type varchar, occurred_at timestamp)")
    con.execute("create table staging.stg_messaging__events (event_id varchar, event_type varchar)")
    con.execute("create table staging.stg_social__interactions (interaction_id varchar, interaction_type varchar)")
    con.execute("create table intermediate.int_service_messages_scored (ticket_id varchar, sent_at timestamp, "
                "sentiment varchar)")
    # B's ticket t1: two complaints in the 90 days, one after the cut-off, and a thankful note.
    # A web record t1 of A shares the id and is no ticket.
    con.executemany("insert into intermediate.int_service_messages_scored values (?, ?, ?)", [
        ("t1", datetime(2026, 6, 10, 9), "negative"), ("t1", datetime(2026, 6, 12, 9), "negative"),
        ("t1", datetime(2026, 6, 14, 9), "positive"), ("t1", datetime(2026, 7, 1, 9), "negative"),
        ("t1", datetime(2026, 3, 1, 9), "negative"),     # more than 90 days before the cut-off
    ])
    con.executemany("insert into marts.orders values (?, ?, ?, ?, ?)", [
        ("A", date(2026, 1, 10), 100, "online", True),
        ("A", date(2026, 6, 20), 50, "offline", True),
        ("A", date(2026, 6, 25), 999, "online", False),   # a refund is not a purchase
        ("A", date(2026, 7, 15), 70, "online", True),     # after the cut-off: the label only
        ("B", date(2026, 3, 1), 40, "offline", True),
        ("C", date(2026, 7, 1), 10, "online", True),      # first purchase after the cut-off: no row
    ])
    con.executemany("insert into intermediate.int_touchpoints_linked values (?, ?, ?, ?, ?)", [
        ("A", "app_events", "a1", "login", datetime(2026, 6, 29, 8)),
        ("A", "web_events", "w1", "event", datetime(2026, 5, 20, 8)),
        ("A", "web_events", "t1", "event", datetime(2026, 4, 1, 8)),          # a ticket's id, not a ticket
        ("A", "web_events", "w2", "event", datetime(2026, 7, 2, 8)),          # after the cut-off
        ("A", "email_events", "e1", "message", datetime(2026, 6, 1, 8)),
        ("A", "email_events", "e2", "message", datetime(2026, 7, 3, 8)),      # after the cut-off
        ("A", "email_events", "e4", "message", datetime(2026, 7, 4, 8)),      # after the cut-off
        ("B", "email_events", "e3", "message", datetime(2026, 2, 1, 8)),
        ("B", "service_tickets", "t1", "service", datetime(2026, 6, 10, 8)),
        ("B", "social_interactions", "s1", "social", datetime(2026, 6, 15, 8)),
        # Another channel's record with the same source id: no email or social detail of its own.
        ("B", "web_events", "e1", "event", datetime(2026, 6, 16, 8)),
        ("B", "web_events", "s2", "event", datetime(2026, 6, 16, 9)),
    ])
    con.executemany("insert into staging.stg_messaging__events values (?, ?)",
                    [("e1", "open"), ("e2", "open"), ("e3", "unsubscribe"), ("e4", "unsubscribe")])
    con.executemany("insert into staging.stg_social__interactions values (?, ?)", [("s1", "unfollow"), ("s2", "unfollow")])
    yield con
    con.close()


def test_features_see_only_what_happened_by_the_cut_off(con):
    frame = customer_features(con, CUTOFF, horizon_days=90).set_index("customer_id")
    assert list(frame.index) == ["A", "B"]
    a, b = frame.loc["A"], frame.loc["B"]
    assert (a.recency_days, a.tenure_days) == (10, 171)
    assert (a.orders_365, a.spend_365, a.orders_90, a.spend_90) == (2, 150, 1, 50)
    assert a.online_share == 0.5
    assert (a.logins_30, a.events_30, a.events_prior_30) == (1, 1, 1)
    assert a.days_since_last_touch == 1
    assert (a.email_opens_90, a.unsubscribed, a.social_decay_90) == (1, 0, 0)
    assert (b.tickets_90, b.email_opens_90, b.unsubscribed, b.social_decay_90) == (1, 0, 1, 1)
    assert (a.complaints_90, b.complaints_90) == (0, 2)
    assert b.days_since_last_touch == 14
    # The label looks after the cut-off: A buys again within the horizon, B does not.
    assert (a.churned, b.churned) == (0, 1)
    assert frame[FEATURES].dtypes.eq("float64").all()


def test_an_earlier_cut_off_forgets_later_rows(con):
    frame = customer_features(con, date(2026, 2, 15), horizon_days=90).set_index("customer_id")
    assert list(frame.index) == ["A"]
    assert (frame.loc["A"].orders_365, frame.loc["A"].email_opens_90, frame.loc["A"].churned) == (1, 0, 1)
