// PyTorch checkpoints (io/torch_checkpoint.ts): torch.save's files in both formats read to the
// exact values (tests/fixtures/make_torch_checkpoints.py wrote them), our writer's files read
// back by torch 1.13 (Debian's /usr/bin/python3) and by us, and hostile files refused, each
// clearly (the error names the file and the global or tensor) and quickly.
import { fileURLToPath } from "node:url";
import {
  type PickledTensor,
  readTorchCheckpoint,
  serializeTorchStateDict,
  stateDictPickle,
  TorchCheckpointError,
  type TorchTensor,
  torchZip,
  writeTorchStateDict,
} from "../io/torch_checkpoint.ts";
import { openZip } from "../io/zip.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";

const fx = (n: string) => fileURLToPath(new URL(`./fixtures/torch/${n}`, import.meta.url));

interface Expected {
  dtype: string;
  shape: number[];
  values: number[];
}
const EXPECTED: Record<string, Expected> = JSON.parse(await Deno.readTextFile(fx("expected.json")));

/** Plain numbers of a tensor's data (int64 as numbers: the fixtures' fit). */
const numbers = (t: TorchTensor) => Array.from(t.data as ArrayLike<number | bigint>, Number);

function assertExact(tensors: Map<string, TorchTensor>, what: string) {
  assertEquals([...tensors.keys()].sort(), Object.keys(EXPECTED).sort(), `${what}: names`);
  for (const [name, want] of Object.entries(EXPECTED)) {
    const t = tensors.get(name)!;
    assertEquals(t.dtype === "float32" && t.from ? t.from : t.dtype, want.dtype, `${what} ${name}`);
    assertEquals(t.shape, want.shape, `${what} ${name}: shape`);
    const got = numbers(t);
    const bad = got.findIndex((v, i) => !Object.is(v, want.values[i]));
    assert(
      bad < 0 && got.length === want.values.length,
      `${what} ${name}: element ${bad} is ${got[bad]}, torch saved ${want.values[bad]}`,
    );
  }
}

Deno.test("torch checkpoints: zip and legacy formats read to torch's exact values", async () => {
  for (const fmt of ["zip", "legacy"]) {
    const sd = await readTorchCheckpoint(fx(`sd_${fmt}.pt`), { toFloat32: true });
    assertEquals([sd.format, sd.stateDictKey, sd.strippedPrefix], [fmt, null, null]);
    assertExact(sd.tensors, `sd_${fmt}`);
    assertEquals([...sd.extras.keys()], [], "OrderedDict's _metadata is no extra");

    // without toFloat32, halves stay raw bits, and the int64 counter is a BigInt64Array
    const raw = (await readTorchCheckpoint(fx(`sd_${fmt}.pt`))).tensors;
    assertEquals([raw.get("f16")!.dtype, raw.get("bf16")!.dtype], ["float16", "bfloat16"]);
    assert(raw.get("bf16")!.data instanceof Uint16Array, "bfloat16 as bits");
    assert(raw.get("bn.num_batches_tracked")!.data instanceof BigInt64Array, "int64 counter");

    const wrapped = await readTorchCheckpoint(fx(`wrapped_${fmt}.pt`), { toFloat32: true });
    assertEquals(wrapped.stateDictKey, "model");
    assertExact(wrapped.tensors, `wrapped_${fmt}`); // Parameters (keep_vars) included
    assertEquals(wrapped.extras.get("epoch"), 3);
    assertEquals(wrapped.extras.get("lr"), [0.001]);
    const opt = wrapped.extras.get("optimizer") as Map<unknown, unknown>;
    const state = opt.get("state") as Map<number, Map<string, unknown>>;
    assertEquals(state.get(0)!.get("momentum_buffer"), {
      kind: "tensor",
      dtype: "float32",
      shape: [4, 3],
    });

    if (fmt === "zip") { // repacked by a zip tool: deflated members
      const deflated = await readTorchCheckpoint(fx("sd_deflated.pt"), { toFloat32: true });
      assertExact(deflated.tensors, "sd_deflated");
    }

    const dp = await readTorchCheckpoint(fx(`dataparallel_${fmt}.pt`), { toFloat32: true });
    assertEquals([dp.stateDictKey, dp.strippedPrefix], ["model_pos", "module."]);
    assertExact(dp.tensors, `dataparallel_${fmt}`);
    const kept = await readTorchCheckpoint(fx(`dataparallel_${fmt}.pt`), { keepPrefix: true });
    assert(kept.tensors.has("module.fc.weight"), "keepPrefix keeps DataParallel's names");
  }
});

