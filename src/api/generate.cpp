// wick::generate: the public face of Session::generate (infer/generator.h).
#include "api/model_impl.h"
#include "core/error.h"

namespace wick {

Generation generate_ids(Model& model, const std::vector<int32_t>& prompt_ids, const GenerateSettings& s,
                        const OnToken& on_token) {
  Session& sess = *model.p_->session;
  GenerateOptions o;
  if (s.max_new_tokens < 0) throw Error("must be >= 0", "GenerateSettings::max_new_tokens");
  o.max_new_tokens = s.max_new_tokens;
  o.sampling = with_overrides(sess.default_sampling(), {s.temperature, s.top_p, s.min_p, s.repetition_penalty, s.top_k});
  o.sampling.seed = s.seed;
  validate_sampling_params(o.sampling);
  o.eos_ids = sess.generation_config().eos_token_ids;
  o.stop_strings = s.stop;
  TokenCallback cb;
  if (on_token) cb = [&](int32_t id, const std::string& piece) { return on_token(piece, id); };
  auto r = sess.generate(prompt_ids, o, cb);
  Generation g;
  g.text = std::move(r.text);
  g.ids = std::move(r.ids);
  g.stop_reason = std::move(r.stop_reason);
  g.prompt_tokens = r.prompt_tokens;
  g.prefill_s = r.prefill_s;
  g.decode_s = r.decode_s;
  return g;
}

Generation generate(Model& model, const std::string& prompt, const GenerateSettings& s, const OnToken& on_token) {
  return generate_ids(model, model.encode(prompt), s, on_token);
}

Generation generate(Model& model, const std::vector<Message>& messages, const GenerateSettings& s,
                    const OnToken& on_token) {
  return generate_ids(model, model.encode(model.chat_prompt(messages, true)), s, on_token);
}

}  // namespace wick
