#!/usr/bin/env bash
# Every method's quick and paper presets resolve on every benchmark target within the keys' valid ranges
# (nsamp train --print-config validates without training).   presets_resolve.sh NSAMP
set -u
NSAMP=$1
n=0
for m in pis dis dds euler-dds dikl idem iwsm; do
  for t in gmm9 gmm40 gmm120 mog40-50d manywell32 multiwell5 funnel10 dw4 lj13 lj55; do
    for p in quick paper; do
      if ! out=$($NSAMP train --method $m --target $t --preset $p --print-config 2>&1); then
        echo "FAIL: $m / $t / $p: $out"; exit 1
      fi
      n=$((n + 1))
    done
  done
done
echo "ok: $n presets resolve"