// ---------------------------------------------------------------------------------------------
// the writer, checked by torch

const TORCH = "/usr/bin/python3";
const torchMissing = await new Deno.Command(TORCH, { args: ["-c", "import torch"], stderr: "null" })
  .output().then((o) => o.success ? null : `${TORCH} cannot import torch`)
  .catch(() => `${TORCH} is absent`);
if (torchMissing) console.log(`skipping the torch.load checks: ${torchMissing}`);

/** Runs a Python script under Debian's torch; returns its stdout as JSON. */
async function python(script: string, ...args: string[]): Promise<unknown> {
  const o = await new Deno.Command(TORCH, { args: ["-c", script, ...args] }).output();
  const err = new TextDecoder().decode(o.stderr);
  assert(o.success, `python failed:\n${err}`);
  return JSON.parse(new TextDecoder().decode(o.stdout));
}

// strict loading into the module the tensors came from, with weights_only (no code runs)
const LOAD_STRICT = `
import collections, json, sys, torch
from torch import nn
sd = torch.load(sys.argv[1], weights_only=True)
assert type(sd) is collections.OrderedDict, type(sd)
model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
model.load_state_dict(sd, strict=True)
out = {k: {"dtype": str(v.dtype)[6:], "shape": list(v.shape), "values": v.reshape(-1).tolist()}
       for k, v in model.state_dict().items()}
print(json.dumps(out))
`;

// every tensor's dtype, shape and values as torch sees them
const DUMP = `
import json, sys, torch
sd = torch.load(sys.argv[1], weights_only=True)
def values(t):
    t = t.reshape(-1)
    return t.float().tolist() if t.dtype in (torch.float16, torch.bfloat16) else t.int().tolist() if t.dtype == torch.bool else t.tolist()
print(json.dumps({k: {"dtype": str(v.dtype)[6:], "shape": list(v.shape), "values": values(v)} for k, v in sd.items()}))
`;

Deno.test({
  name: "torch checkpoints: the writer's state dict loads in torch 1.13 (strict) and reads back",
  ignore: !!torchMissing,
  fn: async () => {
    const w = Float32Array.from({ length: 12 }, (_, i) => Math.fround(Math.sin(i + 1) / 3));
    const tensors = new Map<string, { shape: number[]; data: Float32Array | BigInt64Array }>([
      ["0.weight", { shape: [4, 3], data: w }],
      ["0.bias", { shape: [4], data: new Float32Array([0.5, -0.25, 1e-30, -7]) }],
      ["1.weight", { shape: [4], data: new Float32Array([1, 2, 3, 4]) }],
      ["1.bias", { shape: [4], data: new Float32Array([-1, -2, -3, -4]) }],
      ["1.running_mean", { shape: [4], data: new Float32Array([0.1, 0.2, 0.3, 0.4]) }],
      ["1.running_var", { shape: [4], data: new Float32Array([1.5, 2.5, 3.5, 4.5]) }],
      ["1.num_batches_tracked", { shape: [], data: new BigInt64Array([12345678901n]) }],
    ]);
    const path = await Deno.makeTempFile({ suffix: ".pt" });
    await writeTorchStateDict(path, tensors);
    const seen = await python(LOAD_STRICT, path) as Record<string, Expected>;
    for (const [name, t] of tensors) {
      assertEquals(seen[name].shape, t.shape, name);
      assertEquals(seen[name].values, Array.from(t.data as ArrayLike<number>, Number), name);
      assertEquals(seen[name].dtype, t.data instanceof BigInt64Array ? "int64" : "float32", name);
    }
    const back = await readTorchCheckpoint(path);
    for (const [name, t] of tensors) {
      assertEquals(back.tensors.get(name)!.shape, t.shape, name);
      assertEquals(
        numbers(back.tensors.get(name)!),
        Array.from(t.data as ArrayLike<number>, Number),
      );
    }

    // every dtype of the fixture, views materialised, through our writer and torch.load
    const sd = (await readTorchCheckpoint(fx("sd_zip.pt"))).tensors;
    await writeTorchStateDict(path, sd);
    const all = await python(DUMP, path) as Record<string, Expected>;
    assertEquals(Object.keys(all), [...sd.keys()], "names, in order");
    for (const [name, want] of Object.entries(EXPECTED)) {
      assertEquals(all[name], want, name);
    }
    await Deno.remove(path);
  },
});

