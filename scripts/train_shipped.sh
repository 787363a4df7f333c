#!/usr/bin/env bash
# Retrains the shipped checkpoints with `ceiling train` and the per-task settings in
# ceiling/configs/train.yaml, then copies each run's final checkpoint and its config, metrics,
# convergence report and learning curve into ceiling/checkpoints/. Usage:
#   scripts/train_shipped.sh [TASK:ALGO ...]     (default: all fifteen)
# Resumable: a run interrupted midway (its run directory holds resume/) is continued with
# `ceiling train --resume`, a finished one (convergence.json) is only copied (and not at all
# when the shipped checkpoint already holds its weights, so the search defaults recorded there
# with `ceiling defaults` stay), and a run directory without either is started afresh.
# ALGO compass trains from the shipped checkpoint of $COMPASS_BASE (default mappo, the best
# zero-shot policy on each shipped task), so it must come after that one; compass-BASE (e.g.
# compass-sable) trains COMPASS from the shipped BASE checkpoint into ceiling/checkpoints/.../
# compass-BASE (the label `ceiling bench` suites call shipped:compass-BASE).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-runs/shipped}
pairs=("$@")
if [ ${#pairs[@]} -eq 0 ]; then
  pairs=(rware:tiny-2ag-hard:ippo connector:con-5x5x3a:ippo connector:con-5x5x3a:mappo
         smax:3m:ippo smax:3m:mappo rware:tiny-2ag-hard:mappo
         rware:tiny-2ag-hard:compass connector:con-5x5x3a:compass smax:3m:compass
         rware:tiny-4ag-hard:ippo rware:tiny-4ag-hard:mappo
         connector:con-10x10x10a:ippo connector:con-10x10x10a:mappo
         smax:smacv2_5_units:ippo smax:smacv2_5_units:mappo)
fi
for pair in "${pairs[@]}"; do
  algo=${pair##*:}
  task=${pair%:*}
  name=${task/:/-}
  out="$runs/$name-$algo"
  from=()
  trainer=$algo
  case "$algo" in
    compass) from=(--from "ceiling/checkpoints/$name/${COMPASS_BASE:-mappo}") ;;
    compass-*) from=(--from "ceiling/checkpoints/$name/${algo#compass-}"); trainer=compass ;;
  esac
  if [ -d "$out/resume" ]; then
    ceiling train --resume --out "$out" --quiet
  elif [ ! -f "$out/convergence.json" ]; then
    ceiling train --task "$task" --algo "$trainer" "${from[@]}" --out "$out" --force --quiet
  fi
  [ "$trainer" = compass ] || ceiling converged "$out"  # a base run that has not converged stops here
  dest="ceiling/checkpoints/$name/$algo"
  if [ -f "$dest/params.msgpack" ] && cmp -s "$dest/params.msgpack" "$out/last/params.msgpack"; then
    # Already shipped from this run: leave it, with the search defaults `ceiling defaults`
    # recorded in its manifest.
    echo "$dest: already this run's final checkpoint, kept"
    continue
  fi
  if [ -f "$dest/manifest.json" ] && grep -q '"search_defaults"' "$dest/manifest.json"; then
    echo "$dest: replaced by new weights; the search defaults recorded for the old ones are" \
         "dropped (measure again and record them with ceiling defaults)" >&2
  fi
  rm -rf "$dest" && mkdir -p "$dest"
  cp "$out"/last/* "$out"/config.yaml "$out"/metrics.jsonl "$out"/convergence.json \
     "$out"/learning_curve.png "$dest"/
done
