"""query_kind_corpus: each query's answer lives where its kind says, and nowhere else."""
import pytest

from mmcourse.search.corpus import QUERY_KINDS, query_kind_corpus


@pytest.fixture(scope="module")
def corpus():
    return query_kind_corpus(seed=0, size=32)


def test_every_kind_has_its_queries_and_only_its_documents(corpus):
    docs, queries = corpus
    by_id = {d.id: d for d in docs}
    assert len({d.id for d in docs}) == len(docs)
    assert sorted(q.kind for q in queries) == sorted(kind for kind in QUERY_KINDS for _ in range(8))
    for q in queries:
        label = q.text.removeprefix("a ")
        assert q.relevant == {d.id for d in docs if d.metadata["label"] == label}  # every document of the item
        relevant = [by_id[i] for i in q.relevant]
        with_text = [d for d in relevant if d.text]
        with_image = [d for d in relevant if d.image is not None]
        if q.kind == "text":  # listings only: nothing for the image index
            assert len(relevant) == 3 and not with_image and len(with_text) == 3
        elif q.kind == "image":  # uncaptioned pictures only: nothing for the text index
            assert len(relevant) == 3 and not with_text and len(with_image) == 3
        else:  # both: each index reaches part of the answer, neither all of it
            assert len(relevant) == 5 and len(with_text) == 3 and len(with_image) == 4


def test_same_seed_same_corpus_and_bad_sizes_rejected(corpus):
    docs, queries = corpus
    again, again_queries = query_kind_corpus(seed=0, size=32)
    assert [d.id for d in docs] == [d.id for d in again] and [q.text for q in queries] == [q.text for q in again_queries]
    with pytest.raises(ValueError, match="per_kind"):
        query_kind_corpus(per_kind=9)
    with pytest.raises(ValueError, match="per_label"):
        query_kind_corpus(per_label=0)
