import itertools

import pytest

from driftline.waiting import WaitTimeout, poll
from tests.waiting import wait_until


def test_poll_returns_the_first_answer_that_is_done():
    counter = itertools.count()
    assert poll(lambda: next(counter), 5, 0, done=lambda n: n >= 3) == 3


def test_poll_times_out_with_the_last_answer():
    with pytest.raises(WaitTimeout) as err:
        poll(lambda: [], 0.05, 0.01)
    assert err.value.last == []


def test_an_exception_from_the_probe_ends_the_wait():
    def probe():
        raise RuntimeError("exited")

    with pytest.raises(RuntimeError, match="exited"):
        poll(probe, 5, 0)


def test_wait_until_answers_instead_of_raising():
    assert wait_until(lambda: True, 1) is True
    assert wait_until(lambda: 0, 0.05, interval=0.01) == 0
