"""Keypoints as the networks exchange them."""

from __future__ import annotations

from typing import NamedTuple

import torch


class Keypoints(NamedTuple):
    """Keypoints of a batch of images.

    value: `B x K x 2`, (x, y) in [-1, 1]; jacobian: `B x K x 2 x 2`, the local affine
    motion around each keypoint (None for a model without jacobians).
    """

    value: torch.Tensor
    jacobian: torch.Tensor | None

    def to(self, dtype: torch.dtype) -> Keypoints:
        jac = None if self.jacobian is None else self.jacobian.to(dtype)
        return Keypoints(self.value.to(dtype), jac)

    def first(self) -> Keypoints:
        """The first of a batch, as a batch of one."""
        jac = None if self.jacobian is None else self.jacobian[:1]
        return Keypoints(self.value[:1], jac)

    def row(self, index: int) -> Keypoints:
        """The `index`-th of a batch, as a batch of one."""
        jac = None if self.jacobian is None else self.jacobian[index : index + 1]
        return Keypoints(self.value[index : index + 1], jac)

    def expand(self, batch: int) -> Keypoints:
        """A batch-1 set repeated (without copy) to `batch`."""
        jac = None if self.jacobian is None else self.jacobian.expand(batch, -1, -1, -1)
        return Keypoints(self.value.expand(batch, -1, -1), jac)
