"""Suites: a YAML file naming what to benchmark, validated in full before anything runs.

A sweep may take hours, so a typo found after the first hour is a lost hour. `load_suite` walks
the YAML node tree (not the plain loaded data) so that every problem carries its line number,
collects *all* problems, and raises one `CeilingError` listing them. The schema:

    name: smoke                      # used in captions and the store
    instances: 2                     # the first N test instances of every task
    seeds: [0]                       # search seeds; a cell searches from
                                     #   ceiling.search.search_key(seed, task, instance)
    widths: [16]                     # parallel attempts per batch
    budgets:                         # each: seconds and/or rollouts (rollouts: a whole number
      - {rollouts: 64}               #   of every strategy's batches at every width)
    tasks:
      connector:con-5x5x3a:
        checkpoints: [shipped:ippo, shipped:compass]   # `shipped:ALGO` or a checkpoint path
        # or {checkpoint: shipped:mappo, only: [greedy]}: that checkpoint for those only;
        # shipped:compass-sable is COMPASS trained from SABLE (plain compass: from MAPPO)
    strategies:
      - greedy                       # a name, or a mapping with options
      - {name: sampling, options: {temperature: 1.0}}

Cells are the cross product. What a strategy pairs with is read from its capabilities, not its
name: a `needs_latent` strategy (COMPASS, latent sampling) pairs with the task's
latent-conditioned checkpoints and every other strategy with the others; a `budget_free`
strategy (greedy, the zero-shot baseline) gets one cell per checkpoint and instance (its
`min_width`, one rollout, seed 0) whatever the budgets, widths and seeds; every width must be at
least each searching strategy's `min_width`. Whether a rollout budget is a whole number of a
strategy's batches depends on the strategy (SGBS at width 10 runs 8 rollouts a batch), so that
is checked once the strategies are built, before the first cell (`ceiling.bench.run.preflight`).
A relative checkpoint path is looked up from the working directory, then from the suite file's
directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

from ceiling.errors import CeilingError

TOP_LEVEL_KEYS = ("name", "description", "instances", "seeds", "widths", "budgets", "tasks",
                  "strategies")
REQUIRED_KEYS = ("name", "instances", "widths", "budgets", "tasks", "strategies")

# How a cell's search is derived from its (seed, task, instance), hashed into every cell key.
# 1: `fold_in(PRNGKey(seed), instance)`; 2: `ceiling.search.search_key(seed, task, instance)`.
# Rows stored under another derivation searched from other keys, so their cells get new keys
# and are rerun on resume rather than skipped and mixed with rows of this one. Bump it whenever
# the derivation (or anything else that changes what a stored cell's search was) changes.
SEARCH_IDENTITY = 2


@dataclasses.dataclass(frozen=True)
class CheckpointRef:
    spec: str  # as written in the suite: `shipped:ippo` or a path
    path: str  # the resolved checkpoint directory
    algorithm: str  # the checkpoint's label (ippo, mappo, sable, compass, compass-sable)
    latent: bool  # latent-conditioned (COMPASS)
    sha256: str  # of the parameters: a changed checkpoint makes new cells
    only: tuple[str, ...] = ()  # strategies restricted to this checkpoint (empty: all)
    search_defaults: str = "{}"  # canonical JSON of the manifest's {strategy: {option: value}}

    def _recorded(self, strategy: str) -> dict[str, Any]:
        """The checkpoint's recorded search defaults for `strategy` ({} if none)."""
        return dict(json.loads(self.search_defaults).get(strategy) or {})

    def defaults_for(self, strategy: str) -> str:
        """The options a plain `strategy` entry searches this checkpoint with (its recorded
        search defaults for that strategy), as canonical JSON; `{}` if none are recorded."""
        return json.dumps(self._recorded(strategy), sort_keys=True)

    def options_for(self, entry: StrategyEntry) -> str:
        """The options `entry` searches this checkpoint with: the suite's over the
        checkpoint's recorded search defaults, as canonical JSON (what cells are keyed by)."""
        defaults = self._recorded(entry.name)
        if not defaults:
            return entry.options
        return json.dumps({**defaults, **json.loads(entry.options)}, sort_keys=True)


