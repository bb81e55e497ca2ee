#!/usr/bin/env bash
# End-to-end runs of `nsamp train` on tiny budgets, killed and resumed, compared with uninterrupted runs.
#   train_resume.sh NSAMP CASE    (run from a scratch directory; CTest gives each case its own)
# CASE: a method (pis, dis, dds, euler-dds, dikl, idem, iwsm): its quick preset on a tiny budget, once
#       uninterrupted and once killed (SIGKILL) half-way through writing its third checkpoint, then resumed;
#       sigint: Ctrl-C during an IW-SM run (any moment: mid-epoch too), exit 130, resumed;
#       sigkill: SIGKILL at a random moment after the first checkpoint, resumed;
#       errors: --resume misuse and damaged checkpoints give clear errors and non-zero exits.
# "Compared" means: samples.npy byte for byte, and log.jsonl line for line without its timing fields.
set -u
NSAMP=$1
CASE=$2
fail() { echo "FAIL ($CASE): $*"; exit 1; }
strip_times() { sed -E 's/"seconds_per_[a-z]+":[^,}]*,?//g' "$1"; }
same_run() {  # uninterrupted, resumed
  cmp -s "$1/samples.npy" "$2/samples.npy" || fail "samples of $2 differ from $1"
  diff <(strip_times "$1/log.jsonl") <(strip_times "$2/log.jsonl") > /dev/null || fail "logs of $1 and $2 differ"
  [ -f "$2/metrics.json" ] || fail "$2 has no metrics.json"
  echo "ok: $2 resumed equals $1 (samples byte for byte, $(wc -l < "$1/log.jsonl") log lines)"
}

tiny_path="--set iterations=6 --set batch=16 --set path_steps=5 --set eval_every=3 --set log_every=1
           --set eval_paths=64 --set final_samples=64 --set channels=16 --set ema_decay=0.9 --set ema_start=2"
tiny_dikl="--set iterations=6 --set batch=16 --set score_iter=2 --set gen_width=16 --set score_width=16
           --set gen_layers=2 --set score_layers=2 --set ais_levels=2 --set eval_every=3 --set log_every=1
           --set eval_samples=64 --set final_samples=64 --set adaptive=true"
tiny_idem="--set epochs=6 --set inner_steps=3 --set batch=16 --set K=8 --set hidden=16 --set emb=8
           --set buffer_min=16 --set init_samples=32 --set samples_per_epoch=16 --set sde_steps=10
           --set eval_every=3 --set eval_samples=64 --set final_samples=64 --set plateau=true"
common="--device cpu --progress off --set checkpoint_every=1"
rm -rf full killed run busy

case $CASE in
  pis | dis | dds | euler-dds)
    args="--method $CASE --target gmm9 --preset quick $tiny_path $common" ;;
  dikl)
    args="--method dikl --target gmm40 --preset quick $tiny_dikl $common" ;;
  idem | iwsm)
    args="--method $CASE --target gmm40 --preset quick $tiny_idem $common" ;;
esac

