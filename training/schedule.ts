// Learning-rate schedules as pure functions of the optimiser step.
export interface Schedule {
  kind: "cosine" | "step" | "constant" | "exponential";
  /** Peak learning rate (after warm-up). */
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** exponential: the lr is multiplied by `gamma` after every epoch of this many steps. */
  stepsPerEpoch: number;
  /** step: multiply by `gamma` at each of these fractions of training. */
  milestones: number[];
  gamma: number;
  /** cosine: final learning rate as a fraction of the peak. */
  minRatio: number;
}

export function learningRate(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const p = Math.min(1, (step - s.warmupSteps) / span);
  switch (s.kind) {
    case "constant":
      return s.lr;
    case "cosine":
      return s.lr * (s.minRatio + (1 - s.minRatio) * 0.5 * (1 + Math.cos(Math.PI * p)));
    case "step":
      return s.lr * s.gamma ** s.milestones.filter((m) => p >= m).length;
    case "exponential": // per epoch, counted from the end of the warm-up
      return s.lr * s.gamma ** Math.floor((step - s.warmupSteps) / Math.max(1, s.stepsPerEpoch));
  }
}
