// What the status bar and "sparkedit: Show status" say, from a `sparkedit/status` payload.
// Pure text; status.ts puts it on screen.

import { Latencies, Percentiles, StatusPayload } from "./protocol";

const ICONS: Record<string, string> = {
  ready: "$(zap)",
  starting: "$(sync~spin)",
  restarting: "$(sync~spin)",
  error: "$(error)",
  stopped: "$(circle-slash)",
};

function ms(value: number | null | undefined): string | undefined {
  return typeof value === "number" && Number.isFinite(value) ? `${Math.round(value)} ms` : undefined;
}

function percent(value: number | null | undefined): string | undefined {
  return typeof value === "number" && Number.isFinite(value)
    ? `${Math.round(value * 100)}%` : undefined;
}

/** `$(zap) sparkedit 142 ms`: the state as an icon and the last suggestion's total latency. */
export function statusBarText(status: StatusPayload): string {
  const icon = ICONS[status.state ?? ""] ?? "$(question)";
  const latency = status.state === "ready" ? ms(status.lastLatencies?.total_ms) : undefined;
  return latency ? `${icon} sparkedit ${latency}` : `${icon} sparkedit`;
}

export function latencyLine(latencies: Latencies | undefined): string | undefined {
  if (!latencies) {
    return undefined;
  }
  const parts = [
    ["context", ms(latencies.context_ms)],
    ["first token", ms(latencies.ttft_ms)],
    ["total", ms(latencies.total_ms)],
  ].filter(([, value]) => value !== undefined).map(([name, value]) => `${name} ${value}`);
  return parts.length ? `last suggestion: ${parts.join(" · ")}` : undefined;
}

function percentiles(name: string, value: Percentiles | undefined): string | undefined {
  if (!value || !value.count) {
    return undefined;
  }
  const p50 = ms(value.p50);
  const p95 = ms(value.p95);
  return `${name}: p50 ${p50 ?? "–"} · p95 ${p95 ?? "–"} (${value.count})`;
}

/** The warm-up of the focused document: the engine's prefix cache holds its context (after
 * a background prefill) or not yet, and the prompt budget suggestions use meanwhile. */
export function warmLine(status: StatusPayload): string | undefined {
  const warm = status.warm?.find((w) => w.uri === status.focus);
  if (!warm) {
    return undefined;
  }
  if (warm.complete) {
    return `context warm: ${warm.budget} tokens prefilled`;
  }
  return (warm.warming ? `warming up the context (${warm.warming} tokens)` : "context not warm")
    + `; suggestions use ${warm.budget} tokens meanwhile`;
}

/** The lines of the status detail, most useful first. */
export function statusLines(status: StatusPayload): string[] {
  const lines: string[] = [];
  const state = status.state ?? "unknown";
  lines.push(status.message ? `${state}: ${status.message}` : state);
  const model = status.model ? `${status.model}${status.untrained ? " (untrained)" : ""}` : undefined;
  const engine = [model && `model ${model}`, status.target && `target ${status.target}`]
    .filter(Boolean).join(" · ");
  if (engine) {
    lines.push(engine);
  }
  const latency = latencyLine(status.lastLatencies);
  if (latency) {
    lines.push(latency);
  }
  const warm = warmLine(status);
  if (warm) {
    lines.push(warm);
  }
  const stats = status.stats;
  if (stats) {
    const rate = percent(stats.acceptanceRate);
    if (stats.shown) {
      lines.push(`shown ${stats.shown} · accepted ${stats.accepted ?? 0}`
        + (stats.partiallyAccepted ? ` (+${stats.partiallyAccepted} in part)` : "")
        + ` · rejected ${stats.rejected ?? 0}` + (rate ? ` · acceptance ${rate}` : ""));
    }
    const latencies = percentiles("latency", stats.latencyMs);
    if (latencies) {
      lines.push(latencies);
    }
    if (stats.requests) {
      lines.push(`requests ${stats.requests} · from cache ${stats.answeredFromCache ?? 0}`
        + ` · cancelled ${stats.cancelled ?? 0}`);
    }
  }
  if (status.indexReady === false) {
    lines.push("workspace index: building");
  }
  return lines;
}

export function statusTooltip(status: StatusPayload): string {
  return ["sparkedit", ...statusLines(status)].join("\n");
}
