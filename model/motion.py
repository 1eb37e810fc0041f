"""Keypoint normalisation: how the driving video's motion is transferred to the source.

Pure functions of keypoints; the jacobian inverse runs in fp32.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from model.keypoints import Keypoints


def convex_hull_area(points: np.ndarray) -> float:
    """Area of the 2-D convex hull of `N x 2` points (monotone chain + shoelace)."""
    pts = np.unique(np.asarray(points, dtype=np.float64), axis=0)
    if len(pts) < 3:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]

    def half(seq: np.ndarray) -> list[np.ndarray]:
        hull: list[np.ndarray] = []
        for p in seq:
            while len(hull) >= 2:
                (ax, ay), (bx, by) = hull[-2], hull[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                hull.pop()
            hull.append(p)
        return hull

    lower, upper = half(pts), half(pts[::-1])
    hull = np.array(lower[:-1] + upper[:-1])
    x, y = hull[:, 0], hull[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def movement_scale(kp_source_value: torch.Tensor, kp_initial_value: torch.Tensor) -> float:
    """sqrt(hull area of source) / sqrt(hull area of the reference driving frame).

    Both `1 x K x 2` (the first of a batch is used). 1.0 when a hull is degenerate.
    """
    source = convex_hull_area(kp_source_value[0].detach().float().cpu().numpy())
    initial = convex_hull_area(kp_initial_value[0].detach().float().cpu().numpy())
    if source <= 0 or initial <= 0:
        return 1.0
    return math.sqrt(source) / math.sqrt(initial)


def relative_jacobian(
    jac_driving: torch.Tensor, jac_initial: torch.Tensor, jac_source: torch.Tensor
) -> torch.Tensor:
    """J_driving @ inv(J_initial) @ J_source, in fp32: `B x K x 2 x 2`."""
    with torch.autocast(device_type=jac_driving.device.type, enabled=False):
        diff = torch.matmul(jac_driving.float(), torch.linalg.inv(jac_initial.float()))
        return torch.matmul(diff, jac_source.float())


def relative_keypoints(
    kp_source: Keypoints, kp_driving: Keypoints, kp_initial: Keypoints, scale: float = 1.0
) -> Keypoints:
    """Source keypoints moved by the driving motion since the reference frame.

    value = kp_source + scale * (kp_driving - kp_initial); jacobian relative as above.
    kp_source and kp_initial are batch 1 (or B); kp_driving is B.
    """
    value = (kp_driving.value - kp_initial.value) * scale + kp_source.value
    jacobian = kp_driving.jacobian
    if jacobian is not None and kp_initial.jacobian is not None and kp_source.jacobian is not None:
        jacobian = relative_jacobian(jacobian, kp_initial.jacobian, kp_source.jacobian)
    return Keypoints(value, jacobian)


def normalize_keypoints(
    kp_source: Keypoints,
    kp_driving: Keypoints,
    kp_initial: Keypoints,
    *,
    relative: bool = True,
    adapt_scale: bool = True,
) -> Keypoints:
    """The driving keypoints the generator is given.

    relative: source + (driving - reference) (x hull scale when adapt_scale), relative
    jacobian; absolute: the driving keypoints as they are.
    """
    if not relative:
        return kp_driving
    scale = movement_scale(kp_source.value, kp_initial.value) if adapt_scale else 1.0
    return relative_keypoints(kp_source, kp_driving, kp_initial, scale)


def pose_signature(value: np.ndarray) -> np.ndarray:
    """Keypoints `K x 2` centred and divided by sqrt(hull area): comparable across faces."""
    centred = np.asarray(value, dtype=np.float64) - np.mean(value, axis=0, keepdims=True)
    area = convex_hull_area(centred)
    return centred / math.sqrt(area) if area > 0 else centred


def pose_distance(source_value: np.ndarray, driving_value: np.ndarray) -> float:
    """Squared distance of two pose signatures (lower: more alike)."""
    return float(((pose_signature(source_value) - pose_signature(driving_value)) ** 2).sum())


def nearest_pose(source_value: np.ndarray, values: np.ndarray) -> int:
    """Index of the keypoints in `values` (`N x K x 2`) whose pose is nearest the source's
    (`K x 2`); the first of equals."""
    best, best_index = float("inf"), 0
    for index, value in enumerate(values):
        distance = pose_distance(source_value, value)
        if distance < best:
            best, best_index = distance, index
    return best_index
