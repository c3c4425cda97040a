// W3C trace context for every call: the active OpenTelemetry context's headers
// (`traceparent`, `tracestate`) when @opentelemetry/api is installed (an optional peer
// dependency: without it, or without a registered propagator, nothing is added).

type OpenTelemetry = typeof import("@opentelemetry/api");

let otel: OpenTelemetry | undefined;
try {
  otel = await import("@opentelemetry/api");
} catch {
  otel = undefined;
}

/** The active OpenTelemetry context as W3C trace-context headers (empty without it). */
export function activeTraceHeaders(): Record<string, string> {
  if (otel === undefined) return {};
  const carrier: Record<string, string> = {};
  otel.propagation.inject(otel.context.active(), carrier);
  return carrier;
}
