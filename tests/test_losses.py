"""Losses: parity with open_clip (forward and gradients), chunked = dense, bad input, modules."""
import math

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss as RefClipLoss
from open_clip.loss import SigLipLoss as RefSigLipLoss

import mmcourse
from mmcourse.losses import ClipLoss, SigLipLoss, clip_loss, siglip_loss

ATOL = 1e-5  # absolute tolerance of the parity tests
# float32 losses reach ~100 (N=130 without bias): one rounding step there is ~8e-6, so
# float32 comparisons also allow a relative 2e-6 (a few ulps); float64 is absolute only.
RTOL = {torch.float32: 2e-6, torch.float64: 0.0}


def _inputs(n, d, dtype, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=-1).requires_grad_()
    y = F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=-1).requires_grad_()
    t = torch.tensor(math.log(10.0), dtype=dtype, requires_grad=True)  # log of the logit scale
    b = torch.tensor(-10.0, dtype=dtype, requires_grad=True) if bias else None
    return x, y, t, b


def _loss_and_grads(fn, x, y, t, b):
    loss = fn(x, y, t.exp(), b)
    wrt = [x, y, t] + ([b] if b is not None else [])
    return loss.detach(), [g.detach() for g in torch.autograd.grad(loss, wrt)]


def _assert_same(ours, ref, atol=ATOL):
    (l1, g1), (l2, g2) = ours, ref
    rtol = RTOL[l1.dtype]
    torch.testing.assert_close(l1, l2, atol=atol, rtol=rtol)
    assert len(g1) == len(g2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol)


CASES = [(n, d, dtype, bias) for n, d in ((1, 8), (7, 16), (130, 64))
         for dtype in (torch.float32, torch.float64) for bias in (False, True)]


@pytest.mark.parametrize("n,d,dtype,bias", CASES)
def test_clip_loss_matches_open_clip(n, d, dtype, bias):
    x, y, t, b = _inputs(n, d, dtype, seed=n, bias=bias)
    _assert_same(_loss_and_grads(clip_loss, x, y, t, b), _loss_and_grads(RefClipLoss(), x, y, t, b))


@pytest.mark.parametrize("n,d,dtype,bias", CASES)
def test_siglip_loss_matches_open_clip(n, d, dtype, bias):
    x, y, t, b = _inputs(n, d, dtype, seed=n, bias=bias)
    ours = _loss_and_grads(siglip_loss, x, y, t, b)
    # open_clip's SigLipLoss requires a bias argument; None is accepted by its get_logits
    _assert_same(ours, _loss_and_grads(RefSigLipLoss(), x, y, t, b))


@pytest.mark.parametrize("chunk_size", [1, 5, 32, 64, 1000])
@pytest.mark.parametrize("bias", [False, True])
def test_chunked_siglip_equals_dense(chunk_size, bias):
    x, y, t, b = _inputs(64, 16, torch.float64, seed=3, bias=bias)
    dense = _loss_and_grads(siglip_loss, x, y, t, b)
    chunked = _loss_and_grads(lambda *a: siglip_loss(*a, chunk_size=chunk_size), x, y, t, b)
    _assert_same(chunked, dense, atol=1e-10)


def test_siglip_matches_naive_loop():
    """The textbook definition, pair by pair: -log σ(z_ij · (t x_i·y_j + b)) summed, / N."""
    x, y, _, _ = _inputs(6, 4, torch.float64, seed=5)
    scale, bias = 7.0, -3.0
    naive = 0.0
    for i in range(6):
        for j in range(6):
            label = 1.0 if i == j else -1.0
            naive -= math.log(1 / (1 + math.exp(-label * (scale * float(x[i] @ y[j]) + bias))))
    assert abs(float(siglip_loss(x, y, scale, bias)) - naive / 6) < 1e-12


# ---- tiled InfoNCE: online log-sum-exp, hand-written backward ---------------------------------


@pytest.mark.parametrize("n,chunk_size", [(13, 1), (130, 7), (130, 32), (130, 130), (130, 1000)])  # 7, 32 do not divide 130
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [False, True])
def test_tiled_clip_equals_dense_and_open_clip(n, chunk_size, dtype, bias):
    x, y, t, b = _inputs(n, 16, dtype, seed=11, bias=bias)
    tiled = _loss_and_grads(lambda *a: clip_loss(*a, chunk_size=chunk_size), x, y, t, b)
    _assert_same(tiled, _loss_and_grads(clip_loss, x, y, t, b))
    _assert_same(tiled, _loss_and_grads(RefClipLoss(), x, y, t, b))
    if dtype == torch.float64:  # no float32 rounding to hide behind: equal to ~1e-13
        _assert_same(tiled, _loss_and_grads(clip_loss, x, y, t, b), atol=1e-12)


