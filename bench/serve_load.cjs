// A bounded load test of a running `wick serve` on loopback: N clients, each sending streaming chat requests
// back to back for T seconds (plain fetch + SSE parsing; no SDK needed). Prints one JSON line: requests,
// errors, the largest prompt in tokens (usage.prompt_tokens), generated tokens, aggregate tok/s, p50/p99 request
// latency and time to first token, and the server's resident memory at the start, after a quarter of the run
// and at the end (memory flat under load) when its pid is given.
//   node bench/serve_load.cjs --url http://127.0.0.1:8080 --clients 8 --seconds 20 --max-tokens 64
//        [--models tiny,a1,...] [--pid PID] [--prompt TEXT] [--sampling greedy|qwen] [--ttft-log FILE]
// --sampling qwen: Qwen2.5-Instruct's defaults (temperature 0.7, top-k 20, top-p 0.8, repetition penalty 1.05)
// instead of greedy. --ttft-log FILE: one line per request, its start (s after the run began) and time to first
// token (ms), sorted by start (as bench/serve_load.py writes it).
'use strict';
const fs = require('fs');

const args = { url: 'http://127.0.0.1:8080', clients: 8, seconds: 20, 'max-tokens': 64, models: '', pid: 0,
  prompt: 'Write a short story about a robot learning to paint.', sampling: 'greedy', 'ttft-log': '' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in args)) { console.error(`unknown flag --${k}`); process.exit(2); }
  args[k] = typeof args[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
if (!['greedy', 'qwen'].includes(args.sampling)) { console.error('--sampling must be greedy or qwen'); process.exit(2); }
if (!(args.clients >= 1 && args.clients <= 1024 && args.seconds > 0 && args.seconds <= 3600)) {
  console.error('--clients must be in [1, 1024] and --seconds in (0, 3600]');
  process.exit(2);
}

const rssKb = (pid) => {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
    return m ? Number(m[1]) : null;
  } catch { return null; }
};
const quantile = (xs, q) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function one(model, stats) {
  const t0 = performance.now();
  const body = { messages: [{ role: 'user', content: args.prompt }], max_tokens: args['max-tokens'], temperature: 0,
    ignore_eos: true, stream: true, stream_options: { include_usage: true } };
  if (args.sampling === 'qwen') Object.assign(body, { temperature: 0.7, top_k: 20, top_p: 0.8, repetition_penalty: 1.05 });
  if (model) body.model = model;
  const res = await fetch(`${args.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let ttft = null, tokens = 0, promptTokens = 0, buf = '', done = false;
  const dec = new TextDecoder();
  for await (const part of res.body) {
    buf += dec.decode(part, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ')) continue;
      const data = ev.slice(6);
      if (data === '[DONE]') { done = true; continue; }
      const j = JSON.parse(data);
      if (j.error) throw new Error(j.error.message);
      if (ttft === null && j.choices && j.choices.length && j.choices[0].delta.content) ttft = performance.now() - t0;
      if (j.usage) { tokens = j.usage.completion_tokens; promptTokens = j.usage.prompt_tokens || 0; }
    }
  }
  if (!done) throw new Error('stream ended without [DONE]');
  stats.lat.push(performance.now() - t0);
  if (ttft !== null) {
    stats.ttft.push(ttft);
    stats.started.push([(t0 - stats.runStart) / 1000, ttft]);
  }
  stats.tokens += tokens;
  stats.promptTokens = Math.max(stats.promptTokens, promptTokens);
}

async function main() {
  const models = args.models ? args.models.split(',') : [''];
  const stats = { lat: [], ttft: [], tokens: 0, promptTokens: 0, errors: 0, firstError: null, started: [], runStart: 0 };
  const rss0 = args.pid ? rssKb(args.pid) : null;
  const t0 = performance.now();
  stats.runStart = t0;
  const end = t0 + args.seconds * 1000;
  // Memory after a quarter of the run (warmed up: workspace and KV caches grown to the batch) and at the end.
  let rssWarm = null;
  const warmTimer = args.pid ? setTimeout(() => { rssWarm = rssKb(args.pid); }, args.seconds * 250) : null;
  await Promise.all(Array.from({ length: args.clients }, async (_, c) => {
    for (let k = 0; performance.now() < end; k++) {
      try { await one(models[(c + k) % models.length], stats); } catch (e) {
        stats.errors++;
        if (!stats.firstError) stats.firstError = e.message;
      }
    }
  }));
  if (warmTimer) clearTimeout(warmTimer);
  const wall = (performance.now() - t0) / 1000;
  const out = {
    clients: args.clients, seconds: Number(wall.toFixed(2)), max_tokens: args['max-tokens'], adapters: args.models ? models.length : 0,
    sampling: args.sampling,
    requests: stats.lat.length, errors: stats.errors, first_error: stats.firstError, prompt_tokens: stats.promptTokens,
    generated_tokens: stats.tokens,
    tok_per_s: Number((stats.tokens / wall).toFixed(1)),
    latency_ms: { p50: quantile(stats.lat, 0.5), p99: quantile(stats.lat, 0.99) },
    ttft_ms: { p50: quantile(stats.ttft, 0.5), p99: quantile(stats.ttft, 0.99) },
    rss_kb: { start: rss0, warm: rssWarm, end: args.pid ? rssKb(args.pid) : null },
  };
  for (const k of ['latency_ms', 'ttft_ms'])
    for (const q of ['p50', 'p99']) if (out[k][q] !== null) out[k][q] = Number(out[k][q].toFixed(1));
  console.log(JSON.stringify(out));
  if (args['ttft-log']) {
    stats.started.sort((a, b) => a[0] - b[0]);
    fs.writeFileSync(args['ttft-log'], stats.started.map(([s, t]) => `${s.toFixed(4)} ${t.toFixed(1)}\n`).join(''));
  }
  process.exit(stats.errors ? 1 : 0);
}
main().catch((e) => { console.error(e); process.exit(1); });
