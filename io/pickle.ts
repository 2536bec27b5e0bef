// A Python pickle reader for the annotation files of pyskl / mmaction2: protocols 2-5, the
// opcodes those files use, numpy arrays (numpy.core.multiarray._reconstruct + dtype + BUILD
// state, protocol 2's _codecs.encode bytes) and numpy scalars. Arrays are typed-array views
// into the file's bytes when aligned (a 1 GB file is not copied again), copies otherwise.
// Anything else (unknown opcodes, classes outside the allow-list) is refused by name.

import { located } from "./errors.ts";

export class PickleError extends Error {
  constructor(file: string, offset: number, problem: string) {
    super(`${file}: pickle byte ${offset}: ${problem}`);
    this.name = "PickleError";
    located(this, file, `byte ${offset}`);
  }
}

export type DtypeName =
  | "f2"
  | "f4"
  | "f8"
  | "i1"
  | "i2"
  | "i4"
  | "i8"
  | "u1"
  | "u2"
  | "u4"
  | "u8"
  | "b1";

export interface NdArray {
  readonly kind: "ndarray";
  dtype: DtypeName;
  shape: number[];
  data:
    | Float32Array
    | Float64Array
    | Uint16Array
    | Int8Array
    | Int16Array
    | Int32Array
    | BigInt64Array
    | Uint8Array
    | Uint32Array
    | BigUint64Array;
}

/** Python dicts become Maps (keys may be ints or tuples); tuples and lists become arrays. */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | Map<PyValue, PyValue>
  | NdArray
  | PyObject;

/** An object of an allowed class that is not otherwise modelled. */
export interface PyObject {
  readonly kind: "object";
  cls: string;
  args: PyValue[];
  state: PyValue;
}

interface Dtype {
  readonly kind: "dtype";
  name: DtypeName;
  order: string;
}

interface ArrayPending {
  readonly kind: "array-pending";
}

type Stack = (PyValue | Dtype | ArrayPending | typeof MARK | Callable)[];
const MARK = Symbol("mark");

interface Callable {
  readonly kind: "callable";
  name: string;
}

const ALLOWED = new Set([
  "numpy.core.multiarray._reconstruct",
  "numpy._core.multiarray._reconstruct",
  "numpy.core.multiarray.scalar",
  "numpy._core.multiarray.scalar",
  "numpy.core.numeric._frombuffer",
  "numpy._core.numeric._frombuffer",
  "numpy.ndarray",
  "numpy.dtype",
  "_codecs.encode",
  "builtins.set",
  "builtins.frozenset",
  "builtins.bytearray",
  "builtins.slice",
  "collections.OrderedDict",
  "__builtin__.set",
]);

/** Hooks for pickles other than pyskl annotations (PyTorch checkpoints: io/torch_checkpoint.ts). */
export interface PickleOptions {
  /** Globals allowed beyond the annotation ones; calling one builds a PyObject, never runs code. */
  globals?: ReadonlySet<string>;
  /** What a refused global is not, for the message (default "a pyskl annotation type"). */
  expected?: string;
  /** Resolves the persistent ids of BINPERSID / PERSID (refused without it). */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** Where the pickle starts in `bytes` (files that hold several pickles in a row). */
  start?: number;
}

function dtypeFrom(s: string, file: string, at: number): DtypeName {
  const m = /^[<>|=]?([fiub])(\d)$/.exec(s) ?? /^(float|int|uint|bool)(\d*)$/.exec(s);
  const map: Record<string, DtypeName> = {
    f2: "f2",
    f4: "f4",
    f8: "f8",
    i1: "i1",
    i2: "i2",
    i4: "i4",
    i8: "i8",
    u1: "u1",
    u2: "u2",
    u4: "u4",
    u8: "u8",
    b1: "b1",
    float16: "f2",
    float32: "f4",
    float64: "f8",
    int8: "i1",
    int16: "i2",
    int32: "i4",
    int64: "i8",
    uint8: "u1",
    bool: "b1",
  };
  const key = m ? (m[1].length === 1 ? m[1] + m[2] : m[1] + m[2]) : s;
  const d = map[key];
  if (!d) throw new PickleError(file, at, `unsupported numpy dtype "${s}"`);
  return d;
}

