"""A small mixed corpus with labelled queries, and search-quality metrics on ranked ids.

The corpus mixes what a real multimodal collection holds:

- captioned scenes (text + image), drawn by :mod:`mmcourse.data.shapes`;
- uncaptioned scenes (image only) — reachable only through the image index;
- short catalogue notes about a colour–shape item (text only) — reachable only through the text index;
- the scikit-image photos with their captions (text + image), from :mod:`mmcourse.data.photos`.

Each query is labelled with the ids of every relevant document, so recall@k and nDCG@k
can be measured for text-only, image-only and fused search alike.

:func:`query_kind_corpus` arranges the same pieces so that each query has a known answer
*kind*: only the text index can answer it (its item exists only as shop listings), only the
image index can (only uncaptioned pictures of it), or both are needed (captioned and
uncaptioned pictures and a listing). Fusion's benefit and its failure modes are then measured per kind.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from ..retrieval.metrics import ndcg_at_k_ids, recall_at_k_ids
from .index import Document

__all__ = ["LabelledQuery", "mixed_corpus", "query_kind_corpus", "QUERY_KINDS", "PHOTO_QUERIES", "NOTE_TEMPLATES", "LISTING_TEMPLATES", "embed_queries",
           "evaluate_search"]

# Notes written like a shop inventory: they name the item but describe no picture.
NOTE_TEMPLATES: tuple[str, ...] = (
    "inventory note: {color} {shape} stickers, restocked on Monday",
    "customer asked whether the {color} {shape} magnet is back in stock",
    "order 1182 contains one {color} {shape} badge",
    "the {color} {shape} stamp is discontinued",
)
# Shop listings for query_kind_corpus: they name the item in the query's own words but show no picture.
LISTING_TEMPLATES: tuple[str, ...] = (
    "{color} {shape} sticker, sold in packs of ten",
    "fridge magnet: a {color} {shape}",
    "enamel pin in the form of a {color} {shape}",
    "rubber stamp that prints a {color} {shape}",
)
# Paraphrased queries for the photos, in words their captions do not use.
PHOTO_QUERIES: dict[str, str] = {
    "astronaut": "a space traveller posing in her suit",
    "chelsea": "a kitten with orange fur",
    "coffee": "an espresso drink in a mug",
    "rocket": "a spacecraft ready for lift-off",
    "camera": "a photographer standing behind his tripod",
    "coins": "a pile of old money",
    "horse": "the outline of a pony",
    "moon": "craters on the lunar surface",
    "page": "a printed document",
    "clock": "a timepiece hanging on the wall",
    "hubble_deep_field": "thousands of far-away galaxies in space",
    "immunohistochemistry": "a stained biological tissue sample under a microscope",
    "retina": "an eye fundus photograph",
    "brick": "a wall made of bricks",
    "grass": "a lawn texture",
    "gravel": "small stones on the ground",
    "colorwheel": "a circle of rainbow colours",
    "logo": "the logo of an image-processing library",
}


@dataclass
class LabelledQuery:
    text: str  # the query
    relevant: set  # ids of every relevant document
    kind: str  # mixed_corpus: "shape" or "photo"; query_kind_corpus: one of QUERY_KINDS


def _scene_documents(scenes, wanted: dict[str, tuple[int, int]]) -> tuple[list[Document], dict[str, set]]:
    """Documents from drawn scenes: per label, ``wanted[label] = (captioned, image-only)`` of them, in drawing order.

    Returns the documents and, per wanted label, the ids of its documents; raises when too few were drawn.
    """
    docs, relevant = [], {label: set() for label in wanted}
    have = {label: [0, 0] for label in wanted}
    for j, scene in enumerate(scenes):
        if scene.label not in wanted:
            continue
        captioned, image_only = have[scene.label]
        if captioned < wanted[scene.label][0]:
            doc = Document(f"scene-{j}", text=scene.caption, image=scene.image, metadata={"label": scene.label})
            have[scene.label][0] += 1
        elif image_only < wanted[scene.label][1]:
            doc = Document(f"image-{j}", image=scene.image, metadata={"label": scene.label})
            have[scene.label][1] += 1
        else:
            continue
        docs.append(doc)
        relevant[scene.label].add(doc.id)
    short = [label for label in wanted if tuple(have[label]) != tuple(wanted[label])]
    if short:
        raise RuntimeError(f"not enough scenes drawn for {short}; draw more scenes")
    return docs, relevant


def mixed_corpus(per_label: int = 2, image_only_per_label: int = 2, notes_per_label: int = 1,
                 photos: bool = True, seed: int = 0, size: int = 64) -> tuple[list[Document], list[LabelledQuery]]:
    """Documents (in a shuffled order) and one labelled query per colour–shape label and per photo."""
    from mmcourse.data.shapes import COLOR_PARAPHRASES, SHAPE_PARAPHRASES, labels, make_scenes

    rng = random.Random(seed)
    all_labels = labels("all")
    n_scenes = len(all_labels) * (per_label + image_only_per_label) * 4
    scenes = make_scenes(n_scenes, split="all", seed=seed, size=size)
    docs, relevant = _scene_documents(scenes, {label: (per_label, image_only_per_label) for label in all_labels})
    for label in all_labels:
        color, shape = label.split()
        for i in range(notes_per_label):
            note = NOTE_TEMPLATES[rng.randrange(len(NOTE_TEMPLATES))].format(color=color, shape=shape)
            doc = Document(f"note-{color}-{shape}-{i}", text=note, metadata={"label": label})
            docs.append(doc)
            relevant[label].add(doc.id)
    queries = []
    for label in all_labels:
        color, shape = label.split()
        text = f"a {rng.choice(COLOR_PARAPHRASES[color])} {rng.choice(SHAPE_PARAPHRASES[shape])}"
        queries.append(LabelledQuery(text, relevant[label], "shape"))
    if photos:
        from mmcourse.data.photos import load_photos

        for photo in load_photos(max_side=size * 2):
            docs.append(Document(f"photo-{photo.name}", text=photo.caption, image=photo.image,
                                 metadata={"label": photo.label}))
            queries.append(LabelledQuery(PHOTO_QUERIES[photo.name], {f"photo-{photo.name}"}, "photo"))
    rng.shuffle(docs)
    return docs, queries


# Which index can answer a query of each kind in query_kind_corpus.
QUERY_KINDS: dict[str, str] = {
    "text": "only the text index can answer: the item exists only as shop listings",
    "image": "only the image index can answer: the item exists only as uncaptioned pictures",
    "both": "both are needed: captioned and uncaptioned pictures and a listing",
}


def query_kind_corpus(per_kind: int = 8, per_label: int = 3, seed: int = 0, size: int = 64
                      ) -> tuple[list[Document], list[LabelledQuery]]:
    """Documents and one query per colour–shape label, each label assigned one answer kind.

    The 24 labels are shuffled and split into :data:`QUERY_KINDS` groups of ``per_kind``:

    - ``"text"``: ``per_label`` shop listings (text only, :data:`LISTING_TEMPLATES`) and no picture;
    - ``"image"``: ``per_label`` uncaptioned scenes (image only) and no text about the item;
    - ``"both"``: two captioned scenes, two uncaptioned scenes and one listing.

    The query is the plain label ("a red circle"); its relevant documents are every
    document of its label. Documents of the other labels are what each index wrongly
    returns when it cannot answer.
    """
    from mmcourse.data.shapes import labels, make_scenes

    all_labels = labels("all")
    if not (isinstance(per_kind, int) and 1 <= per_kind and per_kind * len(QUERY_KINDS) <= len(all_labels)):
        raise ValueError(f"per_kind must be an int in [1, {len(all_labels) // len(QUERY_KINDS)}], got {per_kind!r}")
    if not (isinstance(per_label, int) and per_label >= 1):
        raise ValueError(f"per_label must be an int >= 1, got {per_label!r}")
    rng = random.Random(seed)
    shuffled = rng.sample(all_labels, len(all_labels))
    kind_of = {label: kind for i, kind in enumerate(QUERY_KINDS)
               for label in shuffled[i * per_kind:(i + 1) * per_kind]}
    # pictures wanted per label: (captioned, uncaptioned)
    wanted = {label: (0, per_label) if kind == "image" else (2, 2) for label, kind in kind_of.items()
              if kind != "text"}
    scenes = make_scenes(sum(a + b for a, b in wanted.values()) * len(all_labels), split="all", seed=seed, size=size)
    docs, pictured = _scene_documents(scenes, wanted)
    relevant = {label: pictured.get(label, set()) for label in kind_of}
    for label, kind in kind_of.items():
        if kind == "image":
            continue
        color, shape = label.split()
        for i in range(per_label if kind == "text" else 1):
            note = LISTING_TEMPLATES[(i + rng.randrange(len(LISTING_TEMPLATES))) % len(LISTING_TEMPLATES)]
            doc = Document(f"listing-{color}-{shape}-{i}", text=note.format(color=color, shape=shape),
                           metadata={"label": label})
            docs.append(doc)
            relevant[label].add(doc.id)
    queries = [LabelledQuery(f"a {label}", relevant[label], kind_of[label]) for label in all_labels]
    rng.shuffle(docs)
    return docs, queries


def embed_queries(index, queries: list[LabelledQuery]) -> list[dict]:
    """Each query's vectors for each index (text model → text index, CLIP text tower → image index), batched."""
    texts = [q.text for q in queries]
    per_index = {}
    if index.count("text"):
        per_index["text"] = index.text_model.embed_texts(texts)  # (Q, D_text)
    if index.count("image"):
        per_index["image"] = index.clip.embed_texts(texts)  # (Q, D_image)
    return [{m: vectors[i] for m, vectors in per_index.items()} for i in range(len(queries))]


def evaluate_search(index, queries: list[LabelledQuery], k: int = 10, vectors: list[dict] | None = None,
                    **search_kwargs) -> dict[str, float]:
    """Mean recall@k and nDCG@k over labelled queries.

    Runs ``index.search(text=q.text, k=k, **search_kwargs)``, or, with ``vectors`` from
    :func:`embed_queries`, the same search on precomputed query vectors (a sweep over
    weights then embeds each query once).
    """
    recalls, ndcgs = [], []
    for i, q in enumerate(queries):
        if vectors is None:
            hits = index.search(text=q.text, k=k, **search_kwargs)
        else:
            hits = index.search_vectors(vectors[i], k=k, **search_kwargs)
        ranked = [hit.id for hit in hits]
        recalls.append(recall_at_k_ids(ranked, q.relevant, k))
        ndcgs.append(ndcg_at_k_ids(ranked, q.relevant, k))
    return {"recall": sum(recalls) / len(recalls), "ndcg": sum(ndcgs) / len(ndcgs)}
