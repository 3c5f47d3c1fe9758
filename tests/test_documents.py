"""mmcourse.data.documents: deterministic pages, queries tied to their pages, graded relevance."""
import numpy as np
import pytest

from mmcourse.data.documents import QUERY_KINDS, make_documents, relevance_matrix


@pytest.fixture(scope="module")
def docs():
    return make_documents(24, "heldout", seed=3, queries_per_page=2)


def test_deterministic_by_seed_and_split(docs):
    again = make_documents(24, "heldout", seed=3, queries_per_page=2)
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(docs.pages, again.pages))
    assert docs.query_texts == again.query_texts and np.array_equal(docs.relevance, again.relevance)
    train = make_documents(24, "train", seed=3)
    assert not np.array_equal(np.asarray(train.pages[0].image), np.asarray(docs.pages[0].image))


def test_pages_are_rgb_with_blocks_and_text(docs):
    for page in docs.pages:
        assert page.image.mode == "RGB" and page.image.size == (128, 128)
        assert len(page.blocks) == 4 and page.topic.capitalize() in page.text
        assert np.asarray(page.image).std() > 20  # something is drawn
    kinds = {b.kind for p in docs.pages for b in p.blocks}
    assert kinds == {"paragraph", "table", "bar", "line"}


def test_query_target_is_fully_relevant(docs):
    assert len(docs.queries) == 48 and {q.kind for q in docs.queries} <= set(QUERY_KINDS)
    for i, q in enumerate(docs.queries):
        assert docs.relevance[i, q.target] == 2, q
        assert q.topic in q.text
    assert set(np.unique(docs.relevance)) <= {0, 1, 2}
    assert (docs.relevance == 1).any() and (docs.relevance == 0).any()


def test_visual_facts_are_not_in_the_ground_truth_text(docs):
    """The chart and table facts (colours, trends) are pixels only: a perfect OCR cannot see them."""
    for q in docs.queries:
        page_text = docs.pages[q.target].text.lower()
        if q.kind in ("bar", "line", "table"):
            assert q.color not in page_text
        if q.kind == "line":
            assert q.trend not in page_text
        if q.kind == "text":
            assert q.keyword in page_text


def test_relevance_grades():
    docs = make_documents(6, "train", seed=0)
    rel = relevance_matrix(docs.queries, docs.pages)
    for i, q in enumerate(docs.queries):
        for j, p in enumerate(docs.pages):
            assert rel[i, j] == (p.topic == q.topic) + q.fact_matches(p)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        make_documents(4, "test")
    with pytest.raises(ValueError, match="n_pages"):
        make_documents(0)
    with pytest.raises(ValueError, match="query_kinds"):
        make_documents(4, query_kinds=("pie",))
