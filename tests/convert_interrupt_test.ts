// An interrupted conversion leaves nothing behind: Ctrl-C (SIGINT) or SIGTERM mid-write exits
// 130 or 143 with no output and no temporary file, a full disk exits 1 naming the output.
// Real subprocesses, signalled while their temporary stream file is growing.
import { encodeNpy } from "../io/png.ts";
import { assert, assertEquals } from "./assert.ts";
import { runCli } from "./cli_run.ts";
import { zipOf } from "./zip.ts";

async function ls(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** Sends `sig` once `file` has bytes in it (the conversion is mid-write). */
function signalWhenWriting(file: string, sig: Deno.Signal) {
  return (p: Deno.ChildProcess) => {
    (async () => {
      for (let k = 0; k < 3000; k++) {
        const size = (await Deno.stat(file).catch(() => null))?.size ?? 0;
        if (size > 0) return p.kill(sig);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
  };
}

Deno.test("interrupt: Ctrl-C mid-conversion exits 130 and leaves no file", async () => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/big.arrow`;
  const r = await runCli(["convert", "synth", "--subjects", "60", "-o", out], {
    onStart: signalWhenWriting(`${out}.stream.tmp`, "SIGINT"),
  });
  assertEquals(r.code, 130, r.stderr);
  assert(r.stderr.includes(`interrupted (SIGINT): nothing written to ${out}`), r.stderr);
  assertEquals(await ls(dir), []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("interrupt: SIGTERM during an in-memory .npz conversion exits 143, nothing left", async () => {
  const dir = await Deno.makeTempDir();
  // 1,500 samples of 64 frames x 2 persons x 25 joints x 3, compressed: a long loop over
  // memory with no file read to wait on
  const N = 1500, T = 64, W = 2 * 25 * 3;
  const x = new Float32Array(N * T * W).map((_, i) => 0.25 + (i % 7) / 8);
  const y = new Float32Array(N).map((_, i) => i % 10);
  await Deno.writeFile(
    `${dir}/in.npz`,
    zipOf([
      { name: "x_train.npy", bytes: encodeNpy(x, [N, T, W]), deflate: true },
      { name: "y_train.npy", bytes: encodeNpy(y, [N]), deflate: true },
    ]),
  );
  const out = `${dir}/out.arrow`;
  const r = await runCli(["convert", "numpy", `${dir}/in.npz`, "-o", out], {
    onStart: signalWhenWriting(`${out}.stream.tmp`, "SIGTERM"),
  });
  assertEquals(r.code, 143, r.stderr);
  assertEquals(await ls(dir), ["in.npz"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("interrupt: a full disk exits 1 naming the output, and leaves nothing", async () => {
  const dir = await Deno.makeTempDir();
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir],
    stderr: "piped",
  }).output().catch((e) => ({ success: false, stderr: new TextEncoder().encode(e.message) }));
  if (!mount.success) {
    console.warn(
      `skipped: cannot mount a small tmpfs to fill (${new TextDecoder().decode(mount.stderr)})`,
    );
    await Deno.remove(dir);
    return;
  }
  try {
    const out = `${dir}/out.arrow`;
    const r = await runCli(["convert", "synth", "-o", out]);
    assertEquals(r.code, 1, r.stderr);
    assert(r.stderr.includes(`${out}: cannot write it (No space left on device`), r.stderr);
    assertEquals(await ls(dir), []);
  } finally {
    await new Deno.Command("umount", { args: [dir] }).output();
    await Deno.remove(dir);
  }
});
