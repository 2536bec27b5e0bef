// The test command (`deno task test`): runs `deno test` over tests/, streams its output,
// and ends with the plain line CI reads: "N passed, N failed, N skipped". Skipped counts the
// tests and steps deno test ignored (hardware, a dataset or Chromium missing; each says why).
const args = ["test", "-A", "--no-check=remote", ...Deno.args];
if (!Deno.args.some((a) => !a.startsWith("-"))) args.push("tests/");
Deno.env.set("XDG_RUNTIME_DIR", Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp");
const child = new Deno.Command(Deno.execPath(), {
  args,
  stdout: "piped",
  stderr: "inherit",
  env: { NO_COLOR: "1" },
}).spawn();
let tail = "";
const dec = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + dec.decode(chunk)).slice(-4000);
}
const status = await child.status;
const m =
  /(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored(?: \((\d+) steps?\))?)?/
    .exec(tail);
if (m) {
  const skipped = Number(m[3] ?? 0) + Number(m[4] ?? 0);
  console.log(`${m[1]} passed, ${m[2]} failed, ${skipped} skipped`);
} else {
  // deno test died before its summary (type error, crash): count it as one failure.
  console.log("0 passed, 1 failed, 0 skipped");
}
Deno.exit(status.success && m ? 0 : 1);
