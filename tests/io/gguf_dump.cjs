// Reads a GGUF file with @huggingface/gguf (Hugging Face's parser, not wick's code) and prints what it
// found as JSON: the metadata in file order (with each value's GGUF type), the tensor infos and the data
// offset. 64-bit integers are printed as decimal strings.
//   node gguf_dump.cjs <node_modules dir> <file.gguf>
const path = require('path');
const { gguf } = require(path.resolve(process.argv[2], '@huggingface/gguf'));

(async () => {
  const r = await gguf(process.argv[3], { allowLocalFile: true, typedMetadata: true });
  const big = (_, v) => (typeof v === 'bigint' ? v.toString() : v);
  const metadata = Object.entries(r.typedMetadata).map(([key, v]) => ({ key, type: v.type, subType: v.subType, value: v.value }));
  const tensors = r.tensorInfos.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype, offset: t.offset }));
  process.stdout.write(JSON.stringify({ metadata, tensors, tensorDataOffset: r.tensorDataOffset }, big));
})().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
