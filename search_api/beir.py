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

from indexer.errors import SeedsearchError, UsageError
from indexer.store import IndexStore


@dataclass(frozen=True)
class BeirQuery:
    id: str
    text: str
    relevant: dict[str, int]  # document id -> relevance grade


def load_beir_queries(folder: Path, split: str = "test") -> list[BeirQuery]:
    """The judged queries of one split, in qrels order; ``UsageError`` names a bad file."""
    qrels = folder / "qrels" / f"{split}.tsv"
    judgements: dict[str, dict[str, int]] = {}
    try:
        with qrels.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                judgements.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    except (OSError, KeyError, ValueError) as error:
        raise UsageError(f"cannot read {qrels}: {_reason(error)}") from None
    texts = {}
    queries = folder / "queries.jsonl"
    try:
        with queries.open(encoding="utf-8") as handle:
            for line in handle:
                query = json.loads(line)
                texts[query["_id"]] = query["text"]
        return [BeirQuery(qid, texts[qid], docs) for qid, docs in judgements.items()]
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise UsageError(f"cannot read {queries}: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    return f"missing field or query {error}" if isinstance(error, KeyError) else str(error)


def corpus_label(folder: Path) -> str:
    """How a manifest records that a BEIR folder's corpus built it."""
    return f"beir:{folder.resolve()}"


def check_beir_index(store: IndexStore, folder: Path) -> None:
    """Refuse an index root that holds a live snapshot not built from this BEIR folder, so an
    evaluation never overwrites (or prunes) someone's live index."""
    if store.is_empty() or store.current_id() is None:
        return  # no live index to protect (at most a cache and exported models)
    try:
        built_from = store.manifest().corpus
    except SeedsearchError as error:
        raise UsageError(
            f"--index {store.root} holds a snapshot this version cannot check ({error}); "
            "give an empty folder, or leave --index out to use var/eval/"
        ) from None
    if built_from != corpus_label(folder):
        raise UsageError(
            f"--index {store.root} holds an index that {folder} did not build; "
            "give an empty folder, or leave --index out to use var/eval/"
        )


def write_beir_seeds(folder: Path, seeds_dir: Path) -> int:
    """Write each corpus document as ``<id>.txt`` (title line, blank line, text); files whose
    content is already right are left alone, so rebuilds stay incremental."""
    seeds_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    corpus = folder / "corpus.jsonl"
    try:
        with corpus.open(encoding="utf-8") as handle:
            for line in handle:
                document = json.loads(line)
                title = " ".join(document.get("title", "").split()) or f"Document {document['_id']}"
                content = f"{title}\n\n{document['text'].strip()}\n"
                path = seeds_dir / f"{document['_id']}.txt"
                if not path.is_file() or path.read_text(encoding="utf-8") != content:
                    path.write_text(content, encoding="utf-8")
                count += 1
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as error:
        raise UsageError(f"cannot read {corpus}: {_reason(error)}") from None
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
