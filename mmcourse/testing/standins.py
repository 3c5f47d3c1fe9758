"""Tiny random-weight stand-ins for the hub models of the pretrained world, written offline.

Every hub model the notebooks load with ``MMCOURSE_PRETRAINED=1`` gets a stand-in of *its own
class* (``CLIPModel``, ``SiglipModel``, open_clip's ``ViT-B-32``, ``ClapModel``,
``ColPaliForRetrieval``), with a processor / tokenizer of the real kind, saved into a Hugging
Face cache under the real hub id. With ``HF_HUB_CACHE=<folder> HF_HUB_OFFLINE=1``,
``mmcourse.load_model("<hub id>")`` then runs exactly the code a learner's download would,
so tests and the notebook stage exercise every pretrained path without a network.

What is real and what is small:

- towers are tiny (one or two layers, widths of 32) but keep the real input geometry: image
  sizes and patch sizes, text lengths (77 for CLIP, 64 for SigLIP), CLAP's 48 kHz 10 s mel
  features, ColPali's 448 px pages and 1,024 patch tokens;
- open_clip finds pretrained tags by hub repo (``laion2b_s34b_b79k`` →
  ``laion/CLIP-ViT-B-32-laion2B-s34B-b79K``, file ``open_clip_model.safetensors``) and builds
  the architecture from its own ``ViT-B-32`` config, so that stand-in is the full-size
  architecture (151 M parameters, stored in float16: ~300 MB, a few seconds);
- tokenizers are built here, from small vocabularies (nothing is downloaded): byte-level
  BPE for CLIP and CLAP (RoBERTa), a SentencePiece model trained on a few sentences for
  SigLIP, a byte-fallback BPE for ColPali's Gemma tokenizer, byte-level BPE with Qwen2-VL's
  special tokens for ColQwen2.

Every stand-in is marked (``mmcourse_standin`` in its config, or in the safetensors metadata
for open_clip), so ``embedder.is_standin`` is True and notebooks skip quality claims for it:
random weights mean random numbers.

Usage::

    from mmcourse.testing.standins import write_standins
    write_standins("/tmp/hf-standins")        # then: HF_HUB_CACHE=/tmp/hf-standins HF_HUB_OFFLINE=1
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pathlib
from typing import Callable, Iterator

import torch

from ..models.embedder import STANDIN_MARK

__all__ = ["STANDINS", "OPEN_CLIP_REPO", "write_standins", "snapshot_dir", "standin_environment",
           "hub_repo_of", "write_clip", "write_siglip", "write_open_clip", "write_clap", "write_colpali",
           "write_colqwen2"]

OPEN_CLIP_REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"  # where open_clip looks for ViT-B-32/laion2b_s34b_b79k
_SEED = 0
STANDIN_VERSION = 1  # bump when a writer changes: cached stand-ins are rewritten

# a small corpus for the SentencePiece tokenizer (the words the notebooks use, and then some)
_CORPUS = (
    "a photo of a red circle . a blue square on a plain background . a green triangle above a yellow star . "
    "a cat sitting on a sofa . a dog running in the park . an astronaut . a coffee cup . a rocket . "
    "the text says invoice total revenue chart table figure page report quarterly results . "
    "a low rising buzzy tone . rain on a window . a siren . birds singing . a train passing . "
    "one two three four five six seven eight nine ten . left right top bottom small large big tiny "
    "question what which where how many is the of and with in to for by"
)


# ----------------------------------------------------------------------------- the cache layout
def _revision(repo_id: str) -> str:
    return hashlib.sha1(f"mmcourse-standin:{repo_id}".encode()).hexdigest()  # 40 hex digits, like a commit


def snapshot_dir(cache_dir: str | os.PathLike, repo_id: str) -> pathlib.Path:
    """Create (if needed) the cache entry of ``repo_id`` and return its snapshot folder.

    The layout is huggingface_hub's: ``models--org--name/refs/main`` holds a revision,
    ``models--org--name/snapshots/<revision>/`` the files (plain files; the hub's own
    downloads are symlinks into ``blobs/``, which readers do not require).
    """
    repo = pathlib.Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    revision = _revision(repo_id)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    folder = repo / "snapshots" / revision
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ----------------------------------------------------------------------------- tokenizers
def _byte_level_alphabet() -> list[str]:
    """The 256 characters GPT-2-style byte-level BPE maps bytes to (CLIP, RoBERTa, Qwen2)."""
    from tokenizers import pre_tokenizers

    return sorted(pre_tokenizers.ByteLevel.alphabet())


def _clip_tokenizer():
    from transformers import CLIPTokenizer

    alphabet = _byte_level_alphabet()
    vocab = {}
    for piece in alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab.setdefault(piece, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _roberta_tokenizer():
    from transformers import RobertaTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in _byte_level_alphabet():
        vocab.setdefault(c, len(vocab))
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=512)


def _siglip_tokenizer(folder: pathlib.Path):
    """A real ``SiglipTokenizer``: a SentencePiece model trained here on a few sentences."""
    import sentencepiece as spm
    from transformers import SiglipTokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS.split(" . ")), model_writer=model, vocab_size=120, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, hard_vocab_limit=False, character_coverage=1.0,
        minloglevel=2)
    path = folder / "spiece.model"
    path.write_bytes(model.getvalue())
    return SiglipTokenizer(vocab_file=str(path), model_max_length=64)


def _gemma_tokenizer():
    """A real ``GemmaTokenizer`` (BPE with byte fallback) over single characters."""
    from transformers import GemmaTokenizer

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)  # byte fallback: any character encodes
    for c in "▁" + "".join(chr(i) for i in range(33, 127)):
        vocab.setdefault(c, len(vocab))
    return GemmaTokenizer(vocab=vocab, merges=[])


def _qwen2_tokenizer():
    """A real ``Qwen2Tokenizer`` (byte-level BPE) with Qwen2-VL's chat and vision special tokens."""
    from transformers import Qwen2Tokenizer

    vocab = {}
    for c in _byte_level_alphabet():
        vocab.setdefault(c, len(vocab))
    for special in _QWEN2_SPECIALS:
        vocab[special] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, bos_token=None, eos_token="<|im_end|>",
                               pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": list(_QWEN2_SPECIALS)})
    return tokenizer


