#include "serve/server.h"

#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "io/json_util.h"
#include "serve/openai_api.h"

namespace wick::serve {

using json = nlohmann::json;

void send_error(Server& s, httplib::Response& res, int status, const std::string& message, const std::string& param,
                const std::string& code) {
  res.status = status;
  res.set_content(dump_json(error_body(status, message, param, "", code)), "application/json");
  s.metrics().requests_failed++;
}

namespace {
// A POST's body, read here rather than by cpp-httplib, whose own reading applies the size limit only to a body
// with a Content-Length (a chunked body was read whole), reads a body without either until the client closes,
// and refuses form-encoded bodies (curl -d's default type) past 8 KiB. Up to max bytes, which must be UTF-8 (as
// JSON text is). False after answering: 413 past max, 400 unreadable or not UTF-8.
bool read_body(Server& s, const httplib::ContentReader& reader, size_t max, httplib::Response& res, std::string& body) {
  bool too_large = false;
  const bool ok = reader([&](const char* data, size_t n) {
    if (body.size() + n > max) {
      too_large = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  if (too_large) {
    res.set_header("Connection", "close");
    send_error(s, res, 413, "the request body is larger than " + std::to_string(max) + " bytes");
    return false;
  }
  if (!ok) {
    send_error(s, res, 400, "the request body could not be read to its end");
    return false;
  }
  if (!io::is_valid_utf8(body)) {
    send_error(s, res, 400, "the request body is not valid UTF-8 (JSON text must be)");
    return false;
  }
  return true;
}

// Before a POST's body is read: its framing. No Content-Length and no chunked coding: 411 at once (cpp-httplib
// would wait for the client to close, holding a pool thread); a Content-Length that is not a byte count: 400; one
// past the limit: 413 without reading the body; multipart bodies: 415 (the routes take JSON).
httplib::Server::HandlerResponse check_post_framing(Server& s, const httplib::Request& req, httplib::Response& res,
                                                    size_t max) {
  using R = httplib::Server::HandlerResponse;
  if (req.method != "POST") return R::Unhandled;
  const auto refuse = [&](int status, const std::string& msg) {
    res.set_header("Connection", "close");
    send_error(s, res, status, msg);
    return R::Handled;
  };
  if (req.is_multipart_form_data()) return refuse(415, "the request body must be JSON (application/json), not multipart");
  std::string te = req.get_header_value("Transfer-Encoding");
  for (char& c : te) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (te.find("chunked") != std::string::npos) return R::Unhandled;  // read_body applies the limit
  if (!req.has_header("Content-Length"))
    return refuse(411, "a POST needs a Content-Length header (or chunked transfer coding)");
  const std::string len = req.get_header_value("Content-Length");
  const bool digits = !len.empty() && len.size() <= 19 &&
                      std::all_of(len.begin(), len.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) return refuse(400, "Content-Length '" + len + "' is not a byte count");
  if (std::stoull(len) > max)
    return refuse(413, "the request body is larger than " + std::to_string(max) + " bytes");
  return R::Unhandled;
}

// A route's path pattern (cpp-httplib's: a regex the whole path must match) and the methods it takes.
struct RouteMethods {
  std::regex pattern;
  std::vector<std::string> methods;  // as registered; GET implies HEAD (cpp-httplib answers HEAD with the GET route)
};

// "GET, HEAD" / "POST": the Allow header of a route.
std::string allow_header(const std::vector<std::string>& methods) {
  std::string out;
  for (const std::string& m : methods) {
    out += (out.empty() ? "" : ", ") + m;
    if (m == "GET") out += ", HEAD";
  }
  return out;
}

// A known path asked with a method it does not take: 405 with an Allow header and OpenAI's error body (cpp-httplib
// answered 404, as for a path that does not exist, so `GET /v1/chat/completions` read as a typo in the URL).
// Before the body is read; the connection closes after it when the request carries one (it was not read).
httplib::Server::HandlerResponse refuse_other_methods(Server& s, const std::vector<RouteMethods>& routes,
                                                      const httplib::Request& req, httplib::Response& res) {
  using R = httplib::Server::HandlerResponse;
  for (const RouteMethods& r : routes) {
    if (!std::regex_match(req.path, r.pattern)) continue;
    for (const std::string& m : r.methods)
      if (req.method == m || (m == "GET" && req.method == "HEAD")) return R::Unhandled;
    const std::string allow = allow_header(r.methods);
    res.set_header("Allow", allow);
    if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) res.set_header("Connection", "close");
    send_error(s, res, 405, "the method " + req.method + " is not allowed on " + req.path + " (it takes " + allow + ")");
    return R::Handled;
  }
  return R::Unhandled;
}
}  // namespace

void check_server_options(const ServerOptions& opt) {
  // A port past 65535 used to be accepted and printed as listened on (the socket layer keeps 16 bits of it).
  if (opt.port < 0 || opt.port > 65535)
    throw Error("must be in [1, 65535], or 0 for any free port; got " + std::to_string(opt.port), "--port");
  if (opt.max_tokens < 1) throw Error("must be at least 1", "--max-tokens");
}

Server::Server(Session& session, ServerOptions opt) : session_(session), opt_(std::move(opt)) {
  check_server_options(opt_);
  CausalLM& m = session_.model();
  for (Linear* l : m.all_linears())
    if (l->lora.active()) throw Error("the served model must be loaded without an adapter (give adapters with --adapter NAME=DIR)");
  if (opt_.model_name.empty()) opt_.model_name = std::filesystem::path(m.dir()).filename().string();
  if (opt_.model_name.empty()) opt_.model_name = "base";
  adapters_ = std::make_unique<AdapterStore>(m, opt_.model_name, opt_.adapter_root);
  for (const auto& [name, dir] : opt_.adapters) {
    try {
      adapters_->add(name, dir, false);
    } catch (const ApiError& e) {
      throw Error(e.what(), "--adapter " + name + "=" + dir);
    }
  }
  sched_ = std::make_unique<Scheduler>(m, session_.tokenizer(), opt_.limits, metrics_);
  if (m.device().is_cuda()) sched_->warm_up();  // Scheduler::warm_up: the first clients' time to first token
  http_ = std::make_unique<httplib::Server>();
  routes();
}

Server::~Server() { stop(); }

static json model_entry(const std::string& id, const std::string& parent) {
  json j = {{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "wick"}};
  if (!parent.empty()) j["parent"] = parent;
  return j;
}

void Server::routes() {
  httplib::Server& h = *http_;
  const int threads = opt_.http_threads > 0 ? opt_.http_threads
                                            : static_cast<int>(opt_.limits.max_batch + opt_.limits.max_queue + 4);
  h.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  h.set_payload_max_length(opt_.max_body_bytes);
  h.set_read_timeout(30);
  h.set_write_timeout(30);
  h.set_keep_alive_timeout(2);  // idle keep-alive connections hold a pool thread; a drain waits for them
  // SO_REUSEADDR only: a restart may bind while old connections wait out TIME_WAIT, but a port another server
  // listens on is refused. (cpp-httplib's default, SO_REUSEPORT on Linux, let a second `wick serve` share the
  // port silently, and the kernel then split the requests between the two.)
  h.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });
  // Statuses httplib answers itself (404, 413, 400 on a broken request line) get OpenAI's error body too.
  h.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 413 ? "the request body is larger than " + std::to_string(opt_.max_body_bytes) + " bytes"
                      : res.status == 404 ? "no such route"
                                          : "HTTP status " + std::to_string(res.status);
    if (res.status >= 400) metrics_.requests_failed++;
    res.set_content(dump_json(error_body(res.status, msg)), "application/json");
  });
  h.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = e.what();
    } catch (...) {
    }
    send_error(*this, res, 500, msg);
  });

  // Every route is registered through get / post / del, which note its methods: a known path asked with another
  // method gets 405 from the pre-routing handler set below (refuse_other_methods).
  std::map<std::string, std::vector<std::string>> methods;  // path pattern -> the methods registered for it
  const auto get = [&](const std::string& p, httplib::Server::Handler f) {
    methods[p].push_back("GET");
    h.Get(p, std::move(f));
  };
  const auto post = [&](const std::string& p, httplib::Server::HandlerWithContentReader f) {
    methods[p].push_back("POST");
    h.Post(p, std::move(f));
  };
  const auto del = [&](const std::string& p, httplib::Server::Handler f) {
    methods[p].push_back("DELETE");
    h.Delete(p, std::move(f));
  };
  get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.status = draining() ? 503 : 200;
    res.set_content(json{{"status", draining() ? "draining" : "ok"}}.dump(), "application/json");
  });
  get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    metrics_.queue_depth = sched_->queued();
    res.set_content(metrics_.render(), "text/plain; version=0.0.4");
  });
  get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json data = json::array({model_entry(opt_.model_name, "")});
    for (const auto& a : adapters_->list()) data.push_back(model_entry(a->name, opt_.model_name));
    res.set_content(json{{"object", "list"}, {"data", data}}.dump(), "application/json");
  });
  get(R"(/v1/models/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (id == opt_.model_name) return res.set_content(dump_json(model_entry(id, "")), "application/json");
    if (adapters_->find(id)) return res.set_content(dump_json(model_entry(id, opt_.model_name)), "application/json");
    send_error(*this, res, 404, "the model '" + id + "' does not exist", "model", "model_not_found");
  });
  post("/v1/adapters", [this](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& reader) {
    std::string body;
    if (!read_body(*this, reader, opt_.max_body_bytes, res, body)) return;
    if (draining()) return send_error(*this, res, 503, "the server is shutting down");
    json j;
    try {
      j = json::parse(body);
    } catch (const json::exception& e) {
      return send_error(*this, res, 400, std::string("the request body is not valid JSON: ") + e.what());
    }
    if (!j.is_object() || !j.contains("name") || !j["name"].is_string())
      return send_error(*this, res, 400, "'name' (a string) is required", "name");
    if (!j.contains("path") || !j["path"].is_string())
      return send_error(*this, res, 400, "'path' (a string) is required", "path");
    try {
      auto a = adapters_->add(j["name"].get<std::string>(), j["path"].get<std::string>(), true);
      res.set_content(dump_json(model_entry(a->name, opt_.model_name)), "application/json");
    } catch (const ApiError& e) {
      send_error(*this, res, e.status, e.what(), e.param);
    } catch (const Error& e) {  // a bad name (where "name"), or what loading the folder found
      const bool name = e.where() == "name";
      send_error(*this, res, 400, name ? e.what_msg() : e.what(), name ? "name" : "path");
    } catch (const std::exception& e) {
      send_error(*this, res, 400, e.what(), "path");
    }
  });
  del(R"(/v1/adapters/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    if (!adapters_->remove(name))
      return send_error(*this, res, 404, "no adapter named '" + name + "' is loaded", "name", "model_not_found");
    res.set_content(dump_json(json{{"id", name}, {"object", "model"}, {"deleted", true}}), "application/json");
  });
  for (const bool chat : {true, false})
    post(chat ? "/v1/chat/completions" : "/v1/completions",
         [this, chat](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& reader) {
           std::string body;
           if (read_body(*this, reader, opt_.max_body_bytes, res, body)) handle_completion(*this, body, res, chat);
         });

  // Before any body is read: a method the path does not take (405), then a POST's framing (411 / 400 / 413 / 415).
  std::vector<RouteMethods> known;
  for (auto& [pattern, ms] : methods) known.push_back({std::regex(pattern), std::move(ms)});
  h.set_pre_routing_handler([this, known](const httplib::Request& req, httplib::Response& res) {
    if (refuse_other_methods(*this, known, req, res) == httplib::Server::HandlerResponse::Handled)
      return httplib::Server::HandlerResponse::Handled;
    return check_post_framing(*this, req, res, opt_.max_body_bytes);
  });
}

