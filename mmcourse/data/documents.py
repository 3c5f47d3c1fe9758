"""Rendered document pages with queries and graded relevance, for late-interaction retrieval.

Each page is a small report: a bold heading naming its topic and year, then four
blocks in a 2 x 2 grid, each a paragraph, a table, a bar chart or a line chart.
Some facts live only in the pixels:

- a bar chart's tallest bar has a colour; a line chart rises or falls in a colour;
- a table flags one cell with a colour (a status table);

so a query like "rainfall bar chart where the green bar is tallest" can only be
answered by looking at the page. Other facts live in the text (a paragraph mentions
a keyword), where reading wins. Every page keeps its ground-truth text — what a
perfect OCR engine would extract (heading, paragraphs, table cells, figure captions) —
so notebooks can compare "embed the page image" with "OCR, then embed the text".

Relevance is graded: 2 when the page matches the query's topic *and* its block
fact, 1 when it matches only one of them, 0 otherwise. Everything is deterministic
by seed; the train and held-out splits use disjoint seed streams.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .shapes import COLORS
from ..validate import integer, positive_int

TOPICS: tuple[str, ...] = ("rainfall", "revenue", "traffic", "energy", "harvest", "tourism", "exports", "housing")
BLOCK_KINDS: tuple[str, ...] = ("paragraph", "table", "bar", "line")
BLOCK_WEIGHTS: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)  # chance of each kind per grid slot
TRENDS: tuple[str, ...] = ("rising", "falling")
KEYWORDS: tuple[str, ...] = ("forecast", "budget", "north", "south", "record", "decline", "survey", "target")
REGIONS: tuple[str, ...] = ("North", "South", "East", "West")
QUERY_KINDS: tuple[str, ...] = ("bar", "line", "table", "text")  # "text": answerable from the paragraph text
VISUAL_QUERY_KINDS: tuple[str, ...] = ("bar", "line", "table")  # answerable only from the pixels

QUERY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "bar": (
        "{topic} bar chart where the {color} bar is the tallest",
        "which {topic} chart has its highest bar in {color}",
        "{topic} figure with the {color} bar on top",
    ),
    "line": (
        "{topic} line chart with a {trend} {color} line",
        "a {color} line {trend} in the {topic} figure",
        "{topic} trend chart, {color} line {trend}",
    ),
    "table": (
        "{topic} table with a cell flagged in {color}",
        "which {topic} table marks a cell {color}",
        "{topic} status table with a {color} cell",
    ),
    "text": (
        "{topic} report that mentions the {keyword}",
        "{topic} paragraph about the {keyword}",
        "which {topic} page talks about the {keyword}",
    ),
}
_SENTENCES: tuple[str, ...] = (
    "The {keyword} for {topic} was revised this quarter.",
    "Analysts link the {keyword} to {topic} in {region}.",
    "{Topic} figures follow the {keyword} closely.",
    "Our {keyword} notes on {topic} are summarised below.",
)
_SPLIT_SEEDS = {"train": 0, "heldout": 1_000_003}
_RENDER_SCALE = 2  # draw at 2x, then downsample (anti-aliased text and lines)


@dataclass
class Block:
    """One block of a page: its kind, its box in page pixels and the facts it shows."""

    kind: str  # "paragraph" | "table" | "bar" | "line"
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels of the final page
    color: str | None = None  # tallest bar / line colour / flagged cell colour
    trend: str | None = None  # line charts: "rising" | "falling"
    keyword: str | None = None  # paragraphs: the keyword the text mentions
    text: str = ""  # what a perfect OCR would read from this block


@dataclass
class Page:
    """A rendered page, its topic and year, its blocks and its ground-truth text."""

    image: Image.Image  # RGB, size x size
    topic: str
    year: int
    blocks: list[Block]
    text: str  # ground-truth text of the whole page (the "perfect OCR" output)
    page_id: str = ""

    def has(self, kind: str, color: str | None = None, trend: str | None = None, keyword: str | None = None) -> bool:
        """True if some block of ``kind`` shows all the given facts."""
        for b in self.blocks:
            if b.kind != kind:
                continue
            if color is not None and b.color != color:
                continue
            if trend is not None and b.trend != trend:
                continue
            if keyword is not None and b.keyword != keyword:
                continue
            return True
        return False


@dataclass
class Query:
    """A search query about one block fact of a target page."""

    text: str
    kind: str  # "bar" | "line" | "table" | "text"
    topic: str
    color: str | None = None
    trend: str | None = None
    keyword: str | None = None
    target: int = -1  # index of the page it was written from

    def fact_matches(self, page: Page) -> bool:
        kind = "paragraph" if self.kind == "text" else self.kind
        return page.has(kind, color=self.color, trend=self.trend, keyword=self.keyword)


@dataclass
class DocumentSet:
    """Pages, queries and the graded relevance matrix ``(n_queries, n_pages)`` with values 0/1/2."""

    pages: list[Page]
    queries: list[Query]
    relevance: np.ndarray = field(repr=False)  # (Nq, Np) int8

    @property
    def images(self) -> list[Image.Image]:
        return [p.image for p in self.pages]

    @property
    def texts(self) -> list[str]:
        """Ground-truth page texts (what a perfect OCR would give)."""
        return [p.text for p in self.pages]

    @property
    def query_texts(self) -> list[str]:
        return [q.text for q in self.queries]

    def query_kinds(self) -> np.ndarray:
        return np.array([q.kind for q in self.queries])


# ---- rendering ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _font(px: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans from matplotlib's bundled fonts: identical glyphs on every machine."""
    from matplotlib import font_manager

    path = font_manager.findfont("DejaVu Sans:bold" if bold else "DejaVu Sans", fallback_to_default=True)
    return ImageFont.truetype(path, px)


