#!/usr/bin/env bash
# Bounded loopback load test of `wick serve`: starts the server on a free port, runs bench/serve_load.cjs
# (N clients for T seconds, streaming chat), prints its JSON line and stops the server with SIGTERM (drain).
#   scripts/serve-load-test.sh [--model DIR] [--device cpu|cuda] [--clients N] [--seconds T] [--max-tokens K]
#                              [--adapters A] [--max-batch B]
# Without --model it makes a tiny random model (wick init-model --preset tiny). --adapters A > 0 serves A
# random adapters (written by this script) and spreads the clients over them. Uses $WICK (default build/wick).
set -euo pipefail
cd "$(dirname "$0")/.."
WICK=${WICK:-build/wick}
model="" device=cpu clients=8 seconds=10 max_tokens=32 adapters=0 max_batch=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    --adapters) adapters=$2; shift 2 ;;
    --max-batch) max_batch=$2; shift 2 ;;
    *) echo "serve-load-test: unknown flag $1" >&2; exit 2 ;;
  esac
done
[ -n "$max_batch" ] || max_batch=$clients
tmp=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
if [ -z "$model" ]; then
  "$WICK" init-model --preset tiny --out "$tmp/model" --seed 1 2>/dev/null
  model="$tmp/model"
fi
adapter_flags=() models=""
for i in $(seq 1 "$adapters"); do
  node -e '
    const fs = require("fs"), path = require("path");
    const [dir, modelDir, seed] = process.argv.slice(1);
    const cfg = JSON.parse(fs.readFileSync(path.join(modelDir, "config.json"), "utf8"));
    const C = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, D = cfg.head_dim || C / H, r = 16;
    let s = Number(seed); const rand = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s / 4294967296 - 0.5) * 0.02; };
    const header = {}, bufs = []; let off = 0;
    for (let l = 0; l < cfg.num_hidden_layers; l++)
      for (const [p, out] of [["q_proj", H * D], ["k_proj", Hkv * D], ["v_proj", Hkv * D], ["o_proj", C]])
        for (const [ab, shape] of [["lora_A", [r, p === "o_proj" ? H * D : C]], ["lora_B", [out, r]]]) {
          const n = shape[0] * shape[1], f = new Float32Array(n); for (let i = 0; i < n; i++) f[i] = rand();
          header[`base_model.model.model.layers.${l}.self_attn.${p}.${ab}.weight`] = { dtype: "F32", shape, data_offsets: [off, off + 4 * n] };
          off += 4 * n; bufs.push(Buffer.from(f.buffer));
        }
    let h = Buffer.from(JSON.stringify(header)); h = Buffer.concat([h, Buffer.alloc((8 - h.length % 8) % 8, 0x20)]);
    const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(h.length));
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "adapter_model.safetensors"), Buffer.concat([len, h, ...bufs]));
    fs.writeFileSync(path.join(dir, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", task_type: "CAUSAL_LM", r, lora_alpha: 32,
      target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"] }));' "$tmp/ad$i" "$model" "$i"
  adapter_flags+=(--adapter "ad$i=$tmp/ad$i")
  models="${models:+$models,}ad$i"
done
"$WICK" serve --model "$model" --device "$device" --port 0 --max-batch "$max_batch" --max-queue $((clients * 2)) \
  --model-name base "${adapter_flags[@]}" 2> "$tmp/server.log" &
server_pid=$!
for _ in $(seq 1 600); do
  port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "serve-load-test: the server did not start" >&2; cat "$tmp/server.log" >&2; exit 1; }
rc=0
node bench/serve_load.cjs --url "http://127.0.0.1:$port" --clients "$clients" --seconds "$seconds" \
  --max-tokens "$max_tokens" --pid "$server_pid" ${models:+--models "$models"} || rc=$?
kill -TERM "$server_pid"
wait "$server_pid" || { echo "serve-load-test: the server exited with $? after SIGTERM" >&2; rc=1; }
server_pid=""
exit $rc