// ---------------------------------------------------------------------------------------------
// hostile files: each refused with a TorchCheckpointError naming what is wrong, quickly

const BOUND_MS = 1000;

async function refused(path: string, what: RegExp, label: string): Promise<string> {
  const t0 = performance.now();
  const e = await assertRejects(() => readTorchCheckpoint(path), TorchCheckpointError);
  const ms = performance.now() - t0;
  assert(ms < BOUND_MS, `${label}: refused after ${ms.toFixed(0)} ms`);
  assert(e.message.startsWith(`${path}: `), `${label}: the message names the file: ${e.message}`);
  assert(what.test(e.message), `${label}: ${e.message} does not match ${what}`);
  return e.message;
}

async function tempFile(bytes: Uint8Array): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".pt" });
  await Deno.writeFile(path, bytes);
  return path;
}

const enc = new TextEncoder();
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), o += p.length);
  return out;
};

/** A pickle (protocol 2) that calls `module.name(arg)` on loading. */
const callPickle = (module: string, name: string, arg: string) =>
  cat(
    new Uint8Array([0x80, 2, 0x63]),
    enc.encode(`${module}\n${name}\n`),
    new Uint8Array([0x58, ...new Uint8Array(new Uint32Array([arg.length]).buffer)]),
    enc.encode(arg),
    new Uint8Array([0x85, 0x52, 0x2e]), // TUPLE1, REDUCE, STOP
  );

Deno.test("torch checkpoints: code in a checkpoint (os.system, eval, classes) is refused, never run", async () => {
  for (
    const [file, global] of [["evil_zip.pt", "posix.system"], [
      "evil_legacy.pt",
      "__builtin__.eval",
    ]]
  ) {
    await refused(
      fx(file),
      new RegExp(`refusing to load class ${global.replace(".", "\\.")}`),
      file,
    );
  }
  const marker = await Deno.makeTempFile();
  await Deno.remove(marker);
  for (
    const [module, name] of [
      ["posix", "system"],
      ["os", "system"],
      ["builtins", "eval"],
      ["builtins", "exec"],
      ["subprocess", "Popen"],
      ["torch.serialization", "_get_restore_location"],
      ["__main__", "Net"],
    ]
  ) {
    const pkl = callPickle(module, name, `touch ${marker}`);
    const path = await tempFile(torchZip(pkl, []));
    const msg = await refused(
      path,
      new RegExp(`refusing to load class ${module}\\.${name} `),
      name,
    );
    assert(msg.includes("archive/data.pkl"), `names the member: ${msg}`);
    await Deno.remove(path);
  }
  assert(!await Deno.stat(marker).then(() => true, () => false), "nothing ran");
});

/** A one-tensor zip checkpoint whose pickle says `t` and whose storage holds `bytes` bytes. */
const oneTensor = (t: Partial<PickledTensor>, bytes: number) =>
  torchZip(
    stateDictPickle([{
      name: "blocks.0.weight",
      dtype: "float32",
      storage: "0",
      numel: 4,
      offset: 0,
      shape: [4],
      stride: [1],
      ...t,
    }]),
    [{ name: "data/0", data: new Uint8Array(bytes) }],
  );

