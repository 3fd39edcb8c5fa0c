#!/usr/bin/env bash
# Runs each libFuzzer target of a CORCH_FUZZ build for a bounded time (`make fuzz`).
#
#   tests/fuzz/run.sh BUILD-DIR SECONDS-PER-TARGET WORK-DIR [TARGET...]
#
# Targets: sffg nffg template ovsdb openflow (default: all that are built). Each starts from its
# seed corpus (tests/fuzz/corpus/<target>, only read), from the inputs earlier campaigns found and
# the tree keeps (tests/fuzz/found/<target>, minimized with -merge=1, only read) and from what
# earlier runs found
# (WORK-DIR/corpus/<target>, where libFuzzer adds the new interesting inputs: the checked-in corpus
# never changes behind anyone's back). Crashes, leaks, timeouts and out-of-memory inputs land in
# WORK-DIR/artifacts/<target>-crash-<sha1> (and -leak-, -timeout-, -oom-); a target that finds
# one stops there. Prints, per target, the executions run, the new inputs and the crashes, and
# exits 1 when any target found one.
set -uo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 BUILD-DIR SECONDS-PER-TARGET WORK-DIR [TARGET...]" >&2
  exit 2
fi
build=$1
seconds=$2
work=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(sffg nffg template ovsdb openflow)

# The largest input worth trying: JSON documents of a few KiB (the seeds are under 4 KiB; the REST
# API takes 1 MiB, but the parsers are linear and what grows past this only repeats itself), and
# OpenFlow streams of a few messages.
max_len() {
  case $1 in
    openflow) echo 8192 ;;
    *) echo 16384 ;;
  esac
}

mkdir -p "$work/artifacts"
failed=0
summary=()
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/fuzz_$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is not built (cmake -DCORCH_FUZZ=ON, target fuzz_targets)" >&2
    failed=1
    summary+=("$t: not built")
    continue
  fi
  mkdir -p "$work/corpus/$t"
  dict=()
  [ -f "$here/dict/$t.dict" ] && dict=(-dict="$here/dict/$t.dict")
  log="$work/$t.log"
  before=$(ls "$work/artifacts" | grep -c "^$t-" || true)
  echo "fuzz: $t for ${seconds}s (log $log)"
  # -rss_limit_mb: well under what the machine has, so that a blow-up is an oom- artifact and not
  # the OOM killer. -timeout: one input taking 10 s is a hang.
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-" "${dict[@]}" \
    "$work/corpus/$t" "$here/corpus/$t" "$here/found/$t" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
  after=$(ls "$work/artifacts" | grep -c "^$t-" || true)
  crashes=$((after - before))
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1  # died without an artifact (e.g. a sanitizer abort in libFuzzer's own start-up)
  fi
  line="$t: ${runs:-0} executions in ${seconds}s, ${added:-0} new inputs, $crashes crashes"
  summary+=("$line")
  echo "fuzz: $line"
  if [ "$crashes" -ne 0 ]; then
    failed=1
    grep -E "ERROR|runtime error|fuzz property broken|SUMMARY|Test unit written" "$log" | head -20
    ls "$work/artifacts" | grep "^$t-" | sed "s|^|fuzz:   $work/artifacts/|"
  fi
done

echo "fuzz: summary (seconds per target: $seconds)"
for s in "${summary[@]}"; do echo "  $s"; done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED. Reproduce with: $build/tests/fuzz/fuzz_<target> ARTIFACT; a fixed crash's" \
       "input goes into tests/fuzz/corpus/<target>/ (it then runs in unit.fuzz_<target>_corpus)"
  exit 1
fi
exit 0
