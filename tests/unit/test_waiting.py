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


def test_a_heartbeat_speaks_while_the_step_runs_and_stops_with_it():
    import time

    from driftline.waiting import heartbeat

    said: list[str] = []
    with heartbeat(said.append, "fitting", every=0.01):
        time.sleep(0.3)
    heard = len(said)
    assert heard >= 2 and all(line.startswith("fitting: still running, ") for line in said)
    time.sleep(0.2)
    assert len(said) == heard  # silent once the step is over


def test_every_is_due_at_most_once_per_period():
    from driftline.waiting import Every

    now = [0.0]
    every = Every(15, clock=lambda: now[0])
    seen = []
    for t in (1, 14, 15, 16, 29, 31, 60):
        now[0] = t
        seen.append(every.due())
    assert seen == [False, False, True, False, False, True, True]