const SIZE: Record<DtypeName, number> = {
  f2: 2,
  f4: 4,
  f8: 8,
  i1: 1,
  i2: 2,
  i4: 4,
  i8: 8,
  u1: 1,
  u2: 2,
  u4: 4,
  u8: 8,
  b1: 1,
};

function typed(d: DtypeName, bytes: Uint8Array, count: number): NdArray["data"] {
  const aligned = bytes.byteOffset % SIZE[d] === 0;
  const b = aligned ? bytes : bytes.slice(); // copy only when misaligned
  const buf = b.buffer as ArrayBuffer, off = b.byteOffset;
  switch (d) {
    case "f2":
      return new Uint16Array(buf, off, count);
    case "f4":
      return new Float32Array(buf, off, count);
    case "f8":
      return new Float64Array(buf, off, count);
    case "i1":
      return new Int8Array(buf, off, count);
    case "i2":
      return new Int16Array(buf, off, count);
    case "i4":
      return new Int32Array(buf, off, count);
    case "i8":
      return new BigInt64Array(buf, off, count);
    case "u1":
    case "b1":
      return new Uint8Array(buf, off, count);
    case "u2":
      return new Uint16Array(buf, off, count);
    case "u4":
      return new Uint32Array(buf, off, count);
    case "u8":
      return new BigUint64Array(buf, off, count);
  }
}

export function parsePickle(
  bytes: Uint8Array,
  file = "<memory>",
  options: PickleOptions = {},
): PyValue {
  return parsePickleAt(bytes, file, options).value;
}

