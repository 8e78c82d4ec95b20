#!/usr/bin/env bash
# Bounded loopback load test of `wick serve`: starts the server on a free port, runs the load client
# (N clients for T seconds, streaming chat), prints its JSON line and stops the server with SIGTERM (drain).
#   scripts/serve-load-test.sh [--model DIR] [--device cpu|cuda] [--clients N] [--seconds T] [--max-tokens K]
#                              [--adapters A] [--adapter-dir DIR] [--max-batch B] [--client auto|node|python]
#                              [--sampling greedy|qwen] [--prompt-words W] [--max-step-tokens N] [--ttft-log FILE]
# --prompt-words W sends a user message of W words ("hello" repeated: one Qwen token each, so the prompt is W
# plus the chat template's ~20 tokens; the JSON line's prompt_tokens says what the server counted) instead of
# the clients' one-sentence default: issue 12's time to first token of a 512-token prompt under load.
# --max-step-tokens N is passed to `wick serve` (its chunked-prefill budget). --ttft-log FILE
# writes each request's start time (s into the run) and time to first token, to see when the slow ones started.
# Without --model it makes a tiny random model (wick init-model --preset tiny). --adapters A > 0 serves A
# random adapters (bench/random_adapter.py; kept in --adapter-dir and reused when given, else temporary) and
# spreads the clients over them. The client: bench/serve_load.cjs with node, bench/serve_load.py (standard
# library only) with python3; auto (default) takes node when present (the GPU machine has none). Both print
# the same JSON line. Uses $WICK (default build/wick).
set -euo pipefail
cd "$(dirname "$0")/.."
WICK=${WICK:-build/wick}
model="" device=cpu clients=8 seconds=10 max_tokens=32 adapters=0 max_batch="" client=auto adapter_dir="" sampling=greedy
prompt_words=0 step_tokens="" ttft_log=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    --adapters) adapters=$2; shift 2 ;;
    --max-batch) max_batch=$2; shift 2 ;;
    --client) client=$2; shift 2 ;;
    --adapter-dir) adapter_dir=$2; shift 2 ;;
    --sampling) sampling=$2; shift 2 ;;
    --prompt-words) prompt_words=$2; shift 2 ;;
    --max-step-tokens) step_tokens=$2; shift 2 ;;
    --ttft-log) ttft_log=$2; shift 2 ;;
    *) echo "serve-load-test: unknown flag $1" >&2; exit 2 ;;
  esac
done
[ -n "$max_batch" ] || max_batch=$clients
if [ "$client" = auto ]; then command -v node > /dev/null && client=node || client=python; fi
case "$client" in
  node) client_cmd=(node bench/serve_load.cjs) ;;
  python) client_cmd=(python3 bench/serve_load.py) ;;
  *) echo "serve-load-test: --client must be auto, node or python" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
if [ -z "$model" ]; then
  "$WICK" init-model --preset tiny --out "$tmp/model" --seed 1 2>/dev/null
  model="$tmp/model"
fi
adapter_flags=() models=""
[ -n "$adapter_dir" ] || adapter_dir=$tmp
for i in $(seq 1 "$adapters"); do
  ad="$adapter_dir/ad$i"
  # Reused when the folder has one already (--adapter-dir): a 7B adapter takes seconds to write.
  [ -f "$ad/adapter_model.safetensors" ] || python3 bench/random_adapter.py "$ad" "$model" "$i"
  adapter_flags+=(--adapter "ad$i=$ad")
  models="${models:+$models,}ad$i"
done
"$WICK" serve --model "$model" --device "$device" --port 0 --max-batch "$max_batch" --max-queue $((clients * 2)) \
  --model-name base ${step_tokens:+--max-step-tokens "$step_tokens"} "${adapter_flags[@]}" 2> "$tmp/server.log" &
server_pid=$!
for _ in $(seq 1 3000); do  # up to 5 minutes: a 7B model loads for a while before it listens
  port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "serve-load-test: the server did not start" >&2; cat "$tmp/server.log" >&2; exit 1; }
prompt_flags=()
if [ "$prompt_words" -gt 0 ]; then
  prompt_flags=(--prompt "$(python3 -c "import sys; print(' '.join(['hello'] * int(sys.argv[1])))" "$prompt_words")")
fi
rc=0
"${client_cmd[@]}" --url "http://127.0.0.1:$port" --clients "$clients" --seconds "$seconds" \
  --max-tokens "$max_tokens" --pid "$server_pid" --sampling "$sampling" ${models:+--models "$models"} "${prompt_flags[@]}" \
  ${ttft_log:+--ttft-log "$ttft_log"} || rc=$?
kill -TERM "$server_pid"
wait "$server_pid" || { echo "serve-load-test: the server exited with $? after SIGTERM" >&2; rc=1; }
server_pid=""
exit $rc