Deno.test("torch checkpoints: a storage shorter than its tensor is refused, naming the tensor", async () => {
  const cases: [Partial<PickledTensor>, string][] = [
    [{ shape: [10] }, "longer shape"],
    [{ offset: 3, shape: [2] }, "offset"],
    [{ shape: [2, 2], stride: [3, 1] }, "stride"],
    [{ shape: [2, 3], stride: [1, 2] }, "non-contiguous view"],
  ];
  for (const [t, label] of cases) {
    const path = await tempFile(oneTensor(t, 16));
    await refused(
      path,
      /tensor "blocks\.0\.weight": .* reaches element \d+ of a 4-element storage/,
      label,
    );
    await Deno.remove(path);
  }
  const ok = await tempFile(oneTensor({ offset: 1, shape: [3] }, 16)); // the largest that fits
  assertEquals((await readTorchCheckpoint(ok)).tensors.get("blocks.0.weight")!.shape, [3]);
  await Deno.remove(ok);
});

Deno.test("torch checkpoints: malformed tensor records are refused, naming the tensor", async () => {
  const rebuild = enc.encode("ctorch._utils\n_rebuild_tensor_v2\n");
  const dict = (...value: Uint8Array[]) =>
    torchZip(
      cat(new Uint8Array([0x80, 2, 0x7d, 0x8c, 1, 0x77]), ...value, new Uint8Array([0x73, 0x2e])),
      [],
    );
  const cases: [Uint8Array, RegExp, string][] = [
    // NEWOBJ with a number for the argument tuple
    [
      dict(rebuild, new Uint8Array([0x4b, 5, 0x81])),
      /torch\._utils\._rebuild_tensor_v2 without its arguments/,
      "no args",
    ],
    // arguments without a storage: _rebuild_tensor_v2(5, 0, (), ())
    [
      dict(rebuild, new Uint8Array([0x28, 0x4b, 5, 0x4b, 0, 0x29, 0x29, 0x74, 0x52])),
      /a tensor without a storage/,
      "no storage",
    ],
  ];
  for (const [bytes, what, label] of cases) {
    const path = await tempFile(bytes);
    await refused(path, new RegExp(`tensor "w": ${what.source}`), label);
    await Deno.remove(path);
  }
});

Deno.test("torch checkpoints: shared and cyclic containers beside the state dict are refused quickly", async () => {
  const sd = stateDictPickle([
    { name: "w", dtype: "float32", storage: "0", numel: 4, offset: 0, shape: [4], stride: [1] },
  ]);
  // the OrderedDict is still on the stack before STOP: set one more entry, "x"
  const withX = (...value: number[]) =>
    torchZip(cat(sd.subarray(0, -1), new Uint8Array([0x8c, 1, 0x78, ...value, 0x73, 0x2e])), [
      { name: "data/0", data: new Uint8Array(16) },
    ]);
  // x = x12 with x(k+1) = [xk] * 8: 8^12 paths through 13 lists
  const eightfold = [0x71, 0, 0x30, 0x28, ...Array(8).fill([0x68, 0]).flat(), 0x6c]; // BINPUT, POP, [memo] * 8
  const dag = withX(0x5d, ...Array.from({ length: 12 }, () => eightfold).flat());
  const cycle = withX(0x5d, 0x71, 0, 0x68, 0, 0x61); // x = []; x.append(x)
  for (
    const [bytes, what, label] of [[dag, /more than 200000 values/, "dag"], [
      cycle,
      /x(\.0)+: nested past 32 levels/,
      "cycle",
    ]] as const
  ) {
    const path = await tempFile(bytes);
    await refused(path, what, label);
    await Deno.remove(path);
  }
});

