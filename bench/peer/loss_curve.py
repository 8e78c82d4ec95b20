#!/usr/bin/env python3
"""The loss-curve check (issue 8): `wick train` beside PyTorch + transformers + PEFT, same start, same data.

scripts/loss-curve.sh runs the whole check; the pieces, each usable alone:

  loss_curve.py data  --model DIR --out FILE --rows N --seq S [--seed 7]
        JSONL of pre-tokenized rows {"input_ids": [...]} drawn from a fixed random Markov chain over 64
        token ids (learnable: the loss falls from ~ln(vocab) towards the chain's entropy). No torch.
  loss_curve.py init-adapter --model DIR --out DIR [--rank 16] [--seed 0]
        PEFT's own fresh LoRA (r, alpha 2r, dropout 0, all seven projections; A Kaiming-uniform, B zero),
        saved with save_pretrained: both sides start from this folder (wick: --adapter-init).
  loss_curve.py train --model DIR --adapter DIR --data FILE --out FILE --batch B --steps N ...
        The peer's run: the adapter loaded trainable, batches of B consecutive lines in file order (wick
        --no-shuffle reads the same), AdamW + clip + transformers.get_scheduler, one JSON line per step.
  loss_curve.py table --wick metrics.jsonl --peer peer.jsonl [--ref peer-f32lora.jsonl] --out table.md
        The side-by-side table every --every steps and the summary. No torch.
"""
import argparse, json, math, os, sys, time

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# ---------------------------------------------------------------------------------------------- data

def markov_rows(vocab, rows, seq, seed, states=64, fanout=4):
    """`rows` sequences of `seq` ids from a random Markov chain: `states` token ids (distinct, below
    min(vocab, 151643) so that no Qwen special token is used), each followed by one of `fanout` successors
    with probabilities 0.7 / 0.15 / 0.1 / 0.05 (entropy ~0.91 nats: the loss floor). Pure Python, seeded."""
    import random
    r = random.Random(seed)
    states = min(states, vocab)
    ids = r.sample(range(min(vocab, 151643)), states)
    probs = [0.7, 0.15, 0.1, 0.05][:fanout]
    probs = [p / sum(probs) for p in probs]
    cum = [sum(probs[:i + 1]) for i in range(len(probs))]
    succ = [r.sample(range(states), len(probs)) for _ in range(states)]
    out = []
    for _ in range(rows):
        s = r.randrange(states)
        row = [ids[s]]
        for _ in range(seq - 1):
            u = r.random()
            k = 0
            while k + 1 < len(cum) and u >= cum[k]:
                k += 1
            s = succ[s][k]
            row.append(ids[s])
        out.append(row)
    entropy = -sum(p * math.log(p) for p in probs)
    return out, entropy


def cmd_data(a):
    with open(os.path.join(a.model, "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    t0 = time.perf_counter()
    rows, entropy = markov_rows(vocab, a.rows, a.seq, a.seed, a.states)
    with open(a.out, "w") as f:
        for row in rows:
            f.write(json.dumps({"input_ids": row}, separators=(",", ":")) + "\n")
    print(json.dumps(dict(what="data", out=a.out, rows=a.rows, seq=a.seq, vocab=vocab, states=a.states,
                          chain_entropy=round(entropy, 4), uniform_loss=round(math.log(vocab), 4),
                          seconds=round(time.perf_counter() - t0, 1))), flush=True)


def read_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line)["input_ids"])
    return rows


# ---------------------------------------------------------------------------------------------- peer

def load_base(model_dir, device):
    import torch
    from transformers import AutoModelForCausalLM
    kw = dict(attn_implementation="sdpa")
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, **kw)
    except TypeError:  # transformers < 4.56 calls it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.bfloat16, **kw)
    return model.to(device)


def lora_params(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def cmd_init_adapter(a):
    import torch
    from peft import LoraConfig, get_peft_model
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_base(a.model, device)
    torch.manual_seed(a.seed)
    model = get_peft_model(model, LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0,
                                             target_modules=TARGETS, task_type="CAUSAL_LM"))
    ps = lora_params(model)
    # PEFT keeps adapter weights in f32 on a bf16 model (autocast_adapter_dtype=True); make sure of it.
    for _, p in ps:
        p.data = p.data.float()
    model.save_pretrained(a.out)
    a_sum = sum(float(p.double().abs().sum()) for n, p in ps if "lora_A" in n)
    b_sum = sum(float(p.double().abs().sum()) for n, p in ps if "lora_B" in n)
    print(json.dumps(dict(what="init-adapter", out=a.out, tensors=len(ps), trainable=sum(p.numel() for _, p in ps),
                          dtype=str(ps[0][1].dtype), sum_abs_A=a_sum, sum_abs_B=b_sum)), flush=True)


