"""Measure retrieval quality: the one source of the project's quality figures.

Labelled passages (JSONL of {"query", "relevant": [strings a relevant passage contains]}):
    python scripts/evaluate.py --queries ../shared/eval/seed_dev_queries.jsonl [--off-topic FILE]
                               [--mode hybrid|dense|lexical|all] [--index DIR | --api URL [--api-key KEY]] [--json]
    -> MRR@10 and recall@1/5/10 per mode, with the queries that found nothing; with
       --off-topic, the precision and recall of the "no good match" answer. --json prints
       every figure of the table, one object per mode.

The matching set at each per-passage bar (SEEDSEARCH_MATCH_THRESHOLD), in this process only:
    python scripts/evaluate.py --queries FILE [FILE ...] --match-sweep 0.2,0.25,0.3,0.35,0.4
                               [--off-topic FILE] [--retained-recall 0.95] [--index DIR] [--json]
    -> per bar: label recall (share of a query's labels found in some passage of its whole
       matching set), passage precision (share of the set's passages holding a label: a lower
       bound, labels are incomplete), mean and median total, MRR@10, and with --off-topic the
       share of off-topic queries whose set is empty; then 5-fold cross-validation of the bar
       (chosen on 4 folds as the highest keeping --retained-recall of the lowest bar's label
       recall), with the chosen bars and their held-out figures.

Recency over a dated archive (build one from --dated-archive's folder), in this process only:
    python scripts/evaluate.py --queries FILE [FILE ...] --recency 30 [--index DIR] [--json]
    -> per query, the mean age in days (back from the archive's newest dated passage) of the
       top 10 by relevance and with recency_half_life_days=30, and MRR@10 of both.
    python scripts/evaluate.py --dated-archive DIR [--count 500] [--paragraphs N]
    -> writes COUNT BBC articles into DIR, each with a dateline: dates spread over two years,
       every twelfth article undated (search_api.evaluation.archive_date).

Related coverage over an index holding the BBC corpus under bbc/<category>/, in this process:
    python scripts/evaluate.py --queries ../shared/eval/bbc_dev_queries.jsonl --related [--index DIR]
    -> for each distinct answer article (the queries' "file"), the share of its top 5 similar
       articles (GET /articles/{id}/similar) in its own BBC category, against the share 5
       random other articles of the index would have. The category is a proxy for "related".

BEIR-style folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), ranked per document:
    python scripts/evaluate.py --beir ../shared/corpora/scifact [--split test] [--mode ...]
    -> nDCG@10, recall@100 and MRR@10. The corpus is written as seed files under
       var/eval/beir-<name>/ and indexed there (incrementally) unless --api is given.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from indexer.build import build_index
from indexer.errors import UsageError, run_command
from indexer.settings import settings_from_flags
from indexer.store import UNDATED, IndexStore
from search_api.beir import (
    BeirQuery,
    check_beir_index,
    corpus_label,
    document_id,
    load_beir_queries,
    ndcg_at,
    recall_at,
    reciprocal_rank,
    write_beir_seeds,
)
from search_api.client import SearchFunction, local_search, local_searcher, open_search
from search_api.evaluation import (
    CUTOFFS,
    BarReport,
    FoldResult,
    LabelledQuery,
    MatchingSet,
    RecencyOutcome,
    Report,
    choose_bar,
    cross_validate,
    judge,
    judge_set,
    load_queries,
    matching_set,
    recency_outcome,
    summarize,
    summarize_bar,
    write_dated_archive,
)
from search_api.models import DEFAULT_MODE, MAX_K, MODES, Mode, SearchRequest

ROOT = Path(__file__).resolve().parents[1]
# The settings --match-sweep can sweep.
SWEPT_BARS = ("match_threshold", "word_match_threshold")
BBC = ROOT.parent / "shared" / "corpora" / "bbc"
RETAINED_RECALL = 0.95
FOLDS = 5


def _bars(value: str) -> list[float]:
    try:
        bars = sorted({float(bar) for bar in value.split(",") if bar.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {value!r}") from None
    # Cosine bars lie in [-1, 1]; fused hybrid scores reach about 3.
    if not bars or not all(-1 <= bar <= 10 for bar in bars):
        raise argparse.ArgumentTypeError("bars are scores, from -1 to 10")
    return bars


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"not a positive number: {value!r}")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--queries", type=Path, nargs="+", help="JSONL: query, relevant")
    what.add_argument("--beir", type=Path, metavar="DIR", help="a BEIR-style benchmark folder")
    what.add_argument(
        "--dated-archive", type=Path, metavar="DIR",
        help="write a dated BBC seeds folder (an archive to measure --recency on) and stop",
    )  # fmt: skip
    report = parser.add_mutually_exclusive_group()
    report.add_argument(
        "--match-sweep", type=_bars, metavar="BARS",
        help="comma-separated per-passage bars: the matching set's figures at each",
    )  # fmt: skip
    report.add_argument(
        "--recency", type=_positive, metavar="DAYS",
        help="top-10 age and MRR@10 with recency_half_life_days=DAYS against without",
    )  # fmt: skip
    report.add_argument(
        "--related", action="store_true",
        help="share of the answer articles' top 5 similar articles in their BBC category",
    )  # fmt: skip
    parser.add_argument(
        "--bar",
        choices=SWEPT_BARS,
        default=SWEPT_BARS[0],
        help="--match-sweep: which bar to sweep (default match_threshold, the cosine bar; "
        "word_match_threshold: hybrid's bar for passages matched by their words)",
    )
    parser.add_argument(
        "--retained-recall", type=float, default=RETAINED_RECALL, metavar="SHARE",
        help="--match-sweep's cross-validation picks the highest bar keeping this share of the "
        f"lowest bar's label recall (default {RETAINED_RECALL})",
    )  # fmt: skip
    parser.add_argument(
        "--count", type=int, default=500, help="--dated-archive: articles (default 500)"
    )
    parser.add_argument(
        "--paragraphs", type=int, metavar="N",
        help="--dated-archive: keep only each article's first N body paragraphs",
    )  # fmt: skip
    parser.add_argument("--bbc", type=Path, default=BBC, help="the BBC corpus folder")
    parser.add_argument("--split", default="test", help="qrels split for --beir (default: test)")
    parser.add_argument(
        "--off-topic", type=Path, metavar="FILE",
        help="queries no article answers, one a line: measures the 'no good match' decision",
    )  # fmt: skip
    parser.add_argument("--mode", choices=[*MODES, "all"], default="all")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--index", type=Path, help="index root (default: var/index)")
    where.add_argument("--api", metavar="URL", help="evaluate a running service instead")
    parser.add_argument(
        "--api-key",
        help="X-API-Key for --api (default: SEEDSEARCH_READ_KEY, else SEEDSEARCH_API_KEY)",
    )
    return parser


def format_table(reports: list[Report]) -> str:
    header = "| mode | MRR@10 | " + " | ".join(f"recall@{k}" for k in CUTOFFS) + " |"
    lines = [header, "|---" * (2 + len(CUTOFFS)) + "|"]
    for r in reports:
        cells = " | ".join(f"{r.recall[k]:.3f}" for k in CUTOFFS)
        lines.append(f"| {r.mode} | {r.mrr_at_10:.3f} | {cells} |")
    for r in reports:
        line = f"{r.mode}: {r.no_match} of {r.queries} labelled queries answered 'no good match'"
        if r.off_topic:
            line += (
                f"; {r.off_topic_no_match} of {r.off_topic} off-topic queries"
                f" (precision {r.no_match_precision}, recall {r.no_match_recall})"
            )
        lines.append(line)
    for r in reports:
        if r.missed:
            lines.append(f"{r.mode}: no relevant passage in the top 10 for {r.missed}")
    return "\n".join(lines)


def format_beir_table(reports: list[dict[str, object]]) -> str:
    lines = ["| mode | nDCG@10 | recall@100 | MRR@10 |", "|---|---|---|---|"]
    for r in reports:
        lines.append(
            f"| {r['mode']} | {r['ndcg_at_10']:.3f} | {r['recall_at_100']:.3f} | {r['mrr_at_10']:.3f} |"
        )
    return "\n".join(lines)


def evaluate_passages(
    queries: list[LabelledQuery],
    search: SearchFunction,
    modes: tuple[Mode, ...],
    off_topic: list[str],
) -> list[Report]:
    reports = []
    for mode in modes:
        responses = [search(SearchRequest(query=q.query, k=10, mode=mode)) for q in queries]
        unanswered = [search(SearchRequest(query=q, k=10, mode=mode)) for q in off_topic]
        report = summarize(
            mode, [judge(q, r.results) for q, r in zip(queries, responses, strict=True)]
        )
        report.no_match = sum(r.note is not None for r in responses)
        report.off_topic = len(off_topic)
        report.off_topic_no_match = sum(r.note is not None for r in unanswered)
        reports.append(report)
    return reports


def load_off_topic(path: Path | None) -> list[str]:
    """Queries no article answers, one a line (blank lines skipped)."""
    if path is None:
        return []
    try:
        return [
            line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None


def evaluate_beir(
    queries: list[BeirQuery], search: SearchFunction, modes: tuple[Mode, ...]
) -> list[dict[str, object]]:
    reports: list[dict[str, object]] = []
    for mode in modes:
        ndcg, recall, rr = [], [], []
        for query in queries:
            request = SearchRequest(
                query=query.text, k=MAX_K, mode=mode, collapse=True, highlight=False
            )
            ranked = [document_id(r.source) for r in search(request).results]
            ndcg.append(ndcg_at(ranked, query.relevant, 10))
            recall.append(recall_at(ranked, query.relevant, 100))
            rr.append(reciprocal_rank(ranked, query.relevant, 10))
        reports.append({
            "mode": mode, "queries": len(queries), "ndcg_at_10": round(statistics.fmean(ndcg), 4),
            "recall_at_100": round(statistics.fmean(recall), 4), "mrr_at_10": round(statistics.fmean(rr), 4),
        })  # fmt: skip
    return reports


def prepare_beir_index(folder: Path, index: Path | None) -> Path:
    """Write the corpus as seed files and build (or refresh) its index; returns the index root.

    An explicit ``index`` must be empty or built from this folder before: never someone's
    live index."""
    if index is not None:
        check_beir_index(IndexStore(index), folder)
    home = ROOT / "var" / "eval" / f"beir-{folder.resolve().name}"
    seeds = home / "seeds"
    print(f"writing {write_beir_seeds(folder, seeds)} documents to {seeds}", file=sys.stderr)
    settings = settings_from_flags(seeds_dir=seeds, index_dir=index or home / "index")
    build_index(settings, progress=sys.stderr.isatty(), corpus_label=corpus_label(folder))
    return settings.index_dir


def sweep_bars(
    queries: list[LabelledQuery], off_topic: list[str], bars: Sequence[float], index: Path | None,
    mode: Mode, setting: str = SWEPT_BARS[0],
) -> dict[float, tuple[BarReport, list[MatchingSet]]]:  # fmt: skip
    """Each bar's report and its queries' matching sets, each set paged through in full."""
    swept = {}
    for bar in bars:
        settings = settings_from_flags(index_dir=index, **{setting: bar})
        with local_search(settings) as search:
            sets = [
                judge_set(q, *matching_set(search, _request(q.query, MAX_K, mode))) for q in queries
            ]
            totals = [search(_request(q, 1, mode)).total for q in off_topic]
        swept[bar] = (summarize_bar(bar, sets, totals), sets)
    return swept


def _request(query: str, k: int, mode: Mode, **fields: object) -> SearchRequest:
    return SearchRequest.model_validate({"query": query, "k": k, "mode": mode,
                                         "highlight": False, **fields})  # fmt: skip


def format_sweep(
    reports: Sequence[BarReport], folds: Sequence[FoldResult], on_all: float, retained: float
) -> str:
    lines = [
        "| bar | label recall | passage precision (lower bound) | mean total | median total "
        "| MRR@10 | off-topic empty |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        empty = "-" if r.off_topic_empty is None else f"{r.off_topic_empty:.3f}"
        precision = "-" if r.passage_precision is None else f"{r.passage_precision:.3f}"
        lines.append(
            f"| {r.bar} | {r.label_recall:.3f} | {precision} | {r.mean_total:.1f} "
            f"| {r.median_total:g} | {r.mrr_at_10:.3f} | {empty} |"
        )
    for r in reports:
        if r.cut_short:
            lines.append(f"bar {r.bar}: {r.cut_short} sets past the paging limit, judged in part")
    lines += [
        "",
        f"{len(folds)}-fold cross-validation: on 4 folds, the highest bar keeping {retained} of "
        "the lowest bar's label recall; figures on the held-out fold",
        "| fold | chosen bar | label recall | passage precision | mean total | MRR@10 |",
        "|---|---|---|---|---|---|",
    ]
    for f in folds:
        h = f.held_out
        precision = "-" if h.passage_precision is None else f"{h.passage_precision:.3f}"
        lines.append(
            f"| {f.fold} | {f.bar} | {h.label_recall:.3f} | {precision} | {h.mean_total:.1f} "
            f"| {h.mrr_at_10:.3f} |"
        )
    held = [f.held_out for f in folds]
    lines.append(
        f"chosen bars {', '.join(str(f.bar) for f in folds)}; held-out label recall "
        f"{statistics.fmean(h.label_recall for h in held):.3f}, MRR@10 "
        f"{statistics.fmean(h.mrr_at_10 for h in held):.3f}; chosen on every query: {on_all}"
    )
    return "\n".join(lines)


def sweep(args: argparse.Namespace, queries: list[LabelledQuery], mode: Mode) -> str:
    swept = sweep_bars(
        queries, load_off_topic(args.off_topic), args.match_sweep, args.index, mode, args.bar
    )
    by_bar = {bar: sets for bar, (_, sets) in swept.items()}
    folds = cross_validate(by_bar, args.retained_recall, FOLDS)
    on_all = choose_bar(by_bar, args.retained_recall)
    reports = [report for report, _ in swept.values()]
    if not args.json:
        return format_sweep(reports, folds, on_all, args.retained_recall)
    return json.dumps({
        "mode": mode, "bars": [asdict(r) for r in reports],
        "cross_validation": {
            "criterion": f"highest bar keeping {args.retained_recall} of the lowest bar's label recall",
            "folds": [asdict(f) for f in folds], "chosen_on_all": on_all,
        },
    }, indent=2)  # fmt: skip


def newest_published(index: Path | None) -> datetime.date:
    """The newest publication date of the live snapshot's passages."""
    snapshot = IndexStore(settings_from_flags(index_dir=index).index_dir).open_snapshot()
    try:
        newest = int(snapshot.columns.day.max(initial=UNDATED))
    finally:
        snapshot.close()
    if newest == UNDATED:
        raise UsageError("--recency needs a dated archive: no passage of this index has a date")
    return datetime.date.fromordinal(newest)