@dataclasses.dataclass(frozen=True)
class StrategyEntry:
    name: str
    options: str  # canonical JSON of the options
    line: int


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (task, instance, checkpoint, strategy, options, budget, width, seed)."""

    task: str
    checkpoint: CheckpointRef
    strategy: str
    options: str  # canonical JSON
    seconds: float | None
    rollouts: int | None
    width: int
    instance: int
    seed: int

    @property
    def key(self) -> str:
        """The config hash: what a stored row is looked up by (resume skips these)."""
        identity = {
            "task": self.task, "checkpoint_sha256": self.checkpoint.sha256,
            "strategy": self.strategy, "options": self.options, "seconds": self.seconds,
            "rollouts": self.rollouts, "width": self.width, "instance": self.instance,
            "seed": self.seed, "search_identity": SEARCH_IDENTITY,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]

    @property
    def group(self) -> tuple[str, str, str, str, int]:
        """Cells sharing one compiled strategy object."""
        return (self.task, self.checkpoint.path, self.strategy, self.options, self.width)

    def options_dict(self) -> dict[str, Any]:
        return dict(json.loads(self.options))


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    path: str
    description: str
    instances: int
    seeds: tuple[int, ...]
    widths: tuple[int, ...]
    budgets: tuple[tuple[float | None, int | None], ...]  # (seconds, rollouts)
    tasks: dict[str, tuple[CheckpointRef, ...]]
    strategies: tuple[StrategyEntry, ...]
    budget_lines: tuple[int, ...] = ()  # the line of each budget, for problems found later

    def budget_line(self, seconds: float | None, rollouts: int | None) -> int:
        """The suite line of budget (seconds, rollouts); 0 if it is not one of the suite's."""
        pairs = dict(zip(self.budgets, self.budget_lines, strict=False))
        return pairs.get((seconds, rollouts), 0)

    def cells(self) -> list[Cell]:
        """Every cell, grouped so that cells sharing a compiled strategy are adjacent. A plain
        entry that a checkpoint's recorded search defaults turn into another entry's options
        (`sampling` beside `{sampling, temperature: 0.4}` once the checkpoint records 0.4)
        makes the same cells; they are listed once."""
        from ceiling.search import strategy_class

        cells: list[Cell] = []
        for task, checkpoints in self.tasks.items():
            for entry in self.strategies:
                cls = strategy_class(entry.name)
                for checkpoint in checkpoints:
                    if checkpoint.latent != cls.needs_latent or (
                            checkpoint.only and entry.name not in checkpoint.only):
                        continue
                    options = checkpoint.options_for(entry)
                    if cls.budget_free:
                        cells.extend(Cell(task, checkpoint, entry.name, options, None, 1,
                                          cls.min_width, i, 0) for i in range(self.instances))
                        continue
                    for width in self.widths:
                        for seconds, rollouts in self.budgets:
                            for seed in self.seeds:
                                cells.extend(
                                    Cell(task, checkpoint, entry.name, options, seconds,
                                         rollouts, width, i, seed)
                                    for i in range(self.instances))
        unique: dict[str, Cell] = {}
        for cell in cells:
            unique.setdefault(cell.key, cell)
        return list(unique.values())


