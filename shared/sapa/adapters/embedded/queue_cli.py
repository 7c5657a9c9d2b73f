"""The embedded task queue's command line, for operators:
`python -m sapa.adapters.embedded.queue_cli [--db FILE] stats|dead|replay ID`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sapa.adapters.embedded.sqlite_queue import SqliteTaskQueue


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI: `python -m sapa.adapters.embedded.queue_cli [--db FILE] COMMAND`.

    Commands: `stats`, `dead [--verbose]` (payloads only with --verbose), `replay ID`.
    Returns the exit status.
    """
    default_db = Path(os.environ.get("SAPA_DATA_DIR", "var")) / "tasks.db"
    parser = argparse.ArgumentParser(
        prog="python -m sapa.adapters.embedded.queue_cli",
        description="Inspect the embedded task queue.",
    )
    parser.add_argument("--db", type=Path, default=default_db, help=f"default: {default_db}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stats", help="count pending, due, leased, scheduled and dead tasks")
    dead = commands.add_parser("dead", help="list dead letters")
    dead.add_argument("--verbose", "-v", action="store_true", help="also print payloads")
    replay = commands.add_parser("replay", help="put one dead letter back in the queue")
    replay.add_argument("id", type=int, help="dead letter id (see `dead`)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.db.exists():
        print(f"no task queue at {args.db}", file=sys.stderr)
        return 2
    queue = SqliteTaskQueue(args.db)

    if args.command == "stats":
        s = queue.stats()
        print(f"pending:   {s.pending}")
        print(f"  due:       {s.due}")
        print(f"  leased:    {s.leased}")
        print(f"  scheduled: {s.scheduled}")
        print(f"dead:      {s.dead}")
        return 0
    if args.command == "dead":
        letters = queue.dead_letters()
        if not letters:
            print("no dead letters")
        for d in letters:
            status = d.last_status if d.last_status is not None else "-"
            print(
                f"#{d.id}  {d.failed_at:%Y-%m-%d %H:%M:%S}Z  {d.kind}  {d.name}"
                f"  attempts={d.attempts}  status={status}  error={d.last_error or ''}"
            )
            if args.verbose:
                print(f"    payload: {json.dumps(d.payload, ensure_ascii=False, sort_keys=True)}")
        return 0
    if queue.replay_dead(args.id):
        print(f"replayed dead letter #{args.id}")
        return 0
    print(f"dead letter #{args.id} not found (or its task is queued already)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
