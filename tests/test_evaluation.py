"""Quality metrics and benchmark loaders (pure, no model)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import SHARED, shared

from indexer.errors import UsageError
from indexer.parse import decode_source, parse_articles
from search_api.beir import (
    document_id,
    load_beir_queries,
    ndcg_at,
    recall_at,
    reciprocal_rank,
    write_beir_seeds,
)
from search_api.evaluation import LabelledQuery, judge, load_queries, summarize
from search_api.models import SearchResult

SCIFACT = SHARED / "corpora" / "scifact"


def result(rank: int, text: str) -> SearchResult:
    return SearchResult(
        rank=rank, score=1.0, chunk_id=str(rank), article_id="a", title="t", text=text,
        source="s.txt", kind="paragraph", position=0, start=0, end=len(text),
    )  # fmt: skip


def test_judging_finds_the_first_relevant_passage_and_the_share_of_labels_found() -> None:
    query = LabelledQuery("flood", ("evacuated 50,000", "Sebou River"))
    results = [result(1, "dam water"), result(2, "Morocco evacuated 50,000 people"), result(3, "x")]
    outcome = judge(query, results)
    assert outcome.first_relevant_rank == 2
    assert outcome.found_by_cutoff == {1: 0.0, 5: 0.5, 10: 0.5}
    report = summarize("hybrid", [outcome, judge(LabelledQuery("q", ("absent",)), results)])
    assert report.mrr_at_10 == 0.25 and report.recall[5] == 0.25 and report.missed == ["q"]


def test_the_seed_query_set_loads(seed_queries: Path) -> None:
    queries = load_queries(seed_queries)
    assert len(queries) == 20 and queries[0].query == "flood evacuations"


@pytest.mark.parametrize("line", ['{"query": "", "relevant": ["x"]}', '{"query": "q", "relevant": []}',
                                  '{"query": "q", "relevant": "x"}', '{"query": "q"}', "not json"])  # fmt: skip
def test_a_bad_query_line_is_named(tmp_path: Path, line: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"query": "fine", "relevant": ["x"]}\n' + line + "\n")
    with pytest.raises(UsageError, match="line 2"):
        load_queries(path)


def test_ndcg_recall_and_reciprocal_rank() -> None:
    relevant = {"d1": 1, "d2": 1}
    assert ndcg_at(["d1", "d2", "x"], relevant) == pytest.approx(1.0)
    assert ndcg_at(["x", "d1"], relevant) == pytest.approx(
        (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    )
    assert ndcg_at(["x"], relevant) == 0.0
    assert recall_at(["x", "d2"], relevant, 100) == 0.5
    assert reciprocal_rank(["x", "x2", "d2"], relevant) == pytest.approx(1 / 3)


def test_the_scifact_test_split_loads_with_its_judgements() -> None:
    queries = load_beir_queries(shared(SCIFACT), "test")
    assert len(queries) == 300
    assert sum(len(q.relevant) for q in queries) == 339


def test_beir_documents_become_one_article_seed_files(tmp_path: Path) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    docs = [{"_id": "42", "title": "A  Title", "text": "First sentence. Second one.", "metadata": {}},
            {"_id": "7", "title": "", "text": "No title here.", "metadata": {}}]  # fmt: skip
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    assert write_beir_seeds(folder, tmp_path / "seeds") == 2
    seeds = tmp_path / "seeds"
    [article] = parse_articles(decode_source((seeds / "42.txt").read_bytes()))
    assert article.title == "A Title" and [p.text for p in article.paragraphs] == [
        "First sentence. Second one."
    ]
    assert parse_articles(decode_source((seeds / "7.txt").read_bytes()))[0].title == "Document 7"
    assert document_id("sub/42.txt") == "42"
