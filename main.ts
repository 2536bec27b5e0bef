#!/usr/bin/env -S deno run -A
// heatformer: transformers on 3D heatmap volumes for skeleton action recognition, on WebGPU.
// One entry for every subcommand; `heatformer --help` lists them.
import { Command, CommanderError } from "commander";
import { addBenchCommands } from "./cli/commands_bench.ts";
import { addDataCommands } from "./cli/commands_data.ts";
import { addModelCommands } from "./cli/commands_models.ts";
import { addSweepCommands } from "./cli/sweep.ts";
import { errorObject, EXIT, printJson } from "./cli/output.ts";

export const VERSION = "0.1.0";

export function buildCli(): Command {
  const program = new Command("heatformer")
    .version(VERSION)
    .description(
      "Transformers on PoseConv3D heatmap volumes for skeleton action recognition (WebGPU)",
    )
    .showHelpAfterError()
    .exitOverride();

  addModelCommands(program);
  addDataCommands(program);
  addSweepCommands(program);
  addBenchCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildCli();
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) Deno.exit(EXIT.ok);
      // commander has said it on stderr; a shell loop with --json gets the error object too
      if (argv.includes("--json")) printJson(errorObject(e, EXIT.usage));
      Deno.exit(EXIT.usage);
    }
    throw e;
  }
}

if (import.meta.main) {
  Deno.env.set("XDG_RUNTIME_DIR", Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp");
  await main(Deno.args);
  // Exit explicitly: a peer library (jax-js's WebAssembly threads) may keep the event loop
  // alive after the command has finished, and a shell loop must not wait on it.
  Deno.exit(EXIT.ok);
}
