"""BEIR-style benchmark folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) and their
graded-relevance metrics. The corpus becomes a seeds folder: one file per document, its title as
the headline, so the normal indexer builds it."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BeirQuery:
    id: str
    text: str
    relevant: dict[str, int]  # document id -> relevance grade


def load_beir_queries(folder: Path, split: str = "test") -> list[BeirQuery]:
    """The judged queries of one split, in qrels order."""
    judgements: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            judgements.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    texts = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            query = json.loads(line)
            texts[query["_id"]] = query["text"]
    return [BeirQuery(qid, texts[qid], docs) for qid, docs in judgements.items()]


def write_beir_seeds(folder: Path, seeds_dir: Path) -> int:
    """Write each corpus document as ``<id>.txt`` (title line, blank line, text); files whose
    content is already right are left alone, so rebuilds stay incremental."""
    seeds_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            document = json.loads(line)
            title = " ".join(document.get("title", "").split()) or f"Document {document['_id']}"
            content = f"{title}\n\n{document['text'].strip()}\n"
            path = seeds_dir / f"{document['_id']}.txt"
            if not path.is_file() or path.read_text(encoding="utf-8") != content:
                path.write_text(content, encoding="utf-8")
            count += 1
    return count


def document_id(source: str) -> str:
    """The corpus id of a passage's source file, as ``write_beir_seeds`` named it."""
    return Path(source).stem


def ndcg_at(ranked: Sequence[str], relevant: dict[str, int], cutoff: int = 10) -> float:
    """Normalized discounted cumulative gain of a ranked list of document ids."""
    gains = sum(
        relevant.get(doc, 0) / math.log2(rank + 1)
        for rank, doc in enumerate(ranked[:cutoff], start=1)
    )
    ideal = sorted(relevant.values(), reverse=True)[:cutoff]
    best = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(ideal, start=1))
    return gains / best if best else 0.0


def recall_at(ranked: Sequence[str], relevant: dict[str, int], cutoff: int) -> float:
    wanted = {doc for doc, grade in relevant.items() if grade > 0}
    return len(wanted & set(ranked[:cutoff])) / len(wanted) if wanted else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: dict[str, int], cutoff: int = 10) -> float:
    rank = next(
        (r for r, doc in enumerate(ranked[:cutoff], start=1) if relevant.get(doc, 0) > 0), None
    )
    return 1 / rank if rank else 0.0
