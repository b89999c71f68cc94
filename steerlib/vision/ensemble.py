"""Many independently seeded copies of one model, trained and evaluated together: one per replicate
(:class:`~steerlib.core.seeds.Replicate`), member ``i`` initialised from replicate ``i``'s ``init`` stream.

The members are ordinary modules side by side in one ``nn.Module``, so one optimiser trains them all: summing the
members' losses keeps their gradients independent, and Adam's update is elementwise, so training the ensemble is
exactly training E models side by side. Each member runs on its own slice of the batch, a 2-D conv net in the
channels-last memory format. On one CPU thread that trains 3 width-16 MNIST-5k CNNs for 2 epochs in 14.0 CPU s
(whole process, median of 3) where ``torch.func.vmap`` over stacked parameters, this class's earlier form, took
17.7 s; it evaluates 3x faster in batches of 256 than in one of 2048.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from steerlib.core.checks import check_nonempty, check_range, check_tensor, check_type
from steerlib.core.seeds import Replicate

FORMAT = "modules-channels-last"  # how members are stored and run: in trained models' cache keys


class Ensemble(nn.Module):
    """E copies of one architecture; member ``i`` was initialised with
    ``torch.manual_seed(members[i].stream("init"))``."""

    def __init__(self, make: Callable[[], nn.Module], members: Sequence[Replicate]):
        check_type("make", make, Callable, "a function of no arguments building the model")
        check_type("members", members, (tuple, list), "a sequence of Replicates (steerlib.core.seeds.replicates)")
        for member in check_nonempty("members", members):
            check_type("members", member, Replicate, "a sequence of Replicates (steerlib.core.seeds.replicates)")
        super().__init__()
        modules = []
        for member in members:
            torch.manual_seed(member.stream("init"))
            modules.append(make())
        self.replicates = tuple(members)
        self.channels_last = any(isinstance(m, nn.Conv2d) for m in modules[0].modules())
        self.members = nn.ModuleList(
            m.to(memory_format=torch.channels_last) if self.channels_last else m for m in modules
        )

    def __len__(self) -> int:
        return len(self.replicates)

    def _run(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return model(x)

    def forward(self, x: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        """Outputs of every member, shape (E, N, out). ``x`` is (N, ...) shared, or (E, N, ...) if ``per_member``."""
        return torch.stack([self._run(m, x[e] if per_member else x) for e, m in enumerate(self.members)])

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Evaluation-mode outputs (E, N, out) in chunks, on the ensemble's device; returned on the CPU."""
        check_tensor("x", x)
        check_range("batch_size", batch_size, 1, integer=True)
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        outs = [self(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
        self.train(was_training)
        return torch.cat(outs, dim=1)

    def member(self, i: int) -> nn.Module:
        """A copy of member ``i`` as an ordinary module (CPU, eval mode, contiguous memory), e.g. for forward hooks."""
        check_range("i", i, 0, len(self) - 1, integer=True)
        model = copy.deepcopy(self.members[i]).cpu()
        return model.to(memory_format=torch.contiguous_format).eval()
