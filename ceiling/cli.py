"""The `ceiling` command: parse, validate, call the library, print. No logic lives here.

Every `CeilingError` becomes a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ceiling import __version__
from ceiling.errors import CeilingError


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output (logs, CI) gets wide lines rather than rich's 80-column wrapping.
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, width=width)


def _write_json(path: str, data: dict[str, Any], force: bool) -> None:
    target = Path(path)
    if target.exists() and not force:
        raise CeilingError(f"{target} already exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp")
    staging.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(staging, target)


# -- ceiling tasks ---------------------------------------------------------------------------
def cmd_tasks(args: argparse.Namespace) -> int:
    from ceiling.tasks import FAMILIES, make, names

    if args.family is not None and args.family not in FAMILIES:
        raise CeilingError(f"unknown family {args.family!r}; valid: {', '.join(FAMILIES)}")
    rows: list[dict[str, Any]] = []
    for name in names(args.family):
        spec = make(name).spec
        rows.append({
            "task": name, "agents": spec.num_agents,
            "observation_size": int(spec.observation_shape[0]),
            "actions": spec.num_actions, "global_state_size": int(spec.global_state_shape[0]),
            "horizon": spec.horizon, "win_condition": spec.has_win,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="ceiling tasks")
    for column in ("task", "agents", "obs", "actions", "state", "horizon", "win"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for row in rows:
        table.add_row(row["task"], str(row["agents"]), str(row["observation_size"]),
                      str(row["actions"]), str(row["global_state_size"]), str(row["horizon"]),
                      "yes" if row["win_condition"] else "-")
    _console().print(table)
    return 0


# -- ceiling train ---------------------------------------------------------------------------
def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    from ceiling.training.config import parse_scalar

    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CeilingError(f"--set expects field=value, got {pair!r}")
        values[name.strip()] = parse_scalar(value)
    return values


def cmd_train(args: argparse.Namespace) -> int:
    from ceiling.tasks import make
    from ceiling.training.config import parse_scalar, resolve_config
    from ceiling.training.run import train

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
    overrides = _parse_sets(args.set)
    if args.steps is not None:
        overrides["total_steps"] = parse_scalar(args.steps)
    if args.seed is not None:
        overrides["seed"] = args.seed
    config = resolve_config(args.task, args.algo, args.config, overrides)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise CeilingError(f"run directory {out} already exists; pass --force to replace it")

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = _console(stderr=True)
    console.print(f"training {config.algorithm} on {args.task} for {config.total_steps:,} steps "
                  f"({config.num_envs} envs) -> {out}")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeRemainingColumn(), console=console, transient=False,
                  disable=args.quiet) as progress:
        bar = progress.add_task("compiling", total=config.total_steps, info="")
        last_eval: list[float] = []

        def on_progress(record: dict[str, Any]) -> None:
            train_return = record.get("train_return")
            info = (f"{record['step']:,} steps  {record['steps_per_second']:,.0f} steps/s  "
                    f"return {train_return:.3f}" if train_return is not None else "")
            if "eval_return" in record:
                last_eval[:] = [record["eval_return"]]
            if last_eval:
                info += f"  greedy eval {last_eval[0]:.3f}"
            progress.update(bar, completed=record["step"], total=record["total_steps"],
                            description="training", info=info)

        if base is not None:
            from ceiling.training.compass import train_compass

            report = train_compass(args.task, config, base, out, force=args.force,
                                   on_progress=on_progress)
        else:
            report = train(args.task, config, out, force=args.force, on_progress=on_progress)
    final = report["final_eval"]
    converged = report.get("converged")
    console.print(
        f"done: {report['total_steps']:,} steps in {report['train_seconds']:.0f} s "
        f"(+{report['compile_seconds']:.0f} s compile); greedy test return "
        f"{final['mean_return']:.3f} [{final['ci95'][0]:.3f}, {final['ci95'][1]:.3f}]"
        + (f", win rate {final['win_rate']:.2f}" if final["win_rate"] is not None else "")
    )
    if converged is not None:
        console.print(
            f"convergence: {'converged' if converged else 'NOT converged'} "
            f"({100 * report['relative_improvement']:+.1f} % over the last quarter; "
            f"tolerance {100 * report['tolerance']:.0f} %)"
        )
    console.print(f"checkpoints: {out / 'best'}  {out / 'last'}")
    return 0


# -- ceiling evaluate ------------------------------------------------------------------------
def evaluate_checkpoint(
    checkpoint: str | Path,
    task: str | None,
    num_instances: int,
    stochastic: bool,
    seed: int,
    uniform_random: bool = False,
) -> dict[str, Any]:
    """Zero-shot summary on the first test instances; `uniform_random` plays the random
    policy over legal actions instead (all-zero parameters give uniform logits)."""
    import jax
    import numpy as np

    from ceiling.policies.checkpoint import load_checkpoint
    from ceiling.policies.rollout import evaluate_batch, summarise
    from ceiling.tasks import instances, make

    loaded = load_checkpoint(checkpoint, task)
    task_obj = make(loaded.task_name)
    keys = instances(loaded.task_name, "test", num_instances)
    params = loaded.params
    if uniform_random:
        params = jax.tree_util.tree_map(jax.numpy.zeros_like, params)
        stochastic = True
    start = time.perf_counter()
    episodes = evaluate_batch(task_obj, loaded.policy, params, keys,
                              jax.random.PRNGKey(seed), greedy=not stochastic)
    returns = np.asarray(episodes.total_return)
    summary = summarise(returns, np.asarray(episodes.won) if task_obj.spec.has_win else None)
    summary.update({
        "task": loaded.task_name, "algorithm": loaded.manifest["algorithm"],
        "checkpoint": str(checkpoint),
        "mode": "random" if uniform_random else "stochastic" if stochastic else "greedy",
        "seconds": time.perf_counter() - start, "ceiling_version": __version__,
    })
    return summary


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.instances < 1:
        raise CeilingError(f"--instances must be at least 1, got {args.instances}")
    summary = evaluate_checkpoint(args.checkpoint, args.task, args.instances, args.stochastic,
                                  args.seed, uniform_random=args.random)
    if args.out:
        _write_json(args.out, summary, args.force)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    lo, hi = summary["ci95"]
    line = (f"{summary['task']} {summary['algorithm']} ({summary['mode']}, "
            f"{summary['num_instances']} test instances): mean return "
            f"{summary['mean_return']:.3f}  95% CI [{lo:.3f}, {hi:.3f}]")
    if summary["win_rate"] is not None:
        line += f"  win rate {summary['win_rate']:.3f}"
    _console().print(line)
    return 0


# -- ceiling solve ---------------------------------------------------------------------------
STRATEGY_FLAGS = {"temperature": "temperature", "beam_width": "beam_width",
                  "expansion": "expansion", "finetune_scope": "scope"}


def _strategy_options(args: argparse.Namespace) -> dict[str, Any]:
    options = _parse_sets(args.option)
    for flag, option in STRATEGY_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            options[option] = value
    return options


def cmd_solve(args: argparse.Namespace) -> int:
    import jax

    from ceiling import search
    from ceiling.policies.checkpoint import load_checkpoint
    from ceiling.tasks import make
    from ceiling.tasks.instances import TEST_SET_SIZE, instances

    task = make(args.task)
    if args.out and Path(args.out).exists() and not args.force:
        raise CeilingError(f"{args.out} already exists; pass --force to overwrite it")
    if not 0 <= args.instance < TEST_SET_SIZE:
        raise CeilingError(f"--instance must be a test-set index in [0, {TEST_SET_SIZE}), "
                           f"got {args.instance}")
    budget = search.Budget(seconds=args.seconds, rollouts=args.rollouts, width=args.width)
    checkpoint = load_checkpoint(args.checkpoint, task=args.task)
    strategy = search.make_strategy(args.strategy, task, checkpoint.policy, args.width,
                                    **_strategy_options(args))
    instance_key = instances(args.task, "test", args.instance + 1)[args.instance]
    console = _console(stderr=True)
    limit = (f"{args.seconds:g} s" if args.seconds is not None else "") + (
        f"{' / ' if args.seconds is not None else ''}{args.rollouts:,} rollouts"
        if args.rollouts is not None else "")
    aborted: str | None = None
    with console.status(f"compiling {args.strategy} for {args.task}") as status:

        def on_batch(point: search.TracePoint) -> None:
            status.update(f"{args.strategy}  {point.seconds:6.1f} s  {point.rollouts:,} rollouts"
                          f"  best return {point.best_return:.3f}   (budget {limit})")

        try:
            result = search.solve(strategy, checkpoint.params, instance_key, budget,
                                  jax.random.PRNGKey(args.seed), on_batch=on_batch)
        except search.SearchAborted as err:
            aborted, result = str(err), err.result
    payload = {
        **result.to_dict(), "task": args.task, "instance": args.instance,
        "checkpoint": str(args.checkpoint), "seed": args.seed, "aborted": aborted,
        "ceiling_version": __version__,
    }
    if args.out:
        _write_json(args.out, payload, force=True)
    solution = result.solution
    won = "" if solution.won is None else f", won {solution.won}"
    console.print(f"{args.strategy} on {args.task} test instance {args.instance}: return "
                  f"{solution.total_return:.3f} (verified {solution.verified:.3f}{won}) after "
                  f"{result.rollouts:,} rollouts in {result.seconds:.1f} s "
                  f"(+{result.compile_seconds:.1f} s compile)"
                  + (f"; written to {args.out}" if args.out else ""))
    if aborted is not None:
        raise CeilingError(aborted)
    return 0


# -- ceiling demo ----------------------------------------------------------------------------
DEMO_TASK = "rware:tiny-2ag-hard"
DEMO_ALGORITHM = "mappo"  # the best zero-shot policy shipped for DEMO_TASK
DEMO_STRATEGIES = ("greedy", "sampling", "sgbs", "finetune")
COMPASS_STRATEGIES = ("compass", "latent-sampling")  # with the COMPASS checkpoint, if shipped


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ceiling.policies.shipped import shipped_checkpoints

    shipped = shipped_checkpoints()
    if not shipped:
        raise CeilingError("no shipped checkpoints found in this installation")
    plot = Path(args.plot)
    if args.search_instances > 0 and plot.exists() and not args.force:
        raise CeilingError(f"{plot} already exists; pass --force or --plot OTHER.png")
    table = Table(title=f"zero-shot on {args.instances} test instances (shipped IPPO/MAPPO "
                        "checkpoints; COMPASS ones are searched below)")
    for column in ("task", "algorithm", "greedy return", "95% CI", "stochastic return",
                   "random policy", "win rate (greedy)"):
        table.add_column(column, justify="left" if column in ("task", "algorithm") else "right")
    console = _console()
    for (task, algorithm), path in shipped.items():
        if algorithm == "compass":  # z = 0 is not its zero-shot policy; its value is search
            continue
        greedy = evaluate_checkpoint(path, task, args.instances, False, 0)
        sampled = evaluate_checkpoint(path, task, args.instances, True, 0)
        random = evaluate_checkpoint(path, task, args.instances, True, 0, uniform_random=True)
        lo, hi = greedy["ci95"]
        win = greedy["win_rate"]
        table.add_row(task, algorithm, f"{greedy['mean_return']:.3f}", f"[{lo:.3f}, {hi:.3f}]",
                      f"{sampled['mean_return']:.3f}", f"{random['mean_return']:.3f}",
                      "-" if win is None else f"{win:.2f}")
    console.print(table)
    if args.search_instances > 0 and (DEMO_TASK, DEMO_ALGORITHM) in shipped:
        demo_search(args, shipped[(DEMO_TASK, DEMO_ALGORITHM)], shipped.get(
            (DEMO_TASK, "compass")), plot, console)
    return 0


def demo_search(
    args: argparse.Namespace, path: Path, compass_path: Path | None, plot: Path, console: Any
) -> None:
    """Each strategy at a short budget on a few instances: a table and an anytime plot."""
    from rich.table import Table

    from ceiling.policies.checkpoint import load_checkpoint
    from ceiling.search import Budget
    from ceiling.search.compare import compare, plot_anytime, summarise_comparison

    checkpoint = load_checkpoint(path, task=DEMO_TASK)
    strategies: tuple[str, ...] = DEMO_STRATEGIES
    others = {}
    if compass_path is not None:
        compass = load_checkpoint(compass_path, task=DEMO_TASK)
        strategies += COMPASS_STRATEGIES
        others = {name: compass for name in COMPASS_STRATEGIES}
    budget = Budget(seconds=args.seconds, width=args.width)
    with console.status("searching") as status:
        results = compare(
            checkpoint, strategies, args.search_instances, budget,
            on_result=lambda name, index, result: status.update(
                f"{name} on instance {index}: return {result.solution.verified:.2f}"),
            other_checkpoints=others,
        )
    title = (f"{checkpoint.algorithm.upper()} on {DEMO_TASK}"
             + (" (compass strategies: its COMPASS checkpoint)" if others else "")
             + f": {args.search_instances} test instances, {args.seconds:g} s per instance, "
             f"width {args.width}")
    table = Table(title=title)
    for column in ("strategy", "mean return", "95% CI", "rollouts", "gain over greedy"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for row in summarise_comparison(results):
        gain = row["gain_over_greedy_percent"]
        lo, hi = row["ci95"]
        table.add_row(row["strategy"], f"{row['mean_return']:.2f}", f"[{lo:.2f}, {hi:.2f}]",
                      f"{row['mean_rollouts']:,.0f}", "-" if gain is None else f"{gain:+.1f} %")
    console.print(table)
    plot_anytime(results, title, plot)
    console.print(f"anytime plot: {plot}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ceiling", description="Inference strategies for trained multi-agent RL policies."
    )
    parser.add_argument("--version", action="version", version=f"ceiling {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tasks", help="list every task with its spec")
    p.add_argument("--family", help="only this family (rware, connector, smax)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("train", help="train an IPPO, MAPPO or COMPASS policy on a task")
    p.add_argument("--task", required=True, help="task name, e.g. rware:tiny-2ag-hard")
    p.add_argument("--algo", required=True,
                   help="ippo, mappo, or compass (latent-conditioned, needs --from)")
    p.add_argument("--from", dest="from_checkpoint", metavar="CHECKPOINT",
                   help="COMPASS: the converged IPPO/MAPPO checkpoint to condition and train")
    p.add_argument("--steps", help="environment steps, e.g. 20M (default: the config's)")
    p.add_argument("--out", required=True, help="run directory (created; not overwritten)")
    p.add_argument("--config", help="YAML file of PPO fields overriding the defaults")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override one PPO field, e.g. --set num_envs=128 (repeatable)")
    p.add_argument("--seed", type=int)
    p.add_argument("--force", action="store_true", help="replace an existing run directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="zero-shot evaluation of a checkpoint on test instances")
    p.add_argument("--checkpoint", required=True, help="checkpoint directory")
    p.add_argument("--task", help="fail unless the checkpoint was trained for this task")
    p.add_argument("--instances", type=int, default=128, help="number of test instances")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of arg-max")
    p.add_argument("--seed", type=int, default=0, help="seed for stochastic actions")
    p.add_argument("--random", action="store_true",
                   help="play the uniform random policy instead (a baseline)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--out", help="also write the JSON result to this file")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("solve", help="search one test instance with an inference strategy")
    p.add_argument("--checkpoint", required=True, help="checkpoint directory")
    p.add_argument("--task", required=True, help="the task the checkpoint was trained for")
    p.add_argument("--instance", type=int, default=0, help="index into the task's test set")
    p.add_argument("--strategy", required=True, help="greedy, sampling, sgbs, finetune, ...")
    p.add_argument("--seconds", type=float, help="wall-clock budget (compile time excluded)")
    p.add_argument("--rollouts", type=int, help="rollout budget (a multiple of --width)")
    p.add_argument("--width", type=int, default=64, help="parallel attempts per batch")
    p.add_argument("--temperature", type=float, help="sampling temperature")
    p.add_argument("--beam-width", dest="beam_width", type=int, help="SGBS beam width")
    p.add_argument("--expansion", type=int, help="SGBS children per beam node")
    p.add_argument("--finetune-scope", dest="finetune_scope", choices=["all", "head"],
                   help="fine-tune all parameters or only the last layer")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="any other strategy option (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the result JSON here")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("demo", help="the shipped checkpoints zero-shot, then each strategy")
    p.add_argument("--instances", type=int, default=16,
                   help="test instances per checkpoint for the zero-shot table")
    p.add_argument("--search-instances", type=int, default=4,
                   help=f"test instances of {DEMO_TASK} to search (0: skip the search)")
    p.add_argument("--seconds", type=float, default=1.5, help="search budget per instance")
    p.add_argument("--width", type=int, default=64, help="parallel attempts per batch")
    p.add_argument("--plot", default="ceiling-demo/anytime.png", help="anytime plot PNG")
    p.add_argument("--force", action="store_true", help="overwrite --plot if it exists")
    p.set_defaults(func=cmd_demo)
    from ceiling.reuse.cli import add_reuse_parser
    add_reuse_parser(sub)
    from ceiling.bench.cli import add_bench_parsers
    add_bench_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CeilingError as err:
        print(f"ceiling: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ceiling: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
