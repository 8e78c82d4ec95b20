#!/usr/bin/env bash
# The official OpenAI Node SDK (npm `openai`) into third_party/npm/openai-js/: the `wick serve` test
# (tests/serve/openai_client.cjs) talks to the server with it, a client nobody here wrote.
exec bash "$(dirname "${BASH_SOURCE[0]}")/fetch_npm_package.sh" openai-js openai 4.104.0
