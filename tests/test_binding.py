import numpy as np
import pytest
import torch

from mmcourse.data import paired, shapes
from mmcourse.models.course import binding


def test_every_label_has_its_own_sound_and_motion():
    sounds = {paired.COLOR_TO_SOUND[c] + paired.SHAPE_TO_SOUND[s] for c, s in shapes.ALL_COMBOS}
    motions = {(paired.COLOR_TO_FREQUENCY[c], paired.SHAPE_TO_WAVE[s]) for c, s in shapes.ALL_COMBOS}
    assert len(sounds) == len(motions) == len(shapes.ALL_COMBOS)


def test_make_paired_is_deterministic_and_follows_the_split():
    a, b = paired.make_paired(6, "heldout", seed=3), paired.make_paired(6, "heldout", seed=3)
    for x, y in zip(a, b):
        assert x.label == y.label
        assert np.array_equal(x.sound, y.sound) and np.array_equal(x.sensor, y.sensor)
        assert (x.scene.color, x.scene.shape) in shapes.HELDOUT_COMBOS
        assert x.sound.shape == (int(paired.SOUND_RATE * paired.SOUND_SECONDS),)
        assert x.sensor.shape == (int(paired.SENSOR_RATE * paired.SENSOR_SECONDS),)
    with pytest.raises(ValueError, match="heldout"):
        paired.make_paired(3, "test")


def test_sensor_frequency_follows_colour():
    rng = np.random.default_rng(0)
    for color, hz in paired.COLOR_TO_FREQUENCY.items():
        trace = paired.sensor_trace(color, "circle", rng)
        spectrum = np.abs(np.fft.rfft(trace - trace.mean()))
        peak = np.fft.rfftfreq(len(trace), 1 / paired.SENSOR_RATE)[spectrum.argmax()]
        assert abs(peak - hz) <= 0.6, (color, peak, hz)


def test_bind_aligns_a_tower_to_fixed_anchors():
    gen = torch.Generator().manual_seed(0)
    anchors = torch.nn.functional.normalize(torch.randn(8, 16, generator=gen), dim=-1)  # 8 "images"
    idx = torch.arange(64) % 8
    inputs = anchors[idx] @ torch.randn(16, 30, generator=gen) + 0.05 * torch.randn(64, 30, generator=gen)
    class Norm(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return torch.nn.functional.normalize(self.inner(x), dim=-1)

    trained, history = binding.bind(Norm(torch.nn.Linear(30, 16)), inputs, anchors[idx], binding.BindConfig(steps=80, batch_size=8),
                                    groups=idx.numpy(), progress=False)
    emb = binding.embed(trained, inputs)  # (64, 16)
    assert ((emb @ anchors.T).argmax(1) == idx).float().mean() > 0.9
    assert history.final_loss < history.losses[0]


def test_identity_head_and_mismatched_rows():
    head = binding.identity_head(5)
    x = torch.randn(3, 5)
    assert torch.allclose(head(x), x)
    with pytest.raises(ValueError, match="3 vs 4"):
        binding.bind(binding.SensorTower(embed_dim=4), torch.randn(3, 200), torch.randn(4, 4), progress=False)


def test_image_tower_copies_the_image_side_and_trains_apart():
    """The unfrozen ablation's image tower computes ``get_image_features`` on its own copy of the weights."""
    from transformers import (BertConfig, BertModel, CLIPVisionConfig, CLIPVisionModel, VisionTextDualEncoderConfig,
                              VisionTextDualEncoderModel)

    from mmcourse.models.embedder import features_from_output

    torch.manual_seed(0)
    vision = CLIPVisionModel(CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                              num_attention_heads=2, image_size=32, patch_size=8))
    text = BertModel(BertConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                vocab_size=50))
    config = VisionTextDualEncoderConfig.from_vision_text_configs(vision.config, text.config, projection_dim=8)
    dual = VisionTextDualEncoderModel(config, vision_model=vision, text_model=text).eval()
    tower = binding.ImageTower(dual).eval()
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(tower(pixels), features_from_output(dual.get_image_features(pixel_values=pixels)))
    before = dual.visual_projection.weight.clone()
    tower(pixels).sum().backward()
    torch.optim.SGD(tower.parameters(), lr=1.0).step()
    assert torch.equal(dual.visual_projection.weight, before)  # the original stays frozen
    assert not torch.equal(tower.visual_projection.weight, before)