def cmd_train(a):
    import contextlib
    import torch
    from peft import PeftModel
    from transformers import get_scheduler
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    torch.manual_seed(a.seed)
    model = load_base(a.model, device)
    model = PeftModel.from_pretrained(model, a.adapter, is_trainable=True)
    ps = lora_params(model)
    for n, p in ps:
        assert p.dtype == torch.float32, (n, p.dtype)
        assert "lora_" in n, n
    params = [p for _, p in ps]
    rows = read_rows(a.data)
    lens = {len(r) for r in rows}
    assert len(lens) == 1, "rows of different lengths: the check wants no padding (%s)" % sorted(lens)[:5]
    data = torch.tensor(rows, dtype=torch.long)
    b1, b2 = (float(x) for x in a.betas.split(","))
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(b1, b2), eps=a.eps, weight_decay=a.weight_decay,
                            **(dict(fused=True) if cuda else {}))
    sched = get_scheduler(a.scheduler, opt, num_warmup_steps=a.warmup_steps, num_training_steps=a.steps)
    model.train()
    amp = (torch.autocast(device_type=device, dtype=torch.bfloat16) if a.autocast else contextlib.nullcontext())
    n = data.shape[0]
    t0 = time.perf_counter()
    with open(a.out, "w") as out:
        for step in range(a.steps):
            # wick --no-shuffle: micro-batch k is lines [kB, kB + B) of the file, wrapping at the end of an epoch.
            idx = [(step * a.batch + i) % n for i in range(a.batch)]
            ids = data[idx].to(device, non_blocking=True)
            lr = sched.get_last_lr()[0]
            with amp:
                loss = model(input_ids=ids, labels=ids, use_cache=False).loss
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, a.max_grad_norm) if a.max_grad_norm > 0 else torch.zeros(())
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            rec = dict(step=step + 1, loss=loss.item(), grad_norm=float(norm), lr=lr)
            out.write(json.dumps(rec) + "\n")
            if (step + 1) % a.log_every == 0 or step == 0:
                print(json.dumps(dict(rec, seconds=round(time.perf_counter() - t0, 1))), flush=True)
    print(json.dumps(dict(what="peer-train", out=a.out, autocast=a.autocast, steps=a.steps,
                          seconds=round(time.perf_counter() - t0, 1),
                          gpu=torch.cuda.get_device_name() if cuda else "cpu", torch=torch.__version__)), flush=True)


# ---------------------------------------------------------------------------------------------- table

