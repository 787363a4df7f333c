"""What every strategy shares: the search state, the incumbent, the Strategy base class.

A strategy is a small object holding only static configuration (task, policy, width, typed
options) with pure methods over an explicit search state, like an evosax strategy:
`init(key, params, instance_key) -> state`, `step(state) -> state` (exactly one jitted batch of
attempts) and `best(state) -> Incumbent`. The base class owns everything strategies share: the
task, policy and width, the search state's common fields (parameters, instance, key,
incumbent), offering every batch of attempts to the incumbent, and turning a budget into a
number of batches. A strategy writes `batch` — what one batch of attempts does — and, when it
carries state of its own between batches, `init_inner`; it declares its options as a
`StrategyOptions` dataclass and its capabilities as class attributes that the rest of the code
reads instead of its name.
"""

from __future__ import annotations

import abc
import functools
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from ceiling.compile_options import RUN_ONCE_COMPILER_OPTIONS
from ceiling.errors import CeilingError
from ceiling.policies.networks import Params, Policy
from ceiling.policies.rollout import Episode
from ceiling.search.budget import Budget
from ceiling.search.options import StrategyOptions, validate_options
from ceiling.tasks.base import Task

TRAIN_COMPASS_HINT = "ceiling train --algo compass --from CHECKPOINT --task TASK --out DIR"


class Incumbent(NamedTuple):
    """The best complete episode found so far."""

    actions: jax.Array  # [T, A] int32
    total_return: jax.Array  # [] float32 (-inf before the first batch)
    won: jax.Array  # [] bool
    tag: jax.Array  # [d] what produced it, where a strategy says (COMPASS: the latent); [0] else


class SearchState(NamedTuple):
    """The state every strategy's search carries; `inner` is the strategy's own part."""

    params: Params
    instance_key: jax.Array  # [2] the instance being solved
    key: jax.Array  # [2] the next batch's randomness
    incumbent: Incumbent
    inner: Any


class Batch(NamedTuple):
    """What one batch of attempts produced (the return value of `Strategy.batch`)."""

    episodes: Episode  # [W'] complete attempts, offered to the incumbent
    inner: Any = ()  # the strategy's own state for the next batch
    params: Params | None = None  # updated policy parameters (None: unchanged)
    tags: jax.Array | None = None  # [W', d] per attempt, kept with the incumbent


def empty_incumbent(task: Task, tag_size: int = 0) -> Incumbent:
    spec = task.spec
    return Incumbent(
        actions=jnp.zeros((spec.horizon, spec.num_agents), jnp.int32),
        total_return=jnp.asarray(-jnp.inf, jnp.float32),
        won=jnp.zeros((), bool),
        tag=jnp.zeros((tag_size,), jnp.float32),
    )


def improve(incumbent: Incumbent, episodes: Episode, tags: jax.Array | None = None) -> Incumbent:
    """Keep the best of the incumbent and a batch of episodes [W] (first index wins ties)."""
    index = jnp.argmax(episodes.total_return)
    candidate = episodes.total_return[index]
    better = candidate > incumbent.total_return
    tag = incumbent.tag if tags is None else jnp.where(better, tags[index], incumbent.tag)
    return Incumbent(
        actions=jnp.where(better, episodes.actions[index], incumbent.actions),
        total_return=jnp.where(better, candidate, incumbent.total_return),
        won=jnp.where(better, episodes.won[index], incumbent.won),
        tag=tag,
    )


def improved(state: SearchState, episodes: Episode) -> jax.Array:
    """[] bool: whether this batch will replace the incumbent (the rule of `improve`)."""
    return episodes.total_return.max() > state.incumbent.total_return


