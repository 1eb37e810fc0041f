"""Keypoint normalisation: pure functions checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model.keypoints import Keypoints
from model.motion import (
    convex_hull_area,
    movement_scale,
    normalize_keypoints,
    pose_distance,
    relative_jacobian,
)


def test_convex_hull_area_of_known_shapes() -> None:
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [0.5, 1.5]])
    assert convex_hull_area(square) == pytest.approx(4.0)
    triangle = np.array([[0, 0], [4, 0], [0, 3], [1, 1], [4, 0]])
    assert convex_hull_area(triangle) == pytest.approx(6.0)
    assert convex_hull_area(np.array([[0, 0], [1, 1], [2, 2]])) == 0.0


def test_hull_area_matches_shoelace_of_random_polygon() -> None:
    angles = np.sort(np.random.default_rng(0).uniform(0, 2 * np.pi, 12))
    ring = np.stack([np.cos(angles), np.sin(angles)], 1) * 3
    inside = np.random.default_rng(1).uniform(-1, 1, (20, 2))
    x, y = ring[:, 0], ring[:, 1]
    expected = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    assert convex_hull_area(np.concatenate([ring, inside])) == pytest.approx(expected)


def kp(value: list[list[float]], jacobian: np.ndarray | None = None) -> Keypoints:
    v = torch.tensor([value], dtype=torch.float32)
    j = None if jacobian is None else torch.from_numpy(jacobian[None].astype(np.float32))
    return Keypoints(v, j)


SQUARE = [[0.0, 0.0], [0.2, 0.0], [0.2, 0.2], [0.0, 0.2]]
BIG_SQUARE = [[0.0, 0.0], [0.4, 0.0], [0.4, 0.4], [0.0, 0.4]]


def test_movement_scale_is_ratio_of_sizes() -> None:
    assert movement_scale(kp(SQUARE).value, kp(BIG_SQUARE).value) == pytest.approx(0.5)


def test_relative_motion_with_adapted_scale() -> None:
    eye = np.tile(np.eye(2), (4, 1, 1))
    source, initial = kp(SQUARE, eye), kp(BIG_SQUARE, eye)
    moved = [[x + 0.1, y - 0.2] for x, y in BIG_SQUARE]
    driving = kp(moved, eye)
    out = normalize_keypoints(source, driving, initial, relative=True, adapt_scale=True)
    expected = np.array(SQUARE) + 0.5 * np.array([0.1, -0.2])
    assert np.allclose(out.value[0].numpy(), expected, atol=1e-6)
    plain = normalize_keypoints(source, driving, initial, relative=True, adapt_scale=False)
    assert np.allclose(plain.value[0].numpy(), np.array(SQUARE) + [0.1, -0.2], atol=1e-6)


def test_absolute_motion_uses_driving_keypoints() -> None:
    driving = kp(BIG_SQUARE, np.tile(np.eye(2), (4, 1, 1)))
    out = normalize_keypoints(kp(SQUARE), driving, kp(SQUARE), relative=False)
    assert out is driving


def test_relative_jacobian() -> None:
    rotation = np.array([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]])
    initial = np.array([[2.0, 0.0], [0.0, 0.5]])
    source = np.array([[1.0, 0.2], [0.0, 1.0]])
    driving = rotation @ initial
    out = relative_jacobian(
        *(torch.tensor(m[None, None], dtype=torch.float32) for m in (driving, initial, source))
    )
    assert np.allclose(out[0, 0].numpy(), rotation @ source, atol=1e-6)


def test_pose_distance_ignores_position_and_size() -> None:
    pose = np.array([[0.0, 0.0], [1.0, 0.1], [0.5, 1.0], [0.2, 0.6]])
    assert pose_distance(pose, pose * 2.5 + 3.0) == pytest.approx(0.0, abs=1e-12)
    assert pose_distance(pose, pose[::-1]) > 0.1
