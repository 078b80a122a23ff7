"""edge_deeplab.threads: stages in their own threads keep order, pass errors on, stop when abandoned."""
from __future__ import annotations

import threading

import pytest

from edge_deeplab.threads import stage, threaded


def test_chained_stages_keep_the_order_and_run_elsewhere():
    seen = set()

    def square(x):
        seen.add(threading.current_thread().name)
        return x * x
    assert list(stage(square, stage(lambda x: x + 1, range(50), name="a"), name="b")) == \
        [(x + 1) ** 2 for x in range(50)]
    assert seen == {"b"}


def test_an_error_in_a_stage_reaches_the_reader():
    def fail_at_3(x):
        if x == 3:
            raise ValueError("bad frame 3")
        return x
    got = []
    with pytest.raises(ValueError, match="bad frame 3"):
        for item in stage(fail_at_3, range(10)):
            got.append(item)
    assert got == [0, 1, 2]


def test_a_reader_that_stops_early_stops_the_producer():
    produced = []

    def source():
        for i in range(10_000):
            produced.append(i)
            yield i
    items = threaded(source(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()  # joins the producer
    assert len(produced) < 10  # it stopped a few items ahead, not at the end
