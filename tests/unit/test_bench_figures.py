"""The benchmark's arithmetic: percentiles, and ratios that read the same way for every row."""

from services.bench.stats import Figure, percentile, table


def test_nearest_rank_percentiles() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7
    assert percentile([], 0.5) == 0


def test_a_ratio_is_the_projects_share_of_the_floor_whichever_way_is_better() -> None:
    assert Figure("rate", "lines/s", 25, 8_000, higher_is_better=True).ratio == 25 / 8_000
    assert Figure("p99", "ms", 400, 100, higher_is_better=False).ratio == 0.25
    assert Figure("p99", "ms", 0, 100, higher_is_better=False).ratio is None
    printed = table([Figure("intake", "lines/s", 25, 8_000, higher_is_better=True)])
    assert "| intake (lines/s) | 25.00   | 8,000 | 0.3%" in printed
