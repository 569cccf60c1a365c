import duckdb
import pytest

from data_quality.identity_accuracy import measure


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute(
        "create table linked (source_channel varchar, source_record_id varchar, customer_id varchar)"
    )
    yield connection
    connection.close()


def test_hand_counted_pairs(tmp_path, con):
    truth = tmp_path / "records.csv"
    truth.write_text("channel,record_id,person_id\n" + "\n".join(
        f"web,{r},{p}" for r, p in [("1", "A"), ("2", "A"), ("3", "A"), ("4", "B"), ("5", "B"), ("6", "C")]
    ) + "\n")
    # A split over C1/C2, B merged with C into C3, record 6 unlinked.
    con.execute("insert into linked values ('web','1','C1'), ('web','2','C1'), ('web','3','C2'), "
                "('web','4','C3'), ('web','5','C3'), ('web','6', null)")
    result = measure(con, truth, "linked")
    # predicted pairs: C1 (1,2) + C3 (4,5) = 2, all true; true pairs among linked: A 3 + B 1 = 4
    assert result.precision == 1.0
    assert result.recall == pytest.approx(2 / 4)
    assert (result.people_split, result.customers_merged) == (1, 0)
    assert result.records_linked == 5


def test_a_merge_of_strangers_lowers_precision(tmp_path, con):
    truth = tmp_path / "records.csv"
    truth.write_text("channel,record_id,person_id\nweb,1,A\nweb,2,A\nweb,3,B\n")
    con.execute("insert into linked values ('web','1','C1'), ('web','2','C1'), ('web','3','C1')")
    result = measure(con, truth, "linked")
    assert result.precision == pytest.approx(1 / 3)
    assert result.recall == 1.0
    assert result.customers_merged == 1
