"""The report's table: node ids fit the width and never print the same."""

from __future__ import annotations

from pytest_conncache._report import FIELDS, Row, shorten_distinct, table


def _row(nodeid: str) -> Row:
    return {"nodeid": nodeid, **dict.fromkeys(FIELDS, 1)}


def _labels(lines: list[str]) -> list[str]:
    """The node id column of the table's test rows."""
    rows = lines[lines.index(next(line for line in lines if line.startswith("test "))) + 1 : -2]
    return [line.rsplit(maxsplit=7)[0] for line in rows]


def test_ids_alike_but_in_their_middle_stay_distinct_at_80_columns() -> None:
    ids = [
        "test_shop.py::test_concurrent_readers_share_one_call",
        "test_shop.py::test_concurrent_writers_share_one_call",
        "test_cart.py::test_x",
    ]
    wide = ids[0].replace("readers", "readers" * 3)
    lines = table([_row(nodeid) for nodeid in [*ids, wide]], 80)

    labels = _labels(lines)
    assert len(set(labels)) == len(labels) == 4, lines
    assert all(len(line) <= 80 for line in lines), lines
    assert "test_cart.py::test_x" in labels


def test_shortened_label_keeps_the_part_that_sets_it_apart() -> None:
    readers = "test_shop.py::test_concurrent_readers_share_one_call"
    writers = "test_shop.py::test_concurrent_writers_share_one_call"

    labels = shorten_distinct([readers, writers], 20)

    assert labels == ["…ders_share_one_call", "…ters_share_one_call"]


def test_middle_cut_is_kept_when_it_is_distinct() -> None:
    labels = shorten_distinct(["a" * 30 + "1", "b" * 30 + "2", "short"], 9)

    assert labels == ["aaaa…aaa1", "bbbb…bbb2", "short"]


def test_cut_never_prints_like_an_id_that_fits() -> None:
    labels = shorten_distinct(["ab…yz", "ab" + "m" * 10 + "yz"], 5)

    assert labels[0] == "ab…yz"
    assert labels[1] != "ab…yz"
    assert len(labels[1]) == 5


def test_ids_that_no_cut_tells_apart_are_printed_whole() -> None:
    left, right = "t" + "a" * 40 + "X" + "a" * 40, "t" + "a" * 40 + "Y" + "a" * 40

    assert shorten_distinct([left, right], 20) == [left, right]
