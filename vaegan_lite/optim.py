"""The paper's optimizer, RMSProp, with a step that a flag on the GPU can call off.

A training step must not move the weights when its losses came out NaN or infinite. Asking
``if loss.isfinite():`` in Python makes the host wait until the GPU has finished the step so far:
a sync every step, during which no further kernels are queued and a fast GPU idles. Here the
answer stays on the device, as a bool tensor ``ok``, and the update is written so that
``ok = False`` leaves every weight and every running average exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class RMSprop(torch.optim.RMSprop):
    """``torch.optim.RMSprop`` in the plain form the paper uses (no momentum, centring or weight
    decay), with ``masked_step(ok)``: torch's own update, bit for bit, where ``ok`` is True, and
    no change at all where it is False; the host never reads ``ok``.

    ``step()`` is torch's, and the state is torch's (checkpoints of either load in the other).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, foreach=True)

    @torch.no_grad()
    def masked_step(self, ok: torch.Tensor) -> None:
        """One update where ``ok`` (a bool tensor on the weights' device) is True."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:  # as torch starts a weight's state
                    self.state[p]["step"] = torch.zeros((), dtype=_scalar_dtype())
                    self.state[p]["square_avg"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format
                    )
            square_avgs = [self.state[p]["square_avg"] for p in params]
            steps = [self.state[p]["step"] for p in params]
            alpha, eps, lr = group["alpha"], group["eps"], group["lr"]
            # A skipped step's gradient becomes 0 (its NaNs must not reach the averages), which
            # leaves the weights as they are; the averages keep theirs by decaying with 1.
            zero = torch.zeros((), dtype=params[0].grad.dtype, device=ok.device)
            grads = [torch.where(ok, p.grad, zero) for p in params]
            decay = torch.where(ok, alpha, 1.0)
            # torch's update (torch.optim.rmsprop._multi_tensor_rmsprop), op for op:
            torch._foreach_add_(steps, 1.0)  # counts calls, skipped ones too (unused by the maths)
            torch._foreach_mul_(square_avgs, decay)  # v <- alpha v
            torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)  # + (1-alpha) g^2
            avg = torch._foreach_sqrt(square_avgs)
            torch._foreach_add_(avg, eps)  # sqrt(v) + eps
            torch._foreach_addcdiv_(params, grads, avg, value=-lr)  # theta <- theta - lr g / avg


def masked_step(opt: torch.optim.Optimizer, ok: torch.Tensor) -> None:
    """``opt``'s step where ``ok`` is True: on the device for this module's RMSprop; any other
    optimizer (the routing tests' SGD, say) is asked on the host, which waits for the GPU."""
    if isinstance(opt, RMSprop):
        opt.masked_step(ok)
    elif bool(ok):
        opt.step()


def _scalar_dtype() -> torch.dtype:
    """The dtype torch gives an optimizer's step counter."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
