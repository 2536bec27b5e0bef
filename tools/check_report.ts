// Opens an HTML report in headless Chromium, as a reader's browser would, through the
// DevTools protocol: collects console errors, uncaught exceptions and every network request
// other than the page itself, checks that the runs table and the overlaid curves rendered,
// and saves a screenshot of the top of the page.
//   deno run -A tools/check_report.ts report.html screenshot.png
// Prints one JSON object; exits 1 when anything is wrong, 3 when no Chromium is installed.
import { resolve } from "node:path";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

export function findChromium(): string | null {
  const env = Deno.env.get("CHROMIUM");
  for (const p of env ? [env, ...CHROMIUM] : CHROMIUM) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* the next one */ }
  }
  return null;
}

export interface ReportCheck {
  ok: boolean;
  consoleErrors: string[];
  exceptions: string[];
  requests: string[];
  runRows: number;
  curves: boolean;
  screenshot: string;
}

/** The page's DevTools websocket, once Chromium listens. */
async function pageSocket(port: number): Promise<string> {
  for (let i = 0; i < 100; i++) {
    try {
      const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      const page = list.find((t: { type: string }) => t.type === "page");
      if (page) return page.webSocketDebuggerUrl;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("Chromium's DevTools endpoint did not come up");
}

export async function checkReport(html: string, screenshot: string): Promise<ReportCheck> {
  const chromium = findChromium();
  if (!chromium) throw new Error("no Chromium (set CHROMIUM or install Debian's chromium)");
  const port = 9300 + Math.floor(Math.random() * 500);
  const profile = await Deno.makeTempDir();
  const child = new Deno.Command(chromium, {
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--remote-debugging-port=${port}`,
      `--user-data-dir=${profile}`,
      "--window-size=1400,1100",
      "about:blank",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const ws = new WebSocket(await pageSocket(port));
    await new Promise((r, j) => (ws.onopen = r, ws.onerror = j));
    let next = 1;
    const pending = new Map<number, (v: Record<string, unknown>) => void>();
    const events: { method: string; params: Record<string, unknown> }[] = [];
    let loaded: () => void = () => {};
    const load = new Promise<void>((r) => (loaded = r));
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.id) pending.get(msg.id)?.(msg.result ?? {});
      else {
        events.push(msg);
        if (msg.method === "Page.loadEventFired") loaded();
      }
    };
    const send = (method: string, params: object = {}) =>
      new Promise<Record<string, unknown>>((r) => {
        const id = next++;
        pending.set(id, r);
        ws.send(JSON.stringify({ id, method, params }));
      });
    for (const d of ["Page", "Runtime", "Network", "Log"]) await send(`${d}.enable`);
    const url = `file://${resolve(html)}`;
    await send("Page.navigate", { url });
    await load;
    const evaluate = async (expr: string) =>
      ((await send("Runtime.evaluate", { expression: expr, returnByValue: true })).result as {
        value: unknown;
      }).value;
    const runRows = Number(await evaluate("document.querySelectorAll('#runs tbody tr').length"));
    const curves = Boolean(await evaluate("!!document.querySelector('#curves svg path')"));
    const shot = await send("Page.captureScreenshot", { format: "png" });
    await Deno.writeFile(
      screenshot,
      Uint8Array.from(atob(shot.data as string), (c) => c.charCodeAt(0)),
    );
    ws.close();
    const p = (e: { params: Record<string, unknown> }) => e.params as Record<string, never>;
    const requests = events.filter((e) => e.method === "Network.requestWillBeSent")
      .map((e) => (p(e).request as { url: string }).url).filter((u) => u !== url);
    const consoleErrors = [
      ...events.filter((e) =>
        e.method === "Runtime.consoleAPICalled" &&
        ["error", "assert"].includes(p(e).type)
      ).map((e) => JSON.stringify(p(e).args)),
      ...events.filter((e) =>
        e.method === "Log.entryAdded" && (p(e).entry as { level: string }).level === "error"
      ).map((e) => (p(e).entry as { text: string }).text),
    ];
    const exceptions = events.filter((e) => e.method === "Runtime.exceptionThrown")
      .map((e) => JSON.stringify(p(e).exceptionDetails));
    const ok = !consoleErrors.length && !exceptions.length && !requests.length && runRows > 0 &&
      curves;
    return { ok, consoleErrors, exceptions, requests, runRows, curves, screenshot };
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const [html, shot] = Deno.args;
  if (!html || !shot) {
    console.error("usage: deno run -A tools/check_report.ts report.html screenshot.png");
    Deno.exit(2);
  }
  if (!findChromium()) {
    console.error("check_report: no Chromium installed (Debian: apt-get install chromium)");
    Deno.exit(3);
  }
  const r = await checkReport(html, shot);
  console.log(JSON.stringify(r, null, 2));
  Deno.exit(r.ok ? 0 : 1);
}
