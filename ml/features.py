"""Point-in-time customer features, computed in SQL inside the warehouse.

Every feature uses only rows on or before the cut-off; the label (if asked for) looks strictly
after it. Aggregation happens in DuckDB, so only one row per customer reaches pandas.
Reads: marts.orders, intermediate.int_touchpoints_linked, intermediate.int_service_messages_scored,
staging.stg_messaging__events, staging.stg_social__interactions.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

FEATURES = [
    "recency_days",
    "tenure_days",
    "orders_365",
    "spend_365",
    "orders_90",
    "orders_prior_90",
    "spend_90",
    "avg_order_value",
    "avg_days_between_orders",
    "online_share",
    "logins_30",
    "events_30",
    "events_prior_30",
    "days_since_last_touch",
    "tickets_90",
    "email_opens_90",
    "unsubscribed",
    "social_decay_90",
    "complaints_90",
]

_FEATURE_SQL = """
with orders as (
    select customer_id, order_date, amount, sales_channel
    from marts.orders
    where is_purchase and customer_id is not null and order_date <= $cutoff
),
buyers as (
    select
        customer_id,
        min(order_date) as first_order,
        max(order_date) as last_order,
        count(*) filter (where order_date > $cutoff - interval 365 day) as orders_365,
        coalesce(sum(amount) filter (where order_date > $cutoff - interval 365 day), 0) as spend_365,
        count(*) filter (where order_date > $cutoff - interval 90 day) as orders_90,
        count(*) filter (where order_date <= $cutoff - interval 90 day
                           and order_date > $cutoff - interval 180 day) as orders_prior_90,
        coalesce(sum(amount) filter (where order_date > $cutoff - interval 90 day), 0) as spend_90,
        avg(amount) as avg_order_value,
        count(distinct order_date) as order_days,
        avg(case when sales_channel = 'online' then 1.0 else 0.0 end) as online_share
    from orders
    group by customer_id
),
touches as (
    select
        customer_id,
        count(*) filter (where touch_type = 'login' and occurred_at > $cutoff - interval 30 day) as logins_30,
        count(*) filter (where touch_type in ('event', 'login') and occurred_at > $cutoff - interval 30 day) as events_30,
        count(*) filter (where touch_type in ('event', 'login') and occurred_at <= $cutoff - interval 30 day
                           and occurred_at > $cutoff - interval 60 day) as events_prior_30,
        max(occurred_at) as last_touch,
        count(*) filter (where source_channel = 'service_tickets' and occurred_at > $cutoff - interval 90 day) as tickets_90
    from intermediate.int_touchpoints_linked
    where customer_id is not null and occurred_at < $cutoff + interval 1 day
    group by customer_id
),
-- Each channel's details joined to that channel's touches only: the channel filter reaches the
-- scan, so each join reads that channel's touches rather than every touch, and within a channel
-- the source record id is the key (no record key built per row). Each CTE reads the table
-- itself: a shared CTE of the touches would be materialised, which was slower.
-- Opens (in the window) and unsubscribes (at any time) are joined apart, each to its own event
-- type: one join of every email touch of the history to every messaging event took 2.0 s at a
-- million customers, the two 0.85 s.
email_opens as (
    select t.customer_id, count(*) as email_opens_90
    from intermediate.int_touchpoints_linked as t
    inner join staging.stg_messaging__events as m on t.source_record_id = m.event_id
    where t.source_channel = 'email_events' and t.customer_id is not null and m.event_type = 'open'
      and t.occurred_at > $cutoff - interval 90 day and t.occurred_at < $cutoff + interval 1 day
    group by t.customer_id
),
unsubscribes as (
    select distinct t.customer_id
    from intermediate.int_touchpoints_linked as t
    inner join staging.stg_messaging__events as m on t.source_record_id = m.event_id
    where t.source_channel = 'email_events' and t.customer_id is not null and m.event_type = 'unsubscribe'
      and t.occurred_at < $cutoff + interval 1 day
),
social as (
    select t.customer_id, count(*) as social_decay_90
    from intermediate.int_touchpoints_linked as t
    inner join staging.stg_social__interactions as s on t.source_record_id = s.interaction_id
    where t.source_channel = 'social_interactions' and t.customer_id is not null
      and s.interaction_type in ('unfollow', 'group_leave')
      and t.occurred_at > $cutoff - interval 90 day and t.occurred_at < $cutoff + interval 1 day
    group by t.customer_id
),
-- Negative service messages the customer wrote, dated when sent (a ticket opened earlier can
-- carry a later complaint), through the tickets they belong to.
complaints as (
    select t.customer_id, count(*) as complaints_90
    from intermediate.int_touchpoints_linked as t
    inner join intermediate.int_service_messages_scored as m on t.source_record_id = m.ticket_id
    where t.source_channel = 'service_tickets' and t.customer_id is not null and m.sentiment = 'negative'
      and m.sent_at > $cutoff - interval 90 day and m.sent_at < $cutoff + interval 1 day
    group by t.customer_id
),
labels as (
    select customer_id, count(*) as future_orders
    from marts.orders
    where is_purchase and customer_id is not null
      and order_date > $cutoff and order_date <= $cutoff + to_days($horizon)
    group by customer_id
)
select
    b.customer_id,
    date_diff('day', b.last_order, $cutoff) as recency_days,
    date_diff('day', b.first_order, $cutoff) as tenure_days,
    b.orders_365, b.spend_365, b.orders_90, b.orders_prior_90, b.spend_90, b.avg_order_value,
    case when b.order_days > 1 then date_diff('day', b.first_order, b.last_order) / (b.order_days - 1)
         else date_diff('day', b.first_order, $cutoff) end as avg_days_between_orders,
    b.online_share,
    coalesce(t.logins_30, 0) as logins_30,
    coalesce(t.events_30, 0) as events_30,
    coalesce(t.events_prior_30, 0) as events_prior_30,
    coalesce(date_diff('day', cast(t.last_touch as date), $cutoff), date_diff('day', b.last_order, $cutoff)) as days_since_last_touch,
    coalesce(t.tickets_90, 0) as tickets_90,
    coalesce(e.email_opens_90, 0) as email_opens_90,
    case when u.customer_id is null then 0 else 1 end as unsubscribed,
    coalesce(so.social_decay_90, 0) as social_decay_90,
    coalesce(c.complaints_90, 0) as complaints_90,
    case when coalesce(l.future_orders, 0) = 0 then 1 else 0 end as churned
from buyers as b
left join touches as t using (customer_id)
left join email_opens as e using (customer_id)
left join unsubscribes as u using (customer_id)
left join social as so using (customer_id)
left join complaints as c using (customer_id)
left join labels as l using (customer_id)
order by b.customer_id
"""


def customer_features(con, cutoff: date, horizon_days: int) -> pd.DataFrame:
    """One row per customer who bought on or before `cutoff`: FEATURES plus `churned`
    (no purchase in the `horizon_days` after the cut-off; meaningless for the latest cut-off)."""
    frame = con.execute(_FEATURE_SQL, {"cutoff": cutoff, "horizon": horizon_days}).df()
    frame[FEATURES] = frame[FEATURES].astype("float64")
    frame["churned"] = frame["churned"].astype("int64")
    return frame


class NoPurchases(ValueError):
    """The warehouse holds no purchase yet: there is nothing to learn from."""


def data_window(con) -> tuple[date, date]:
    """First and last purchase day in the warehouse."""
    first, last = con.execute(
        "select min(order_date), max(order_date) from marts.orders where is_purchase"
    ).fetchone()
    if first is None:
        raise NoPurchases("marts.orders holds no purchases: nothing to model")
    return first, last