@functools.lru_cache(maxsize=8192)
def _text_mask(text: str, px: int, bold: bool) -> tuple[Image.Image, tuple[int, int]]:
    """The rendered glyphs of ``text`` as an "L" mask, and its offset (cached: labels repeat a lot)."""
    font = _font(px, bold)
    left, top, right, bottom = font.getbbox(text)
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font)
    return mask, (left, top)


@functools.lru_cache(maxsize=8192)
def _text_width(text: str, px: int) -> float:
    return _font(px).getlength(text)


def _text(image: Image.Image, xy, text: str, px: int, fill, bold: bool = False) -> None:
    mask, (dx, dy) = _text_mask(text, int(px), bold)
    image.paste(fill, (int(xy[0] + dx), int(xy[1] + dy)), mask)


def _draw_paragraph(image, draw, box, rng, topic, s) -> Block:
    keyword = str(rng.choice(KEYWORDS))
    sentences = [
        str(rng.choice(_SENTENCES)).format(keyword=keyword, topic=topic, Topic=topic.capitalize(),
                                           region=str(rng.choice(REGIONS)).lower())
        for _ in range(2)
    ]
    text = " ".join(sentences)
    x0, y0, x1, y1 = (v * s for v in box)
    words, line, y = text.split(), "", y0 + 2 * s
    for word in words:  # greedy wrap to the block width
        trial = f"{line} {word}".strip()
        if _text_width(trial, 6 * s) > (x1 - x0 - 4 * s) and line:
            _text(image, (x0 + 2 * s, y), line, 6 * s, (70, 70, 70))
            y += 7 * s
            line = word
            if y > y1 - 7 * s:
                break
        else:
            line = trial
    if y <= y1 - 7 * s and line:
        _text(image, (x0 + 2 * s, y), line, 6 * s, (70, 70, 70))
    return Block("paragraph", box, keyword=keyword, text=text)


