import pytest
import torch
import torch.nn.functional as F

import mmcourse
from mmcourse.losses import clip_loss, siglip_loss


class PairModel(torch.nn.Module):
    """Two linear towers over paired random views of the same latent."""

    def __init__(self, bias: bool = False, as_dict: bool = False):
        super().__init__()
        self.a = torch.nn.Linear(12, 8)
        self.b = torch.nn.Linear(10, 8)
        self.log_scale = torch.nn.Parameter(torch.tensor(2.0))
        self.bias = torch.nn.Parameter(torch.tensor(-2.0)) if bias else None
        self.as_dict = as_dict

    def forward(self, xa, xb):
        fa, fb = F.normalize(self.a(xa), dim=-1), F.normalize(self.b(xb), dim=-1)  # (B, 8)
        if self.as_dict:
            return {"image_features": fa, "text_features": fb, "logit_scale": self.log_scale.exp()}
        if self.bias is not None:
            return fa, fb, self.log_scale.exp(), self.bias
        return fa, fb, self.log_scale.exp()


def make_batches(batch_size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    mix_a, mix_b = torch.randn(6, 12, generator=gen), torch.randn(6, 10, generator=gen)

    def batch(step):
        z = torch.randn(batch_size, 6, generator=gen)  # (B, 6) shared latent
        return z @ mix_a + 0.05 * torch.randn(batch_size, 12, generator=gen), z @ mix_b

    return batch


def test_loss_goes_down_and_history_is_complete():
    hist = mmcourse.train(PairModel(), make_batches(), clip_loss, steps=60, lr=1e-2, progress=False, device="cpu")
    assert len(hist.losses) == 60 and len(hist.lrs) == 60
    assert hist.final_loss < 0.5 * hist.losses[0]
    assert hist.seconds > 0


def test_deterministic_on_cpu():
    def run():
        mmcourse.set_seed(3)
        return mmcourse.train(PairModel(), make_batches(), clip_loss, steps=15, progress=False, device="cpu", seed=3).losses

    assert run() == run()


def test_bias_and_sigmoid_loss():
    hist = mmcourse.train(PairModel(bias=True), make_batches(), siglip_loss, steps=40, lr=1e-2, progress=False, device="cpu")
    assert hist.final_loss < hist.losses[0]


def test_open_clip_loss_and_dict_outputs_plug_in():
    from open_clip.loss import ClipLoss

    hist = mmcourse.train(PairModel(as_dict=True), make_batches(), ClipLoss(), steps=30, lr=1e-2, progress=False, device="cpu")
    assert hist.final_loss < hist.losses[0]


def test_iterable_batches_and_running_out():
    batches = [make_batches()(i) for i in range(5)]
    with pytest.raises(ValueError, match="ran out after 5 of 8"):
        mmcourse.train(PairModel(), batches, clip_loss, steps=8, progress=False, device="cpu")


def test_cosine_schedule_reaches_zero():
    hist = mmcourse.train(PairModel(), make_batches(), clip_loss, steps=10, lr=1e-2, warmup=2,
                          schedule="cosine", progress=False, device="cpu")
    assert hist.lrs[0] == pytest.approx(5e-3) and hist.lrs[-1] < hist.lrs[2]


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "steps"), ({"steps": 3, "lr": 0}, "lr"), ({"steps": 3, "schedule": "step"}, "schedule"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mmcourse.train(PairModel(), make_batches(), clip_loss, progress=False, **kwargs)


def test_bad_model_output_is_explained():
    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(2, 2)

        def forward(self, x, y):
            return self.w(x)

    with pytest.raises(ValueError, match="logit_scale"):
        mmcourse.train(Bad(), lambda s: (torch.zeros(4, 2), torch.zeros(4, 2)), clip_loss, steps=1, progress=False)


def test_divergence_is_reported():
    def exploding_loss(a, b, scale):
        return (a * b).sum() * float("inf")

    with pytest.raises(FloatingPointError, match="lower lr"):
        mmcourse.train(PairModel(), make_batches(), exploding_loss, steps=2, progress=False, device="cpu")
