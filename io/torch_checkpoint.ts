/**
 * PyTorch checkpoints (`torch.save` files), read and written without running any of their code.
 *
 * ```ts
 * const ck = await readTorchCheckpoint("motionbert.bin", { toFloat32: true });
 * ck.tensors.get("blocks_st.0.attn_s.proj.weight"); // { dtype: "float32", shape, data }
 * ck.extras.get("epoch"); // 3: whatever else the file holds, tensors there only described
 * await writeTorchStateDict("out.pt", new Map([["w", { shape: [2, 2], data }]]));
 * ```
 *
 * Reading takes both of torch.save's formats: the zip format (PyTorch >= 1.6: `NAME/data.pkl`,
 * a storage a member `NAME/data/KEY`, read only when a tensor of the state dict needs it) and the
 * legacy stream (a magic-number pickle, the protocol, the system information, the object pickle,
 * then the storage keys, each storage's bytes after its element count). The pickle is read by
 * io/pickle.ts with an allow-list: tensors (`torch._utils._rebuild_tensor_v2`,
 * `_rebuild_parameter`), the typed storages (`torch.FloatStorage` ... `torch.BoolStorage`),
 * `collections.OrderedDict` and the plain builtins that reader already takes; any other global
 * (`os.system`, `builtins.eval`, a class) is refused with an error that names the file and the
 * global. Nothing is ever called: an allowed global only builds a record.
 *
 * The state dict is the top-level dict when it holds tensors, else its "state_dict", "model",
 * "model_pos", "model_state_dict", "module" or "net" entry (or `stateDictKey`); nested dicts
 * flatten to dotted names, and DataParallel's "module." prefix is removed when every name has
 * it. Everything else lands in `extras`, tensors there described (dtype, shape) but not read.
 * Tensors keep their dtype (float16 / bfloat16 as raw Uint16Array bits unless `toFloat32`);
 * storage offsets, shapes and strides are honoured and views materialised. Each size is checked
 * against the file before anything is allocated; errors name the file and the tensor.
 *
 * Writing produces the zip format that `torch.load` (1.13 on, `weights_only=True` included)
 * reads as an OrderedDict for `model.load_state_dict(sd, strict=True)`.
 * @module
 */
import { f16BitsToF32 } from "../runtime/dtype.ts";
import { writeAtomic } from "./atomic.ts";
import { located } from "./errors.ts";
import { parsePickleAt, PickleError, type PyObject, type PyValue } from "./pickle.ts";
import { openZip, type ZipReader, zipStored } from "./zip.ts";

export type TorchDtype =
  | "float32"
  | "float64"
  | "float16"
  | "bfloat16"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

export type TorchData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** A tensor: `data` in C order; float16 / bfloat16 as raw bits (Uint16Array) unless converted. */
export interface TorchTensor {
  dtype: TorchDtype;
  shape: number[];
  data: TorchData;
  /** The checkpoint's dtype when `toFloat32` converted it (dtype then reads "float32"). */
  from?: TorchDtype;
}

/** A tensor outside the state dict (an optimiser's moments): described, its data not read. */
export interface TensorInfo {
  readonly kind: "tensor";
  dtype: TorchDtype;
  shape: number[];
}

export type TorchExtra =
  | Exclude<PyValue, PyValue[] | Map<PyValue, PyValue>>
  | TensorInfo
  | TorchExtra[]
  | Map<PyValue, TorchExtra>;

export interface TorchCheckpoint {
  format: "zip" | "legacy";
  /** The state dict's tensors by name (dotted, any "module." prefix removed). */
  tensors: Map<string, TorchTensor>;
  /** Everything else: the wrapper's other entries ("epoch", "optimizer", ...), non-tensors. */
  extras: Map<string, TorchExtra>;
  /** The wrapper entry the state dict came from (null: the top level). */
  stateDictKey: string | null;
  /** The prefix removed from every name ("module." of DataParallel), else null. */
  strippedPrefix: string | null;
}