def recency(args: argparse.Namespace, queries: list[LabelledQuery], mode: Mode) -> str:
    newest = newest_published(args.index)
    outcomes: list[RecencyOutcome] = []
    with local_search(settings_from_flags(index_dir=args.index)) as search:
        for q in queries:
            default = search(_request(q.query, 10, mode)).results
            recent = search(_request(q.query, 10, mode, recency_half_life_days=args.recency))
            outcomes.append(recency_outcome(q, default, recent.results, newest))
    ages = [
        (o.age_default, o.age_recency)
        for o in outcomes
        if o.age_default is not None and o.age_recency is not None
    ]
    changes = [b - a for a, b in ages]
    summary = {
        "mode": mode, "half_life_days": args.recency, "newest": newest.isoformat(),
        "queries": len(outcomes), "queries_with_dated_results": len(changes),
        "mean_age_default": round(statistics.fmean(a for a, _ in ages), 1) if ages else None,
        "mean_age_recency": round(statistics.fmean(b for _, b in ages), 1) if ages else None,
        "mean_age_change": round(statistics.fmean(changes), 1) if changes else None,
        "mrr_at_10_default": round(statistics.fmean(o.rr_default for o in outcomes), 4),
        "mrr_at_10_recency": round(statistics.fmean(o.rr_recency for o in outcomes), 4),
    }  # fmt: skip
    if args.json:
        return json.dumps({**summary, "outcomes": [asdict(o) for o in outcomes]}, indent=2)
    return format_recency(outcomes, summary)