def test_tiled_clip_survives_logits_that_overflow_exp():
    """The online log-sum-exp only ever exponentiates z - max <= 0: logits of 1e4 are fine."""
    x, y, _, _ = _inputs(50, 8, torch.float64, seed=12)
    dense = _loss_and_grads(lambda a, b_, t, _: clip_loss(a, b_, t), x, y, torch.tensor(math.log(1e4), dtype=torch.float64, requires_grad=True), None)
    tiled = _loss_and_grads(lambda a, b_, t, _: clip_loss(a, b_, t, chunk_size=9), x, y,
                            torch.tensor(math.log(1e4), dtype=torch.float64, requires_grad=True), None)
    assert torch.isfinite(tiled[0]) and float(tiled[0]) > 100
    _assert_same(tiled, dense, atol=1e-8)


@pytest.mark.parametrize("loss_fn", [clip_loss, siglip_loss], ids=["tiled_clip", "chunked_siglip"])
def test_chunked_losses_save_no_nxn_for_backward(loss_fn):
    """Saved for backward: (N, D) features and (N,)-sized statistics; the dense loss keeps N x N."""
    n, d = 256, 8
    x, y, t, b = _inputs(n, d, torch.float32, bias=True)
    saved = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss_fn(x, y, t.exp(), b, chunk_size=16).backward()
    assert max(saved) <= n * d, max(saved)
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss_fn(x, y, t.exp(), b).backward()
    assert max(saved) == n * n  # the dense loss keeps its logits for the backward pass


@pytest.mark.skipif(not mmcourse.memory.peak_memory_supported(), reason="peak memory needs Linux")
def test_tiled_clip_peak_memory_is_a_fraction_of_dense():
    from mmcourse.memory import peak_memory

    x, y, t, b = _inputs(2048, 32, torch.float32, bias=False)

    def run(**kw):
        x.grad = y.grad = None
        clip_loss(x, y, t.detach().exp(), **kw).backward()

    dense = peak_memory(run, repeats=2).mib
    tiled = peak_memory(lambda: run(chunk_size=256), repeats=2).mib
    # dense holds at least the (N, N) logits and their gradient, 16 MiB each (a third buffer comes and
    # goes: one CI run measured 47.8 MiB, just under 3 x 16); the tiled loss holds no (N, N) buffer
    assert dense > 16 * 2 and tiled <= dense / 8, (tiled, dense)


# ---- inputs that mean one thing -----------------------------------------------------------------


@pytest.mark.parametrize("fn", [clip_loss, siglip_loss, lambda *a, **k: clip_loss(*a, **k, chunk_size=2)])
def test_integer_and_mixed_dtypes_get_a_clear_error(fn):
    x = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    with pytest.raises(TypeError, match=r"image_features must be a floating-point tensor .* got torch.int64"):
        fn(torch.ones(4, 8, dtype=torch.long), x, 10.0)
    with pytest.raises(TypeError, match=r"text_features must be a floating-point tensor .* got torch.int32"):
        fn(x, torch.ones(4, 8, dtype=torch.int32), 10.0)
    with pytest.raises(TypeError, match=r"image_features \(torch.float32\) and text_features \(torch.float64\)"):
        fn(x, x.double(), 10.0)
    with pytest.raises(TypeError, match="logit_scale must be a real number"):
        fn(x, x, torch.tensor(10))
    with pytest.raises(TypeError, match="logit_bias must be a real number"):
        fn(x, x, 10.0, True)


@pytest.mark.parametrize("fn", [clip_loss, siglip_loss, lambda *a, **k: siglip_loss(*a, **k, chunk_size=2),
                                lambda *a, **k: clip_loss(*a, **k, chunk_size=2)])
def test_logit_scale_is_the_positive_multiplier_not_the_log(fn):
    """logit_scale multiplies the logits (open_clip passes exp(t)); a negative one would flip every ranking."""
    x, y = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1), torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    for bad in (-2.0, 0.0, torch.tensor(-2.0), torch.tensor(-1.5, requires_grad=True), torch.tensor([0.0])):
        with pytest.raises(ValueError, match=r"logit_scale must be positive: .*pass t.exp\(\), not t\), got -?[0-9.]+"):
            fn(x, y, bad)
    fn(x, y, torch.tensor(1e-3))  # small but positive: fine
    fn(x, y, torch.tensor(math.log(1 / 0.07)).exp())


