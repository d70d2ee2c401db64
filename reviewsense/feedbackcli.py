"""``reviewsense feedback ...`` and ``reviewsense score``: the real-time feedback fan-in from a terminal.

``score --batch`` scores a whole file or lake table (``reviewsense.batchscore``).

The commands only: they parse options, call ``reviewsense.feedbackops`` against the local cloud or an
AWS stage (``--stage``/``--profile``, resolved by ``reviewsense.target``) and print the result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib.domain.feedback import Channel
from chalicelib.domain.labels import CLASS_NAMES
from reviewsense import feedbackops as ops
from reviewsense import target as targets
from reviewsense.console import print_table


def _target(args: argparse.Namespace) -> targets.Target:
    return targets.resolve(stage=args.stage, profile=args.profile)


def cmd_send(args: argparse.Namespace) -> int:
    tgt = _target(args)
    api_url = ops.feedback_api_url(tgt) if args.via == "api" else None
    sent = []
    for raw in args.paths:
        item = ops.send_file(tgt, Path(raw), args.channel, args.via, api_url=api_url)
        sent.append(item)
        if item.accepted:
            ids = ", ".join(item.feedback_ids) or "none"
            print(f"accepted {raw} via {item.via}: {item.ref} (feedback ids: {ids})", flush=True)
        else:
            print(f"refused {raw} via {item.via}: {item.detail}", file=sys.stderr, flush=True)
    if not args.wait:
        return 0 if all(s.accepted for s in sent) else 1

    shown = [-1]

    def progress(done: int, total: int) -> None:
        if done != shown[0]:
            print(f"  {done}/{total} scored, quarantined or refused", file=sys.stderr, flush=True)
            shown[0] = done

    outcomes = ops.wait_for_outcomes(tgt, sent, args.timeout, progress=progress, interval_s=1.0)
    for outcome in outcomes:
        print(f"{outcome.sent.path}:")
        for line in outcome.lines:
            print(f"  {line}")
    pending = [o.sent.path for o in outcomes if not o.done]
    if pending:
        print(f"error: not finished within {args.timeout}s: {', '.join(pending)}", file=sys.stderr)
        return 1
    return 0 if all(s.accepted for s in sent) else 1


def cmd_tail(args: argparse.Namespace) -> int:
    tgt = _target(args)
    subscriber = ops.ensure_subscriber(tgt, args.channel)
    where = f" (filter: channel={args.channel})" if args.channel else ""
    print(f"subscribed {subscriber.queue_url} to the alerts topic{where}", file=sys.stderr, flush=True)
    print("  ".join(ops.ALERT_COLUMNS), flush=True)

    def show(alert: ops.Alert) -> None:
        if args.json:
            print(json.dumps({"attributes": alert.row(), "message": alert.message}), flush=True)
        else:
            print("  ".join(alert.row()), flush=True)

    seconds = float("inf") if args.follow else args.seconds
    try:
        alerts = ops.receive_alerts(tgt, subscriber, seconds, max_alerts=args.max, on_alert=show)
    except KeyboardInterrupt:
        return 0
    print(f"({len(alerts)} alert{'s' if len(alerts) != 1 else ''})", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    item = ops.feedback_item(_target(args), args.id)
    print(json.dumps(item, indent=2, sort_keys=True, default=str))
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    if args.id is None and args.label:
        print("error: --label needs the feedback id to label", file=sys.stderr)
        return 2
    if args.id is not None and not args.label:
        print("error: give --label negative|neutral|positive", file=sys.stderr)
        return 2
    tgt = _target(args)
    if args.id is None:
        print_table(ops.REVIEW_COLUMNS, [r.row() for r in ops.pending_reviews(tgt, args.limit)])
        return 0
    result = ops.label_review(tgt, args.id, args.label)
    rating = result["rating"]
    print(f"labelled {result['feedback_id']} {result['label']} (rating {rating}) -> {result['key']}")
    return 0


def cmd_replay_dlq(args: argparse.Namespace) -> int:
    replayed = ops.replay_dlq(_target(args), args.max)
    print_table(
        ["dlq_message", "new_message", "channel", "last_error"],
        [[r.dlq_message_id, r.message_id, r.channel, r.error] for r in replayed],
        max_width=120,
    )
    return 0


def cmd_score_batch(args: argparse.Namespace) -> int:
    """``score --batch SOURCE --out PATH [--model PATH]``: see ``reviewsense.batchscore``."""
    from reviewsense import batchscore as bs

    if args.texts:
        print("error: give texts to score or --batch, not both", file=sys.stderr)
        return 2
    if not args.batch or not args.out:
        print("error: --batch SOURCE needs --out PATH (and --out/--model need --batch)", file=sys.stderr)
        return 2
    out = Path(args.out)
    bs.output_format(out)
    table = bs.table_name(args.batch)
    tgt = _target(args) if table or not args.model else None
    batch = bs.read_table(tgt, table) if table else bs.read_file(Path(args.batch))
    print(
        f"{batch.source}: {batch.total:,} rows, {len(batch.rows):,} to score, "
        f"{len(batch.rejects):,} rejected",
        file=sys.stderr,
        flush=True,
    )
    if args.model:
        scorer: Any = bs.LocalModelScorer(Path(args.model))
        engine = f"{args.model}, in this process"
    else:
        from reviewsense.batchtransform import TransformJobScorer

        assert tgt is not None
        scorer = TransformJobScorer(tgt, poll_s=args.poll_seconds)
        engine = f"transform job {scorer.name} ({tgt.stage})"
    summary = bs.run_batch(batch, out, scorer.score, engine, progress_interval_s=args.progress_seconds)
    reasons = ", ".join(f"{k} {v}" for k, v in summary.reasons.items()) or "none"
    print(
        f"scored {summary.scored:,} of {summary.total:,} rows in {summary.seconds:.1f} s "
        f"({summary.rate:,.0f} reviews/s, {summary.engine}) -> {summary.out}"
    )
    print(f"rejected {summary.rejected:,} ({reasons}) -> {summary.rejects}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    if args.batch or args.out or args.model:
        return cmd_score_batch(args)
    if not args.texts:
        print("error: give at least one text to score, or --batch SOURCE --out PATH", file=sys.stderr)
        return 2
    results = ops.score_texts(_target(args), args.texts)
    if args.json:
        for text, p in results:
            print(json.dumps({"text": text, "label": p.label, "probabilities": p.probabilities}))
        return 0
    rows: list[list[Any]] = [
        [text, p.label, *(f"{p.probabilities.get(n, 0.0):.3f}" for n in CLASS_NAMES), p.variant or ""]
        for text, p in results
    ]
    print_table(["text", "label", *(f"p_{n}" for n in CLASS_NAMES), "variant"], rows)
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    channels = [c.value for c in Channel]
    feedback = sub.add_parser("feedback", help="the real-time feedback fan-in: send, tail, review, replay")
    fsub = feedback.add_subparsers(dest="feedback_command", required=True)

    send = fsub.add_parser("send", parents=[common], help="send files as feedback of one channel")
    send.add_argument("paths", nargs="+")
    send.add_argument("--channel", required=True, choices=channels)
    send.add_argument(
        "--via",
        choices=ops.VIAS,
        default="queue",
        help="queue (default: the feedback queue), api (signed POST /feedback) or upload (raw/feedback/)",
    )
    send.add_argument("--wait", action="store_true", help="wait until each is scored or quarantined")
    send.add_argument("--timeout", type=float, default=120.0)
    send.set_defaults(func=cmd_send)

    tail = fsub.add_parser("tail", parents=[common], help="print alerts as a subscriber receives them")
    tail.add_argument("--channel", choices=channels, help="only this channel (an SNS filter policy)")
    tail.add_argument("--follow", action="store_true", help="keep receiving until Ctrl-C")
    tail.add_argument("--seconds", type=float, default=10.0, help="receive for this long (default 10)")
    tail.add_argument("--max", type=int, default=None, help="stop after this many alerts")
    tail.add_argument("--json", action="store_true", help="one JSON object per alert")
    tail.set_defaults(func=cmd_tail)

    show = fsub.add_parser("show", parents=[common], help="the stored prediction and alert state of an id")
    show.add_argument("id")
    show.set_defaults(func=cmd_show)

    review = fsub.add_parser(
        "review", parents=[common], help="list the human-review queue, or label one item (ID --label L)"
    )
    review.add_argument("id", nargs="?")
    review.add_argument("--label", choices=CLASS_NAMES)
    review.add_argument("--limit", type=int, default=20)
    review.set_defaults(func=cmd_review)

    replay = fsub.add_parser(
        "replay-dlq", parents=[common], help="send the fan-in DLQ's messages back to the feedback queue"
    )
    replay.add_argument("--max", type=int, default=None)
    replay.set_defaults(func=cmd_replay_dlq)

    score = sub.add_parser(
        "score",
        parents=[common],
        help="score texts on the live endpoint, or a whole file or lake table (--batch)",
    )
    score.add_argument("texts", nargs="*")
    score.add_argument("--json", action="store_true")
    score.add_argument(
        "--batch",
        metavar="PATH_OR_TABLE",
        help="score a file (CSV with a text column, JSON Lines, JSON, the Kaggle CSV; gzip or not) or a lake "
        "table (table:NAME, e.g. table:reviews) with a Batch Transform job on the champion model",
    )
    score.add_argument(
        "--out", help="predictions file: .csv, .jsonl or .parquet (rejects: <out>.rejects.jsonl)"
    )
    score.add_argument(
        "--model", help="score with this model directory or model.tar.gz in this process (no cloud needed)"
    )
    score.add_argument("--poll-seconds", type=float, default=2.0, help="transform job polling interval")
    score.add_argument("--progress-seconds", type=float, default=1.0, help="progress line interval")
    score.set_defaults(func=cmd_score)
