#!/usr/bin/env bash
# Trains several runs side by side on this machine's accelerator (or CPU) for a fixed time,
# then stops each one cleanly (SIGTERM: it finishes its chunk and writes its resume state), so
# any machine continues them later with scripts/train_shipped.sh. Usage:
#   SECONDS_LIMIT=460 RUNS=training-runs scripts/train_for.sh TASK:ALGO [TASK:ALGO ...]
# Each run lives in $RUNS/<task>-<algo> (resumed if it holds resume/, else started with the
# settings of ceiling/configs/train.yaml); its log goes to $RUNS/<task>-<algo>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-training-runs}
limit=${SECONDS_LIMIT:-3600}
ceiling=${CEILING:-ceiling}
# Several processes share one GPU: each allocates what it needs instead of 75 % of the memory.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
pids=()
for pair in "$@"; do
  algo=${pair##*:}
  task=${pair%:*}
  out="$runs/${task/:/-}-$algo"
  if [ -d "$out/resume" ]; then
    args=(train --resume --out "$out" --quiet)
  else
    args=(train --task "$task" --algo "$algo" --out "$out" --quiet)
  fi
  timeout -s TERM "$limit" $ceiling "${args[@]}" > "$out.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
