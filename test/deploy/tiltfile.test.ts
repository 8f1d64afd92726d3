/**
 * Tiltfile: parses as the declarative Starlark subset, uses only known Tilt built-ins, and every
 * file, image, resource, port and object it names exists in the repository or in the dev overlay.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { containersOf, kustomizeBuild, text, type JsonObject } from './kustomize.js';
import { StarlarkSyntaxError, allCalls, parseStarlark, str, type Call, type Value } from './starlark.js';

const ROOT = resolve(import.meta.dirname, '../..');
const TILT_BUILTINS = new Set(['docker_build', 'k8s_yaml', 'kustomize', 'k8s_resource', 'port_forward']);

const stmts = parseStarlark(readFileSync(join(ROOT, 'Tiltfile'), 'utf8'));
const calls = allCalls(stmts);
const named = (fn: string): Call[] => calls.filter((c) => c.fn === fn);

function forwards(v: Value | undefined): { host: number; container: number }[] {
  if (v === undefined) return [];
  const items = v.t === 'list' ? v.items : [v];
  return items.map((it) => {
    if (it.t === 'str') {
      const [host, container] = it.v.split(':').map(Number);
      return { host: host!, container: container ?? host! };
    }
    if (it.t === 'num') return { host: it.v, container: it.v };
    if (it.t === 'call' && it.fn === 'port_forward') {
      const [h, c] = it.args.map((a) => (a.t === 'num' ? a.v : NaN));
      return { host: h!, container: c ?? h! };
    }
    throw new Error(`unsupported port forward ${JSON.stringify(it)}`);
  });
}

const strings = (v: Value | undefined): string[] =>
  v?.t === 'list' ? v.items.map((x) => str(x) ?? '') : v === undefined ? [] : [str(v) ?? ''];

describe('Tiltfile', () => {
  it('parses, and calls only Tilt built-ins', () => {
    expect(stmts.length).toBeGreaterThan(3);
    expect(calls.map((c) => c.fn).filter((f) => !TILT_BUILTINS.has(f))).toEqual([]);
  });

  it('the parser refuses what the subset does not cover', () => {
    expect(() => parseStarlark("k8s_yaml(kustomize('x')")).toThrow(StarlarkSyntaxError);
    expect(() => parseStarlark("k8s_yaml('x'))")).toThrow(StarlarkSyntaxError);
    expect(() => parseStarlark("docker_build('a', 'b)")).toThrow(StarlarkSyntaxError);
    expect(() => parseStarlark('def f():\n    pass\n')).toThrow(StarlarkSyntaxError);
    expect(() => parseStarlark("k8s_resource(name='a', 'b')")).toThrow(StarlarkSyntaxError);
  });

  it('builds the image from the repository Dockerfile, as the image the dev overlay runs', () => {
    const [build] = named('docker_build');
    expect(named('docker_build')).toHaveLength(1);
    const ref = str(build!.args[0])!;
    const context = str(build!.args[1])!;
    expect(statSync(join(ROOT, context)).isDirectory()).toBe(true);
    const dockerfile = str(build!.kwargs.get('dockerfile')) ?? 'Dockerfile';
    expect(existsSync(join(ROOT, context, dockerfile))).toBe(true);
    const images = new Set(
      kustomizeBuild(join(ROOT, 'k8s/overlays/dev'))
        .objects.flatMap((o) => containersOf(o))
        .map((c) => text(c.image).replace(/:[^/]*$/, '')),
    );
    expect(images.has(ref)).toBe(true);
    for (const ig of strings(build!.kwargs.get('ignore')))
      expect(ig).not.toMatch(/^(\.|Dockerfile|package.*\.json)$/);
  });

  it('applies the dev overlay through kustomize', () => {
    const yaml = named('k8s_yaml');
    expect(yaml).toHaveLength(1);
    const inner = yaml[0]!.args[0];
    expect(inner?.t === 'call' && inner.fn === 'kustomize').toBe(true);
    const dir = str((inner as Call).args[0])!;
    expect(dir).toBe('k8s/overlays/dev');
    expect(existsSync(join(ROOT, dir, 'kustomization.yaml'))).toBe(true);
  });

  it('every workload has a resource; forwards, deps and objects name things in the overlay', () => {
    const objs = kustomizeBuild(join(ROOT, 'k8s/overlays/dev')).objects;
    const workloads = objs.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
    const resources = named('k8s_resource');
    const names = resources.map((r) => str(r.args[0]) ?? str(r.kwargs.get('workload')));
    expect([...names].sort()).toEqual(workloads.map((w) => w.metadata.name).sort());
    const hostPorts: number[] = [];
    for (const r of resources) {
      const name = str(r.args[0]) ?? str(r.kwargs.get('workload'));
      const w = workloads.find((x) => x.metadata.name === name)!;
      const ports = containersOf(w).flatMap((c) =>
        ((c.ports ?? []) as JsonObject[]).map((p) => p.containerPort),
      );
      for (const f of forwards(r.kwargs.get('port_forwards'))) {
        expect(ports, `${name} forwards to ${f.container}`).toContain(f.container);
        hostPorts.push(f.host);
      }
      for (const dep of strings(r.kwargs.get('resource_deps'))) expect(names).toContain(dep);
      for (const sel of strings(r.kwargs.get('objects'))) {
        const [oname, kind] = sel.split(':');
        expect(
          objs.some((o) => o.metadata.name === oname && o.kind.toLowerCase() === kind),
          `${name} object ${sel}`,
        ).toBe(true);
      }
    }
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  it('forwards the relayer and miner ports of the upstream host layout', () => {
    const fw = (n: string) =>
      forwards(
        named('k8s_resource')
          .find((r) => str(r.args[0]) === n)!
          .kwargs.get('port_forwards'),
      );
    expect(fw('relayer')).toEqual(
      expect.arrayContaining([
        { host: 8180, container: 8080 },
        { host: 8280, container: 8081 },
        { host: 9190, container: 9090 },
      ]),
    );
    expect(fw('miner')).toEqual([{ host: 9092, container: 9092 }]);
  });
});
