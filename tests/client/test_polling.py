"""The adaptive poll schedule: sparse while the eta is long, fast at the finish, backing off when stuck."""

from ppinfra.waiting import PollSchedule


def simulate(task_seconds: float, eta_of=lambda remaining: int(-(-remaining // 1))):
    """Polls a task that ends at ``task_seconds``; returns (polls, lag after the end)."""
    s = PollSchedule()
    t, polls = 0.0, 0
    while True:
        polls += 1
        remaining = task_seconds - t
        if remaining <= 0:
            return polls, t - task_seconds
        t += s.next_delay(eta_of(remaining), now=t)


def test_sixty_second_task_costs_under_one_poll_per_second_and_finishes_fast():
    polls, lag = simulate(60.0)
    assert polls / 60.0 < 1.0
    assert lag <= 0.1 + 1e-9


def test_short_tasks_detected_within_a_tick():
    for seconds in (0.3, 1.0, 1.7, 2.5, 7.3):
        _, lag = simulate(seconds)
        assert lag <= 0.1 + 1e-9, seconds


def test_wrong_eta_backs_off():
    s = PollSchedule()
    delays = [s.next_delay(1, now=i * 0.1) for i in range(40)]
    assert delays[0] == s.min_interval and max(delays) == s.idle_max


def test_unknown_eta_grows_to_idle_max():
    s = PollSchedule()
    delays = [s.next_delay(None) for _ in range(20)]
    assert delays[0] == s.min_interval and delays[-1] == s.idle_max
    assert all(a <= b for a, b in zip(delays, delays[1:]))
