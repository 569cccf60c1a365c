"""How well identity resolution matches the truth, measured pairwise.

Over the records the pipeline linked to a customer: a pair of records is a predicted match when
both carry the same customer id, and a true match when the ground truth names the same person.
precision = true predicted pairs / predicted pairs; recall = true predicted pairs / true pairs.
Counted with n·(n-1)/2 per group in SQL, so millions of records never pair up row by row."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class IdentityAccuracy:
    records_linked: int
    records_with_truth: int
    precision: float
    recall: float
    people_split: int  # true people spread over more than one customer id
    customers_merged: int  # customer ids holding more than one true person
    people: int
    customers: int

    def as_dict(self) -> dict:
        return asdict(self)


_SQL = """
with truth as (
    select channel, record_id, person_id from read_csv(?, header=true, all_varchar=true)
),
linked as (
    select t.person_id, l.customer_id
    from {linked} as l
    -- profile versions are keyed member_id@updated_at; the truth names the member
    inner join truth as t on t.channel = l.source_channel
        and t.record_id = case when l.source_channel = 'crm_members'
                               then split_part(l.source_record_id, '@', 1) else l.source_record_id end
    where l.customer_id is not null
),
cells as (select customer_id, person_id, count(*) as n from linked group by 1, 2),
by_customer as (select customer_id, sum(n) as n, count(*) as people from cells group by 1),
by_person as (select person_id, sum(n) as n, count(*) as ids from cells group by 1)
select
    (select count(*) from {linked} where customer_id is not null),
    (select count(*) from linked),
    (select coalesce(sum(n * (n - 1) / 2), 0) from cells),
    (select coalesce(sum(n * (n - 1) / 2), 0) from by_customer),
    (select coalesce(sum(n * (n - 1) / 2), 0) from by_person),
    (select count(*) from by_person where ids > 1),
    (select count(*) from by_customer where people > 1),
    (select count(*) from by_person),
    (select count(*) from by_customer)
"""


def measure(con: duckdb.DuckDBPyConnection, records_truth: Path,
            linked: str = "intermediate.int_touchpoints_linked") -> IdentityAccuracy:
    """Compare `linked` (source_channel, source_record_id, customer_id) with the truth file
    (channel, record_id, person_id)."""
    (records_linked, with_truth, true_positive, predicted, actual, split, merged, people,
     customers) = con.execute(_SQL.format(linked=linked), [str(records_truth)]).fetchone()
    return IdentityAccuracy(
        records_linked=int(records_linked),
        records_with_truth=int(with_truth),
        precision=float(true_positive / predicted) if predicted else 1.0,
        recall=float(true_positive / actual) if actual else 1.0,
        people_split=int(split),
        customers_merged=int(merged),
        people=int(people),
        customers=int(customers),
    )