class Problems:
    """Problems found in a suite so far, each with its 1-based line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[tuple[int, str]] = []

    def add(self, node: yaml.Node, message: str) -> None:
        self.add_line(node.start_mark.line + 1, message)

    def add_line(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if self.items:
            lines = [f"  {self.path}:{line}: {message}"
                     for line, message in sorted(self.items, key=lambda item: item[0])]
            raise CeilingError(f"suite {self.path} has {len(self.items)} problem(s):\n"
                               + "\n".join(lines))


def _value(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)  # type: ignore[no-untyped-call]


def _int(node: yaml.Node, problems: Problems, what: str, minimum: int = 0) -> int | None:
    value = _value(node)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problems.add(node, f"{what} must be an integer >= {minimum}, got {value!r}")
        return None
    return value


def _int_list(node: yaml.Node, problems: Problems, what: str, minimum: int) -> list[int]:
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    if not items:
        problems.add(node, f"{what} must not be empty")
    values: list[int] = []
    for item in items:
        value = _int(item, problems, what, minimum)
        if value is not None and value in values:
            problems.add(item, f"{what} lists {value} twice")
        elif value is not None:
            values.append(value)
    return values


def _resolve_checkpoint(
    task: str, node: yaml.Node, suite_dir: Path, problems: Problems,
    strategies: set[str] | None,
) -> CheckpointRef | None:
    from ceiling.policies.checkpoint import SEARCH_DEFAULTS, read_manifest, search_defaults
    from ceiling.policies.labels import algorithm_label
    from ceiling.policies.networks import NetworkConfig
    from ceiling.policies.shipped import shipped_checkpoints
    from ceiling.search import with_checkpoint_defaults

    only: tuple[str, ...] = ()
    if isinstance(node, yaml.MappingNode):
        fields = {_value(k): (k, v) for k, v in node.value}
        for field, (k, _) in fields.items():
            if field not in ("checkpoint", "only"):
                problems.add(k, f"unknown key {field!r} in a checkpoint (valid: checkpoint, "
                                "only)")
        if "checkpoint" not in fields:
            problems.add(node, "a checkpoint mapping needs `checkpoint: shipped:ALGO or path`")
            return None
        if "only" in fields:
            only_node = fields["only"][1]
            names = _value(only_node)
            only = tuple(map(str, names)) if isinstance(names, list) else (str(names),)
            for name in only:
                if strategies is not None and name not in strategies:
                    problems.add(only_node, f"`only` names {name!r}, which is not a strategy "
                                            "of this suite")
        node = fields["checkpoint"][1]
    spec = _value(node)
    if not isinstance(spec, str) or not spec:
        problems.add(node, f"a checkpoint is `shipped:ALGO` or a path, got {spec!r}")
        return None
    if spec.startswith("shipped:"):
        algorithm = spec.partition(":")[2]
        shipped = shipped_checkpoints()
        if (task, algorithm) not in shipped:
            valid = sorted(f"shipped:{a}" for t, a in shipped if t == task)
            problems.add(node, f"no shipped {algorithm!r} checkpoint for {task}; shipped for "
                               f"it: {', '.join(valid) or 'none (give a checkpoint path)'}")
            return None
        path = shipped[(task, algorithm)]
    else:
        path = Path(spec).expanduser()
        if not path.is_absolute() and not path.exists():
            path = suite_dir / path
        if path.is_file():
            problems.add(node, f"checkpoint {spec} is a file, not a directory: a checkpoint is "
                               "the directory holding manifest.json and params.msgpack")
            return None
        if not path.is_dir():
            problems.add(node, f"checkpoint {spec} not found (looked in the working directory "
                               f"and in {suite_dir}); train one with `ceiling train --task "
                               f"{task} --algo ALGO --out DIR`")
            return None
    try:
        manifest = read_manifest(path)
    except CeilingError as err:
        problems.add(node, str(err))
        return None
    if manifest["task"] != task:
        problems.add(node, f"checkpoint {spec} was trained for {manifest['task']!r}, not {task!r}")
        return None
    try:
        latent = NetworkConfig.from_dict(manifest["network"]).conditioned
    except (KeyError, TypeError, ValueError) as err:
        problems.add(node, f"checkpoint {spec} has an unreadable network config: {err!r}")
        return None
    table = manifest.get(SEARCH_DEFAULTS, {})
    try:  # the table's shape, then each strategy's defaults against its options
        search_defaults(manifest, "", path)
        for name in table:
            with_checkpoint_defaults(name, table[name], {}, spec)
    except CeilingError as err:
        problems.add(node, str(err))
        return None
    return CheckpointRef(spec=spec, path=str(Path(path).resolve()),
                         algorithm=algorithm_label(manifest), latent=latent,
                         sha256=str(manifest["sha256"]), only=only,
                         search_defaults=json.dumps(table, sort_keys=True))


def _tasks(node: yaml.Node, suite_dir: Path, problems: Problems,
           strategies: set[str] | None, only: Collection[str] | None = None
           ) -> dict[str, tuple[CheckpointRef, ...]]:
    from ceiling.tasks import names

    valid = names()
    tasks: dict[str, tuple[CheckpointRef, ...]] = {}
    if not isinstance(node, yaml.MappingNode) or not node.value:
        problems.add(node, "tasks must be a non-empty mapping TASK: {checkpoints: [...]}")
        return tasks
    for key_node, value_node in node.value:
        task = _value(key_node)
        if task in tasks:
            problems.add(key_node, f"task {task} is listed twice")
            continue
        if task not in valid:
            problems.add(key_node, f"unknown task {task!r}; see `ceiling tasks` for the "
                                   f"{len(valid)} valid names")
            continue
        if only is not None and task not in only:
            continue  # left out of this run (`ceiling bench --tasks`): not checked either
        checkpoints_node: yaml.Node | None = None
        if isinstance(value_node, yaml.MappingNode):
            for k, v in value_node.value:
                if _value(k) == "checkpoints":
                    checkpoints_node = v
                else:
                    problems.add(k, f"unknown key {_value(k)!r} under task {task} "
                                    "(valid: checkpoints)")
        if checkpoints_node is None:
            problems.add(key_node, f"task {task} needs `checkpoints: [shipped:ALGO or path]`")
            continue
        items = (checkpoints_node.value if isinstance(checkpoints_node, yaml.SequenceNode)
                 else [checkpoints_node])
        refs = [_resolve_checkpoint(task, item, suite_dir, problems, strategies)
                for item in items]
        tasks[task] = tuple(r for r in refs if r is not None)
    return tasks


def _strategies(node: yaml.Node, problems: Problems) -> list[StrategyEntry]:
    from ceiling.search import STRATEGIES, strategy_options
    from ceiling.search.options import build_options

    entries: list[StrategyEntry] = []
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        problems.add(node, "strategies must be a non-empty list")
        return entries
    for item in node.value:
        name_node, options_node = item, None
        if isinstance(item, yaml.MappingNode):
            fields = {_value(k): (k, v) for k, v in item.value}
            for field, (k, _) in fields.items():
                if field not in ("name", "options"):
                    problems.add(k, f"unknown key {field!r} in a strategy (valid: name, options)")
            if "name" not in fields:
                problems.add(item, "a strategy mapping needs `name:`")
                continue
            name_node = fields["name"][1]
            options_node = fields.get("options", (None, None))[1]
        name = _value(name_node)
        if name not in STRATEGIES:
            problems.add(name_node, f"unknown strategy {name!r}; valid strategies: "
                                    f"{', '.join(STRATEGIES)}")
            continue
        options: dict[str, Any] = {}
        if options_node is not None:
            if not isinstance(options_node, yaml.MappingNode):
                problems.add(options_node, f"options of {name} must be a mapping")
                continue
            valid = [spec.name for spec in strategy_options(name)]
            bad_value = False
            for k, v in options_node.value:
                option = _value(k)
                if option not in valid:
                    problems.add(k, f"strategy {name!r} has no option {option!r}; valid "
                                    f"options: {', '.join(valid) or 'none'}")
                    continue
                try:  # its type and rule; what depends on the width is checked in preflight
                    build_options(name, STRATEGIES[name].Options, {option: _value(v)})
                except CeilingError as err:
                    problems.add(v, str(err))
                    bad_value = True
                options[option] = _value(v)
            if bad_value:
                continue
        entry = StrategyEntry(name, json.dumps(options, sort_keys=True),
                              name_node.start_mark.line + 1)
        if any((e.name, e.options) == (entry.name, entry.options) for e in entries):
            problems.add(name_node, f"strategy {name} with options {entry.options} is listed "
                                    "twice")
            continue
        entries.append(entry)
    return entries


def _budgets(node: yaml.Node, problems: Problems
             ) -> tuple[list[tuple[float | None, int | None]], list[int]]:
    """The budgets as (seconds, rollouts) and their lines. Each is a valid `Budget`; whether a
    rollout budget fits a strategy's batches is checked once strategies are built."""
    from ceiling.search import Budget

    budgets: list[tuple[float | None, int | None]] = []
    lines: list[int] = []
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        problems.add(node, "budgets must be a non-empty list of {seconds: S} / {rollouts: N}")
        return budgets, lines
    for item in node.value:
        if not isinstance(item, yaml.MappingNode):
            problems.add(item, "a budget is a mapping with seconds and/or rollouts")
            continue
        fields = {_value(k): (k, v) for k, v in item.value}
        for field, (k, _) in fields.items():
            if field not in ("seconds", "rollouts"):
                problems.add(k, f"unknown budget key {field!r} (valid: seconds, rollouts)")
        seconds = _value(fields["seconds"][1]) if "seconds" in fields else None
        rollouts = _value(fields["rollouts"][1]) if "rollouts" in fields else None
        if isinstance(seconds, int) and not isinstance(seconds, bool):
            seconds = float(seconds)
        try:
            Budget(seconds=seconds, rollouts=rollouts)
        except CeilingError as err:
            problems.add(item, f"bad budget: {err}")
            continue
        if (seconds, rollouts) in budgets:
            problems.add(item, "this budget is listed twice")
        else:
            budgets.append((seconds, rollouts))
            lines.append(item.start_mark.line + 1)
    return budgets, lines


