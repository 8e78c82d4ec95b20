// `wick serve` request bodies -> CompletionRequest, sampling settings and chat messages (serve/openai_api.h).
// Bad input must end in ApiError (an HTTP 4xx with OpenAI's error body), never another exception or a crash.
#include "fuzz/fuzz_util.h"
#include "serve/openai_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (bool chat : {true, false}) {
    try {
      const wick::serve::CompletionRequest r = wick::serve::parse_completion_request(text, chat);
      (void)wick::serve::sampling_for(r, wick::SamplingParams{}, 1);
      if (chat) (void)wick::serve::chat_messages(r.messages);
    } catch (const wick::serve::ApiError&) {
    }
  }
  return 0;
}