/** parsePickle, also returning `end`: the byte after the pickle's STOP. */
export function parsePickleAt(
  bytes: Uint8Array,
  file = "<memory>",
  options: PickleOptions = {},
): { value: PyValue; end: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = options.start ?? 0;
  const stack: Stack = [];
  const memo: (Stack[number])[] = [];
  const pending = new Map<ArrayPending, NdArray>();
  const fail = (msg: string): never => {
    throw new PickleError(file, p, msg);
  };
  const need = (n: number) => {
    if (p + n > bytes.length) fail("truncated");
  };
  const u8 = () => (need(1), bytes[p++]);
  const u16 = () => (need(2), p += 2, dv.getUint16(p - 2, true));
  const u32 = () => (need(4), p += 4, dv.getUint32(p - 4, true));
  const i32 = () => (need(4), p += 4, dv.getInt32(p - 4, true));
  const u64 = () => (need(8), p += 8, Number(dv.getBigUint64(p - 8, true)));
  const take = (n: number) => (need(n), p += n, bytes.subarray(p - n, p));
  const utf8 = (b: Uint8Array) => new TextDecoder().decode(b);
  const line = () => {
    const e = bytes.indexOf(10, p);
    if (e < 0) fail("truncated line");
    const s = new TextDecoder().decode(bytes.subarray(p, e));
    p = e + 1;
    return s;
  };
  const pop = () => (stack.length ? stack.pop()! : fail("stack underflow"));
  const popMark = (): Stack => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail("no MARK on the stack");
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const top = () => (stack.length ? stack[stack.length - 1] : fail("empty stack"));
  const longFrom = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  };

  const call = (fn: Callable, args: PyValue[]): Stack[number] => {
    switch (fn.name) {
      case "_codecs.encode": {
        const s = args[0] as string;
        return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff); // latin1
      }
      case "numpy.dtype": {
        const name = dtypeFrom(String(args[0]), file, p);
        return { kind: "dtype", name, order: "<" } as Dtype;
      }
      case "numpy.core.multiarray._reconstruct":
      case "numpy._core.multiarray._reconstruct": {
        const a: ArrayPending = { kind: "array-pending" };
        pending.set(a, { kind: "ndarray", dtype: "u1", shape: [0], data: new Uint8Array(0) });
        return a;
      }
      case "numpy.core.numeric._frombuffer":
      case "numpy._core.numeric._frombuffer": {
        // protocol 5: (buffer, dtype, shape, order)
        const [buf, d, shape, order] = args as unknown as [Uint8Array, Dtype, number[], string];
        const dims = (shape as number[]).map(Number);
        const count = dims.reduce((a, b) => a * b, 1);
        if (!(buf instanceof Uint8Array) || buf.length !== count * SIZE[d.name]) {
          fail("numpy _frombuffer: buffer size does not match");
        }
        if (order === "F" && dims.length > 1) {
          fail("Fortran-ordered numpy arrays are not supported");
        }
        return {
          kind: "ndarray",
          dtype: d.name,
          shape: dims,
          data: typed(d.name, buf, count),
        } as NdArray;
      }
      case "numpy.core.multiarray.scalar":
      case "numpy._core.multiarray.scalar": {
        const d = args[0] as unknown as Dtype;
        const raw = args[1] as Uint8Array;
        const v = typed(d.name, raw, 1)[0];
        return typeof v === "bigint"
          ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v)
          : d.name === "f2"
          ? f16(v as number)
          : (v as number);
      }
      case "builtins.set":
      case "builtins.frozenset":
      case "__builtin__.set":
        return (args[0] as PyValue[] | undefined) ?? [];
      case "builtins.bytearray":
        return args[0] instanceof Uint8Array ? args[0] : new Uint8Array(0);
      case "collections.OrderedDict":
        return new Map();
      default:
        return { kind: "object", cls: fn.name, args, state: null } as PyObject;
    }
  };

  const build = (obj: Stack[number], state: PyValue) => {
    if (obj && typeof obj === "object" && "kind" in obj && obj.kind === "array-pending") {
      // numpy ndarray __setstate__: (version, shape, dtype, is_fortran, data)
      const st = state as unknown as [number, number[], Dtype, boolean, Uint8Array | PyValue[]];
      const [, shape, dtype, fortran, raw] = st.length === 5
        ? st
        : [1, ...st] as unknown as typeof st;
      const count = (shape as number[]).reduce((a, b) => a * Number(b), 1);
      if (!(raw instanceof Uint8Array)) {
        fail(`numpy array data as a Python list is not supported (object arrays?)`);
      }
      const rawBytes = raw as Uint8Array;
      if (rawBytes.length !== count * SIZE[dtype.name]) {
        fail(`numpy array of ${count} x ${dtype.name} has ${rawBytes.length} bytes`);
      }
      if (dtype.order === ">") fail("big-endian numpy arrays are not supported");
      const arr = pending.get(obj as ArrayPending)!;
      arr.dtype = dtype.name;
      arr.shape = (shape as number[]).map(Number);
      arr.data = typed(dtype.name, rawBytes, count);
      if (fortran && arr.shape.length > 1) fail("Fortran-ordered numpy arrays are not supported");
      return;
    }
    if (obj && typeof obj === "object" && "kind" in obj && obj.kind === "dtype") {
      const st = state as PyValue[];
      (obj as Dtype).order = String(st?.[1] ?? "<");
      return;
    }
    if (obj instanceof Map && state instanceof Map) {
      for (const [k, v] of state) obj.set(k, v);
      return;
    }
    if (obj && typeof obj === "object" && "kind" in obj && obj.kind === "object") {
      (obj as PyObject).state = state;
      return;
    }
    fail("BUILD on an object that takes no state");
  };

  const resolve = (v: Stack[number]): PyValue => {
    if (v && typeof v === "object" && "kind" in v && v.kind === "array-pending") {
      return pending.get(v as ArrayPending)!;
    }
    return v as PyValue;
  };

  for (;;) {
    const at = p;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) throw new PickleError(file, at, `pickle protocol ${v} is newer than 5`);
        break;
      }
      case 0x95:
        u64();
        break; // FRAME
      case 0x2e: { // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        const value = resolve(stack[0]); // nothing to resolve below when no array is pending
        return { value: pending.size ? deepResolve(value, pending) : value, end: p };
      }
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push([]);
        break; // EMPTY_TUPLE
      case 0x8f:
        stack.push([]);
        break; // EMPTY_SET
      case 0x28:
        stack.push(MARK);
        break; // MARK
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x4b:
        stack.push(u8());
        break; // BININT1
      case 0x4d:
        stack.push(u16());
        break; // BININT2
      case 0x4a:
        stack.push(i32());
        break; // BININT
      case 0x8a:
        stack.push(longFrom(take(u8())));
        break; // LONG1
      case 0x8b:
        stack.push(longFrom(take(u32())));
        break; // LONG4
      case 0x47: {
        need(8);
        p += 8;
        stack.push(dv.getFloat64(p - 8, false));
        break;
      } // BINFLOAT
      case 0x49: {
        const s = line();
        stack.push(s === "01" ? true : s === "00" ? false : Number(s));
        break;
      } // INT
      case 0x4c:
        stack.push(Number(line().replace(/L$/, "")));
        break; // LONG
      case 0x46:
        stack.push(Number(line()));
        break; // FLOAT
      case 0x58:
        stack.push(utf8(take(u32())));
        break; // BINUNICODE
      case 0x8c:
        stack.push(utf8(take(u8())));
        break; // SHORT_BINUNICODE
      case 0x8d:
        stack.push(utf8(take(u64())));
        break; // BINUNICODE8
      case 0x55:
        stack.push(new TextDecoder("latin1").decode(take(u8())));
        break; // SHORT_BINSTRING
      case 0x54:
        stack.push(new TextDecoder("latin1").decode(take(u32())));
        break; // BINSTRING
      case 0x43:
        stack.push(take(u8()));
        break; // SHORT_BINBYTES
      case 0x42:
        stack.push(take(u32()));
        break; // BINBYTES
      case 0x8e:
        stack.push(take(u64()));
        break; // BINBYTES8
      case 0x96:
        stack.push(take(u64()));
        break; // BYTEARRAY8
      case 0x94:
        memo.push(top());
        break; // MEMOIZE
      case 0x71:
        memo[u8()] = top();
        break; // BINPUT
      case 0x72:
        memo[u32()] = top();
        break; // LONG_BINPUT
      case 0x70:
        memo[Number(line())] = top();
        break; // PUT
      case 0x68: {
        const i = u8();
        if (!(i in memo)) fail(`BINGET of unknown memo ${i}`);
        stack.push(memo[i]);
        break;
      }
      case 0x6a: {
        const i = u32();
        if (!(i in memo)) fail(`LONG_BINGET of unknown memo ${i}`);
        stack.push(memo[i]);
        break;
      }
      case 0x67: {
        const i = Number(line());
        stack.push(memo[i]);
        break;
      } // GET
      case 0x30:
        pop();
        break; // POP
      case 0x31:
        popMark();
        break; // POP_MARK
      case 0x32:
        stack.push(top());
        break; // DUP
      case 0x85:
        stack.push([resolve(pop())]);
        break; // TUPLE1
      case 0x86: {
        const b = resolve(pop()), a = resolve(pop());
        stack.push([a, b]);
        break;
      } // TUPLE2
      case 0x87: {
        const c = resolve(pop()), b = resolve(pop()), a = resolve(pop());
        stack.push([a, b, c]);
        break;
      }
      case 0x74:
        stack.push(popMark().map(resolve));
        break; // TUPLE
      case 0x6c:
        stack.push(popMark().map(resolve));
        break; // LIST
      case 0x64: { // DICT
        const items = popMark();
        const d = new Map<PyValue, PyValue>();
        for (let i = 0; i < items.length; i += 2) d.set(resolve(items[i]), resolve(items[i + 1]));
        stack.push(d);
        break;
      }
      case 0x61: {
        const v = resolve(pop());
        (top() as PyValue[]).push(v);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark().map(resolve);
        (top() as PyValue[]).push(...items);
        break;
      } // APPENDS
      case 0x90: {
        const items = popMark().map(resolve);
        (top() as PyValue[]).push(...items);
        break;
      } // ADDITEMS
      case 0x91:
        stack.push(popMark().map(resolve));
        break; // FROZENSET
      case 0x73: { // SETITEM
        const v = resolve(pop()), k = resolve(pop());
        const d = top();
        if (!(d instanceof Map)) fail("SETITEM on a non-dict");
        (d as Map<PyValue, PyValue>).set(k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        const d = top();
        if (!(d instanceof Map)) fail("SETITEMS on a non-dict");
        for (let i = 0; i < items.length; i += 2) {
          (d as Map<PyValue, PyValue>).set(resolve(items[i]), resolve(items[i + 1]));
        }
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const mod = line(), name = line();
        const full = `${mod}.${name}`;
        if (!ALLOWED.has(full) && !options.globals?.has(full)) {
          throw new PickleError(
            file,
            at,
            `refusing to load class ${full} (not ${options.expected ?? "a pyskl annotation type"})`,
          );
        }
        stack.push({ kind: "callable", name: full });
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop() as string, mod = pop() as string;
        const full = `${mod}.${name}`;
        if (!ALLOWED.has(full) && !options.globals?.has(full)) {
          throw new PickleError(
            file,
            at,
            `refusing to load class ${full} (not ${options.expected ?? "a pyskl annotation type"})`,
          );
        }
        stack.push({ kind: "callable", name: full });
        break;
      }
      case 0x52: { // REDUCE
        const args = pop() as PyValue[];
        const fn = pop() as Stack[number];
        if (!fn || typeof fn !== "object" || !("kind" in fn) || fn.kind !== "callable") {
          fail("REDUCE on a non-callable");
        }
        stack.push(call(fn as Callable, (args ?? []).map((a) => a as PyValue)));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop() as PyValue[];
        const cls = pop() as Stack[number];
        stack.push(call(cls as Callable, args));
        break;
      }
      case 0x62: {
        const state = resolve(pop());
        build(top(), state);
        break;
      } // BUILD
      case 0x51: // BINPERSID
      case 0x50: { // PERSID
        const pid = op === 0x51 ? resolve(pop()) : line();
        if (!options.persistentLoad) fail("persistent id in a pickle that takes none");
        stack.push(options.persistentLoad!(pid));
        break;
      }
      case 0x97:
      case 0x98:
        throw new PickleError(
          file,
          at,
          "out-of-band buffers (protocol 5 NEXT_BUFFER) are not supported in files",
        );
      default:
        throw new PickleError(file, at, `unknown opcode 0x${op.toString(16).padStart(2, "0")}`);
    }
  }
}

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function deepResolve(v: PyValue, pending: Map<ArrayPending, NdArray>, depth = 0): PyValue {
  if (depth > 64 || v === null || typeof v !== "object") return v;
  if ("kind" in v && (v as { kind: string }).kind === "array-pending") {
    return pending.get(v as unknown as ArrayPending)!;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = deepResolve(v[i], pending, depth + 1);
  } else if (v instanceof Map) {
    for (const [k, x] of v) v.set(k, deepResolve(x, pending, depth + 1));
  }
  return v;
}

export async function readPickle(path: string): Promise<PyValue> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new PickleError(path, 0, `cannot read (${(e as Error).message})`);
  }
  try {
    return parsePickle(bytes, path);
  } catch (e) {
    if (e instanceof PickleError) throw e;
    // a damaged pickle can hand the opcodes values of the wrong kind (a shape that is no list)
    throw new PickleError(path, 0, `malformed (${(e as Error).message})`);
  }
}