_QWEN2_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                   "<|image_pad|>", "<|video_pad|>")


# ----------------------------------------------------------------------------- writers
def _tiny_text(vocab_size: int, max_positions: int, **extra) -> dict:
    return dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=max_positions, **extra)


def _tiny_vision(image_size: int, patch_size: int, **extra) -> dict:
    return dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                image_size=image_size, patch_size=patch_size, **extra)


def _save(model, processor, folder: pathlib.Path) -> None:
    setattr(model.config, STANDIN_MARK, True)
    model.eval().save_pretrained(folder)
    processor.save_pretrained(folder)


def write_clip(folder: pathlib.Path) -> None:
    """``openai/clip-vit-base-patch32``: CLIPModel, 224 px, patch 32, 77 tokens, CLIP's BPE tokenizer."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = _clip_tokenizer()
    config = CLIPConfig(text_config=_tiny_text(len(tokenizer), 77, bos_token_id=len(tokenizer) - 2,
                                               eos_token_id=len(tokenizer) - 1, pad_token_id=len(tokenizer) - 1),
                        vision_config=_tiny_vision(224, 32), projection_dim=16)
    torch.manual_seed(_SEED)
    _save(CLIPModel(config), CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer), folder)


def write_siglip(folder: pathlib.Path) -> None:
    """``google/siglip-base-patch16-224``: SiglipModel, 224 px, patch 16, 64 tokens, a SentencePiece tokenizer."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    tokenizer = _siglip_tokenizer(folder)
    config = SiglipConfig(text_config=_tiny_text(len(tokenizer), 64, pad_token_id=tokenizer.pad_token_id,
                                                 eos_token_id=tokenizer.eos_token_id, bos_token_id=None),
                          vision_config=_tiny_vision(224, 16))
    torch.manual_seed(_SEED)
    processor = SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": 224, "width": 224}),
                                tokenizer=tokenizer)
    _save(SiglipModel(config), processor, folder)


def write_open_clip(folder: pathlib.Path) -> None:
    """``open_clip:ViT-B-32/laion2b_s34b_b79k``: open_clip's own ViT-B-32, random, float16 safetensors.

    Written where open_clip's download would put it (``open_clip_model.safetensors`` in the
    snapshot of ``laion/CLIP-ViT-B-32-laion2B-s34B-b79K``), with the repo's ``open_clip_config.json``.
    """
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(_SEED)
    model = open_clip.create_model("ViT-B-32")
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}  # ~300 MB
    save_file(state, str(folder / "open_clip_model.safetensors"), metadata={"format": "pt", STANDIN_MARK: "1"})
    config = {"model_cfg": open_clip.get_model_config("ViT-B-32"),
              "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)},
              STANDIN_MARK: True}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=1))


