/**
 * Grafana dashboard: well-formed panels on a 24-column grid without overlaps, and every metric and
 * label its queries use is one the code registers (names read from the product sources).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const PRODUCT_DIRS = ['cmd', 'core', 'protocol', 'chain', 'rings', 'transport', 'cache', 'relayer', 'miner'];
/** Labels Prometheus attaches to every scraped series, and `le` of histogram buckets. */
const TARGET_LABELS = new Set([
  'pod',
  'instance',
  'job',
  'namespace',
  'container',
  'service',
  'endpoint',
  'le',
]);
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { uid: string };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return sources(p);
    return n.endsWith('.ts') && !n.endsWith('.test.ts') ? [p] : [];
  });
}

/** Registered metric name → label names, read from the metric definitions in the product code. */
function registeredMetrics(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const file of PRODUCT_DIRS.flatMap((d) => sources(join(ROOT, d)))) {
    const text = readFileSync(file, 'utf8');
    const hits = [...text.matchAll(/['"`](ha_[a-z0-9_]+)['"`]/g)];
    hits.forEach((m, i) => {
      const end = hits[i + 1]?.index ?? text.length;
      const def = text.slice(m.index, Math.min(end, m.index + 600));
      const labels = /\[((?:\s*'[a-z_]+'\s*,?)+)\s*\]/.exec(def.split(/\}\s*\)/)[0] ?? def);
      const names = labels === null ? [] : [...labels[1]!.matchAll(/'([a-z_]+)'/g)].map((x) => x[1]!);
      const set = out.get(m[1]!) ?? new Set<string>();
      names.forEach((n) => set.add(n));
      out.set(m[1]!, set);
    });
  }
  return out;
}

const dash = JSON.parse(
  readFileSync(join(ROOT, 'deploy/grafana/pocket-relay-miner.json'), 'utf8'),
) as Dashboard;
const allPanels = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = allPanels.filter((p) => p.type !== 'row');
const exprs = [
  ...queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
  ...dash.templating.list.flatMap((v) => (typeof v.definition === 'string' ? [v.definition] : [])),
];
const registered = registeredMetrics();

function baseName(name: string): string | undefined {
  if (registered.has(name)) return name;
  const suffix = HISTOGRAM_SUFFIXES.find((s) => name.endsWith(s));
  const base = suffix === undefined ? undefined : name.slice(0, -suffix.length);
  return base !== undefined && registered.has(base) ? base : undefined;
}

function labelProblems(list: string[]): string[] {
  const problems: string[] = [];
  for (const e of list) {
    const metrics = [...e.matchAll(/\bha_[a-z0-9_]+/g)]
      .map((m) => baseName(m[0]))
      .filter((m) => m !== undefined);
    const labels = new Set<string>();
    for (const m of e.matchAll(/\bby \(([^)]*)\)/g)) m[1]!.split(',').forEach((l) => labels.add(l.trim()));
    for (const m of e.matchAll(/\{([^}]*)\}/g)) {
      for (const sel of m[1]!.matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g)) labels.add(sel[1]!);
    }
    for (const m of e.matchAll(/label_values\(\s*\w+\s*,\s*(\w+)\s*\)/g)) labels.add(m[1]!);
    for (const l of labels) {
      if (TARGET_LABELS.has(l)) continue;
      for (const metric of metrics) {
        if (!registered.get(metric)!.has(l)) problems.push(`${metric} has no label ${l} (in ${e})`);
      }
    }
  }
  return problems;
}

describe('Grafana dashboard', () => {
  it('is a dashboard with a uid, a data source variable and unique panel ids', () => {
    expect(dash.uid).toBe('pocket-relay-miner');
    expect(dash.title).toBeTruthy();
    expect(dash.templating.list.find((v) => v.name === 'datasource')?.type).toBe('datasource');
    const ids = allPanels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('every query panel has queries on the selected data source', () => {
    for (const p of queryPanels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
      for (const t of p.targets!) expect(t.expr.trim(), p.title).not.toBe('');
    }
  });

  it('panels fit the 24-column grid and do not overlap', () => {
    const cells = new Map<string, string>();
    for (const p of allPanels) {
      const g = p.gridPos;
      expect(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, p.title).toBe(true);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const k = `${x},${y}`;
          expect(cells.get(k), `${p.title} overlaps ${cells.get(k)}`).toBeUndefined();
          cells.set(k, p.title);
        }
      }
    }
  });

  it('every metric the queries use is registered in the code', () => {
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\bha_[a-z0-9_]+/g)].map((m) => m[0])));
    expect(used.size).toBeGreaterThan(40);
    expect([...used].filter((m) => baseName(m) === undefined)).toEqual([]);
  });

  it('every label the queries select or group by exists on the metrics of that query', () => {
    expect(labelProblems(exprs)).toEqual([]);
  });

  it('the metric and label checks catch a wrong name', () => {
    expect(registered.get('ha_relayer_relays_rejected_total')).toEqual(new Set(['service_id', 'reason']));
    expect(registered.get('ha_relayer_grpc_requests_total')).toEqual(new Set(['service_id', 'code']));
    expect(registered.get('ha_relayer_relays_in_flight')).toEqual(new Set());
    expect(
      labelProblems(['sum by (reason) (rate(ha_relayer_relays_received_total{service_id=~"x"}[5m]))']),
    ).toHaveLength(1);
    expect(baseName('ha_relayer_relay_duration_seconds_bucket')).toBe('ha_relayer_relay_duration_seconds');
    expect(baseName('ha_relayer_relay_latency_seconds_bucket')).toBeUndefined();
  });

  it('covers relays, latency, cache, streams, leader, claims/proofs and the ledger', () => {
    const text = exprs.join('\n');
    for (const m of [
      'ha_relayer_relays_received_total',
      'ha_relayer_relays_served_total',
      'ha_relayer_relays_rejected_total',
      'ha_relayer_relays_dropped_total',
      'ha_relayer_relay_duration_seconds_bucket',
      'ha_cache_hits_total',
      'ha_cache_misses_total',
      'ha_transport_redis_published_total',
      'ha_transport_redis_publish_buffered',
      'ha_transport_redis_publish_dropped_total',
      'ha_miner_stream_lag',
      'ha_miner_leader_blocks_published_total',
      'ha_miner_supplier_registry_suppliers',
      'ha_miner_tx_attempts_total',
      'ha_miner_job_session_outcomes_total',
      'ha_miner_ledger_relays_total',
      'ha_miner_ledger_upokt_total',
    ]) {
      expect(text, m).toContain(m);
    }
  });
});
