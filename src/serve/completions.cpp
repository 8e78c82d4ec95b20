// POST /v1/chat/completions and /v1/completions: parse (serve/openai_api.h), build the prompt (chat template
// or raw text / ids), queue a Request, then answer once it finishes or stream it as server-sent events.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "serve/openai_api.h"
#include "serve/server.h"

namespace wick::serve {

using json = nlohmann::json;

namespace {

std::string new_id(bool chat) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  char b[48];
  std::snprintf(b, sizeof b, "%s-%012llx%06llx", chat ? "chatcmpl" : "cmpl",
                static_cast<unsigned long long>(salt & 0xffffffffffffULL), static_cast<unsigned long long>(++counter));
  return b;
}

uint64_t fresh_seed() {
  static std::mt19937_64 gen{std::random_device{}()};
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  return gen();
}

// The request as the scheduler runs it: prompt ids, limits, sampling, adapter. ApiError on a bad request.
std::shared_ptr<Request> build_request(Server& s, const CompletionRequest& cr) {
  Session& sess = s.session();
  const ModelConfig& cfg = sess.model().config();
  auto r = std::make_shared<Request>();
  if (!cr.model.empty() && cr.model != s.options().model_name) {
    r->adapter = s.adapters().find(cr.model);
    if (!r->adapter)
      throw ApiError(404, "the model '" + cr.model + "' does not exist (GET /v1/models lists them)", "model", "",
                     "model_not_found");
  }
  try {
    if (cr.chat) {
      const ChatTemplate& t = sess.chat_template();
      r->prompt = sess.encode(t.render(chat_messages(cr.messages), true));
    } else if (!cr.prompt_ids.empty()) {
      r->prompt = cr.prompt_ids;
    } else {
      r->prompt = sess.encode(cr.prompt);
    }
  } catch (const Error& e) {
    throw ApiError(400, std::string("cannot build the prompt: ") + e.what(), cr.chat ? "messages" : "prompt");
  }
  const int64_t V = cfg.vocab_size, n = static_cast<int64_t>(r->prompt.size());
  if (n == 0) throw ApiError(400, "the prompt is empty", "prompt");
  for (int32_t id : r->prompt)
    if (id < 0 || id >= V)
      throw ApiError(400, "prompt token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(V) + ")",
                     "prompt");
  const int64_t ctx = cfg.max_position_embeddings;
  if (n >= ctx)
    throw ApiError(400, "the prompt has " + std::to_string(n) + " tokens; this model reads at most " + std::to_string(ctx) +
                            " (prompt and completion together)", cr.chat ? "messages" : "prompt", "", "context_length_exceeded");
  const int64_t limit = s.options().max_tokens;
  if (cr.max_tokens && *cr.max_tokens > limit)
    throw ApiError(400, "max_tokens is " + std::to_string(*cr.max_tokens) + "; this server allows at most " + std::to_string(limit),
                   "max_tokens");
  int64_t max_new = cr.max_tokens.value_or(limit);
  // Prompt + max tokens within `cap` tokens: a max_tokens asked for that does not fit is refused (`over` says
  // what it exceeds), the default is shortened to what the prompt leaves.
  const auto fit = [&](int64_t cap, const std::string& over) {
    if (n + max_new <= cap) return;
    if (cr.max_tokens)
      throw ApiError(400, "prompt (" + std::to_string(n) + " tokens) + max_tokens (" + std::to_string(max_new) + ") " + over,
                     "max_tokens", "", "context_length_exceeded");
    max_new = cap - n;
  };
  fit(ctx, "exceeds the model's context of " + std::to_string(ctx) + " tokens");
  // The KV cache: a request holds prompt + max tokens of it.
  const int64_t room = s.scheduler().kv_tokens_per_request();
  if (n + 1 > room)
    throw ApiError(400, "the prompt has " + std::to_string(n) + " tokens; with one completion token it needs more than the " +
                            std::to_string(room) + " KV cache tokens a request may hold on this server",
                   cr.chat ? "messages" : "prompt", "", "context_length_exceeded");
  fit(room, "need more than the " + std::to_string(room) + " KV cache tokens a request may hold on this server");
  r->opt.gen.max_new_tokens = max_new;
  r->opt.gen.sampling = sampling_for(cr, sess.default_sampling(), fresh_seed());
  r->opt.gen.eos_ids = sess.generation_config().eos_token_ids;
  r->opt.gen.ignore_eos = cr.ignore_eos;
  r->opt.gen.stop_strings = cr.stop;
  if (!cr.stop.empty() && !sess.tokenizer()) throw ApiError(400, "stop strings need a model with a tokenizer", "stop");
  r->opt.frequency_penalty = cr.frequency_penalty;
  r->opt.presence_penalty = cr.presence_penalty;
  return r;
}

