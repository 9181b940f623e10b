"""``python -m indexer build|status|verify|rollback``: build the index from the seeds, describe
the live snapshot, check a snapshot's files in full, or make the previous snapshot live again.

Exit codes: 0 success, 1 nothing could be published, the index cannot be read or a snapshot is
damaged, 2 a usage or configuration error, 3 the quality gate (--gate) refused to publish,
4 another build holds the build lock (at once with --no-wait, else after waiting 10 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from indexer.build import GATE_TOLERANCE, LOCK_WAIT_SECONDS, BuildReport, build_index
from indexer.embed import Embedder, EmbeddingModel
from indexer.errors import BuildError, SeedsearchError, run_command
from indexer.settings import ENGINES, Settings, settings_from_flags
from indexer.store import IndexStore, JobRecord, JobRecords, Manifest, check_job_id


class _RenamedFlag(argparse.Action):
    """An old flag name that still works, with a one-line notice naming the new one."""

    def __init__(self, *args: Any, new_name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new_name = new_name

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
        values: Any, option_string: str | None = None,
    ) -> None:  # fmt: skip
        print(f"note: {option_string} is now {self.new_name}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexer", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="parse, chunk, embed and publish a snapshot")
    build.add_argument("--seeds", type=Path, help="seed articles folder (default: seeds)")
    build.add_argument("--index", type=Path, help="index root (default: var/index)")
    build.add_argument("--model", help="local sentence-transformers folder (default: packaged)")
    build.add_argument(
        "--full", action="store_true", help="re-embed everything, ignoring the cache"
    )
    build.add_argument("--json", action="store_true", help="print one JSON report, no progress bar")
    build.add_argument(
        "--engine", choices=ENGINES, default="local",
        help="where the embedding runs: this process (default) or a Ray cluster",
    )  # fmt: skip
    build.add_argument(
        "--ray-address", metavar="ADDR", help="a running Ray cluster (ray start --head)"
    )
    build.add_argument(
        "--ray-actors", type=int, default=2, metavar="N",
        help="Ray actors embedding at once (default 2)",
    )  # fmt: skip
    build.add_argument(
        "--workers", type=int, dest="ray_actors", action=_RenamedFlag, new_name="--ray-actors",
        default=argparse.SUPPRESS, help=argparse.SUPPRESS,
    )  # fmt: skip
    build.add_argument(
        "--no-wait", action="store_true",
        help="when another build holds the lock, fail at once (exit 4) instead of waiting",
    )  # fmt: skip
    build.add_argument(
        "--job", metavar="ID", type=_job_id,
        help="record this build as rebuild job ID under the index root (POST /admin/reindex)",
    )  # fmt: skip
    build.add_argument(
        "--gate",
        type=Path,
        metavar="FILE",
        help="labelled queries (JSONL); refuse to publish when MRR@10 drops below the live's",
    )
    build.add_argument(
        "--gate-tolerance", type=float, default=GATE_TOLERANCE, metavar="DROP",
        help="how far (absolute MRR@10) below the live snapshot still publishes "
        f"(default {GATE_TOLERANCE})",
    )  # fmt: skip
    status = commands.add_parser("status", help="describe the live snapshot")
    status.add_argument("--index", type=Path, help="index root (default: var/index)")
    status.add_argument(
        "--json", action="store_true", help="print the manifest, and dated_articles, as JSON"
    )
    verify = commands.add_parser(
        "verify", help="check a snapshot's files against the sizes and digests in its manifest"
    )
    verify.add_argument("--index", type=Path, help="index root (default: var/index)")
    verify.add_argument("--snapshot", metavar="ID", help="which snapshot (default: the live one)")
    rollback = commands.add_parser(
        "rollback", help="make the previous snapshot (or --to ID) live again"
    )
    rollback.add_argument("--index", type=Path, help="index root (default: var/index)")
    rollback.add_argument("--to", metavar="ID", help="a snapshot still present (default: previous)")
    return parser


def _print_build(report: BuildReport) -> None:
    verb = "published" if report.published else "unchanged, still live:"
    sentences = f", {report.sentences} evidence sentences" if report.published else ""
    print(
        f"{verb} {report.snapshot}: {report.files} files, {report.articles} articles, "
        f"{report.chunks} chunks ({report.embedded} embedded, {report.reused} reused)"
        f"{sentences} in {report.seconds:.1f} s"
    )
    for error in report.errors:
        print(f"  skipped {error.file}: {error.error}")
    if report.gate is not None:
        print(f"  {report.gate.message}")


def _print_status(manifest: Manifest, dated_articles: int) -> None:
    print(f"snapshot   {manifest.snapshot_id} (built {manifest.built_at})")
    print(f"model      {manifest.model_name} ({manifest.dimension} dims)")
    print(
        f"index      {manifest.index_type}, {manifest.chunks} chunks, {manifest.articles} articles"
        f" ({dated_articles} dated)"
    )
    print(f"files      {len(manifest.files)}")
    for source in manifest.files:
        print(f"  {source.path}  {source.chunks} chunks  sha256 {source.sha256[:12]}")
    for error in manifest.errors:
        print(f"  skipped {error.file}: {error.error}")


def _job_id(value: str) -> str:
    try:
        return check_job_id(value)
    except SeedsearchError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _build(args: argparse.Namespace) -> int:
    settings = settings_from_flags(seeds_dir=args.seeds, index_dir=args.index, model=args.model)
    os.nice(settings.build_nice)  # searches on this machine come first; see Settings
    store = IndexStore(settings.index_dir, settings.prune_grace_seconds)
    # The lock first: a build that has to wait (or, with --no-wait, give up) learns so before
    # it spends seconds on the model, and it holds the lock for its whole run.
    wait = 0 if args.no_wait else LOCK_WAIT_SECONDS
    with store.build_lock(wait, lambda message: print(message, file=sys.stderr)):
        if args.job is None:
            report = _build_locked(args, settings, store)
        else:
            report = _build_job(args, settings, store)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_build(report)
    return 0


def _build_job(args: argparse.Namespace, settings: Settings, store: IndexStore) -> BuildReport:
    """Build as job ``args.job``, with its record saying how it went (written while the lock
    is held, so a record still ``running`` means the build is running or died)."""
    records = JobRecords(store)
    job = JobRecord.running(args.job, started_at=time.time())
    try:
        records.write(job)
    except OSError as error:
        raise BuildError(f"cannot write the job record under {store.root}: {error}") from error
    try:
        report = _build_locked(args, settings, store)
    except BaseException as error:
        why = str(error) if isinstance(error, SeedsearchError) else f"unexpected: {error!r}"
        try:
            records.write(job.failed(why, finished_at=time.time()))
        except OSError as unwritten:  # the server reads a dead build's record as failed
            print(f"cannot record that job {job.job} failed: {unwritten}", file=sys.stderr)
        raise
    records.write(job.succeeded(report.to_dict(), finished_at=time.time()))
    return report


def _build_locked(args: argparse.Namespace, settings: Settings, store: IndexStore) -> BuildReport:
    progress = not args.json and sys.stderr.isatty()
    local = Embedder.for_index(settings, store, export=True)
    embedder: EmbeddingModel = local
    gate = None
    if args.gate is not None:
        # The entry point wires the search code in; the indexer library never imports it.
        from search_api.gate import mrr_gate
        from search_api.matching import MatchRules

        gate = mrr_gate(args.gate, local, args.gate_tolerance, MatchRules.from_settings(settings),
                        settings.query_timeout_seconds)  # fmt: skip
    if args.engine == "ray":
        from indexer.ray_engine import RayEmbedder  # imports ray, the optional extra

        embedder = RayEmbedder(local, store.model_file(local.fingerprint), args.ray_address,
                               args.ray_actors)  # fmt: skip
    return build_index(
        settings, full=args.full, progress=progress, embedder=embedder, gate=gate, store=store,
        wait_seconds=0,  # the lock is this store's already
    )  # fmt: skip


def _status(args: argparse.Namespace) -> int:
    store = IndexStore(settings_from_flags(index_dir=args.index).index_dir)
    manifest = store.manifest()
    # The manifest does not count dates; the snapshot's chunk rows do (opened for that only).
    snapshot = store.open_snapshot(manifest.snapshot_id)
    try:
        dated = snapshot.dated_articles()
    finally:
        snapshot.close()
    if args.json:
        document = json.loads(manifest.to_json()) | {"dated_articles": dated}
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        _print_status(manifest, dated)
    return 0


def _verify(args: argparse.Namespace) -> int:
    store = IndexStore(settings_from_flags(index_dir=args.index).index_dir)
    manifest = store.verify(args.snapshot)
    sizes = ", ".join(f"{f.name} {f.size} bytes" for f in manifest.data_files)
    print(f"snapshot {manifest.snapshot_id} is intact: {sizes}, sha256 match")
    gated = store.gate_record(manifest.snapshot_id)
    if gated is not None:
        print(f"gate.json: MRR@10 {gated.mrr_at_10:.3f} (tolerance {gated.tolerance}), sound")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    store = IndexStore(settings_from_flags(index_dir=args.index).index_dir)
    previous = store.current_id()
    live = store.rollback(args.to, LOCK_WAIT_SECONDS, lambda m: print(m, file=sys.stderr))
    print(f"live snapshot is now {live} (was {previous}); servers switch at their next check")
    return 0


COMMANDS = {"build": _build, "status": _status, "verify": _verify, "rollback": _rollback}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: COMMANDS[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
