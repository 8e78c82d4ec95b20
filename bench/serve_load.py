#!/usr/bin/env python3
"""The same bounded load test as bench/serve_load.cjs, for machines without node (the GPU machine): standard
library only (threads + http.client, the SSE stream read line by line).

N clients, each sending streaming chat requests (greedy, or with --sampling qwen Qwen2.5-Instruct's defaults:
temperature 0.7, top-k 20, top-p 0.8, repetition penalty 1.05; ignore_eos, max_tokens) back to back for T seconds,
the adapters named in --models spread over the clients. Prints one JSON line with the .cjs client's keys:
requests, errors, the largest prompt in tokens, generated tokens, aggregate tok/s, p50/p99 request latency and time to first token, and the
server's resident memory at the start, after a quarter of the run and at the end when its pid is given.
  python3 bench/serve_load.py --url http://127.0.0.1:8080 --clients 8 --seconds 20 --max-tokens 64
          [--models tiny,a1,...] [--pid PID] [--prompt TEXT] [--sampling greedy|qwen]
Exit status 1 when any request failed.
"""
import argparse
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--models", default="")
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--prompt", default="Write a short story about a robot learning to paint.")
    p.add_argument("--sampling", choices=["greedy", "qwen"], default="greedy")
    p.add_argument("--ttft-log", default="", help="also write one line per request: start (s after the run began), ttft_ms")
    a = p.parse_args()
    if not (1 <= a.clients <= 1024 and 0 < a.seconds <= 3600):
        print("--clients must be in [1, 1024] and --seconds in (0, 3600]", file=sys.stderr)
        sys.exit(2)
    return a


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"VmRSS:\s+(\d+)", f.read())
        return int(m.group(1)) if m else None
    except OSError:
        return None


def quantile(xs, q):
    # The .cjs client's rule: the element at floor(q * n) of the sorted values.
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def rounded(x, digits):
    # Number(x.toFixed(d)) in JavaScript: an integral value prints without ".0".
    if x is None:
        return None
    r = round(x, digits)
    return int(r) if r == int(r) else r


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat, self.ttft, self.tokens, self.errors, self.first_error = [], [], 0, 0, None
        self.prompt_tokens = 0  # the largest prompt the server counted (usage.prompt_tokens)
        self.started = []  # (request start, ttft_ms) for --ttft-log
        self.run_start = time.perf_counter()


class Client:
    """One simulated user: a keep-alive connection (fetch in node pools connections too), reopened after a failure."""

    def __init__(self, url, args):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.args = args
        self.conn = None

    def one(self, model, stats):
        t0 = time.perf_counter()
        body = {"messages": [{"role": "user", "content": self.args.prompt}], "max_tokens": self.args.max_tokens,
                "temperature": 0, "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
        if self.args.sampling == "qwen":
            body.update({"temperature": 0.7, "top_k": 20, "top_p": 0.8, "repetition_penalty": 1.05})
        if model:
            body["model"] = model
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        self.conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                          headers={"content-type": "application/json"})
        res = self.conn.getresponse()
        if res.status != 200:
            raise RuntimeError("HTTP %d: %s" % (res.status, res.read().decode("utf-8", "replace")))
        ttft, tokens, prompt_tokens, done = None, 0, 0, False
        # SSE: events are "data: ..." lines separated by blank lines.
        while True:
            line = res.readline()
            if not line:
                break
            line = line.rstrip(b"\r\n")
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                done = True
                continue
            j = json.loads(data)
            if j.get("error"):
                raise RuntimeError(j["error"].get("message", str(j["error"])))
            choices = j.get("choices")
            if ttft is None and choices and (choices[0].get("delta") or {}).get("content"):
                ttft = (time.perf_counter() - t0) * 1000
            if j.get("usage"):
                tokens = j["usage"]["completion_tokens"]
                prompt_tokens = j["usage"].get("prompt_tokens", 0)
        if not done:
            raise RuntimeError("stream ended without [DONE]")
        lat = (time.perf_counter() - t0) * 1000
        with stats.lock:
            stats.lat.append(lat)
            if ttft is not None:
                stats.ttft.append(ttft)
                stats.started.append((t0 - stats.run_start, ttft))
            stats.tokens += tokens
            stats.prompt_tokens = max(stats.prompt_tokens, prompt_tokens)

    def run(self, c, models, end, stats):
        k = 0
        while time.perf_counter() < end:
            try:
                self.one(models[(c + k) % len(models)], stats)
            except Exception as e:  # any failure of one request counts as an error, as in the .cjs client
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
                with stats.lock:
                    stats.errors += 1
                    if stats.first_error is None:
                        stats.first_error = str(e)
            k += 1


def main():
    args = parse_args()
    models = args.models.split(",") if args.models else [""]
    stats = Stats()
    rss0 = rss_kb(args.pid) if args.pid else None
    t0 = time.perf_counter()
    stats.run_start = t0
    end = t0 + args.seconds
    # Memory after a quarter of the run (warmed up: workspace and KV caches grown to the batch) and at the end.
    rss_warm = [None]
    timer = None
    if args.pid:
        timer = threading.Timer(args.seconds / 4, lambda: rss_warm.__setitem__(0, rss_kb(args.pid)))
        timer.daemon = True
        timer.start()
    threads = [threading.Thread(target=Client(args.url, args).run, args=(c, models, end, stats), daemon=True)
               for c in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if timer:
        timer.cancel()
    wall = time.perf_counter() - t0
    out = {
        "clients": args.clients, "seconds": rounded(wall, 2), "max_tokens": args.max_tokens,
        "adapters": len(models) if args.models else 0, "sampling": args.sampling,
        "requests": len(stats.lat), "errors": stats.errors, "first_error": stats.first_error,
        "prompt_tokens": stats.prompt_tokens, "generated_tokens": stats.tokens, "tok_per_s": rounded(stats.tokens / wall, 1),
        "latency_ms": {"p50": rounded(quantile(stats.lat, 0.5), 1), "p99": rounded(quantile(stats.lat, 0.99), 1)},
        "ttft_ms": {"p50": rounded(quantile(stats.ttft, 0.5), 1), "p99": rounded(quantile(stats.ttft, 0.99), 1)},
        "rss_kb": {"start": rss0, "warm": rss_warm[0], "end": rss_kb(args.pid) if args.pid else None},
    }
    print(json.dumps(out, separators=(",", ":")), flush=True)
    if args.ttft_log:
        with open(args.ttft_log, "w") as f:
            for start, ttft in sorted(stats.started):
                f.write("%.4f %.1f\n" % (start, ttft))
    sys.exit(1 if stats.errors else 0)


if __name__ == "__main__":
    main()