export interface ReadOptions {
  /** float16 and bfloat16 tensors as Float32Array (exact). Default false: raw bits. */
  toFloat32?: boolean;
  /** The wrapper entry that holds the state dict, when the default guess is wrong. */
  stateDictKey?: string;
  /** Keep DataParallel's "module." prefix. Default false. */
  keepPrefix?: boolean;
}

export class TorchCheckpointError extends Error {
  constructor(file: string, problem: string, key?: string) {
    super(`${file}: ${key !== undefined ? `tensor "${key}": ` : ""}${problem}`);
    this.name = "TorchCheckpointError";
    located(this, file, key);
  }
}

const STORAGES: Record<string, TorchDtype> = {
  "torch.FloatStorage": "float32",
  "torch.DoubleStorage": "float64",
  "torch.HalfStorage": "float16",
  "torch.BFloat16Storage": "bfloat16",
  "torch.LongStorage": "int64",
  "torch.IntStorage": "int32",
  "torch.ShortStorage": "int16",
  "torch.CharStorage": "int8",
  "torch.ByteStorage": "uint8",
  "torch.BoolStorage": "bool",
};
const STORAGE_OF = Object.fromEntries(
  Object.entries(STORAGES).map(([k, v]) => [v, k.slice("torch.".length)]),
) as Record<TorchDtype, string>;

const SIZE: Record<TorchDtype, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

const REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2";
const REBUILD_PARAMETER = [
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
];
const GLOBALS = new Set([...Object.keys(STORAGES), REBUILD_TENSOR, ...REBUILD_PARAMETER]);
const EXPECTED = "a tensor, storage or container type of a PyTorch state dict";
const WRAPPERS = ["state_dict", "model", "model_pos", "model_state_dict", "module", "net"];
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn, LEGACY_PROTOCOL = 1001;
/** Views that repeat elements (stride 0) may grow past their storage up to this many elements. */
const MAX_EXPANDED = 1 << 20;
/** Values looked at in the state dict and the extras; an optimiser's state is far below. */
const MAX_NODES = 200_000;

/** A storage as a persistent id declares it: `numel` elements from `offset` of a storage of
 * `rootNumel` (legacy storage views; elsewhere all of it). */
interface StorageRef {
  key: string;
  dtype: TorchDtype;
  numel: number;
  offset: number;
  rootNumel: number;
}

