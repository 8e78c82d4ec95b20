// `wick serve`: an OpenAI-compatible HTTP server (cpp-httplib) over one loaded model, its named adapters and
// the continuous-batching scheduler. Routes:
//   POST /v1/chat/completions, POST /v1/completions   (serve/completions.cpp; stream = server-sent events)
//   GET /v1/models; POST /v1/adapters {name, path}; DELETE /v1/adapters/NAME
//   GET /health (200 serving, 503 draining); GET /metrics (Prometheus text)
// A route's path with a method it does not take: 405 with an Allow header; an unknown path: 404 (both with OpenAI's
// error body).
// SIGINT / SIGTERM drain: new requests get 503, requests in flight finish, then run() returns (a second
// signal stops at once: requests still running get an error).
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "infer/session.h"
#include "serve/adapter_store.h"
#include "serve/metrics.h"
#include "serve/scheduler.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace wick::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0 = any free port (printed on stderr)
  std::string model_name;               // the base model's id in the API; "" = the model folder's name
  std::vector<std::pair<std::string, std::string>> adapters;  // --adapter NAME=DIR, loaded at start
  std::string adapter_root;             // POST /v1/adapters paths must lie in it; "" = loading off
  SchedulerLimits limits;
  int64_t max_tokens = 4096;            // most new tokens one request may ask for
  size_t max_body_bytes = 1 << 20;      // larger request bodies get 413
  int http_threads = 0;                 // 0 = max_batch + max_queue + 4
};

// The options' own checks (wick::Error naming the option): what the Server constructor checks before anything is
// loaded, so that the CLI can run them before it loads the model.
void check_server_options(const ServerOptions& opt);

class Server {
 public:
  Server(Session& session, ServerOptions opt);
  ~Server();
  // Binds, prints "wick serve: listening on http://HOST:PORT" on stderr and serves until a drain completes
  // (signals, or begin_drain()) or stop(). wick::Error when the address cannot be bound.
  void run();
  void begin_drain();  // new requests get 503; run() returns once nothing is in flight
  void stop();         // stops now

  // For the routes (serve/completions.cpp).
  Session& session() { return session_; }
  Scheduler& scheduler() { return *sched_; }
  AdapterStore& adapters() { return *adapters_; }
  Metrics& metrics() { return metrics_; }
  const ServerOptions& options() const { return opt_; }
  bool draining() const { return draining_.load(); }
  std::atomic<int64_t>& handlers_in_flight() { return in_flight_; }

 private:
  void routes();
  Session& session_;
  ServerOptions opt_;
  Metrics metrics_;
  std::unique_ptr<AdapterStore> adapters_;
  std::unique_ptr<Scheduler> sched_;
  std::unique_ptr<httplib::Server> http_;
  std::atomic<bool> draining_{false}, stopped_{false};
  std::atomic<int64_t> in_flight_{0};
};

// Answers an OpenAI-shaped error and counts it.
void send_error(Server& s, httplib::Response& res, int status, const std::string& message, const std::string& param = "",
                const std::string& code = "");
// The generation routes; body: the request's body, read by the route (read_body in server.cpp).
void handle_completion(Server& s, const std::string& body, httplib::Response& res, bool chat);

}  // namespace wick::serve
