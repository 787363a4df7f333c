"""Where a SABLE decision's time goes, beside MAPPO's, without the environment.

`benchmarks/throughput.py` times whole search batches (policy and environment together). This
script isolates the policy: `--steps` sampled joint decisions on `--width` fixed random
observations of a task, in one jitted loop per program, for MAPPO's decision (the shipped
128x128 MLP), SABLE's encoder alone, SABLE's whole autoregressive decision (encoder, then the
agents decoded one after another), and SABLE's teacher-forced pass (every agent's logits at
once given a joint action, what training's loss runs). Random-initialised networks at the
shipped sizes. Programs alternate over `--repeats` rounds; the table gives the median time per
decision and each program's multiply-adds per decision counted from the optimised program by
XLA's cost analysis (flops / 2), and the kernels (fusions, copies and matrix products) in
XLA's optimised entry computation (SABLE's decision unrolls its loop over agents, so its
count covers every agent; the body of a loop, such as the random-number generator's, is not
counted). The
teacher-forced pass does the decoder's arithmetic for every agent at once.

Run from the repository root (pin one core for stable numbers):

    taskset -c 0 python benchmarks/sable_decision.py
    taskset -c 0 python benchmarks/sable_decision.py --task connector:con-10x10x10a --width 64
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

from ceiling.policies.networks import NetworkConfig, make_policy
from ceiling.policies.sable import sable_config
from ceiling.tasks import make


def programs(task_name: str, width: int) -> dict[str, Callable[[jax.Array, jax.Array], jax.Array]]:
    """{label: f(observation, key) -> something to sum} for one decision of each program."""
    spec = make(task_name).spec
    mask = jnp.ones((width, spec.num_agents, spec.num_actions), bool)
    mappo = make_policy(spec, NetworkConfig("mappo", (128, 128), "relu"))
    sable = make_policy(spec, sable_config())
    mappo_params = mappo.init(jax.random.PRNGKey(1))
    sable_params = sable.init(jax.random.PRNGKey(1))
    joint = jnp.zeros((width, spec.num_agents), jnp.int32)
    return {
        "MAPPO decision": lambda o, k: mappo.decide(mappo_params, o, mask, k, False)[1],
        "SABLE encoder": lambda o, k: sable.encode(sable_params, o),
        "SABLE decision": lambda o, k: sable.decide(sable_params, o, mask, k, False)[1],
        "SABLE teacher-forced": lambda o, k: sable.conditional_logits(sable_params, o, mask,
                                                                      joint),
    }


def looped(decision: Callable[[jax.Array, jax.Array], jax.Array], observation: jax.Array,
           steps: int) -> Callable[[jax.Array], jax.Array]:
    """`steps` decisions in a jitted loop, each observation nudged by the last result so that
    XLA cannot hoist the decision out of the loop."""

    def run(key: jax.Array) -> jax.Array:
        def body(i: jax.Array, carry: jax.Array) -> jax.Array:
            out = decision(observation + 1e-6 * carry, jax.random.fold_in(key, i))
            return jnp.where(jnp.isfinite(out), out, 0.0).mean()

        return jax.lax.fori_loop(0, steps, body, jnp.zeros(()))

    return jax.jit(run)


KERNEL = re.compile(r"= .+? (?:fusion|copy|dot)\(")


def cost(decision: Callable[[jax.Array, jax.Array], jax.Array],
         observation: jax.Array) -> tuple[float, int]:
    """(multiply-adds, kernels) of one decision's optimised program: the kernels its entry
    computation launches."""
    compiled = jax.jit(decision).lower(observation, jax.random.PRNGKey(0)).compile()
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    entry = compiled.as_text().split("\nENTRY", 1)[-1].split("\n}", 1)[0]
    return float(analysis.get("flops", 0.0)) / 2, len(KERNEL.findall(entry))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="rware:tiny-4ag-hard")
    parser.add_argument("--width", type=int, default=64, help="environments per decision")
    parser.add_argument("--steps", type=int, default=500, help="decisions per timed call")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    spec = make(args.task).spec
    observation = jax.random.normal(jax.random.PRNGKey(0),
                                    (args.width, spec.num_agents, *spec.observation_shape))
    built = programs(args.task, args.width)
    loops = {label: looped(decision, observation, args.steps) for label, decision in built.items()}
    for run in loops.values():
        jax.block_until_ready(run(jax.random.PRNGKey(0)))
    times: dict[str, list[float]] = {label: [] for label in loops}
    for repeat in range(args.repeats):
        for label, run in loops.items():
            start = time.perf_counter()
            jax.block_until_ready(run(jax.random.PRNGKey(repeat)))
            times[label].append(time.perf_counter() - start)

    print(f"{args.task}, {args.width} environments, {spec.num_agents} agents; median of "
          f"{args.repeats} alternating calls of {args.steps} decisions, compile excluded\n")
    print("| program | ms per decision | multiply-adds | kernels |")
    print("|---|---|---|---|")
    for label, run_times in times.items():
        macs, kernels = cost(built[label], observation)
        per_decision = statistics.median(run_times) / args.steps * 1e3
        print(f"| {label} | {per_decision:.3f} | {macs / 1e6:.1f}M | {kernels} |")


if __name__ == "__main__":
    main()
