import pytest
from grouping import count_by, group_by, index_by, sum_by

ORDERS = [
    {"id": 1, "customer": "ann", "total": 30},
    {"id": 2, "customer": "bob", "total": 12},
    {"id": 3, "customer": "ann", "total": 8},
]


def customer(record):
    return record["customer"]


def order_id(record):
    return record["id"]


def test_group_by_keeps_input_order():
    groups = group_by(ORDERS, customer)
    assert list(groups) == ["ann", "bob"]
    assert [order["id"] for order in groups["ann"]] == [1, 3]


def test_count_by():
    assert count_by(ORDERS, customer) == {"ann": 2, "bob": 1}


def test_sum_by():
    assert sum_by(ORDERS, customer, "total") == {"ann": 38, "bob": 12}


def test_index_by():
    assert index_by(ORDERS, order_id)[2]["customer"] == "bob"


def test_index_by_rejects_duplicates():
    with pytest.raises(KeyError):
        index_by(ORDERS, customer)
