// Weight initialisers on the host, deterministic from a seed (as the references: truncated
// normal std 0.02 for transformer weights, zeros for biases, ones for norm gains).

/** A small seeded generator (mulberry32) with normal and truncated-normal draws. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  uniform(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = Math.max(1e-12, this.uniform());
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
  /** Fork a child stream (per layer) so adding a layer does not reshuffle the others. */
  fork(salt: number): Rng {
    return new Rng(Math.imul(this.#s ^ salt, 2654435761) + salt);
  }
}

export type Init =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "constant"; value: number }
  | { kind: "truncNormal"; std: number }
  | { kind: "xavierUniform"; fanIn: number; fanOut: number }
  | { kind: "kaimingUniform"; fanIn: number }
  /** Rows of smooth functions over a side x side grid (see fourierBasis2d). */
  | { kind: "fourier2d"; side: number };

/**
 * n / side^2 rows, each a function of the pixel (x, y) in [-1, 1]^2: 1, x, y, then cos and sin
 * of (pi / 2)(fx x + fy y) for integer frequencies in order of |f|. A heatmap blob at p with
 * mass s maps to about s * basis(p): the joint's position, smoothly encoded, from the start.
 */
function fourierBasis2d(out: Float32Array, side: number): void {
  const rows = out.length / (side * side);
  const freqs: [number, number][] = [];
  for (let r = 1; freqs.length < rows; r++) {
    for (let fx = -r; fx <= r; fx++) {
      for (let fy = -r; fy <= r; fy++) {
        const ring = Math.max(Math.abs(fx), Math.abs(fy)) === r;
        const canonical = fx > 0 || (fx === 0 && fy > 0); // f and -f give the same pair
        if (ring && canonical) freqs.push([fx, fy]);
      }
    }
  }
  const at = (i: number) => (2 * i + 1) / side - 1;
  for (let k = 0; k < rows; k++) {
    const f = freqs[(k - 3) >> 1];
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const px = at(x), py = at(y);
        out[k * side * side + y * side + x] = k === 0
          ? 1
          : k === 1
          ? px
          : k === 2
          ? py
          : ((k - 3) & 1 ? Math.sin : Math.cos)((Math.PI / 2) * (f[0] * px + f[1] * py));
      }
    }
  }
}

export function initValues(n: number, init: Init, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  switch (init.kind) {
    case "zeros":
      break;
    case "ones":
      out.fill(1);
      break;
    case "constant":
      out.fill(init.value);
      break;
    case "truncNormal":
      // timm's trunc_normal_: resample outside +-2 std
      for (let i = 0; i < n; i++) {
        let v = rng.normal();
        while (Math.abs(v) > 2) v = rng.normal();
        out[i] = v * init.std;
      }
      break;
    case "xavierUniform": {
      const a = Math.sqrt(6 / (init.fanIn + init.fanOut));
      for (let i = 0; i < n; i++) out[i] = (rng.uniform() * 2 - 1) * a;
      break;
    }
    case "kaimingUniform": {
      // torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
      const a = 1 / Math.sqrt(init.fanIn);
      for (let i = 0; i < n; i++) out[i] = (rng.uniform() * 2 - 1) * a;
      break;
    }
    case "fourier2d":
      fourierBasis2d(out, init.side);
      break;
  }
  return out;
}
