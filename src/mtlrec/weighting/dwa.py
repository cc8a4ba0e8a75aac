"""Dynamic Weight Average (Liu, Johns, Davison; CVPR 2019, MTAN, Eq. 7)."""

from __future__ import annotations

import torch

from mtlrec.weighting.base import LossWeighting


class DynamicWeightAverage(LossWeighting):
    """w_t = T · softmax_t(r_t / τ), r_t = L_t(e−1) / L_t(e−2), from the last two epochs' mean losses.

    r_t is the ratio of task t's mean training loss in the last two epochs; w_t = 1 for the first two
    epochs.

    The last two epochs' mean losses are buffers updated in ``end_epoch``, so the weights survive a
    checkpoint. Weights are constant within an epoch.

    Args:
        num_tasks: T.
        temperature: τ > 0 (the paper's T = 2); larger τ gives more equal weights.
    """

    def __init__(self, num_tasks: int, temperature: float = 2.0):
        super().__init__(num_tasks)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.register_buffer("epoch_losses", torch.zeros(2, num_tasks))  # mean losses of epochs e−2, e−1
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """(T,) weights for the current epoch; sum to T."""
        if self.epochs_seen < 2:
            return torch.ones(self.num_tasks, device=self.epoch_losses.device)
        ratios = self.epoch_losses[1] / self.epoch_losses[0].clamp_min(1e-12)
        return self.num_tasks * torch.softmax(ratios / self.temperature, dim=0)

    def end_epoch(self, epoch: int, mean_losses: torch.Tensor) -> None:
        self.epoch_losses[0] = self.epoch_losses[1]
        self.epoch_losses[1] = mean_losses.detach().to(self.epoch_losses)
        self.epochs_seen += 1