class Strategy(abc.ABC):
    """Static configuration + pure functions over a `SearchState` (see the module docstring).

    Capabilities (class attributes, read by the driver, bench, reports and the CLI):
    - `needs_latent`: searches the latent of a latent-conditioned (COMPASS) policy;
    - `budget_free`: one deterministic attempt whose result no budget, width or seed changes
      (the zero-shot baseline);
    - `updates_parameters`: takes gradient steps on the policy (needs a differentiable one);
    - `min_width`: the fewest parallel attempts a batch can have.
    """

    name: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions
    needs_latent: ClassVar[bool] = False
    budget_free: ClassVar[bool] = False
    updates_parameters: ClassVar[bool] = False
    min_width: ClassVar[int] = 1

    def __init__(
        self, task: Task, policy: Policy, width: int, options: StrategyOptions | None = None
    ) -> None:
        if isinstance(width, bool) or not isinstance(width, int) or width < self.min_width:
            raise CeilingError(f"{self.name} needs a width (parallel attempts) that is an "
                               f"integer >= {self.min_width}, got {width!r}")
        if self.needs_latent and not policy.config.conditioned:
            raise CeilingError(
                f"strategy {self.name!r} needs a latent-conditioned (COMPASS) checkpoint, but "
                f"this is a {policy.config.label} policy with no latent input; train one from "
                f"it with `{TRAIN_COMPASS_HINT}`")
        self.task, self.policy, self.width = task, policy, width
        self.options = validate_options(self.name, options or self.Options())
        self.setup()

    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring: what one batch does."""
        return (cls.__doc__ or cls.name).strip().splitlines()[0]

    def setup(self) -> None:  # noqa: B027 (an optional hook, not an abstract method)
        """Derive static configuration from `self.options` (after they are validated)."""

    # -- the search state -------------------------------------------------------------------
    def init(self, key: jax.Array, params: Params, instance_key: jax.Array) -> SearchState:
        """The search state for one instance; holds everything `step` needs."""
        key, inner_key = jax.random.split(key)
        return SearchState(params, instance_key, key,
                           empty_incumbent(self.task, self.tag_size),
                           self.init_inner(inner_key, params, instance_key))

    def init_inner(self, key: jax.Array, params: Params, instance_key: jax.Array) -> Any:
        """The strategy's own state before the first batch (default: none)."""
        del key, params, instance_key
        return ()

    @abc.abstractmethod
    def batch(self, state: SearchState, key: jax.Array) -> Batch:
        """One batch of attempts from `state`, drawing randomness from `key`; pure, jittable."""

    def sample_batch(self, state: SearchState, key: jax.Array) -> Batch:
        """`batch` without what it would teach later batches: the same attempts, drawn from the
        same `key`, without the learning step a strategy that `updates_parameters` takes after
        them. The driver runs it when no later batch could use that step (the last batch of a
        rollout budget, or when a learning batch would end after the clock budget), so the
        incumbent is the same and the time is not spent. The default is `batch` itself."""
        return self.batch(state, key)

    def step(self, state: SearchState, learn: bool = True) -> SearchState:
        """One batch of attempts, offered to the incumbent; pure and jittable. `learn=False`
        runs `sample_batch` instead of `batch`."""
        key, batch_key = jax.random.split(state.key)
        out = (self.batch if learn else self.sample_batch)(state, batch_key)
        params = state.params if out.params is None else out.params
        incumbent = improve(state.incumbent, out.episodes, out.tags)
        return SearchState(params, state.instance_key, key, incumbent, out.inner)

    def best(self, state: SearchState) -> Incumbent:
        return state.incumbent

    @property
    def compiled_for_one_run(self) -> bool:
        """Whether the step is compiled for a fast compile rather than a fast run (XLA's
        run-once options): a budget-free strategy runs it once per instance. Its solutions
        are replayed by a program compiled the same way (`ceiling.search.solution`)."""
        return self.budget_free

    @functools.cached_property
    def jitted_step(self) -> Any:
        """`step` under `jax.jit`, kept with the strategy so that searching many instances
        with one strategy object compiles once (`compiled_for_one_run` picks the options)."""
        if self.compiled_for_one_run:
            return jax.jit(self.step, compiler_options=RUN_ONCE_COMPILER_OPTIONS)
        return jax.jit(self.step)

    def compiled_step(self, state: SearchState, learn: bool = True) -> Any:
        """`step` (or, `learn=False`, its `sample_batch` variant) compiled ahead of time for
        states shaped like `state`, kept with the strategy so that every instance reuses it;
        calling it runs one batch and nothing else, which is what the driver times."""
        leaves, treedef = jax.tree_util.tree_flatten(state)
        signature = (learn, treedef, tuple(jax.typeof(leaf) for leaf in leaves))
        programs = self.__dict__.setdefault("_compiled_steps", {})
        if signature not in programs:
            step = self.jitted_step if learn else jax.jit(functools.partial(self.step,
                                                                            learn=False))
            programs[signature] = step.lower(state).compile()
        return programs[signature]

    def compiled_programs(self, state: SearchState) -> dict[bool, Any]:
        """The programs a search may run, by `learn`: `compiled_step(state)`, and for a
        strategy that learns between batches its sampling-only variant too."""
        learns = (True, False) if self.learns_between_batches else (True,)
        return {learn: self.compiled_step(state, learn) for learn in learns}

    @property
    def learns_between_batches(self) -> bool:
        """The strategy's batches end with a learning step that `sample_batch` leaves out."""
        return type(self).sample_batch is not Strategy.sample_batch

    def check(self, state: SearchState) -> None:
        """Raise `CeilingError` if the search can no longer go on (e.g. non-finite params)."""
        del state  # the default strategy can always go on

    # -- budgets ----------------------------------------------------------------------------
    @property
    def tag_size(self) -> int:
        """Size of the per-attempt tag kept with the incumbent (COMPASS: the latent size)."""
        return 0

    @property
    def rollouts_per_step(self) -> int:
        """Complete rollouts (or their equivalent in simulated steps) one batch costs."""
        return self.width

    @property
    def max_steps(self) -> int | None:
        """A strategy that has nothing left to try after this many batches says so."""
        return None

    def batch_limit(self, budget: Budget) -> int | None:
        """How many batches `budget` allows (None: only the clock limits it).

        A rollout budget is counted in the rollouts this strategy reports: it must be a whole
        number of batches, or it is refused (naming the nearest valid budgets).
        """
        limits = [] if self.max_steps is None else [self.max_steps]
        if budget.rollouts is not None:
            per_batch = self.rollouts_per_step
            if budget.rollouts % per_batch and not self.budget_free:
                lower = per_batch * max(1, budget.rollouts // per_batch)
                raise CeilingError(
                    f"a rollout budget of {budget.rollouts} cannot be met exactly: {self.name} "
                    f"at width {self.width} runs {per_batch} rollouts per batch; use a multiple "
                    f"of {per_batch}, e.g. {lower} or {lower + per_batch}")
            limits.append(max(1, budget.rollouts // per_batch))
        return min(limits) if limits else None