def format_recency(outcomes: Sequence[RecencyOutcome], summary: dict[str, object]) -> str:
    def days(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    lines = [
        f"top-10 mean age in days before {summary['newest']}, by relevance and with "
        f"recency_half_life_days={summary['half_life_days']} ({summary['mode']})",
        "| query | age | age, recency | change | RR@10 | RR@10, recency |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {o.query[:60]} | {days(o.age_default)} | {days(o.age_recency)} "
        f"| {days(o.age_change)} | {o.rr_default:.3f} | {o.rr_recency:.3f} |"
        for o in outcomes
    ]
    lines.append(
        f"mean age {summary['mean_age_default']} -> {summary['mean_age_recency']} days "
        f"(mean change {summary['mean_age_change']} over {summary['queries_with_dated_results']} "
        f"of {summary['queries']} queries); MRR@10 {summary['mrr_at_10_default']} -> "
        f"{summary['mrr_at_10_recency']}"
    )
    return "\n".join(lines)


RELATED_K = 5


def related(args: argparse.Namespace) -> str:
    """Top-5 similar articles in the answer article's BBC category, against random."""
    files = sorted({
        json.loads(line)["file"] for path in args.queries
        for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    })  # fmt: skip
    with local_searcher(settings_from_flags(index_dir=args.index)) as searcher:
        columns = searcher.snapshot.columns
        article_of = {columns.sources[s]: columns.article_ids[a]
                      for a, s in zip(columns.article, columns.source, strict=True)}  # fmt: skip
        categories = [_category(columns.sources[s]) for s in columns.source]
        by_article = dict(zip(columns.article.tolist(), categories, strict=True))
        sizes = collections.Counter(by_article.values())
        others = len(by_article) - 1
        shares, baselines, missing = [], [], []
        for file in files:
            article = article_of.get(f"bbc/{file}")
            if article is None:
                missing.append(file)
                continue
            category = _category(f"bbc/{file}")
            found = searcher.similar(article, RELATED_K)
            assert found is not None
            near = [a for a in found.articles if not a.duplicate]
            shares.append(sum(_category(a.source) == category for a in near) / RELATED_K)
            baselines.append((sizes[category] - 1) / others)
    summary = {
        "articles": len(shares), "missing": missing, "k": RELATED_K,
        "article_vectors": searcher.snapshot.manifest.article_vectors,
        "same_category_share": round(statistics.fmean(shares), 4) if shares else None,
        "random_baseline": round(statistics.fmean(baselines), 4) if baselines else None,
    }  # fmt: skip
    if args.json:
        return json.dumps(summary, indent=2)
    return (
        f"related coverage over {summary['articles']} answer articles ({summary['article_vectors']}): "
        f"{summary['same_category_share']} of the top {RELATED_K} similar share the BBC category; "
        f"5 random other articles: {summary['random_baseline']}"
        + (f"; not in the index: {', '.join(missing)}" if missing else "")
    )


def _category(source: str) -> str | None:
    """The BBC category of a source path ``bbc/<category>/NNN.txt``; None for other files."""
    parts = source.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "bbc" else None


def _check_report_flags(args: argparse.Namespace) -> None:
    report = (
        "--match-sweep" if args.match_sweep else "--recency" if args.recency
        else "--related" if args.related else None
    )  # fmt: skip
    if report and not args.queries:
        raise UsageError(f"{report} needs --queries")
    if report and args.api:
        raise UsageError(f"{report} runs in this process only: use --index, not --api")


def evaluate(args: argparse.Namespace) -> int:
    _check_report_flags(args)
    if args.dated_archive:
        written = write_dated_archive(args.bbc, args.dated_archive, args.count, args.paragraphs)
        print(f"wrote {len(written)} dated articles to {args.dated_archive}")
        return 0
    modes = MODES if args.mode == "all" else (args.mode,)
    # Read the labels before opening the index, so a bad file is reported as such.
    queries = [q for path in args.queries or [] for q in load_queries(path)]
    if args.related:
        print(related(args))
        return 0
    if args.match_sweep or args.recency:
        mode = DEFAULT_MODE if args.mode == "all" else args.mode
        print(sweep(args, queries, mode) if args.match_sweep else recency(args, queries, mode))
        return 0
    beir_queries = load_beir_queries(args.beir, args.split) if args.beir else []
    index = args.index
    if args.beir and not args.api:
        index = prepare_beir_index(args.beir, args.index)
    settings = settings_from_flags(index_dir=index)
    with open_search(settings, args.api, args.api_key) as search:
        if args.beir:
            beir_reports = evaluate_beir(beir_queries, search, modes)
            print(
                json.dumps(beir_reports, indent=2) if args.json else format_beir_table(beir_reports)
            )
        else:
            reports = evaluate_passages(queries, search, modes, load_off_topic(args.off_topic))
            print(
                json.dumps([r.as_json() for r in reports], indent=2)
                if args.json
                else format_table(reports)
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: evaluate(_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