/** A tensor as the pickle describes it, before its data is read. */
interface TensorRef {
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

// ---------------------------------------------------------------------------------------------
// reading

/** Reads a torch.save file (zip or legacy format); see the module documentation. */
export async function readTorchCheckpoint(
  path: string,
  options: ReadOptions = {},
): Promise<TorchCheckpoint> {
  const head = new Uint8Array(4);
  try {
    const f = await Deno.open(path);
    await f.read(head).finally(() => f.close());
  } catch (e) {
    throw new TorchCheckpointError(path, `cannot read (${(e as Error).message})`);
  }
  const zip = head[0] === 0x50 && head[1] === 0x4b;
  if (!zip && !(head[0] === 0x80 && head[1] === 0x02 && head[2] === 0x8a)) {
    throw new TorchCheckpointError(
      path,
      "not a PyTorch checkpoint (neither a zip nor the legacy format's magic number)",
    );
  }
  try {
    return await (zip ? readZipFormat(path, options) : readLegacyFormat(path, options));
  } catch (e) {
    // a well-formed pickle can still hold values of the wrong kind where a tensor's are expected
    if (e instanceof TorchCheckpointError) throw e;
    throw new TorchCheckpointError(path, `malformed checkpoint (${(e as Error).message})`);
  }
}

/** The persistent-id loader shared by both formats: records each storage, returns a token. */
function storageLoader(file: string) {
  const tokens = new Map<PyObject, StorageRef>();
  const declared = new Map<string, StorageRef>();
  const load = (pid: PyValue): PyValue => {
    const fail = (problem: string): never => {
      throw new TorchCheckpointError(file, `persistent id ${describe(pid)}: ${problem}`);
    };
    if (!Array.isArray(pid) || pid[0] !== "storage") return fail("not a storage");
    if (pid.length !== 5 && pid.length !== 6) return fail("a storage id has 5 or 6 fields");
    const [, type, key, , numel, view] = pid;
    const typeName = (type as { name?: unknown } | null)?.name;
    const dtype = typeof typeName === "string" ? STORAGES[typeName] : undefined;
    if (!dtype) return fail("unknown storage type");
    if (typeof key !== "string") return fail("storage key is not a string");
    const n = count(numel) ?? fail(`storage of ${String(numel)} elements`);
    let ref: StorageRef = { key, dtype, numel: n, offset: 0, rootNumel: n };
    const seen = declared.get(key);
    if (seen && (seen.dtype !== dtype || seen.numel !== n)) {
      fail(`storage ${key} declared twice, as ${seen.numel} x ${seen.dtype} and ${n} x ${dtype}`);
    }
    declared.set(key, seen ?? ref);
    if (view !== null && view !== undefined) { // legacy storage view: (view_key, offset, size)
      const [, off, size] = Array.isArray(view) ? view : [];
      const o = count(off), s = count(size);
      if (o === null || s === null || o + s > n) fail("storage view outside its storage");
      ref = { key, dtype, numel: s!, offset: o!, rootNumel: n };
    }
    const token: PyObject = { kind: "object", cls: "torch.storage", args: [key], state: null };
    tokens.set(token, ref);
    return token;
  };
  return { load, tokens, declared };
}

/** An error's message without the "FILE: " that ZipError and PickleError start it with. */
function unprefixed(e: unknown, file: string): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.startsWith(`${file}: `) ? m.slice(file.length + 2) : m;
}

/** A non-negative safe integer, else null. */
function count(v: PyValue | undefined): number | null {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

/** A short rendering of a value for messages (bounded, whatever the value's size or shape). */
function describe(v: PyValue, budget = { left: 24 }): string {
  if (budget.left-- <= 0) return "...";
  if (v === null) return "None";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v);
  if (typeof v !== "object") return String(v);
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  const items = (xs: PyValue[], n: number) =>
    xs.slice(0, 6).map((x) => describe(x, budget)).join(", ") + (n > 6 ? ", ..." : "");
  if (Array.isArray(v)) return `(${items(v, v.length)})`;
  if (v instanceof Map) return `{${items([...v.keys()].slice(0, 6), v.size)}}`;
  const o = v as { cls?: string; name?: string; kind: string };
  return `<${o.cls ?? o.name ?? o.kind}>`;
}

/** Parses one pickle of a checkpoint; every failure becomes a TorchCheckpointError. */
function pickleAt(
  bytes: Uint8Array,
  start: number,
  file: string,
  member = "",
  persistentLoad?: (pid: PyValue) => PyValue,
): { value: PyValue; end: number } {
  try {
    return parsePickleAt(bytes, file, {
      start,
      globals: GLOBALS,
      expected: EXPECTED,
      persistentLoad,
    });
  } catch (e) {
    if (e instanceof TorchCheckpointError) throw e;
    // a damaged pickle can hand the opcodes values of the wrong kind (a dict that is no dict)
    const why = e instanceof PickleError
      ? unprefixed(e, file)
      : `malformed pickle (${(e as Error).message})`;
    throw new TorchCheckpointError(file, member ? `${member}: ${why}` : why);
  }
}