/** A legacy-format file: the three header pickles, `pkl`, the key list, the storages. */
function legacyFile(pkl: Uint8Array, storages: { key: string; count: bigint; data: Uint8Array }[]) {
  const magic = new Uint8Array([
    0x80,
    2,
    0x8a,
    10,
    0x6c,
    0xfc,
    0x9c,
    0x46,
    0xf9,
    0x20,
    0x6a,
    0xa8,
    0x50,
    0x19,
    0x2e,
  ]);
  const protocol = new Uint8Array([0x80, 2, 0x4d, 0xe9, 0x03, 0x2e]);
  const info = new Uint8Array([
    0x80,
    2,
    0x7d,
    0x8c,
    13,
    ...enc.encode("little_endian"),
    0x88,
    0x73,
    0x2e,
  ]);
  const keys = cat(
    new Uint8Array([0x80, 2, 0x28]),
    ...storages.map((s) => cat(new Uint8Array([0x8c, s.key.length]), enc.encode(s.key))),
    new Uint8Array([0x6c, 0x2e]), // LIST, STOP
  );
  return cat(
    magic,
    protocol,
    info,
    pkl,
    keys,
    ...storages.map((s) => cat(new Uint8Array(new BigInt64Array([s.count]).buffer), s.data)),
  );
}

Deno.test("torch checkpoints: huge declared sizes are refused before anything is allocated", async () => {
  const huge = 2 ** 40;
  const zipCases: [Partial<PickledTensor>, RegExp, string][] = [
    [
      { numel: huge, shape: [huge] },
      /member archive\/data\/0 has 16 bytes, not 4398046511104/,
      "storage",
    ],
    [
      { shape: [2 ** 30], stride: [0] },
      /tensor "blocks\.0\.weight": a view of 1073741824 elements/,
      "expanded view",
    ],
    [{ shape: [-1] }, /size \(-1\), stride \(1\)/, "a negative size"],
    [
      { shape: [2 ** 20, 2 ** 20, 2 ** 20], stride: [0, 0, 0] },
      /declares .* elements/,
      "a product past 2^53",
    ],
  ];
  for (const [t, what, label] of zipCases) {
    const path = await tempFile(oneTensor(t, 16));
    await refused(path, what, label);
    await Deno.remove(path);
  }
  // legacy: the element count before the bytes agrees with the pickle, but the file is short
  const pkl = stateDictPickle([
    {
      name: "w",
      dtype: "float32",
      storage: "7",
      numel: huge,
      offset: 0,
      shape: [huge],
      stride: [1],
    },
  ]);
  const path = await tempFile(
    legacyFile(pkl, [{ key: "7", count: BigInt(huge), data: new Uint8Array(16) }]),
  );
  await refused(path, /storage 7 \(4398046511104 bytes\) runs past the end/, "legacy storage");
  await Deno.remove(path);
  // the file itself: a zip directory that declares more entries than it has bytes for
  const zip = oneTensor({}, 16);
  const dv = new DataView(zip.buffer);
  dv.setUint16(zip.length - 22 + 10, 65535, true);
  const dir = await tempFile(zip);
  await refused(dir, /central directory \(65535 entries/, "zip directory");
  await Deno.remove(dir);
});

Deno.test("torch checkpoints: a deflated member that inflates past its declared size is refused", async () => {
  const bytes = await Deno.readFile(fx("sd_deflated.pt"));
  const dv = new DataView(bytes.buffer);
  let at = bytes.length - 22;
  at = dv.getUint32(at + 16, true); // the central directory; data.pkl comes first
  assertEquals(new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + 15)), "sd_zip/data.pkl");
  dv.setUint32(at + 24, dv.getUint32(at + 24, true) - 1, true);
  const path = await tempFile(bytes);
  await refused(path, /member sd_zip\/data\.pkl: cannot inflate/, "inflates past");
  await Deno.remove(path);
});