def write_clap(folder: pathlib.Path) -> None:
    """``laion/clap-htsat-unfused``: ClapModel (tiny HTSAT), the real 48 kHz / 10 s / 64-mel features."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    tokenizer = _roberta_tokenizer()
    features = ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad")  # the unfused checkpoint's setup
    config = ClapConfig(
        text_config=_tiny_text(len(tokenizer), 514, pad_token_id=1, bos_token_id=0, eos_token_id=2),
        audio_config=dict(num_mel_bins=64, spec_size=256, window_size=8, patch_size=4, patch_stride=4, hidden_size=32,
                          depths=[1, 1], num_attention_heads=[1, 2], patch_embeds_hidden_size=16, enable_fusion=False),
        projection_dim=16)
    torch.manual_seed(_SEED)
    _save(ClapModel(config), ClapProcessor(feature_extractor=features, tokenizer=tokenizer), folder)


def write_colpali(folder: pathlib.Path) -> None:
    """``vidore/colpali-v1.3-hf``: ColPaliForRetrieval (tiny PaliGemma), 448 px pages, 1,024 patches, 128-d."""
    from transformers import ColPaliConfig, ColPaliForRetrieval, ColPaliProcessor, SiglipImageProcessor

    image_size, patch = 448, 14
    image_processor = SiglipImageProcessor(size={"height": image_size, "width": image_size},
                                           image_seq_length=(image_size // patch) ** 2)
    processor = ColPaliProcessor(image_processor=image_processor, tokenizer=_gemma_tokenizer())
    vocab = len(processor.tokenizer)  # the processor adds <image>, <locNNNN> and <segNNN>
    vlm = dict(model_type="paligemma", image_token_index=processor.image_token_id, projection_dim=32, hidden_size=32,
               vision_config=dict(model_type="siglip_vision_model", **_tiny_vision(image_size, patch)),
               text_config=dict(model_type="gemma", vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                pad_token_id=0, eos_token_id=1, bos_token_id=2))
    torch.manual_seed(_SEED)
    _save(ColPaliForRetrieval(ColPaliConfig(vlm_config=vlm, embedding_dim=128)), processor, folder)


def write_colqwen2(folder: pathlib.Path) -> None:
    """``vidore/colqwen2-v1.0-hf``: ColQwen2ForRetrieval (tiny Qwen2-VL), dynamic resolution (kept small), 128-d."""
    from transformers import ColQwen2Config, ColQwen2ForRetrieval, ColQwen2Processor, Qwen2VLImageProcessor

    tokenizer = _qwen2_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _QWEN2_SPECIALS}
    image_processor = Qwen2VLImageProcessor(min_pixels=4 * 28 * 28, max_pixels=64 * 28 * 28)  # ≤ 64 merged patches
    processor = ColQwen2Processor(image_processor=image_processor, tokenizer=tokenizer)
    vlm = dict(model_type="qwen2_vl", image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
               vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
               vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                                  spatial_merge_size=2, temporal_patch_size=2),
               text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                                bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                                rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}))
    torch.manual_seed(_SEED)
    _save(ColQwen2ForRetrieval(ColQwen2Config(vlm_config=vlm, embedding_dim=128)), processor, folder)


# hub name (as load_model takes it) -> (hub repo it lives in, writer)
STANDINS: dict[str, tuple[str, Callable[[pathlib.Path], None]]] = {
    "openai/clip-vit-base-patch32": ("openai/clip-vit-base-patch32", write_clip),
    "google/siglip-base-patch16-224": ("google/siglip-base-patch16-224", write_siglip),
    "open_clip:ViT-B-32/laion2b_s34b_b79k": (OPEN_CLIP_REPO, write_open_clip),
    "laion/clap-htsat-unfused": ("laion/clap-htsat-unfused", write_clap),
    "vidore/colpali-v1.3-hf": ("vidore/colpali-v1.3-hf", write_colpali),
    "vidore/colqwen2-v1.0-hf": ("vidore/colqwen2-v1.0-hf", write_colqwen2),
}


def hub_repo_of(name: str) -> str:
    """The hub repo a stand-in name is stored under."""
    if name not in STANDINS:
        raise ValueError(f"no stand-in for {name!r}; stand-ins exist for: {', '.join(STANDINS)}")
    return STANDINS[name][0]


def write_standins(cache_dir: str | os.PathLike, names: list[str] | tuple[str, ...] | None = None) -> dict[str, pathlib.Path]:
    """Write the stand-ins (all, or ``names``) into the Hugging Face cache ``cache_dir``.

    Returns ``{name: snapshot folder}``. Folders already holding a complete stand-in are
    kept (a marker file is written last), so calling this twice is cheap.
    """
    names = list(STANDINS) if names is None else list(names)
    for name in names:
        hub_repo_of(name)  # unknown names fail before anything is written
    out = {}
    with _quiet():
        for name in names:
            repo, write = STANDINS[name]
            folder = snapshot_dir(cache_dir, repo)
            done, stamp = folder / ".mmcourse-standin-complete", f"{name} v{STANDIN_VERSION}"
            if not (done.is_file() and done.read_text() == stamp):
                write(folder)
                done.write_text(stamp)
            out[name] = folder
    return out


@contextlib.contextmanager
def _quiet():
    """No progress bars or config warnings from transformers, no "randomly initialised" note from open_clip."""
    import logging

    from transformers.utils import logging as hf_logging

    level, root = hf_logging.get_verbosity(), logging.getLogger()
    root_level = root.level
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()
        root.setLevel(root_level)


@contextlib.contextmanager
def standin_environment(cache_dir: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Within this block, this process reads hub models from ``cache_dir`` only, offline.

    Sets ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE=1`` (for subprocesses, e.g. notebook kernels)
    and the same two values in huggingface_hub's already-imported constants (for this
    process); everything is restored on exit.
    """
    from huggingface_hub import constants

    cache_dir = pathlib.Path(cache_dir)
    saved_env = {k: os.environ.get(k) for k in ("HF_HUB_CACHE", "HF_HUB_OFFLINE")}
    saved_constants = (constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE)
    os.environ["HF_HUB_CACHE"], os.environ["HF_HUB_OFFLINE"] = str(cache_dir), "1"
    constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE = str(cache_dir), True
    try:
        yield cache_dir
    finally:
        constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE = saved_constants
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