async function readZipFormat(path: string, options: ReadOptions): Promise<TorchCheckpoint> {
  let zip: ZipReader;
  try {
    zip = await openZip(path);
  } catch (e) {
    throw new TorchCheckpointError(path, unprefixed(e, path));
  }
  try {
    const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) {
      throw new TorchCheckpointError(path, `${pkls.length} NAME/data.pkl members, not one`);
    }
    const prefix = pkls[0].slice(0, -"data.pkl".length);
    const member = async (name: string, size?: number) => {
      const e = zip.entries.get(prefix + name);
      if (!e) throw new TorchCheckpointError(path, `no member ${prefix + name}`);
      if (size !== undefined && e.size !== size) {
        throw new TorchCheckpointError(path, `member ${e.name} has ${e.size} bytes, not ${size}`);
      }
      try {
        return await zip.read(e);
      } catch (x) {
        throw new TorchCheckpointError(path, unprefixed(x, path));
      }
    };
    if (zip.entries.has(prefix + "byteorder")) {
      const order = new TextDecoder().decode(await member("byteorder"));
      if (order !== "little") throw new TorchCheckpointError(path, `byte order "${order}"`);
    }
    const storages = storageLoader(path);
    const pkl = await member("data.pkl");
    const root = pickleAt(pkl, 0, path, pkls[0], storages.load).value;
    return await assemble(path, "zip", root, storages.tokens, options, (ref) => {
      // checked against the declared size before the member is read
      return member(`data/${ref.key}`, ref.rootNumel * SIZE[ref.dtype]);
    });
  } finally {
    zip.close();
  }
}

async function readLegacyFormat(path: string, options: ReadOptions): Promise<TorchCheckpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new TorchCheckpointError(path, `cannot read (${(e as Error).message})`);
  }
  const magic = pickleAt(bytes, 0, path);
  if (magic.value !== LEGACY_MAGIC) {
    throw new TorchCheckpointError(path, "legacy format without its magic number");
  }
  const protocol = pickleAt(bytes, magic.end, path);
  if (protocol.value !== LEGACY_PROTOCOL) {
    throw new TorchCheckpointError(path, `legacy protocol ${describe(protocol.value)}, not 1001`);
  }
  const info = pickleAt(bytes, protocol.end, path);
  if (!(info.value instanceof Map) || info.value.get("little_endian") !== true) {
    throw new TorchCheckpointError(path, "saved on a big-endian machine (or no system info)");
  }
  const storages = storageLoader(path);
  const object = pickleAt(bytes, info.end, path, "", storages.load);
  const keys = pickleAt(bytes, object.end, path);
  if (!Array.isArray(keys.value) || keys.value.some((k) => typeof k !== "string")) {
    throw new TorchCheckpointError(path, "the storage key list is not a list of strings");
  }
  // each storage: its element count (int64), then its bytes; only the offsets are taken here
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = new Map<string, number>();
  let p = keys.end;
  for (const key of keys.value as string[]) {
    const ref = storages.declared.get(key);
    if (!ref) throw new TorchCheckpointError(path, `storage ${key} is saved but never declared`);
    if (p + 8 > bytes.length) throw new TorchCheckpointError(path, `storage ${key}: truncated`);
    const n = dv.getBigInt64(p, true);
    if (n !== BigInt(ref.numel)) {
      throw new TorchCheckpointError(
        path,
        `storage ${key} holds ${n} elements, declared ${ref.numel}`,
      );
    }
    const len = ref.numel * SIZE[ref.dtype];
    if (p + 8 + len > bytes.length) {
      throw new TorchCheckpointError(path, `storage ${key} (${len} bytes) runs past the end`);
    }
    at.set(key, p + 8);
    p += 8 + len;
  }
  return await assemble(path, "legacy", object.value, storages.tokens, options, (ref) => {
    const start = at.get(ref.key);
    if (start === undefined) {
      throw new TorchCheckpointError(path, `storage ${ref.key} is declared but not saved`);
    }
    return Promise.resolve(bytes.subarray(start, start + ref.rootNumel * SIZE[ref.dtype]));
  });
}