std::string sse(const json& j) { return "data: " + dump_json(j) + "\n\n"; }

// Decrements the server's in-flight count when the last holder (handler or stream provider) lets go.
struct InFlight {
  explicit InFlight(std::atomic<int64_t>& n) : n_(n) { n_++; }
  ~InFlight() { n_--; }
  std::atomic<int64_t>& n_;
};

}  // namespace

void handle_completion(Server& s, const std::string& body, httplib::Response& res, bool chat) {
  auto guard = std::make_shared<InFlight>(s.handlers_in_flight());
  if (s.draining()) return send_error(s, res, 503, "the server is shutting down");
  CompletionRequest cr;
  std::shared_ptr<Request> r;
  try {
    cr = parse_completion_request(body, chat);
    r = build_request(s, cr);
    s.scheduler().submit(r);
  } catch (const ApiError& e) {
    return send_error(s, res, e.status, e.what(), e.param, e.code);
  } catch (const QueueFull& e) {
    return send_error(s, res, s.draining() ? 503 : 429, e.what());
  } catch (const Error& e) {
    return send_error(s, res, 400, e.what());
  }
  CompletionResult out;
  out.id = new_id(chat);
  out.model = cr.model.empty() ? s.options().model_name : cr.model;
  out.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  if (!cr.stream) {
    std::string text;
    while (!r->wait_take(text, nullptr, std::chrono::milliseconds(200))) {
    }
    if (!r->error.empty()) return send_error(s, res, r->error_status ? r->error_status : 500, r->error);
    out.text = text;
    out.finish_reason = r->finish_reason;
    out.prompt_tokens = r->prompt_tokens;
    out.completion_tokens = r->completion_tokens;
    res.set_content(dump_json(completion_response(out, chat)), "application/json");
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  auto first = std::make_shared<bool>(true);
  auto last_write = std::make_shared<Clock::time_point>(Clock::now());
  res.set_chunked_content_provider(
      "text/event-stream",
      [&s, r, out, chat, first, last_write, guard, include_usage = cr.include_usage](size_t, httplib::DataSink& sink) {
        std::string text;
        const bool done = r->wait_take(text, nullptr, std::chrono::milliseconds(100));
        std::string payload;
        if (*first && chat) payload += sse(stream_chunk(out, chat, "", true, ""));
        *first = false;
        if (!text.empty()) payload += sse(stream_chunk(out, chat, text, false, ""));
        if (done) {
          if (!r->error.empty()) {
            s.metrics().requests_failed++;
            payload += sse(error_body(r->error_status ? r->error_status : 500, r->error));
          } else {
            payload += sse(stream_chunk(out, chat, "", false, r->finish_reason));
            if (include_usage) {
              json u = stream_chunk(out, chat, "", false, "");
              u["choices"] = json::array();
              u["usage"] = usage_json(r->prompt_tokens, r->completion_tokens);
              payload += sse(u);
            }
          }
          payload += "data: [DONE]\n\n";
        }
        // An SSE comment now and then while nothing else is sent (queued, or a long prefill): writing is how a
        // client that went away is noticed.
        if (payload.empty() && Clock::now() - *last_write > std::chrono::seconds(1)) payload = ": keep-alive\n\n";
        if (!payload.empty()) *last_write = Clock::now();
        // A client that went away: the write fails (or the socket is no longer writable); free the slot now.
        if (!sink.is_writable() || (!payload.empty() && !sink.write(payload.data(), payload.size()))) {
          r->cancel();
          return false;
        }
        if (done) sink.done();
        return true;
      },
      [r](bool success) {
        if (!success) r->cancel();
      });
}

}  // namespace wick::serve