case $CASE in
  pis | dis | dds | euler-dds | dikl | idem | iwsm)
    $NSAMP train $args --out full > full.txt 2>&1 || { cat full.txt; fail "uninterrupted run failed"; }
    NSAMP_TEST_KILL_DURING_WRITE=checkpoint.safetensors:3 $NSAMP train $args --out killed > killed.txt 2>&1
    rc=$?
    [ $rc -eq 137 ] || { cat killed.txt; fail "the fault-injected run exited $rc, not 137 (SIGKILL)"; }
    [ -f killed/checkpoint.safetensors.tmp ] || fail "the kill did not happen during a checkpoint write"
    [ ! -f killed/samples.npy ] || fail "the killed run wrote samples"
    $NSAMP train --resume killed --progress off > resumed.txt 2>&1 || { cat resumed.txt; fail "resume failed"; }
    grep -q "resuming killed after 2 " resumed.txt || { cat resumed.txt; fail "did not resume from the 2nd checkpoint"; }
    same_run full killed
    $NSAMP sample --run killed -n 8 --out x.npy --device cpu > /dev/null || fail "sample from the resumed run"
    ;;
  sigint | sigkill)
    args="--method iwsm --target gmm40 --set epochs=40 --set inner_steps=20 --set batch=128 --set K=256
          --set hidden=64 --set emb=8 --set buffer_min=16 --set init_samples=32 --set samples_per_epoch=16
          --set sde_steps=50 --set eval_every=10 --set eval_samples=64 --set final_samples=64 --set plateau=true
          --device cpu --progress plain"
    [ $CASE = sigkill ] && args="$args --set checkpoint_every=1"
    $NSAMP train $args --out full > full.txt 2>&1 || { cat full.txt; fail "uninterrupted run failed"; }
    $NSAMP train $args --out killed > killed.txt 2>&1 &
    pid=$!
    for _ in $(seq 200); do [ -f killed/checkpoint.safetensors ] && break; sleep 0.05; done
    # A moment after the first checkpoint (or into the run, for sigint: its first checkpoint is the stop's).
    sleep "0.$((RANDOM % 9 + 1))"
    if [ $CASE = sigint ]; then kill -INT $pid; else kill -KILL $pid; fi
    wait $pid
    rc=$?
    if [ $rc -eq 0 ]; then
      echo "note: the run finished before the signal; nothing to compare"; exit 0
    fi
    if [ $CASE = sigint ]; then
      [ $rc -eq 130 ] || { cat killed.txt; fail "Ctrl-C exited $rc, not 130"; }
      grep -q "interrupted (signal 2); checkpoint in killed/checkpoint.safetensors; continue with: nsamp train --resume killed" killed.txt ||
        { cat killed.txt; fail "no interruption message"; }
    else
      [ $rc -eq 137 ] || fail "SIGKILL exited $rc"
    fi
    $NSAMP train --resume killed --progress off > resumed.txt 2>&1 || { cat resumed.txt; fail "resume failed"; }
    grep -h "resuming" resumed.txt
    same_run full killed
    $NSAMP train --resume killed > again.txt 2>&1 || fail "resuming a complete run failed"
    grep -q "is complete (metrics.json); nothing to resume" again.txt || { cat again.txt; fail "complete run"; }
    ;;
  errors)
    expect() {  # expected-exit-code regex command...
      local want=$1 re=$2; shift 2
      "$@" > out.txt 2>&1; local rc=$?
      [ $rc -eq "$want" ] || { cat out.txt; fail "exit $rc (want $want): $*"; }
      grep -Eq -e "$re" out.txt || { cat out.txt; fail "no message /$re/: $*"; }
    }
    expect 2 "has no config.json|cannot read nowhere/config.json" $NSAMP train --resume nowhere
    $NSAMP train --method pis --target gmm9 $tiny_path $common --out run > run.txt 2>&1 || fail "tiny run"
    expect 2 "--method cannot be given with it" $NSAMP train --resume run --method dis
    expect 2 "--method and --target are required \\(or --resume DIR\\)" $NSAMP train --target gmm9
    expect 2 "unknown progress mode 'fancy' \\(valid: auto, bar, plain, off\\)" $NSAMP train --resume run --progress fancy
    expect 2 "already holds a run \\(config.json\\); choose another --out or continue it with --resume run" \
      $NSAMP train --method pis --target gmm9 $tiny_path $common --out run
    rm -f run/metrics.json run/samples.npy
    expect 0 "resuming run after 6 steps" $NSAMP train --resume run --progress off
    [ -f run/metrics.json ] || fail "a complete run's resume did not redo its samples and metrics"
    head -c 100 run/checkpoint.safetensors > cut.safetensors && mv cut.safetensors run/checkpoint.safetensors
    expect 2 "checkpoint.safetensors: (header length .* exceeds the file|the tensors cover)" $NSAMP train --resume run
    # Killed before its first checkpoint: --resume runs it from the start, the same run as an uninterrupted one.
    cp run/samples.npy first_samples.npy
    rm run/checkpoint.safetensors run/samples.npy run/metrics.json
    expect 0 "has no checkpoint yet; starting it from the beginning" $NSAMP train --resume run --progress off
    cmp -s first_samples.npy run/samples.npy || fail "a run restarted from no checkpoint differs"
    # One process at a time in a run directory.
    $NSAMP train --method iwsm --target gmm40 --set epochs=200 --set inner_steps=20 --set batch=64 --set K=64 \
      --device cpu --progress off --out busy > busy.txt 2>&1 &
    pid=$!
    for _ in $(seq 100); do [ -f busy/config.json ] && break; sleep 0.05; done
    expect 2 "busy is in use by another nsamp train" $NSAMP train --resume busy
    kill -KILL $pid; wait $pid 2> /dev/null
    echo "ok: errors"
    ;;
  *) fail "unknown case" ;;
esac
