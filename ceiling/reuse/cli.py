"""`ceiling reuse build|query|bench`: parse, validate, call `ceiling.reuse`, print.

Handlers raise `CeilingError` for bad input; `ceiling.cli.main` turns it into one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

import numpy as np


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def cmd_build(args: argparse.Namespace) -> int:
    from ceiling.reuse.gridworld import check_size
    from ceiling.reuse.library import build_library
    from ceiling.reuse.qlearning import QLearningConfig

    check_size(args.grid)
    config = QLearningConfig(steps_per_chunk=args.steps_per_chunk, max_chunks=args.max_chunks,
                             optimistic=not args.no_optimism)
    console = _console()
    manifest = build_library(args.out, args.grid, args.layouts, args.seeds, force=args.force,
                             config=config, on_progress=None if args.quiet else console.print)
    policies = manifest["policies"]
    console.print(f"library {args.out}: {len(policies)} policies on {args.layouts} "
                  f"{args.grid}x{args.grid} layouts ({args.seeds} seeds x 4 base objectives x "
                  f"γ in {manifest['regimes']}); {sum(p['converged'] for p in policies)} "
                  f"converged; built in {manifest['build_seconds']:.1f} s")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from ceiling.errors import CeilingError
    from ceiling.reuse.compose import compose, coverage, reference_trajectory
    from ceiling.reuse.gridworld import rollout
    from ceiling.reuse.library import load_library
    from ceiling.reuse.objectives import name_of, weights_of

    if args.renamed_strategy is not None:
        raise CeilingError(
            f"`ceiling reuse query --strategy` is now `--selection` (how many library "
            f"candidates a composition explores: targeted, hybrid or exhaustive; search "
            f"strategies are `ceiling solve`'s): pass `--selection {args.renamed_strategy}`")
    weights = weights_of(args.objective)
    library = load_library(args.library, grid=args.grid)
    library.check_query(args.layout, args.gamma)
    composed = compose(library, args.layout, weights, args.gamma, args.method, args.selection,
                       args.k)
    cover = coverage(reference_trajectory(library, args.layout, weights), composed.support)
    payload: dict[str, Any] = {
        "objective": name_of(weights), "weights": weights.tolist(), "layout": args.layout,
        "gamma": args.gamma, "method": args.method, "selection": args.selection,
        "candidates": {name: [c._asdict() for c in found]
                       for name, found in composed.retrieval.candidates.items()},
        "policies_composed": composed.policy_ids,
        "candidates_evaluated": composed.candidates_evaluated,
        "candidates_scored": composed.retrieval.scored,
        "seconds": composed.seconds, "coverage": cover.to_dict(),
    }
    if args.evaluate:
        data = library.layout(args.layout)
        result = rollout(data.tables, composed.policy, data.layout.start_state,
                         data.layout.horizon, weights, args.rollouts, 0)
        payload["evaluated_return"] = float(np.mean(result.returns))
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    console = _console()
    console.print(f"{payload['objective']} on layout {args.layout} (γ = {args.gamma:g}), "
                  f"{args.method} / {args.selection}:")
    for name, found in composed.retrieval.candidates.items():
        listed = ", ".join(f"#{c.policy_id} {c.objective} seed {c.seed} "
                           f"(predicted {c.predicted_value:.3f})" for c in found)
        console.print(f"  {name}: {listed}")
    console.print(f"  composed {len(composed.policy_ids)} policies "
                  f"({composed.retrieval.scored} scored by the index) in "
                  f"{1000 * composed.seconds:.1f} ms, no environment step")
    console.print(f"  coverage of the optimal trajectory: {cover.pairs:.2f} of pairs, "
                  f"{cover.prefix:.2f} before the first gap ({cover.per_step.size} steps)")
    if args.evaluate:
        console.print(f"  evaluated return ({args.rollouts} episodes): "
                      f"{payload['evaluated_return']:.3f}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ceiling.reuse.bench import run_bench, write_results
    from ceiling.reuse.library import load_library

    library = load_library(args.library, grid=args.grid)
    if library.num_layouts < 5 or int(library.manifest["num_seeds"]) < 3:
        print("ceiling: warning: fewer than 5 layouts x 3 seeds; the intervals will be wide",
              file=sys.stderr)
    console = _console()
    result = run_bench(library, rollouts=args.rollouts,
                       on_progress=None if args.quiet else console.print)
    grid = int(library.manifest["grid"])  # the library records it: --grid only checks it
    command = (f"ceiling reuse bench --library {shlex.quote(args.library)} --grid {grid} "
               f"--out {shlex.quote(args.out)} --rollouts {args.rollouts}"
               + (" --force" if args.force else ""))
    path = write_results(result, args.out, command, args.force)
    console.print(path.read_text())
    return 0


def add_reuse_parser(sub: Any) -> None:
    """Register `ceiling reuse ...` on the top-level subparsers."""
    reuse = sub.add_parser("reuse", help="policy reuse (Lever): library, query, benchmark")
    actions = reuse.add_subparsers(dest="reuse_command", required=True)

    p = actions.add_parser("build", help="train a policy library on generated GridWorlds")
    p.add_argument("--grid", type=int, default=16, help="grid size: 8, 16 or 32")
    p.add_argument("--layouts", type=int, default=5, help="number of layouts (seeds 0..n-1)")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per base objective")
    p.add_argument("--out", required=True, help="library directory (not overwritten)")
    p.add_argument("--force", action="store_true", help="replace an existing library")
    p.add_argument("--steps-per-chunk", type=int, default=50_000,
                   help="Q-learning steps between convergence checks")
    p.add_argument("--max-chunks", type=int, default=200, help="cap on training chunks")
    p.add_argument("--no-optimism", action="store_true",
                   help="zero-initialised Q instead of optimistic: narrower supports (a "
                        "support-limited library), and no optimality certificate")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_build)

    p = actions.add_parser("query", help="compose a policy for a new objective, offline")
    p.add_argument("--library", required=True, help="library directory")
    p.add_argument("--objective", required=True,
                   help="components joined by '+' (path+gold) or 4 weights (1,1,0.5,0)")
    p.add_argument("--method", default="gpi", help="sum, gpi or plan")
    p.add_argument("--selection", default="hybrid",
                   help="candidates explored: targeted (top-1 per sub-objective), hybrid (top-k) "
                        "or exhaustive")
    # The old name of --selection, kept only to say so (it clashed with search strategies).
    p.add_argument("--strategy", dest="renamed_strategy", default=None, help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, default=3, help="candidates per sub-objective (hybrid)")
    p.add_argument("--layout", type=int, default=0, help="layout index in the library")
    p.add_argument("--gamma", type=float, default=0.99, help="regime: 0 or 0.99")
    p.add_argument("--grid", type=int, help="fail unless the library was built on this grid")
    p.add_argument("--evaluate", action="store_true",
                   help="also roll the composed policy out (this steps the environment)")
    p.add_argument("--rollouts", type=int, default=16, help="episodes for --evaluate")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_query)

    p = actions.add_parser("bench", help="composition vs Q-learning from scratch")
    p.add_argument("--library", required=True, help="library directory")
    p.add_argument("--grid", type=int,
                   help="fail unless the library was built on this grid (default: the grid "
                        "its manifest records)")
    p.add_argument("--out", default="results/reuse", help="folder for bench.md/.json/.png")
    p.add_argument("--rollouts", type=int, default=16, help="evaluation episodes per policy")
    p.add_argument("--force", action="store_true", help="overwrite existing results")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_bench)
