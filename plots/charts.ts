// The charts of a run as Vega-Lite specifications (data in, specification out): training
// curves, confusion matrix, per-class accuracy, and the curves of several runs overlaid.
import type { TopLevelSpec } from "vega-lite";

/** One metrics.jsonl line, as the charts read it (older runs lack the loss curve). */
export interface MetricsLine {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valAccuracy: number | null;
  lr: number;
  lossCurve?: number[];
}

const WIDTH = 520;
const pct = (v: number) => Math.round(v * 10000) / 100;

/** Loss per logging interval at fractional epochs (the last point of epoch e at e). */
function intervalPoints(m: MetricsLine[]): { epoch: number; value: number }[] {
  return m.flatMap((l) =>
    (l.lossCurve ?? []).map((v, k, a) => ({ epoch: l.epoch - 1 + (k + 1) / a.length, value: v }))
  );
}

/** Training curves: top-1 (train, validation), loss (per epoch and per interval), lr. */
export function curvesSpec(m: MetricsLine[], title: string): TopLevelSpec {
  const x = { field: "epoch", type: "quantitative", title: "epoch", scale: { domainMin: 0 } };
  const acc = m.flatMap((l) => [
    { epoch: l.epoch, value: pct(l.trainAccuracy), series: "train" },
    ...(l.valAccuracy === null || Number.isNaN(l.valAccuracy)
      ? []
      : [{ epoch: l.epoch, value: pct(l.valAccuracy), series: "validation" }]),
  ]);
  const loss = [
    ...intervalPoints(m).map((p) => ({ ...p, series: "train, per interval" })),
    ...m.map((l) => ({ epoch: l.epoch, value: l.trainLoss, series: "train, epoch mean" })),
  ];
  const line = (data: object[], y: string, legend: string, extra: object = {}) => ({
    width: WIDTH,
    height: 170,
    data: { values: data },
    mark: { type: "line", point: data.length < 60, ...extra },
    encoding: {
      x,
      y: { field: "value", type: "quantitative", title: y, scale: { zero: false } },
      color: { field: "series", type: "nominal", title: legend },
    },
  });
  return {
    title: { text: title, fontSize: 15 },
    vconcat: [
      line(acc, "top-1 (%)", "top-1"),
      line(loss, "cross-entropy loss", "loss", { strokeWidth: 1.5 }),
      {
        width: WIDTH,
        height: 90,
        data: { values: m.map((l) => ({ epoch: l.epoch, lr: l.lr })) },
        mark: { type: "line", color: "#777" },
        encoding: {
          x,
          y: { field: "lr", type: "quantitative", title: "learning rate", axis: { format: ".1e" } },
        },
      },
    ],
    resolve: { scale: { color: "independent" } },
  } as TopLevelSpec;
}

/** The most confused (true, predicted) pairs, largest count first. */
export function confusedPairs(cm: number[][], classes: string[], n = 12) {
  const pairs: { true: string; predicted: string; count: number; rate: number }[] = [];
  cm.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((c, j) => {
      if (i !== j && c > 0) {
        pairs.push({ true: classes[i], predicted: classes[j], count: c, rate: c / total });
      }
    });
  });
  return pairs.sort((a, b) => b.count - a.count || b.rate - a.rate).slice(0, n);
}

/** Confusion matrix: row-normalised colour, counts in the cells, the worst pairs beside it. */
export function confusionSpec(cm: number[][], classes: string[], top1: number): TopLevelSpec {
  const K = cm.length, cell = Math.max(13, Math.min(36, Math.floor(900 / K)));
  const cells = cm.flatMap((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    return row.map((c, j) => ({
      true: classes[i],
      predicted: classes[j],
      count: c,
      rate: c / total,
    }));
  });
  const order = classes.slice();
  const axis = { labelLimit: 180, labelFontSize: K > 30 ? 8 : 11 };
  const matrix = {
    width: K * cell,
    height: K * cell,
    data: { values: cells },
    encoding: {
      x: {
        field: "predicted",
        type: "ordinal",
        sort: order,
        title: "predicted class",
        axis: { ...axis, labelAngle: -60 },
      },
      y: { field: "true", type: "ordinal", sort: order, title: "true class", axis },
    },
    layer: [
      {
        mark: "rect",
        encoding: {
          color: {
            field: "rate",
            type: "quantitative",
            title: "share of the row",
            scale: { range: ["#ffffff", "#08519c"], domain: [0, 1] },
            legend: { format: ".0%" },
          },
        },
      },
      {
        transform: [{ filter: "datum.count > 0" }],
        mark: { type: "text", fontSize: K > 30 ? 6 : 10 },
        encoding: {
          text: { field: "count", type: "quantitative" },
          color: { condition: { test: "datum.rate > 0.5", value: "white" }, value: "black" },
        },
      },
    ],
  };
  const pairs = confusedPairs(cm, classes).map((p, k) => ({
    k,
    text: `${p.true} → ${p.predicted}: ${p.count} (${(p.rate * 100).toFixed(0)}%)`,
  }));
  const list = {
    title: { text: "most confused (true → predicted)", fontSize: 12 },
    width: 260,
    height: Math.max(20, pairs.length * 16),
    data: { values: pairs.length ? pairs : [{ k: 0, text: "none" }] },
    mark: { type: "text", align: "left", x: 0, fontSize: 11 },
    view: { stroke: null },
    encoding: { y: { field: "k", type: "ordinal", axis: null }, text: { field: "text" } },
  };
  return {
    title: {
      text: `confusion matrix (rows normalised), top-1 ${(top1 * 100).toFixed(1)}%`,
      fontSize: 15,
    },
    hconcat: [matrix, list],
  } as TopLevelSpec;
}

/** Per-class top-1 as bars, best first. */
export function perClassSpec(perClass: number[], classes: string[]): TopLevelSpec {
  const rows = perClass.map((a, k) => ({ class: classes[k], top1: pct(a) }))
    .filter((r) => !Number.isNaN(r.top1));
  return {
    title: { text: "per-class top-1", fontSize: 15 },
    width: 420,
    height: Math.max(60, rows.length * 14),
    data: { values: rows },
    mark: { type: "bar", color: "#4c78a8" },
    encoding: {
      y: { field: "class", type: "nominal", sort: "-x", title: "class", axis: { labelLimit: 200 } },
      x: { field: "top1", type: "quantitative", title: "top-1 (%)", scale: { domain: [0, 100] } },
      tooltip: [{ field: "class" }, { field: "top1" }],
    },
  } as TopLevelSpec;
}

/** Several runs' validation top-1 and training loss, one colour per run. */
export function overlaySpec(runs: { name: string; metrics: MetricsLine[] }[]): TopLevelSpec {
  const rows = runs.flatMap((r) =>
    r.metrics.map((l) => ({
      run: r.name,
      epoch: l.epoch,
      val: l.valAccuracy === null || Number.isNaN(l.valAccuracy) ? null : pct(l.valAccuracy),
      loss: l.trainLoss,
    }))
  );
  const panel = (field: string, title: string) => ({
    width: 560,
    height: 220,
    transform: [{ filter: `datum.${field} !== null` }],
    mark: { type: "line", point: rows.length < 200 },
    encoding: {
      x: { field: "epoch", type: "quantitative", title: "epoch" },
      y: { field, type: "quantitative", title, scale: { zero: false } },
      color: { field: "run", type: "nominal", title: "run" },
    },
  });
  return {
    title: { text: "runs compared", fontSize: 15 },
    data: { values: rows },
    vconcat: [panel("val", "validation top-1 (%)"), panel("loss", "training loss")],
  } as TopLevelSpec;
}
