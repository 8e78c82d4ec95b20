#!/usr/bin/env bash
# Gemma 3 text fixtures (tests/fixtures/gemma3-tiny-*) from transformers + PEFT, with bench/peer/make_fixtures.py
# (the shared generator, unchanged). Runs where python3 has torch, transformers 5.17 and PEFT 0.21 (the GPU
# machine; the models are made on its CPU in float32). Writes into OUTDIR (default tests/fixtures) and, first,
# OUTDIR/gemma3-config-info.txt: the config class's defaults and the config.json each variant got, so a
# reader can see which keys transformers itself wrote.
#
#   scripts/gen_gemma3_fixtures.sh [OUTDIR]
#
# Variants (sliding_window smaller than the 12-token reference sequences and the 15-token generation, so the
# sliding-window mask changes the results; both layer types present; query_pre_attn_scalar unlike head_dim
# in a, as in the 27B model, so a wrong attention scale fails):
#   a: hidden 64, 3 layers (sliding, sliding, full), 4 heads / 2 kv, head_dim 32, query_pre_attn_scalar 24,
#      sliding_window 4, vocab 512, tied; LoRA r 4, alpha 8 on all seven projections; seed 41.
#   b: hidden 96, intermediate 200, 2 layers (full, sliding), 6 heads / 1 kv, head_dim 16,
#      query_pre_attn_scalar 16, sliding_window 6, vocab 300, rms_norm_eps 1e-5; LoRA r 8, alpha 16, rsLoRA on
#      q/v/down; seed 42.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${1:-tests/fixtures}
mkdir -p "$OUTDIR"
python3 - > "$OUTDIR/gemma3-config-info.txt" 2>&1 <<'PY' || true
import json, transformers
from transformers import AutoConfig
print("transformers", transformers.__version__)
c = AutoConfig.for_model("gemma3_text")
print(json.dumps(c.to_dict(), indent=1, default=str))
PY
gen() {  # name seed config lora
  python3 bench/peer/make_fixtures.py family --model-type gemma3_text --seed "$2" --config "$3" --lora "$4" \
    --out "$OUTDIR/$1"
  rm -f "$OUTDIR/$1"/adapter_init/README.md "$OUTDIR/$1"/adapter_trained/README.md
  { echo "== $1 config.json"; cat "$OUTDIR/$1/config.json"; echo; } >> "$OUTDIR/gemma3-config-info.txt"
}
gen gemma3-tiny-a 41 '{"hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 3, "num_attention_heads": 4,
  "num_key_value_heads": 2, "head_dim": 32, "query_pre_attn_scalar": 24, "sliding_window": 4,
  "layer_types": ["sliding_attention", "sliding_attention", "full_attention"], "vocab_size": 512,
  "max_position_embeddings": 256, "tie_word_embeddings": true, "rms_norm_eps": 1e-6}' \
  '{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}'
gen gemma3-tiny-b 42 '{"hidden_size": 96, "intermediate_size": 200, "num_hidden_layers": 2, "num_attention_heads": 6,
  "num_key_value_heads": 1, "head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 6,
  "layer_types": ["full_attention", "sliding_attention"], "vocab_size": 300, "max_position_embeddings": 256,
  "tie_word_embeddings": true, "rms_norm_eps": 1e-5}' \
  '{"r": 8, "lora_alpha": 16, "use_rslora": true, "target_modules": ["q_proj", "v_proj", "down_proj"]}'