def read_losses(path):
    """step -> record, from wick's metrics.jsonl (step records carry "loss") or the peer's jsonl."""
    out = {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if "step" in r and "loss" in r and "eval_loss" not in r:
                out[int(r["step"])] = r
    return out


def fmt(x, p=4):
    return "–" if x is None else ("%.*f" % (p, x))


def make_table(wick, peer, ref=None, every=25, tail=50, labels=("wick", "torch+PEFT")):
    """Markdown: a row every `every` steps (and step 1 and the last), then the summary."""
    steps = sorted(set(wick) & set(peer))
    if not steps:
        return "no common steps between the two runs\n", {}
    last = steps[-1]
    shown = [s for s in steps if s == 1 or s % every == 0 or s == last]
    lw, lp = labels
    head = ["step", "lr (wick)", lw + " loss", lp + " loss", lw + " − " + lp]
    if ref:
        head += [lp + " loss, no autocast", lp + " − itself without autocast"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in shown:
        w, p = wick[s]["loss"], peer[s]["loss"]
        cells = [str(s), "%.3g" % wick[s].get("lr", float("nan")), fmt(w), fmt(p), "%+.4f" % (w - p)]
        if ref:
            r = ref.get(s, {}).get("loss")
            cells += [fmt(r), "–" if r is None else "%+.4f" % (p - r)]
        lines.append("| " + " | ".join(cells) + " |")
    d = {s: abs(wick[s]["loss"] - peer[s]["loss"]) for s in steps}
    smax = max(d, key=d.get)
    tail_steps = [s for s in steps if s > last - tail]
    summ = dict(steps=len(steps), max_abs_diff=d[smax], max_abs_diff_step=smax,
                mean_abs_diff_last=sum(d[s] for s in tail_steps) / len(tail_steps), last_n=len(tail_steps),
                wick_first=wick[steps[0]]["loss"], peer_first=peer[steps[0]]["loss"],
                wick_last=wick[last]["loss"], peer_last=peer[last]["loss"], first_step=steps[0], last_step=last)
    # The schedule check: the lr each side used at each step.
    lrd = [abs(wick[s]["lr"] - peer[s]["lr"]) for s in steps if "lr" in wick[s] and "lr" in peer[s]]
    if lrd:
        summ["max_abs_lr_diff"] = max(lrd)
    gn = [(wick[s].get("grad_norm"), peer[s].get("grad_norm")) for s in steps[:1]]
    summ["grad_norm_first"] = gn[0]
    text = "\n".join(lines) + "\n\n"
    text += "- steps compared: %d (1..%d)\n" % (len(steps), last)
    text += "- loss at step %d: %s %.4f, %s %.4f; at step %d: %s %.4f, %s %.4f\n" % (
        steps[0], lw, summ["wick_first"], lp, summ["peer_first"], last, lw, summ["wick_last"], lp, summ["peer_last"])
    text += "- max |%s − %s| over all steps: %.4f (step %d)\n" % (lw, lp, d[smax], smax)
    text += "- mean |%s − %s| over the last %d steps: %.4f\n" % (lw, lp, len(tail_steps), summ["mean_abs_diff_last"])
    text += "- mean |%s − %s| over all steps: %.4f\n" % (lw, lp, sum(d.values()) / len(d))
    if gn[0][0] is not None and gn[0][1] is not None:
        text += "- gradient norm at step %d (before clipping): %s %.4f, %s %.4f\n" % (steps[0], lw, gn[0][0], lp, gn[0][1])
    if lrd:
        text += "- max |lr difference| over all steps (the schedule check): %.3g\n" % max(lrd)
    if ref:
        rs = [s for s in steps if s in ref]
        if rs:
            rd = {s: abs(peer[s]["loss"] - ref[s]["loss"]) for s in rs}
            rmax = max(rd, key=rd.get)
            rt = [s for s in rs if s > last - tail]
            summ.update(ref_max_abs_diff=rd[rmax], ref_mean_abs_diff_last=sum(rd[s] for s in rt) / max(1, len(rt)))
            text += ("- bf16 yardstick, the peer against itself without autocast (its LoRA matmuls in f32): max |diff| "
                     "%.4f (step %d), mean over the last %d steps %.4f, mean over all %.4f\n" % (
                         rd[rmax], rmax, len(rt), summ["ref_mean_abs_diff_last"], sum(rd.values()) / len(rd)))
    return text, summ


def cmd_table(a):
    wick, peer = read_losses(a.wick), read_losses(a.peer)
    ref = read_losses(a.ref) if a.ref and os.path.exists(a.ref) else None
    text, summ = make_table(wick, peer, ref, a.every, a.tail)
    if a.title:
        text = "## %s\n\n%s" % (a.title, text)
    if a.note:
        text += "\n" + a.note.replace("\\n", "\n") + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    sys.stdout.write(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summ, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("--model", required=True, help="model folder (its config.json gives vocab_size)")
    d.add_argument("--out", required=True); d.add_argument("--rows", type=int, required=True)
    d.add_argument("--seq", type=int, default=1024); d.add_argument("--seed", type=int, default=7)
    d.add_argument("--states", type=int, default=64,
                   help="token ids in the chain (few: a random-weight model learns the chain within 300 steps)")
    i = sub.add_parser("init-adapter")
    i.add_argument("--model", required=True); i.add_argument("--out", required=True)
    i.add_argument("--rank", type=int, default=16); i.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train")
    t.add_argument("--model", required=True); t.add_argument("--adapter", required=True)
    t.add_argument("--data", required=True); t.add_argument("--out", required=True)
    t.add_argument("--batch", type=int, default=8); t.add_argument("--steps", type=int, default=300)
    t.add_argument("--lr", type=float, default=2e-4); t.add_argument("--scheduler", default="cosine")
    t.add_argument("--warmup-steps", type=int, default=10); t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--betas", default="0.9,0.999"); t.add_argument("--eps", type=float, default=1e-8)
    t.add_argument("--max-grad-norm", type=float, default=1.0); t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-autocast", dest="autocast", action="store_false",
                   help="no torch.autocast: PEFT then runs the LoRA matmuls in f32 on the bf16 activations")
    t.add_argument("--log-every", type=int, default=50)
    tb = sub.add_parser("table")
    tb.add_argument("--wick", required=True); tb.add_argument("--peer", required=True); tb.add_argument("--ref")
    tb.add_argument("--out"); tb.add_argument("--json"); tb.add_argument("--every", type=int, default=25)
    tb.add_argument("--tail", type=int, default=50); tb.add_argument("--title"); tb.add_argument("--note")
    a = p.parse_args()
    {"data": cmd_data, "init-adapter": cmd_init_adapter, "train": cmd_train, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
