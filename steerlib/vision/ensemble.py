"""Many independently seeded copies of one model, trained and evaluated together with ``torch.func``.

Parameters of E members are stacked along a leading dimension; ``torch.func.vmap`` over ``functional_call`` runs
all members in one batched forward pass. Summing the members' losses keeps their gradients independent, and Adam's
update is elementwise, so training the stack is exactly training E models side by side, only faster.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from steerlib.core.checks import check_nonempty, check_range, check_seed, check_tensor, check_type


class Ensemble(nn.Module):
    """E copies of ``template``'s architecture; member ``i`` was initialised with ``torch.manual_seed(seeds[i])``."""

    def __init__(self, make: Callable[[], nn.Module], seeds: Sequence[int]):
        check_type("make", make, Callable, "a function of no arguments building the model")
        check_type("seeds", seeds, (tuple, list, range), "a sequence of seeds")
        for seed in check_nonempty("seeds", seeds):
            check_seed("seeds", seed)
        super().__init__()
        members = []
        for seed in seeds:
            torch.manual_seed(seed)
            members.append(make())
        params, buffers = stack_module_state(members)
        self.seeds = tuple(seeds)
        # The architecture without weights; kept out of the module tree so .to(device) leaves it on "meta".
        self.__dict__["template"] = copy.deepcopy(members[0]).to("meta")
        self.params = nn.ParameterDict({k.replace(".", "/"): nn.Parameter(v) for k, v in params.items()})
        for k, v in buffers.items():
            self.register_buffer("buf_" + k.replace(".", "/"), v)
        self._buffer_names = [k for k in buffers]

    def __len__(self) -> int:
        return len(self.seeds)

    def _state(self) -> tuple[dict, dict]:
        params = {k.replace("/", "."): v for k, v in self.params.items()}
        buffers = {k: getattr(self, "buf_" + k.replace(".", "/")) for k in self._buffer_names}
        return params, buffers

    def _call_one(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        self.template.train(self.training)
        return functional_call(self.template, (params, buffers), (x,))

    def forward(self, x: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        """Outputs of every member, shape (E, N, out). ``x`` is (N, ...) shared, or (E, N, ...) if ``per_member``."""
        params, buffers = self._state()
        return vmap(self._call_one, in_dims=(0, 0, 0 if per_member else None), randomness="different")(
            params, buffers, x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """Evaluation-mode outputs (E, N, out) in chunks, on the ensemble's device; returned on the CPU."""
        check_tensor("x", x)
        check_range("batch_size", batch_size, 1, integer=True)
        was_training = self.training
        self.eval()
        device = next(iter(self.params.values())).device
        outs = [self(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
        self.train(was_training)
        return torch.cat(outs, dim=1)

    def member(self, i: int) -> nn.Module:
        """Member ``i`` as an ordinary module (CPU, eval mode), e.g. for forward hooks."""
        check_range("i", i, 0, len(self) - 1, integer=True)
        params, buffers = self._state()
        model = copy.deepcopy(self.template).to_empty(device="cpu")
        state = {k: v[i].detach().cpu() for k, v in {**params, **buffers}.items()}
        model.load_state_dict(state)
        return model.eval()