/** Finds the state dict, reads its tensors, gathers the rest as extras. */
async function assemble(
  file: string,
  format: TorchCheckpoint["format"],
  root: PyValue,
  tokens: Map<PyObject, StorageRef>,
  options: ReadOptions,
  storageBytes: (ref: StorageRef) => Promise<Uint8Array>,
): Promise<TorchCheckpoint> {
  const tensorOf = (v: PyValue, name: string): TensorRef | null => {
    if (!isObject(v)) return null;
    if (v.cls === REBUILD_TENSOR || REBUILD_PARAMETER.includes(v.cls)) {
      if (!Array.isArray(v.args)) {
        throw new TorchCheckpointError(file, `${v.cls} without its arguments`, name);
      }
    }
    if (REBUILD_PARAMETER.includes(v.cls)) {
      const inner = tensorOf(v.args[0], name);
      if (!inner) throw new TorchCheckpointError(file, "a parameter that holds no tensor", name);
      return inner;
    }
    if (v.cls !== REBUILD_TENSOR) return null;
    const [storage, offset, size, stride] = v.args;
    const ref = isObject(storage) ? tokens.get(storage) : undefined;
    if (!ref) throw new TorchCheckpointError(file, "a tensor without a storage", name);
    const ints = (x: PyValue) => Array.isArray(x) ? x.map((d) => count(d)) : null;
    const shape = ints(size), strides = ints(stride), off = count(offset);
    if (!shape || !strides || off === null || shape.length !== strides.length) {
      throw new TorchCheckpointError(
        file,
        `bad size ${describe(size)} / stride ${describe(stride)} / offset ${describe(offset)}`,
        name,
      );
    }
    if (shape.includes(null) || strides.includes(null)) {
      throw new TorchCheckpointError(
        file,
        `size ${describe(size)}, stride ${describe(stride)}`,
        name,
      );
    }
    return { storage: ref, offset: off, shape: shape as number[], stride: strides as number[] };
  };

  // where the state dict is
  if (!(root instanceof Map)) {
    throw new TorchCheckpointError(file, `holds a ${kindOf(root)}, not a dict of tensors`);
  }
  // a budget on the values visited: shared containers (a list holding one list twice, over and
  // over) would otherwise take exponential time
  let nodes = 0;
  const visit = () => {
    if (++nodes > MAX_NODES) {
      throw new TorchCheckpointError(file, `more than ${MAX_NODES} values (shared containers?)`);
    }
  };
  const hasTensor = (m: PyValue) =>
    m instanceof Map &&
    [...m.entries()].some(([k, v]) => (visit(), tensorOf(v, String(k)) !== null));
  let key: string | null = null;
  if (options.stateDictKey !== undefined) {
    if (!(root.get(options.stateDictKey) instanceof Map)) {
      throw new TorchCheckpointError(file, `no dict "${options.stateDictKey}" in it`);
    }
    key = options.stateDictKey;
  } else if (!hasTensor(root)) {
    key = WRAPPERS.find((w) => hasTensor(root.get(w) ?? null)) ?? null;
    if (key === null) {
      const keys = [...root.keys()].map((k) => describe(k)).join(", ");
      throw new TorchCheckpointError(
        file,
        `no state dict found (top-level keys: ${keys}); name one with stateDictKey`,
      );
    }
  }
  const sd = (key === null ? root : root.get(key)) as Map<PyValue, PyValue>;

  // the state dict's tensors, flattened; everything else is an extra
  const refs = new Map<string, TensorRef>();
  const extras = new Map<string, TorchExtra>();
  const walk = (m: Map<PyValue, PyValue>, prefix: string, depth: number) => {
    for (const [k, v] of m) {
      visit();
      const name = prefix + String(k);
      const t = tensorOf(v, name);
      if (t) {
        if (refs.has(name)) throw new TorchCheckpointError(file, "appears twice", name);
        refs.set(name, t);
      } else if (v instanceof Map && hasTensor(v) && depth < 16) {
        walk(v, name + ".", depth + 1);
      } else if (!(k === "_metadata" && depth === 0)) { // OrderedDict's version attribute
        const path = (key === null ? "" : key + ".") + name;
        extras.set(path, extra(v, path, 0));
      }
    }
  };
  walk(sd, "", 0);
  for (const [k, v] of root) {
    if (key !== null && k !== key) extras.set(String(k), extra(v, String(k), 0));
  }

  // the "module." prefix of DataParallel
  const names = [...refs.keys()];
  const prefix = !options.keepPrefix && names.length && names.every((n) => n.startsWith("module."))
    ? "module."
    : null;

  // the data: each storage read once, each tensor checked against it first
  const loaded = new Map<string, Promise<Uint8Array>>();
  const tensors = new Map<string, TorchTensor>();
  for (const [name, ref] of refs) {
    const bytes = checkedView(file, name, ref);
    let raw = loaded.get(ref.storage.key);
    if (!raw) loaded.set(ref.storage.key, raw = storageBytes(ref.storage));
    const t = materialise(await raw, ref, bytes);
    tensors.set(prefix ? name.slice(prefix.length) : name, options.toFloat32 ? widen(t) : t);
  }
  return { format, tensors, extras, stateDictKey: key, strippedPrefix: prefix };

  function extra(v: PyValue, path: string, depth: number): TorchExtra {
    visit();
    if (depth > 32) {
      throw new TorchCheckpointError(file, `${path}: nested past 32 levels (a cycle?)`);
    }
    const t = tensorOf(v, path);
    if (t) return { kind: "tensor", dtype: t.storage.dtype, shape: t.shape };
    if (isObject(v) && tokens.has(v)) {
      const s = tokens.get(v)!;
      return { kind: "tensor", dtype: s.dtype, shape: [s.numel] };
    }
    if (Array.isArray(v)) return v.map((x, i) => extra(x, `${path}.${i}`, depth + 1));
    if (v instanceof Map) {
      return new Map([...v].map(([k, x]) => [k, extra(x, `${path}.${String(k)}`, depth + 1)]));
    }
    return v;
  }
}

