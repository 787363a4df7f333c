"""`ceiling train`: train an IPPO or MAPPO policy, or COMPASS latents on top of one, with a
progress bar; the trainers live in `ceiling.training`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ceiling.cli.common import check_writable, console, parse_assignments, phase
from ceiling.errors import CeilingError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train an IPPO, MAPPO, SABLE or COMPASS policy on a task")
    p.add_argument("--task", help="task name, e.g. rware:tiny-2ag-hard (required unless "
                   "--resume)")
    p.add_argument("--algo", help="ippo, mappo, sable, or compass (latent-conditioned, needs "
                   "--from); required unless --resume")
    p.add_argument("--from", dest="from_checkpoint", metavar="CHECKPOINT",
                   help="COMPASS: the converged IPPO/MAPPO checkpoint to condition and train")
    p.add_argument("--steps", help="environment steps, e.g. 20M (default: the config's)")
    p.add_argument("--out", required=True, help="run directory (created; not overwritten)")
    p.add_argument("--config", help="YAML file of PPO fields overriding the defaults")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override one PPO field, e.g. --set num_envs=128 (repeatable)")
    p.add_argument("--seed", type=int)
    p.add_argument("--force", action="store_true", help="replace an existing run directory")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out with its own config.yaml "
                   "(training saves resume state at every evaluation and every minute)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    c = sub.add_parser("converged", help="run the convergence check on training runs' metrics")
    c.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run directories or checkpoints holding a metrics.jsonl")
    c.add_argument("--write", action="store_true",
                   help="update each convergence.json with this check (other fields kept)")
    c.set_defaults(func=cmd_converged)


def cmd_train(args: argparse.Namespace) -> int:
    from ceiling.tasks import make
    from ceiling.training.config import parse_scalar, resolve_config
    from ceiling.training.run import train

    if args.resume:
        resume_arguments(args)
    elif args.task is None or args.algo is None:
        raise CeilingError("ceiling train needs --task and --algo (or --resume --out RUN_DIR "
                           "to continue an interrupted run)")
    make(args.task)  # unknown task: fail before anything else
    if args.algo == "compass" and args.from_checkpoint is None:
        raise CeilingError("--algo compass trains latents on top of a converged policy: pass "
                           "--from CHECKPOINT (an IPPO or MAPPO checkpoint of the same task)")
    if args.algo != "compass" and args.from_checkpoint is not None:
        raise CeilingError(f"--from is only for --algo compass; {args.algo} trains from scratch")
    base = None
    if args.from_checkpoint is not None:
        from ceiling.policies.checkpoint import load_checkpoint

        base = load_checkpoint(args.from_checkpoint, task=args.task)
    overrides = parse_assignments(args.set, "--set")
    if args.steps is not None:
        overrides["total_steps"] = parse_scalar(args.steps)
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.resume:
        config = resolve_config(args.task, args.algo, None, args.stored_config)
    else:
        config = resolve_config(args.task, args.algo, args.config, overrides)
    out = Path(args.out)
    if out.exists() and not (args.force or args.resume):
        raise CeilingError(f"run directory {out} already exists; pass --force to replace it, "
                           "or --resume to continue it")

    check_writable(out, force=args.force or args.resume, directory=True)
    err = console(stderr=True)
    err.print(f"{'resuming' if args.resume else 'training'} {config.algorithm} on {args.task} "
              f"for {config.total_steps:,} steps ({config.num_envs} envs) -> {out}")
    # In a terminal a live bar; in a log a line every 30 s (and at each evaluation).
    with phase("compiling", total=config.total_steps, interval=30.0,
               enabled=not args.quiet) as progress:
        last_eval: list[float] = []

        def on_progress(record: dict[str, Any]) -> None:
            train_return = record.get("train_return")
            info = (f"{record['step']:,} steps  {record['steps_per_second']:,.0f} steps/s  "
                    f"return {train_return:.3f}" if train_return is not None else "")
            if "eval_return" in record:
                last_eval[:] = [record["eval_return"]]
            if last_eval:
                info += f"  greedy eval {last_eval[0]:.3f}"
            progress.update(info, completed=record["step"], total=record["total_steps"],
                            description="training", announce="eval_return" in record)

        try:
            if base is not None:
                from ceiling.training.compass import train_compass

                report = train_compass(args.task, config, base, out, force=args.force,
                                       on_progress=on_progress, resume=args.resume)
            else:
                report = train(args.task, config, out, force=args.force,
                               on_progress=on_progress, resume=args.resume)
        except KeyboardInterrupt:
            from ceiling.training.loop import RESUME_DIR

            if (out / RESUME_DIR).exists():
                err.print(f"stopped; continue with: ceiling train --resume --out {out}")
            raise
    final = report["final_eval"]
    converged = report.get("converged")
    err.print(
        f"done: {report['total_steps']:,} steps in {report['train_seconds']:.0f} s "
        f"(+{report['compile_seconds']:.0f} s compile); greedy test return "
        f"{final['mean_return']:.3f} [{final['ci95'][0]:.3f}, {final['ci95'][1]:.3f}]"
        + (f", win rate {final['win_rate']:.2f}" if final["win_rate"] is not None else "")
    )
    if converged is not None:
        err.print(f"convergence: {'converged' if converged else 'NOT converged'} "
                  f"({report['reason']}; see {out / 'convergence.json'})")
    err.print(f"checkpoints: {out / 'best'}  {out / 'last'}")
    return 0


def resume_arguments(args: argparse.Namespace) -> None:
    """Fill task, algorithm, base checkpoint and config from the run directory's config.yaml;
    flags that would change the run are refused."""
    import yaml

    changing = [flag for flag, value in (("--config", args.config), ("--set", args.set),
                                         ("--steps", args.steps), ("--seed", args.seed),
                                         ("--force", args.force or None)) if value]
    if changing:
        raise CeilingError(f"--resume continues a run with its own config.yaml; drop "
                           f"{', '.join(changing)}")
    path = Path(args.out) / "config.yaml"
    if not path.exists():
        raise CeilingError(f"cannot resume {args.out}: no run was started there "
                           f"({path} is missing)")
    stored = yaml.safe_load(path.read_text())
    for flag, field, value in (("--task", "task", args.task), ("--algo", "algorithm", args.algo),
                               ("--from", "from", args.from_checkpoint)):
        if value is not None and value != stored.get(field):
            raise CeilingError(f"{flag} {value} does not match the run in {args.out} "
                               f"({field}: {stored.get(field)})")
    args.task, args.algo = stored.pop("task"), stored["algorithm"]
    args.from_checkpoint = stored.pop("from", None)
    stored.pop("base_algorithm", None)
    args.stored_config = stored


def cmd_converged(args: argparse.Namespace) -> int:
    """Print the verdict of the current convergence check for each run; exit 1 if any fails."""
    import json

    from ceiling.training.convergence import read_metrics, report_from_metrics

    out = console()
    failed = 0
    for run in map(Path, args.runs):
        report = report_from_metrics(read_metrics(run))
        failed += report["converged"] is not True
        evals, train = report.get("eval_return", {}), report.get("train_return", {})
        figures = "  ".join(
            f"{name} {100 * trend['relative_gain']:+.1f} % [{100 * trend['ci95'][0]:+.1f}, "
            f"{100 * trend['ci95'][1]:+.1f}] over {trend['points']} points"
            for name, trend in (("greedy", evals), ("training", train))
            if trend.get("relative_gain") is not None)
        verdict = "converged" if report["converged"] else "NOT converged"
        out.print(f"{run}: {verdict} ({report['reason']})" + (f"\n  {figures}" if figures else ""),
                  highlight=False)
        if args.write:
            path = run / "convergence.json"
            kept = json.loads(path.read_text()) if path.is_file() else {}
            stale = ("start_of_last_quarter", "end")  # fields of the check this one replaced
            kept = {k: v for k, v in kept.items() if k not in stale}
            path.write_text(json.dumps({**kept, **report}, indent=2) + "\n")
    return 1 if failed else 0