def _draw_table(image, draw, box, rng, topic, s) -> Block:
    color = str(rng.choice(list(COLORS)))
    x0, y0, x1, y1 = (v * s for v in box)
    rows, cols = 3, 3
    cw, ch = (x1 - x0) / cols, (y1 - y0 - 8 * s) / rows
    top = y0 + 8 * s
    _text(image, (x0 + 2 * s, y0), f"Table: {topic}", 5 * s, (30, 30, 30))
    flagged = (int(rng.integers(rows)), int(rng.integers(1, cols)))
    cells = []
    for r in range(rows):
        row = [REGIONS[r]]
        for c in range(cols):
            cx, cy = x0 + c * cw, top + r * ch
            if (r, c) == flagged:
                draw.rectangle([cx, cy, cx + cw, cy + ch], fill=COLORS[color])
            draw.rectangle([cx, cy, cx + cw, cy + ch], outline=(60, 60, 60), width=s)
            if c == 0:
                label = REGIONS[r]
            else:
                label = str(int(rng.integers(10, 99)))
                row.append(label)
            _text(image, (cx + 2 * s, cy + 2 * s), label, 5 * s, (20, 20, 20))
        cells.append(" ".join(row))
    return Block("table", box, color=color, text=f"Table: {topic}. " + ". ".join(cells) + ".")


def _axes(draw, x0, y0, x1, y1, s):
    draw.line([x0, y1, x1, y1], fill=(40, 40, 40), width=s)
    draw.line([x0, y0, x0, y1], fill=(40, 40, 40), width=s)


def _draw_bar(image, draw, box, rng, topic, s) -> Block:
    names = list(COLORS)
    picks = [names[i] for i in rng.choice(len(names), size=4, replace=False)]
    heights = rng.uniform(0.25, 0.75, size=4)
    top = int(rng.integers(4))
    heights[top] = rng.uniform(0.88, 1.0)
    x0, y0, x1, y1 = (v * s for v in box)
    _text(image, (x0 + 2 * s, y0), f"Fig: {topic} by quarter", 5 * s, (30, 30, 30))
    ax0, ay0, ax1, ay1 = x0 + 3 * s, y0 + 8 * s, x1 - 2 * s, y1 - 2 * s
    _axes(draw, ax0, ay0, ax1, ay1, s)
    w = (ax1 - ax0) / 4
    for i, (name, h) in enumerate(zip(picks, heights)):
        bx = ax0 + i * w + w * 0.15
        draw.rectangle([bx, ay1 - h * (ay1 - ay0), bx + w * 0.7, ay1 - s], fill=COLORS[name])
    return Block("bar", box, color=picks[top], text=f"Fig: {topic} by quarter. Q1 Q2 Q3 Q4.")


def _draw_line(image, draw, box, rng, topic, s) -> Block:
    color = str(rng.choice(list(COLORS)))
    trend = str(rng.choice(TRENDS))
    n = 6
    base = np.linspace(0.15, 0.9, n) + rng.normal(0, 0.06, n)
    ys = np.clip(base if trend == "rising" else base[::-1], 0.05, 1.0)
    x0, y0, x1, y1 = (v * s for v in box)
    _text(image, (x0 + 2 * s, y0), f"Fig: {topic} over time", 5 * s, (30, 30, 30))
    ax0, ay0, ax1, ay1 = x0 + 3 * s, y0 + 8 * s, x1 - 2 * s, y1 - 2 * s
    _axes(draw, ax0, ay0, ax1, ay1, s)
    pts = [(ax0 + 2 * s + i * (ax1 - ax0 - 4 * s) / (n - 1), ay1 - y * (ay1 - ay0)) for i, y in enumerate(ys)]
    draw.line(pts, fill=COLORS[color], width=3 * s, joint="curve")
    return Block("line", box, color=color, trend=trend, text=f"Fig: {topic} over time. 2019 2024.")


_DRAW = {"paragraph": _draw_paragraph, "table": _draw_table, "bar": _draw_bar, "line": _draw_line}