function isObject(v: PyValue | undefined): v is PyObject {
  return !!v && typeof v === "object" && "kind" in v && v.kind === "object";
}

function kindOf(v: PyValue): string {
  if (v === null) return "None";
  if (Array.isArray(v)) return "list or tuple";
  if (isObject(v)) return v.cls;
  return typeof v;
}

/**
 * Checks a tensor's view against its storage before any data is touched: the furthest element
 * it reaches must lie inside, and views that repeat elements stay small. Returns its byte count.
 */
function checkedView(file: string, name: string, t: TensorRef): number {
  const numel = t.shape.includes(0) ? 0 : t.shape.reduce((a, b) => a * b, 1);
  let last = t.offset;
  for (let d = 0; d < t.shape.length; d++) last += (t.shape[d] - 1) * t.stride[d];
  const s = t.storage;
  if (!Number.isSafeInteger(numel)) {
    throw new TorchCheckpointError(file, `size [${t.shape}] declares ${numel} elements`, name);
  }
  if (numel > 0 && last >= s.numel) {
    throw new TorchCheckpointError(
      file,
      `size [${t.shape}] / stride [${t.stride}] at offset ${t.offset} reaches element ${last}` +
        ` of a ${s.numel}-element storage`,
      name,
    );
  }
  if (numel === 0 && t.offset > s.numel) {
    throw new TorchCheckpointError(file, `offset ${t.offset} past its storage`, name);
  }
  if (numel > s.numel && numel > MAX_EXPANDED) {
    throw new TorchCheckpointError(file, `a view of ${numel} elements over ${s.numel}`, name);
  }
  return numel * SIZE[s.dtype];
}

