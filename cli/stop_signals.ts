// Signals that stop a training run cleanly: it finishes its step, saves `last` and exits, so
// that `--resume` (or a requeued Slurm task) continues exactly. SIGINT (Ctrl-C; a second one
// quits at once), SIGTERM (what `kill`, `scancel` and Slurm's preemption send) and SIGUSR1
// (the warning `sbatch --signal=USR1@SECONDS` sends before a time limit).
const SIGNALS = { SIGINT: 2, SIGUSR1: 10, SIGTERM: 15 } as const;
type StopSignal = keyof typeof SIGNALS;

export class StopSignals {
  /** The first signal received, or null. */
  signal: StopSignal | null = null;
  readonly #handlers: [StopSignal, () => void][] = [];

  constructor(say: (line: string) => void = (l) => console.error(l)) {
    for (const name of Object.keys(SIGNALS) as StopSignal[]) {
      const handler = () => {
        if (this.signal === "SIGINT" && name === "SIGINT") Deno.exit(130);
        if (this.signal) return;
        this.signal = name;
        say(
          `\n${name}: stopping after this step and saving` +
            (name === "SIGINT" ? " (Ctrl-C again to quit at once)" : ""),
        );
      };
      Deno.addSignalListener(name, handler);
      this.#handlers.push([name, handler]);
    }
  }

  get stopped(): boolean {
    return this.signal !== null;
  }

  /** The exit status of a run stopped by the signal: 128 + its number (130 for SIGINT). */
  get exitCode(): number {
    return this.signal ? 128 + SIGNALS[this.signal] : 0;
  }

  dispose(): void {
    for (const [name, h] of this.#handlers) Deno.removeSignalListener(name, h);
  }
}
