"""`sandseg tune`: choose every kernel variant the model needs on this adapter, now."""

from __future__ import annotations

import argparse
import json

from . import Progress, Subparsers


def register(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "tune", help="measure the kernel variants for the whole model on this adapter, once"
    )
    parser.add_argument(
        "--force", action="store_true", help="measure again what the tuning table already has"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the choices as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..gpu import get_device, tuning
    from ..model.tuning import timed_tune_model

    device = get_device()
    choices, seconds = timed_tune_model(device, force=args.force)
    key = tuning.adapter_key(device)
    print(f"adapter: {key}")
    print(f"table: {tuning.table_path(key)}")
    header = f"{'kernel':<8} {'shape class':<20} {'chosen':<12} candidates (ms, fastest run)"
    print(header)
    print("-" * len(header))
    for c in choices:
        timings = "  ".join(f"{n} {s * 1e3:.2f}" for n, s in sorted(c.seconds.items()))
        print(f"{c.kernel:<8} {c.shape_class:<20} {c.variant:<12} {timings or '(remembered)'}")
    measured = sum(c.measured for c in choices)
    print(f"{measured} of {len(choices)} shape classes measured in {seconds:.2f} s")
    if args.json:
        doc = {
            "adapter": key,
            "seconds": seconds,
            "choices": [c.__dict__ for c in choices],
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
        print(f"wrote {args.json}")
    return 0
