#!/usr/bin/env bash
# @huggingface/gguf (Hugging Face's GGUF parser for JavaScript) into third_party/npm/gguf-js/: the GGUF export
# test reads wick's files with it, a reader nobody here wrote.
exec bash "$(dirname "${BASH_SOURCE[0]}")/fetch_npm_package.sh" gguf-js @huggingface/gguf 0.4.6
