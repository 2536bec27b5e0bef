// MotionBERT's official checkpoints, end to end: a random ActionNet saved by PyTorch's
// torch.save (zip and legacy formats, DataParallel names, a pretraining backbone) is imported
// as a run folder whose logits on the same tensor (`predict --raw`) match PyTorch's; the run
// exported back is taken by PyTorch's load_state_dict(strict=True) with the same logits.
import { fileURLToPath } from "node:url";
import { readNpy } from "../io/npy.ts";
import { assert, assertEquals } from "./assert.ts";
import { runCli } from "./cli.ts";
import { TINY, tinyData } from "./tiny.ts";

const SCRIPT = fileURLToPath(new URL("./fixtures/motionbert_roundtrip.py", import.meta.url));
const TORCH = "/usr/bin/python3";

async function python(args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  try {
    const o = await new Deno.Command(TORCH, {
      args: [SCRIPT, ...args],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const dec = new TextDecoder();
    return { ok: o.success, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
  } catch (e) {
    return { ok: false, out: "", err: (e as Error).message };
  }
}

const noTorch = await new Deno.Command(TORCH, {
  args: ["-c", "import torch"],
  stdout: "null",
  stderr: "null",
})
  .output().then((o) => o.success ? "" : "torch does not import", () => `${TORCH} is missing`);
if (noTorch) {
  console.log(
    `skipping the MotionBERT checkpoint tests: ${noTorch} (apt-get install python3-torch)`,
  );
}

/** `heatformer import motionbert CKPT -o OUT --heads 4 ...`. */
const importMb = (ckpt: string, out: string, ...more: string[]) =>
  runCli(["import", "motionbert", ckpt, "-o", out, "--heads", "4", ...more]);

const logitsOf = (stdout: string) =>
  stdout.trim().split("\n").flatMap((l) => JSON.parse(l).logits as number[]);

function close(got: number[], want: ArrayLike<number>, what: string): void {
  assertEquals(got.length, want.length, what);
  const scale = Math.max(...Array.from(want, Math.abs));
  got.forEach((v, i) =>
    assert(Math.abs(v - want[i]) <= 1e-4 * scale, `${what}[${i}]: ${v} vs ${want[i]}`)
  );
}

Deno.test({
  name: "motionbert: torch.save checkpoints import; logits match PyTorch; export loads strictly",
  ignore: noTorch !== "",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const made = await python(["make", dir]);
    assert(made.ok, made.err);
    const want = (await readNpy(`${dir}/logits.npy`)).data;
    for (const ck of ["action_zip", "action_legacy"]) {
      const im = await importMb(`${dir}/${ck}.bin`, `${dir}/${ck}`, "--json");
      assertEquals(im.code, 0, im.stderr);
      const r = JSON.parse(im.stdout);
      assertEquals([r.missing, r.unexpected, r.mismatched], [[], [], []]);
      assertEquals([r.architecture.width, r.architecture.depth, r.architecture.classes], [
        24,
        2,
        5,
      ]);
      // its data: COCO-17 read in H36M's order, the scores left in COCO's (MotionBERT's pipeline)
      const run = JSON.parse(await Deno.readTextFile(`${dir}/${ck}/config.json`));
      assertEquals([run.data.layout, run.data.layoutScores], ["h36m17", "source"]);
      const p = await runCli(["predict", `${dir}/${ck}`, `${dir}/x.npy`, "--raw", "--json"]);
      assertEquals(p.code, 0, p.stderr);
      close(logitsOf(p.stdout), want, ck);
    }
    // back to PyTorch: strict load, same logits
    const ex = await runCli(["export", "motionbert", `${dir}/action_zip`, "-o", `${dir}/out.pt`]);
    assertEquals(ex.code, 0, ex.stderr);
    const back = await python(["logits", `${dir}/out.pt`, `${dir}/x.npy`]);
    assert(back.ok, back.err);
    close((JSON.parse(back.out) as number[][]).flat(), want, "exported");
    // a pretraining checkpoint: the backbone loads, the head starts fresh (reported missing)
    const pre = await importMb(`${dir}/pretrain.bin`, `${dir}/pre`, "--classes", "7", "--json");
    assertEquals(pre.code, 0, pre.stderr);
    const pr = JSON.parse(pre.stdout);
    assert(
      pr.missing.length > 0 && pr.missing.every((n: string) => n.startsWith("head.")),
      pre.stdout,
    );
    assertEquals([pr.unexpected, pr.architecture.classes], [[], 7]);
    // a wrong head count is named
    const bad = await runCli([
      "import",
      "motionbert",
      `${dir}/action_zip.bin`,
      "-o",
      `${dir}/bad`,
      "--heads",
      "5",
    ]);
    assert(
      bad.code !== 0 && bad.stderr.includes("--heads: 5 does not divide the width 24"),
      bad.stderr,
    );
    // a heatmap DSTformer of the same widths starts from the keypoint checkpoint: the encoder
    // loads, its input embedding (and the 25-joint tables and head) start fresh
    const data = await tinyData(dir);
    const flags = ["--model", "motionbert-tiny", "--width", "24", "--depth", "2", "--heads", "4"];
    const tr = await runCli([
      "train",
      ...flags,
      ...TINY,
      "--set",
      "model.repDim=16",
      "--data",
      data,
      "--epochs",
      "1",
      "--init",
      `${dir}/action_zip.bin`,
      "--out",
      `${dir}/heat`,
    ]);
    assertEquals(tr.code, 0, tr.stderr);
    const init = JSON.parse(await Deno.readTextFile(`${dir}/heat/config.json`)).record.init;
    const fresh = init.mismatched.map((m: { name: string }) => m.name);
    assert(
      fresh.includes("joints_embed.weight") && fresh.includes("pos_embed.weight"),
      JSON.stringify(init),
    );
    assert(init.loaded >= 2 * 4 * 12 && init.unexpected.length === 0, JSON.stringify(init));
    await Deno.remove(dir, { recursive: true });
  },
});