/** The tensor's elements in C order, copied out of its storage's bytes. */
function materialise(storage: Uint8Array, t: TensorRef, bytes: number): TorchTensor {
  const el = SIZE[t.storage.dtype], base = (t.storage.offset + t.offset) * el;
  const out = new Uint8Array(bytes);
  const contiguous = t.shape.every((n, d) =>
    n === 1 || t.stride[d] === t.shape.slice(d + 1).reduce((a, b) => a * b, 1)
  );
  if (contiguous) {
    out.set(storage.subarray(base, base + bytes));
  } else {
    const idx = t.shape.map(() => 0), rank = t.shape.length;
    let src = base;
    for (let i = 0; i < out.length; i += el) {
      out.set(storage.subarray(src, src + el), i);
      for (let d = rank - 1; d >= 0; d--) { // next index, odometer order
        src += t.stride[d] * el;
        if (++idx[d] < t.shape[d]) break;
        src -= t.shape[d] * t.stride[d] * el;
        idx[d] = 0;
      }
    }
  }
  return { dtype: t.storage.dtype, shape: t.shape, data: typedArray(t.storage.dtype, out.buffer) };
}

function typedArray(dtype: TorchDtype, b: ArrayBuffer): TorchData {
  switch (dtype) {
    case "float32":
      return new Float32Array(b);
    case "float64":
      return new Float64Array(b);
    case "float16":
    case "bfloat16":
      return new Uint16Array(b);
    case "int64":
      return new BigInt64Array(b);
    case "int32":
      return new Int32Array(b);
    case "int16":
      return new Int16Array(b);
    case "int8":
      return new Int8Array(b);
    case "uint8":
    case "bool":
      return new Uint8Array(b);
  }
}

/** float16 / bfloat16 bits as float32 values (exact); other dtypes unchanged. */
function widen(t: TorchTensor): TorchTensor {
  if (t.dtype !== "float16" && t.dtype !== "bfloat16") return t;
  const bits = t.data as Uint16Array, out = new Float32Array(bits.length);
  if (t.dtype === "float16") {
    for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32(bits[i]);
  } else {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  }
  return { dtype: "float32", shape: t.shape, data: out, from: t.dtype };
}

// ---------------------------------------------------------------------------------------------
// writing

/** A tensor to write: dtype defaults from the array (Uint16Array needs float16 / bfloat16). */
export interface TensorToWrite {
  dtype?: TorchDtype;
  shape: number[];
  data: TorchData;
}

/** One entry of a state-dict pickle: a tensor view of a storage (tests write false ones). */
export interface PickledTensor {
  name: string;
  dtype: TorchDtype;
  storage: string;
  numel: number;
  offset: number;
  shape: number[];
  stride: number[];
}

/**
 * Writes `tensors` as a zip-format checkpoint that `torch.load` reads as an OrderedDict state
 * dict; written atomically (a temporary file, then a rename).
 */
export async function writeTorchStateDict(
  path: string,
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
): Promise<void> {
  await writeAtomic(path, serializeTorchStateDict(tensors, path));
}

/** The bytes writeTorchStateDict writes. */
export function serializeTorchStateDict(
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  file = "<memory>",
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const pickled: PickledTensor[] = [];
  const members: { name: string; data: Uint8Array }[] = [];
  entries.forEach(([name, t], i) => {
    const dtype = t.dtype ?? dtypeOf(t.data);
    if (!dtype) {
      throw new TorchCheckpointError(file, "a Uint16Array needs dtype float16 or bfloat16", name);
    }
    if (!(t.data instanceof ARRAY_OF[dtype])) {
      throw new TorchCheckpointError(
        file,
        `dtype ${dtype} with a ${t.data.constructor.name}`,
        name,
      );
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || numel !== t.data.length) {
      throw new TorchCheckpointError(
        file,
        `shape [${t.shape}] for ${t.data.length} elements`,
        name,
      );
    }
    const stride = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    const key = String(i);
    pickled.push({ name, dtype, storage: key, numel, offset: 0, shape: t.shape, stride });
    const b = t.data;
    members.push({
      name: `data/${key}`,
      data: new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
    });
  });
  return torchZip(stateDictPickle(pickled), members);
}

const ARRAY_OF: Record<TorchDtype, abstract new (...a: never[]) => TorchData> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

