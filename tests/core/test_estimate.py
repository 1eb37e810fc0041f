"""Estimated times: the work ahead of a job at the live workers' measured speed."""

from __future__ import annotations

import pytest

from core.estimate import (
    Workload,
    describe_duration,
    long_job_warning,
    own_speed,
    speed_of,
)


def test_a_worker_record_gives_its_speed_once_it_has_finished_a_job() -> None:
    assert speed_of(b"120", b"60.0") == 2.0
    assert speed_of("30", "10") == 3.0
    assert speed_of(None, None) is None
    assert speed_of(b"0", b"0") is None
    assert speed_of(b"garbled", b"1") is None


def test_a_waiting_job_waits_for_the_running_rest_the_jobs_ahead_and_its_own_frames() -> None:
    load = Workload(speeds=(1.0, 3.0), running_frames_left=20, queued_frames=(40, 100, 8))
    assert load.frames_per_second == 4.0
    assert load.queued_seconds(1) == (20 + 40) / 4
    assert load.queued_seconds(2) == (20 + 40 + 100) / 4
    assert load.queued_seconds(3) == (20 + 40 + 100 + 8) / 4
    assert load.queued_seconds(4) is None  # not in the queue read
    assert load.queued_seconds(0) is None


def test_a_running_job_goes_at_its_own_pace_else_at_an_average_worker_speed() -> None:
    load = Workload(speeds=(1.0, 3.0), running_frames_left=0, queued_frames=())
    assert load.started_seconds(50, own_speed(10, 20.0)) == 100.0
    assert load.started_seconds(50, None) == 25.0  # 50 frames at 2 frames/s
    assert load.started_seconds(-3, None) == 0.0
    assert own_speed(0, 5.0) is None and own_speed(4, 0.0) is None


def test_without_a_measured_speed_there_is_no_estimate() -> None:
    load = Workload(speeds=(), running_frames_left=5, queued_frames=(10,))
    assert load.frames_per_second is None
    assert load.queued_seconds(1) is None
    assert load.started_seconds(10, None) is None
    assert load.started_seconds(10, 2.0) == 5.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "1 s"),
        (44.6, "45 s"),
        (60, "1 min"),
        (754, "13 min"),
        (3600, "1 h"),
        (7810, "2 h 10 min"),
    ],
)
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    assert describe_duration(seconds) == text


def test_only_a_job_over_the_threshold_is_warned_of() -> None:
    warning = long_job_warning(7810, 600)
    assert warning is not None and "about 2 h 10 min" in warning
    assert "a few seconds of the video first" in warning
    assert long_job_warning(599, 600) is None
    assert long_job_warning(None, 600) is None
    assert long_job_warning(10**6, 0) is None  # 0: never warn
