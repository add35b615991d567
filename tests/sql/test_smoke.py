from tests.helpers.pipeline import one_journey, run, windows


def test_one_pair_loads_with_its_window(db):
    one_journey(db)
    result = run(db)
    assert result["status"] == "succeeded"
    assert result["rows_inserted"] == 1
    row = windows(db)[(1, 10)]
    assert str(row["window_start_date"]) == "2026-03-06"
    assert str(row["window_end_date"]) == "2026-03-08"