def test_clip_matches_cross_entropy_definition():
    x, y, _, _ = _inputs(9, 4, torch.float64, seed=6)
    logits = 5.0 * x @ y.T
    labels = torch.arange(9)
    expected = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    torch.testing.assert_close(clip_loss(x, y, 5.0), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("bias", [True, False])
def test_dense_siglip_backward_twice_through_a_retained_graph(bias):
    """The dense backward reuses the saved logits in place; a second backward recomputes them."""
    x, y, t, b = _inputs(32, 8, torch.float64, bias=bias)
    loss = siglip_loss(x, y, t.exp(), b)
    first = torch.autograd.grad(loss, (x, y, t) + ((b,) if bias else ()), retain_graph=True)
    second = torch.autograd.grad(loss, (x, y, t) + ((b,) if bias else ()))
    for g1, g2 in zip(first, second):
        torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("fn", [clip_loss, siglip_loss])
def test_batch_of_one(fn):
    x, y, t, b = _inputs(1, 8, torch.float32)
    loss = fn(x, y, t.exp(), b)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("fn", [clip_loss, siglip_loss])
def test_shape_mismatch_names_both_shapes(fn):
    with pytest.raises(ValueError, match=r"\(4, 8\).*\(5, 8\)"):
        fn(torch.randn(4, 8), torch.randn(5, 8), 10.0)
    with pytest.raises(ValueError, match=r"\(4, 8\).*\(4, 6\)"):
        fn(torch.randn(4, 8), torch.randn(4, 6), 10.0)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        fn(torch.randn(8), torch.randn(8), 10.0)


@pytest.mark.parametrize("fn", [clip_loss, siglip_loss])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_features_rejected(fn, bad):
    x = torch.randn(4, 8)
    x[2, 3] = bad
    with pytest.raises(ValueError, match="non-finite"):
        fn(x, torch.randn(4, 8), 10.0)
    with pytest.raises(ValueError, match="non-finite"):
        fn(torch.randn(4, 8), x, 10.0)


@pytest.mark.parametrize("fn", [clip_loss, siglip_loss, lambda *a, **k: siglip_loss(*a, **k, chunk_size=2),
                                lambda *a, **k: clip_loss(*a, **k, chunk_size=3)])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_each_non_finite_input_is_named(fn, bad):
    """Finiteness is tested on the loss; the error still names the input that caused it."""
    x, y = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1), torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    bad_x = x.clone()
    bad_x[1, 5] = bad
    with pytest.raises(ValueError, match="image_features contains 1 non-finite"):
        fn(bad_x, y, 10.0, -1.0)
    with pytest.raises(ValueError, match="text_features contains 1 non-finite"):
        fn(x, bad_x, 10.0, -1.0)
    with pytest.raises(ValueError, match="logit_scale must be finite"):
        fn(x, y, torch.tensor(bad), -1.0)
    with pytest.raises(ValueError, match="logit_bias must be finite"):
        fn(x, y, 10.0, torch.tensor(bad))


def test_bad_chunk_size_and_scale():
    x, y = torch.randn(4, 8), torch.randn(4, 8)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size"):
            siglip_loss(x, y, 10.0, chunk_size=bad)
        with pytest.raises(ValueError, match="chunk_size"):
            clip_loss(x, y, 10.0, chunk_size=bad)
    with pytest.raises(ValueError, match="logit_scale"):
        clip_loss(x, y, torch.ones(3))
    with pytest.raises(ValueError, match="logit_scale"):
        siglip_loss(x, y, float("nan"))


def test_public_names():
    assert mmcourse.clip_loss is clip_loss and mmcourse.siglip_loss is siglip_loss


def test_module_inits_match_papers():
    clip, sig = ClipLoss(), SigLipLoss()
    assert math.isclose(clip.log_logit_scale.item(), math.log(1 / 0.07), rel_tol=1e-6)
    assert math.isclose(clip.logit_scale.item(), 1 / 0.07, rel_tol=1e-5)
    assert math.isclose(sig.logit_scale.item(), 10.0, rel_tol=1e-6) and sig.logit_bias.item() == -10.0
    with torch.no_grad():
        clip.log_logit_scale.fill_(10.0)  # exp(10) >> 100
    assert math.isclose(clip.logit_scale.item(), 100.0, rel_tol=1e-5)


def test_modules_use_their_own_parameters():
    x, y, _, _ = _inputs(8, 4, torch.float32)
    clip, sig = ClipLoss(), SigLipLoss(chunk_size=3)
    # a scale passed in (as mmcourse.train does with the model's) is ignored
    torch.testing.assert_close(clip(x, y, 1234.0), clip_loss(x, y, clip.logit_scale))
    torch.testing.assert_close(sig(x, y, 1.0, 0.0), siglip_loss(x, y, 10.0, -10.0))
    sig(x, y).backward()
    assert sig.log_logit_scale.grad is not None and sig.logit_bias.grad is not None


def test_loss_module_parameters_train_with_mmcourse_train():
    """mmcourse.train optimises a loss module's parameters together with the model's."""

    class Towers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)

        def forward(self, u, v):
            return F.normalize(self.a(u), dim=-1), F.normalize(self.b(v), dim=-1), torch.tensor(1.0)

    g = torch.Generator().manual_seed(0)
    u = torch.randn(16, 6, generator=g)
    loss = SigLipLoss()
    history = mmcourse.train(Towers(), lambda step: (u, u), loss, steps=30, lr=0.05, progress=False, device="cpu")
    assert loss.logit_bias.item() != -10.0 and loss.logit_scale.item() != pytest.approx(10.0)
    assert history.losses[-1] < history.losses[0]


def test_huge_but_finite_features_are_not_rejected():
    big = torch.full((4, 8), 1e38)  # the sum overflows, every element is finite
    for fn in (clip_loss, siglip_loss):
        fn(big, big, 1.0)  # no ValueError (the loss itself may overflow: that is the caller's scale)