def _check_widths(strategies: list[StrategyEntry], widths: list[int],
                  problems: Problems) -> None:
    """Every width must be at least each searching strategy's `min_width`."""
    from ceiling.search import strategy_class

    for entry in strategies:
        cls = strategy_class(entry.name)
        narrow = [w for w in widths if w < cls.min_width]
        if narrow and not cls.budget_free:
            problems.add_line(entry.line, f"{entry.name} needs a width (parallel attempts) of "
                                          f"at least {cls.min_width}; widths lists "
                                          f"{', '.join(map(str, narrow))}")


def parse_suite(text: str, path: str = "<suite>", tasks: Collection[str] | None = None
                ) -> Suite:
    """Validate suite YAML `text`; raise one CeilingError listing every problem with its line."""
    suite, problems = inspect_suite(text, path, tasks)
    problems.raise_if_any()
    return suite


def inspect_suite(text: str, path: str = "<suite>", only_tasks: Collection[str] | None = None
                  ) -> tuple[Suite, Problems]:
    """The suite in `text` made of its valid parts, and every problem found in it; with
    `only_tasks`, only those of its tasks (a sweep run in parts: their cells are the ones the
    whole suite has, so the parts fill one store as the whole would).

    Only text that is not YAML, or not a mapping, raises at once; otherwise whatever is wrong
    is collected (with its line) and left out of the suite returned, so that the checks that
    need built strategies (`ceiling.bench.run.validate_suite`) can run on the rest and every
    problem is reported in one round."""
    problems = Problems(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise CeilingError(f"suite {path}{where} is not valid YAML: {err}") from None
    if not isinstance(root, yaml.MappingNode):
        raise CeilingError(f"suite {path} must be a YAML mapping with keys "
                           f"{', '.join(REQUIRED_KEYS)}")
    fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for k, v in root.value:
        key = _value(k)
        if key not in TOP_LEVEL_KEYS:
            problems.add(k, f"unknown key {key!r}; valid keys: {', '.join(TOP_LEVEL_KEYS)}")
        else:
            fields[key] = (k, v)
    for key in REQUIRED_KEYS:
        if key not in fields:
            problems.add(root, f"missing required key {key!r}")
    suite_dir = Path(path).resolve().parent

    def get(key: str) -> yaml.Node | None:
        return fields[key][1] if key in fields else None

    name_node, instances_node, seeds_node = get("name"), get("instances"), get("seeds")
    widths_node, budgets_node = get("widths"), get("budgets")
    tasks_node, strategies_node = get("tasks"), get("strategies")
    name = str(_value(name_node)) if name_node is not None else ""
    instances = _int(instances_node, problems, "instances", 1) if instances_node else None
    seeds = _int_list(seeds_node, problems, "seeds", 0) if seeds_node is not None else [0]
    widths = _int_list(widths_node, problems, "widths", 1) if widths_node is not None else []
    budgets, budget_lines = _budgets(budgets_node, problems) if budgets_node is not None \
        else ([], [])
    strategies = _strategies(strategies_node, problems) if strategies_node is not None else []
    _check_widths(strategies, widths, problems)
    listed = {s.name for s in strategies} if strategies_node is not None else None
    if only_tasks is not None and isinstance(tasks_node, yaml.MappingNode):
        listed_tasks = [str(_value(k)) for k, _ in tasks_node.value]
        unknown = [task for task in only_tasks if task not in listed_tasks]
        if unknown:
            raise CeilingError(f"--tasks: {', '.join(unknown)} not in suite {path}; its tasks "
                               f"are {', '.join(listed_tasks)}")
    tasks = (_tasks(tasks_node, suite_dir, problems, listed, only_tasks)
             if tasks_node is not None else {})

    # Each strategy needs a checkpoint of its kind on every task.
    if tasks_node is not None and isinstance(tasks_node, yaml.MappingNode):
        from ceiling.search import strategy_class

        task_lines = {_value(k): k for k, _ in tasks_node.value}
        for task, refs in tasks.items():
            for kind, wanted in (("latent-conditioned (COMPASS)", True), ("base", False)):
                users = [s.name for s in strategies
                         if strategy_class(s.name).needs_latent == wanted]
                if users and refs and not any(r.latent == wanted for r in refs):
                    problems.add(task_lines[task], f"task {task} has no {kind} checkpoint for "
                                                   f"{', '.join(sorted(set(users)))}")
    description = get("description")
    suite = Suite(name=name, path=path,
                  description=str(_value(description)) if description is not None else "",
                  instances=instances or 1, seeds=tuple(seeds), widths=tuple(widths),
                  budgets=tuple(budgets), tasks=tasks, strategies=tuple(strategies),
                  budget_lines=tuple(budget_lines))
    return suite, problems


def read_suite_text(path: str | Path) -> str:
    suite_path = Path(path)
    if not suite_path.is_file():
        raise CeilingError(f"suite file {suite_path} does not exist"
                           + (" (it is a directory)" if suite_path.is_dir() else ""))
    return suite_path.read_text()


def load_suite(path: str | Path) -> Suite:
    return parse_suite(read_suite_text(path), str(path))
