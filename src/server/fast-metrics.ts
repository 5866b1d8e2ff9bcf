import type { Metric, Registry } from 'prom-client';

/**
 * Counters and histograms for the hot path. prom-client hashes the label set on every `inc`/`observe`,
 * even through a child from `labels()`; at tens of thousands of commands per second (three observations
 * each: command count, ack latency, HTTP response) that is measurable. Here a child is a plain object
 * bound once: counting is `value += 1`, observing is a scan of a dozen bucket bounds. The registry reads
 * the children only when /metrics is scraped. Event-loop only (no atomics), like everything in a store.
 */

interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

interface Exported {
  name: string;
  help: string;
  type: string;
  values: ExportedValue[];
  aggregator: string;
}

abstract class Family<Child> {
  readonly aggregator = 'sum';
  private readonly children = new Map<string, { labels: Record<string, string>; child: Child }>();

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly labelNames: readonly string[],
  ) {
    // The registry needs only `name`, `type`, `get()` and `reset()`, which a Family provides.
    registry.registerMetric(this as unknown as Metric);
  }

  /** The child for these label values, created once; keep it and reuse it on the hot path. */
  child(...values: string[]): Child {
    if (values.length !== this.labelNames.length)
      throw new Error(
        `${this.name}: expected labels ${this.labelNames.join(', ')}, got ${values.join(', ')}`,
      );
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (entry === undefined) {
      const labels: Record<string, string> = {};
      for (let i = 0; i < values.length; i++) labels[this.labelNames[i]] = values[i];
      entry = { labels, child: this.create() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  protected abstract create(): Child;
  protected abstract export(child: Child, labels: Record<string, string>, into: ExportedValue[]): void;
  protected abstract clear(child: Child): void;

  async get(): Promise<Exported> {
    const values: ExportedValue[] = [];
    for (const { labels, child } of this.children.values()) this.export(child, labels, values);
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    for (const { child } of this.children.values()) this.clear(child);
  }
}

export class CounterChild {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/** A monotonic counter with labels (`*_total`). */
export class CounterFamily extends Family<CounterChild> {
  constructor(registry: Registry, options: { name: string; help: string; labelNames: readonly string[] }) {
    super(registry, options.name, options.help, 'counter', options.labelNames);
  }
  protected create(): CounterChild {
    return new CounterChild();
  }
  protected export(child: CounterChild, labels: Record<string, string>, into: ExportedValue[]): void {
    into.push({ value: child.value, labels });
  }
  protected clear(child: CounterChild): void {
    child.value = 0;
  }
}

export class HistogramChild {
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/** A histogram with labels, exported as Prometheus cumulative `_bucket{le}`, `_sum` and `_count`. */
export class HistogramFamily extends Family<HistogramChild> {
  private readonly bounds: readonly number[];

  constructor(
    registry: Registry,
    options: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[] },
  ) {
    super(registry, options.name, options.help, 'histogram', options.labelNames);
    for (let i = 1; i < options.buckets.length; i++)
      if (!(options.buckets[i] > options.buckets[i - 1]))
        throw new Error(`${options.name}: bucket bounds must increase`);
    this.bounds = [...options.buckets];
  }
  protected create(): HistogramChild {
    return new HistogramChild(this.bounds);
  }
  protected export(child: HistogramChild, labels: Record<string, string>, into: ExportedValue[]): void {
    let cumulative = 0;
    const bucket = `${this.name}_bucket`;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += child.counts[i];
      into.push({ value: cumulative, labels: { ...labels, le: this.bounds[i] }, metricName: bucket });
    }
    into.push({ value: child.count, labels: { ...labels, le: '+Inf' }, metricName: bucket });
    into.push({ value: child.sum, labels, metricName: `${this.name}_sum` });
    into.push({ value: child.count, labels, metricName: `${this.name}_count` });
  }
  protected clear(child: HistogramChild): void {
    child.counts.fill(0);
    child.sum = 0;
    child.count = 0;
  }
}