function dtypeOf(a: TorchData): TorchDtype | null {
  if (a instanceof Float32Array) return "float32";
  if (a instanceof Float64Array) return "float64";
  if (a instanceof BigInt64Array) return "int64";
  if (a instanceof Int32Array) return "int32";
  if (a instanceof Int16Array) return "int16";
  if (a instanceof Int8Array) return "int8";
  if (a instanceof Uint8Array) return "uint8";
  return null;
}

/** A zip-format checkpoint from a data.pkl and its `data/KEY` members (PyTorch's layout). */
export function torchZip(pkl: Uint8Array, storages: { name: string; data: Uint8Array }[]) {
  const enc = new TextEncoder();
  return zipStored([
    { name: "archive/data.pkl", data: pkl },
    ...storages.map((s) => ({ name: `archive/${s.name}`, data: s.data })),
    { name: "archive/version", data: enc.encode("3\n") },
  ]);
}

/**
 * The data.pkl of a state dict (pickle protocol 2, as torch.save writes it): an OrderedDict of
 * `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`, each storage a
 * persistent id ("storage", torch.XStorage, key, "cpu", numel).
 */
export function stateDictPickle(tensors: PickledTensor[]): Uint8Array {
  const out: number[] = [];
  const enc = new TextEncoder();
  const memo = new Map<string, number>();
  const u32 = (n: number) => out.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
  const str = (s: string) => {
    const b = enc.encode(s);
    out.push(0x58), u32(b.length), out.push(...b); // BINUNICODE
  };
  const int = (n: number) => {
    if (n >= 0 && n < 256) out.push(0x4b, n); // BININT1
    else if (n >= 0 && n < 65536) out.push(0x4d, n & 0xff, n >> 8); // BININT2
    else if (n >= -(2 ** 31) && n < 2 ** 31) out.push(0x4a), u32(n); // BININT
    else { // LONG1: little-endian two's complement
      const b: number[] = [];
      for (let v = BigInt(n); b.length === 0 || (v !== 0n && v !== -1n); v >>= 8n) {
        b.push(Number(v & 0xffn));
      }
      if ((b[b.length - 1] & 0x80) !== (n < 0 ? 0x80 : 0)) b.push(n < 0 ? 0xff : 0);
      out.push(0x8a, b.length, ...b);
    }
  };
  const global = (mod: string, name: string) => {
    const k = `${mod}\n${name}\n`, i = memo.get(k);
    if (i !== undefined) {
      out.push(0x6a), u32(i); // LONG_BINGET
    } else {
      out.push(0x63, ...enc.encode(k), 0x72), u32(memo.size); // GLOBAL, LONG_BINPUT
      memo.set(k, memo.size);
    }
  };
  const tuple = (xs: number[]) => {
    if (!xs.length) out.push(0x29); // EMPTY_TUPLE
    else out.push(0x28), xs.forEach(int), out.push(0x74); // MARK ... TUPLE
  };
  const orderedDict = () => (global("collections", "OrderedDict"), out.push(0x29, 0x52));
  out.push(0x80, 2); // PROTO 2
  orderedDict();
  if (tensors.length) out.push(0x28); // MARK
  for (const t of tensors) {
    str(t.name);
    global("torch._utils", "_rebuild_tensor_v2");
    out.push(0x28, 0x28); // MARK (args), MARK (persistent id)
    str("storage"), global("torch", STORAGE_OF[t.dtype]), str(t.storage), str("cpu"), int(t.numel);
    out.push(0x74, 0x51); // TUPLE, BINPERSID
    int(t.offset), tuple(t.shape), tuple(t.stride);
    out.push(0x89); // NEWFALSE: requires_grad
    orderedDict(); // backward hooks
    out.push(0x74, 0x52); // TUPLE, REDUCE
  }
  if (tensors.length) out.push(0x75); // SETITEMS
  out.push(0x2e); // STOP
  return new Uint8Array(out);
}