void Server::begin_drain() { draining_ = true; }

void Server::stop() {
  if (stopped_.exchange(true)) return;
  if (http_) http_->stop();
  if (sched_) sched_->stop();
}

namespace {
// The last SIGINT / SIGTERM, set by the handler (async-signal-safe: one lock-free store) and read by run()'s
// watcher thread. A handler rather than sigwait: OpenBLAS and OpenMP start their threads before main, with
// the signals unblocked, so a blocked mask would not hold in every thread.
std::atomic<int> g_signal{0};
void on_serve_signal(int sig) { g_signal.store(sig); }
}  // namespace

void Server::run() {
  int port = opt_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(opt_.host);
    if (port < 0) throw Error("cannot bind " + opt_.host + " to a free port", "--host");
  } else if (!http_->bind_to_port(opt_.host, port)) {
    throw Error("cannot listen on " + opt_.host + ":" + std::to_string(port) + " (in use, or not an address of this host)",
                "--host / --port");
  }
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_serve_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  signal(SIGPIPE, SIG_IGN);  // writes to a client that went away must not kill the server
  sched_->start();
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (g_signal.exchange(0) != 0) {
        if (draining()) {
          std::cerr << "wick serve: second signal, stopping now\n";
          stop();
          break;
        }
        std::cerr << "wick serve: draining (" << sched_->running() << " running, " << sched_->queued() << " queued)\n";
        begin_drain();
      }
      if (draining() && sched_->idle() && in_flight_ == 0) {
        std::cerr << "wick serve: drained, stopping\n";
        stop();
        break;
      }
    }
  });
  std::cerr << "wick serve: listening on http://" << opt_.host << ":" << port << " (model " << opt_.model_name << ", "
            << adapters_->list().size() << " adapters, max batch " << opt_.limits.max_batch << ", KV cache "
            << sched_->kv_pool().capacity_tokens() << " tokens in " << sched_->kv_pool().blocks() << " blocks, "
            << (sched_->kv_pool().bytes() >> 20) << " MiB)" << std::endl;
  http_->listen_after_bind();
  done = true;
  watcher.join();
  stop();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
}

}  // namespace wick::serve