Deno.test("torch checkpoints: truncated files are refused at every cut", async () => {
  for (const fmt of ["zip", "legacy"]) {
    const whole = await Deno.readFile(fx(`sd_${fmt}.pt`));
    for (let cut = 1; cut < whole.length; cut += 61) {
      const path = await tempFile(whole.subarray(0, cut));
      const what = cut < 3
        ? /not a PyTorch checkpoint/
        : fmt === "zip"
        ? /not a zip file, or a truncated one/
        : /truncated|runs past the end/;
      await refused(path, what, `sd_${fmt}.pt cut at ${cut}`);
      await Deno.remove(path);
    }
  }
});

Deno.test("torch checkpoints: a bit flip in data.pkl is caught by its CRC-32", async () => {
  const whole = await Deno.readFile(fx("sd_zip.pt"));
  const zip = await openZip(fx("sd_zip.pt"));
  const member = zip.entries.get("sd_zip/data.pkl")!;
  zip.close();
  const local = new DataView(whole.buffer, member.localOffset);
  const start = member.localOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
  const size = member.size;
  assert(size > 1000, `data.pkl has ${size} bytes`);
  for (let i = start; i < start + size; i += 7) {
    const flipped = whole.slice();
    flipped[i] ^= 1 << (i % 8);
    const path = await tempFile(flipped);
    await refused(path, /sd_zip\/data\.pkl: CRC-32 mismatch/, `flip at ${i}`);
    await Deno.remove(path);
  }
});

/** Reads `bytes` as a checkpoint: it may read, or be refused, but fail no other way, quickly. */
async function readsOrRefuses(bytes: Uint8Array, label: string) {
  const path = await tempFile(bytes);
  const t0 = performance.now();
  try {
    await readTorchCheckpoint(path);
  } catch (e) {
    assert(
      e instanceof TorchCheckpointError,
      `${label}: ${(e as Error).name}: ${(e as Error).message}`,
    );
  }
  assert(performance.now() - t0 < BOUND_MS, `${label}: too slow`);
  await Deno.remove(path);
}

Deno.test("torch checkpoints: flipped pickles (legacy, or zip with a fresh CRC) read or are refused", async () => {
  // the legacy format has no checksum, and a hostile zip comes with right ones: a flip in a name
  // or a value can go unnoticed, but none may escape as anything but a TorchCheckpointError
  const legacy = await Deno.readFile(fx("sd_legacy.pt"));
  for (let i = 0; i < legacy.length; i += 5) {
    const flipped = legacy.slice();
    flipped[i] ^= 1 << (i % 8);
    await readsOrRefuses(flipped, `legacy flip at ${i}`);
  }
  const zip = await openZip(fx("sd_zip.pt"));
  const members = await Promise.all([...zip.entries.values()].map(async (e) => ({
    name: e.name.slice("sd_zip/".length),
    data: await zip.read(e),
  })));
  zip.close();
  const pkl = members.find((m) => m.name === "data.pkl")!.data;
  const storages = members.filter((m) => m.name.startsWith("data/"));
  for (let i = 0; i < pkl.length; i += 3) {
    const flipped = pkl.slice();
    flipped[i] ^= 1 << (i % 8);
    await readsOrRefuses(torchZip(flipped, storages), `data.pkl flip at ${i}`);
  }
});

Deno.test("torch checkpoints: the writer refuses tensors it cannot describe", () => {
  const bad: [string, { dtype?: "float16"; shape: number[]; data: Float32Array | Uint16Array }][] =
    [
      ["shape", { shape: [2, 3], data: new Float32Array(5) }],
      ["halves", { shape: [2], data: new Uint16Array(2) }],
      ["dtype", { dtype: "float16", shape: [2], data: new Float32Array(2) }],
    ];
  for (const [label, t] of bad) {
    let e: unknown = null;
    try {
      serializeTorchStateDict(new Map([["x", t]]), "out.pt");
    } catch (x) {
      e = x;
    }
    assert(e instanceof TorchCheckpointError, `${label}: ${e}`);
    assert((e as Error).message.startsWith('out.pt: tensor "x": '), (e as Error).message);
  }
});