def render_page(rng: np.random.Generator, size: int = 128, page_id: str = "") -> Page:
    """Draw one page with ``rng``; ``size`` is the side in pixels (multiple of 32 recommended)."""
    s = _RENDER_SCALE
    topic = str(rng.choice(TOPICS))
    year = int(rng.integers(2015, 2025))
    big = size * s
    image = Image.new("RGB", (big, big), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    unit = size / 128  # layout is designed for 128 px and scaled
    _text(image, (4 * unit * s, 3 * unit * s), topic.capitalize(), int(15 * unit * s), (15, 15, 60), bold=True)
    _text(image, (92 * unit * s, 8 * unit * s), str(year), int(7 * unit * s), (90, 90, 90))
    draw.line([4 * unit * s, 22 * unit * s, (size - 4 * unit) * s, 22 * unit * s], fill=(15, 15, 60), width=s)
    blocks = []
    slots = [(4, 26), (66, 26), (4, 77), (66, 77)]
    kinds = rng.choice(BLOCK_KINDS, size=len(slots), p=BLOCK_WEIGHTS)
    for (sx, sy), kind in zip(slots, kinds):
        box = tuple(int(round(v * unit)) for v in (sx, sy, sx + 58, sy + 48))
        blocks.append(_DRAW[str(kind)](image, draw, box, rng, topic, s))
    image = image.reduce(s)  # box-filter downsample: anti-aliased and fast
    text = f"{topic.capitalize()} {year}. " + " ".join(b.text for b in blocks)
    return Page(image=image, topic=topic, year=year, blocks=blocks, text=text, page_id=page_id)


# ---- queries and relevance ---------------------------------------------------------------
def _query_for(page: Page, index: int, rng: np.random.Generator, kinds=QUERY_KINDS) -> Query | None:
    options = [b for b in page.blocks if ("text" if b.kind == "paragraph" else b.kind) in kinds]
    if not options:
        return None
    block = options[int(rng.integers(len(options)))]
    kind = "text" if block.kind == "paragraph" else block.kind
    template = QUERY_TEMPLATES[kind][int(rng.integers(len(QUERY_TEMPLATES[kind])))]
    text = template.format(topic=page.topic, color=block.color, trend=block.trend, keyword=block.keyword)
    return Query(text=text, kind=kind, topic=page.topic, color=block.color, trend=block.trend,
                 keyword=block.keyword, target=index)


def relevance_matrix(queries: list[Query], pages: list[Page]) -> np.ndarray:
    """Graded relevance ``(Nq, Np)``: 2 = topic and block fact match, 1 = one of them, 0 = neither."""
    rel = np.zeros((len(queries), len(pages)), dtype=np.int8)
    for i, q in enumerate(queries):
        for j, p in enumerate(pages):
            rel[i, j] = int(p.topic == q.topic) + int(q.fact_matches(p))
    # graded: both facts = 2, exactly one = 1 (the sum already is that)
    return rel


def make_documents(n_pages: int = 200, split: str = "train", seed: int = 0, size: int = 128,
                   queries_per_page: int = 1, query_kinds: tuple[str, ...] = QUERY_KINDS) -> DocumentSet:
    """Render ``n_pages`` pages of ``split`` ("train" or "heldout") with queries and graded relevance.

    Each page contributes up to ``queries_per_page`` queries about its own blocks
    (restricted to ``query_kinds``; see :data:`QUERY_KINDS`). Same arguments, same pixels.
    """
    if split not in _SPLIT_SEEDS:
        raise ValueError(f"split must be one of {sorted(_SPLIT_SEEDS)}, got {split!r}")
    positive_int(n_pages, "n_pages")
    integer(size, "size", minimum=64, unit="pixels")
    bad = [k for k in query_kinds if k not in QUERY_KINDS]
    if bad or not query_kinds:
        raise ValueError(f"query_kinds must be a non-empty subset of {QUERY_KINDS}, got {query_kinds!r}")
    rng = np.random.default_rng([_SPLIT_SEEDS[split], seed])
    pages = [render_page(rng, size=size, page_id=f"{split}-{seed}-{i:04d}") for i in range(n_pages)]
    queries = []
    for i, page in enumerate(pages):
        for _ in range(queries_per_page):
            q = _query_for(page, i, rng, query_kinds)
            if q is not None:
                queries.append(q)
    return DocumentSet(pages=pages, queries=queries, relevance=relevance_matrix(queries, pages))


__all__ = [
    "TOPICS", "BLOCK_KINDS", "TRENDS", "KEYWORDS", "QUERY_KINDS", "VISUAL_QUERY_KINDS", "QUERY_TEMPLATES",
    "Block", "Page", "Query", "DocumentSet", "render_page", "relevance_matrix", "make_documents",
]
