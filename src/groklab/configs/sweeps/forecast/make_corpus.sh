#!/usr/bin/env bash
# The forecast corpus (docs/forecast.md): the five sweeps of this folder, one trial at a time,
# then the default model fitted on them and its leave-one-sweep-out evaluation.
#   src/groklab/configs/sweeps/forecast/make_corpus.sh [OUT=runs/forecast] [GROKLAB=groklab]
# Re-running skips finished trials (groklab sweep resumes), so an interrupted corpus continues.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-runs/forecast}"
groklab="${GROKLAB:-groklab}"
sweeps=(decoder_phi decoder_regime exposure looped recursive)
mkdir -p "$out"
for s in "${sweeps[@]}"; do
  start=$(date +%s)
  $groklab sweep "$here/$s.yaml" --out "$out/$s" --jobs 1
  echo "corpus: $s took $(( $(date +%s) - start )) s wall" | tee -a "$out/timing.txt"
done
dirs=(); for s in "${sweeps[@]}"; do dirs+=("$out/$s"); done
$groklab forecast fit "${dirs[@]}" --out "$out/model.json"
$groklab forecast --evaluate "${dirs[@]}" --out "$out/evaluation"
