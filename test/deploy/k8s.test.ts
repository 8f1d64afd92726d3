/**
 * k8s/: every manifest validates against the Kubernetes OpenAPI schemas (offline), and the base and
 * the dev overlay expand into a consistent set of objects whose ports, probes and config files agree
 * with the relayer and miner configs they mount.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { splitListenAddr } from '../../core/index.js';
import { validateMinerConfig } from '../../miner/index.js';
import { addressFromPublicKey, privateKeyFromSecret, publicKeyFromPrivate } from '../../protocol/index.js';
import { loadSupplierKeys } from '../../chain/index.js';
import { validateRelayerConfig } from '../../relayer/index.js';
import {
  containersOf,
  kustomizeBuild,
  text,
  loadYamlObjects,
  podSpecOf,
  type K8sObject,
  type JsonObject,
} from './kustomize.js';
import { runtimeEntrypoint } from './dockerfile.js';
import { validateSchema } from './k8s-schema.js';
import { RELAYER_NODE_FLAGS, RELAYER_NODE_OPTIONS } from '../../bench/relayer/node-options.js';

const ROOT = resolve(import.meta.dirname, '../..');
const K8S = join(ROOT, 'k8s');
const BASE = join(K8S, 'base');
const DEV = join(K8S, 'overlays', 'dev');
/** Secrets the base expects the operator to create; never stored in the repository. */
const EXTERNAL_SECRETS = ['supplier-keys'];
const WORKLOAD_KINDS = ['Deployment', 'StatefulSet'];

interface Port {
  name?: string;
  containerPort: number;
}
interface Container extends JsonObject {
  name: string;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const workloads = (objs: K8sObject[]) => objs.filter((o) => WORKLOAD_KINDS.includes(o.kind));
const find = (objs: K8sObject[], kind: string, name: string) =>
  objs.find((o) => o.kind === kind && o.metadata.name === name);
const must = (objs: K8sObject[], kind: string, name: string): K8sObject => {
  const o = find(objs, kind, name);
  if (o === undefined) throw new Error(`no ${kind} ${name}`);
  return o;
};
const podLabels = (w: K8sObject) =>
  ((((w.spec as JsonObject).template as JsonObject).metadata as JsonObject).labels ?? {}) as Record<
    string,
    string
  >;
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
const containers = (w: K8sObject) => containersOf(w) as Container[];
const mainContainers = (w: K8sObject) => (podSpecOf(w)!.containers ?? []) as Container[];
const portsOf = (c: Container) => (c.ports ?? []) as unknown as Port[];
const containerPort = (c: Container, ref: string | number): number | undefined =>
  typeof ref === 'number'
    ? portsOf(c).find((p) => p.containerPort === ref)?.containerPort
    : portsOf(c).find((p) => p.name === ref)?.containerPort;
const probes = (c: Container) =>
  (['startupProbe', 'livenessProbe', 'readinessProbe'] as const)
    .map((k) => [k, c[k] as JsonObject | undefined] as const)
    .filter((x): x is readonly [(typeof x)[0], JsonObject] => x[1] !== undefined);

/** The text of the file a container's `--config <path>` names, read through its mounts. */
function mountedFile(objs: K8sObject[], w: K8sObject, c: Container, path: string): string {
  const mount = ((c.volumeMounts ?? []) as JsonObject[]).find((m) => m.mountPath === dirname(path));
  if (mount === undefined) throw new Error(`${c.name}: nothing mounted at ${dirname(path)}`);
  const vol = ((podSpecOf(w)!.volumes ?? []) as JsonObject[]).find((v) => v.name === mount.name);
  const cmName = (vol?.configMap as JsonObject | undefined)?.name;
  if (typeof cmName !== 'string') throw new Error(`${c.name}: ${dirname(path)} is not a ConfigMap volume`);
  const data = (must(objs, 'ConfigMap', cmName).data ?? {}) as Record<string, string>;
  const text = data[basename(path)];
  if (text === undefined) throw new Error(`ConfigMap ${cmName} has no key ${basename(path)}`);
  return text;
}

function configArg(c: Container): string {
  const args = [...((c.command ?? []) as string[]), ...((c.args ?? []) as string[])];
  const i = args.indexOf('--config');
  if (i < 0 || args[i + 1] === undefined) throw new Error(`${c.name}: no --config argument`);
  return args[i + 1]!;
}

function mountPathsOf(c: Container): string[] {
  return ((c.volumeMounts ?? []) as JsonObject[]).map((m) => text(m.mountPath));
}

/** Every (Service, port) a URL such as redis://redis:6379 or http://localnet:26657 needs in the build. */
function expectServiceFor(objs: K8sObject[], url: string): void {
  const u = new URL(url.includes('://') ? url : `tcp://${url}`);
  const svc = find(objs, 'Service', u.hostname);
  expect(svc, `Service ${u.hostname} for ${url}`).toBeDefined();
  const ports = ((svc!.spec as JsonObject).ports as JsonObject[]).map((p) => p.port);
  expect(ports, `Service ${u.hostname} port for ${url}`).toContain(Number(u.port));
}

describe('k8s manifest files', () => {
  const files = walk(K8S);

  it('every YAML file parses, and every resource file validates against the OpenAPI schemas', async () => {
    const resourceFiles = files.filter(
      (f) =>
        f.endsWith('.yaml') &&
        basename(f) !== 'kustomization.yaml' &&
        !f.includes('/config/') &&
        !f.includes('/patches/'),
    );
    expect(resourceFiles.length).toBeGreaterThan(8);
    for (const f of files.filter((x) => x.endsWith('.yaml'))) {
      for (const d of parseAllDocuments(readFileSync(f, 'utf8'))) expect(d.errors, f).toEqual([]);
    }
    const errors: string[] = [];
    for (const f of resourceFiles) {
      for (const o of loadYamlObjects(f))
        errors.push(...(await validateSchema(o)).map((e) => `${relative(ROOT, f)}: ${e}`));
    }
    expect(errors).toEqual([]);
  });

  it('every file under k8s/ is used by the base or the dev overlay', () => {
    const used = new Set([...kustomizeBuild(BASE).files, ...kustomizeBuild(DEV).files]);
    expect(files.filter((f) => !f.endsWith('.md') && !used.has(f)).map((f) => relative(ROOT, f))).toEqual([]);
  });

  it('the schema check refuses a wrong type and an unknown field', async () => {
    const bad = loadYamlObjects(join(BASE, 'relayer-deployment.yaml'))[0]!;
    const c = mainContainers(bad)[0]!;
    (c.ports as JsonObject[])[0]!.containerPort = 'eighty';
    c.livenessProbe = { ...(c.livenessProbe as JsonObject), httpGett: {} };
    const errors = (await validateSchema(bad)).join('\n');
    expect(errors).toMatch(/containerPort must be integer/);
    expect(errors).toMatch(/unknown field spec\.template\.spec\.containers\[0\]\.livenessProbe\.httpGett/);
  });

  it('the relayer container runs with the V8 flags the relayer bench measures with', () => {
    const c = mainContainers(loadYamlObjects(join(BASE, 'relayer-deployment.yaml'))[0]!)[0]!;
    const env = (c.env as JsonObject[]).find((e) => e.name === 'NODE_OPTIONS');
    expect(env?.value).toBe(RELAYER_NODE_OPTIONS);
    // The image's entrypoint, with the node flags NODE_OPTIONS does not accept in between.
    const [node, ...script] = runtimeEntrypoint(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
    expect(c.command).toEqual([node, ...RELAYER_NODE_FLAGS, ...script]);
  });

  it('every node flag the relayer container sets is one this node accepts', () => {
    const run = spawnSync(process.execPath, [...RELAYER_NODE_FLAGS, '-e', ''], {
      env: { ...process.env, NODE_OPTIONS: RELAYER_NODE_OPTIONS },
      encoding: 'utf8',
    });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
  });
});

for (const [name, dir] of [
  ['base', BASE],
  ['dev overlay', DEV],
] as const) {
  describe(`kustomize ${name}`, () => {
    const build = kustomizeBuild(dir);
    const objs = build.objects;

    it('expands into uniquely named objects that all validate', async () => {
      const ids = objs.map((o) => `${o.kind}/${o.metadata.name}`);
      expect(new Set(ids).size).toBe(ids.length);
      const errors: string[] = [];
      for (const o of objs) errors.push(...(await validateSchema(o)));
      expect(errors).toEqual([]);
      for (const o of objs)
        expect(o.metadata.labels?.['app.kubernetes.io/part-of'], ids.join()).toBe('pocket-relay-miner');
      if (dir === DEV) {
        const ns = objs.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name);
        expect(ns).toEqual(['pocket-relay-miner-dev']);
        for (const o of objs.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace).toBe(ns[0]);
      }
    });

    it('workload selectors select their own pods, and only their own', () => {
      for (const w of workloads(objs)) {
        const sel = ((w.spec as JsonObject).selector as JsonObject).matchLabels as Record<string, string>;
        expect(matches(sel, podLabels(w)), `${w.kind} ${w.metadata.name}`).toBe(true);
        for (const other of workloads(objs).filter((x) => x !== w)) {
          expect(matches(sel, podLabels(other)), `${w.metadata.name} selects ${other.metadata.name}`).toBe(
            false,
          );
        }
      }
    });

    it('services select a workload and target container ports it has', () => {
      for (const svc of objs.filter((o) => o.kind === 'Service')) {
        const spec = svc.spec as JsonObject;
        const targets = workloads(objs).filter((w) =>
          matches(spec.selector as Record<string, string>, podLabels(w)),
        );
        expect(targets.length, `Service ${svc.metadata.name} selects nothing`).toBeGreaterThan(0);
        for (const p of spec.ports as JsonObject[]) {
          const target = (p.targetPort ?? p.port) as string | number;
          for (const w of targets) {
            const found = containers(w).some((c) => containerPort(c, target) !== undefined);
            expect(
              found,
              `Service ${svc.metadata.name} port ${text(p.name)} → ${w.metadata.name}:${target}`,
            ).toBe(true);
          }
        }
      }
    });

    it('HPAs, PDBs and ServiceMonitors point at objects that exist', () => {
      for (const hpa of objs.filter((o) => o.kind === 'HorizontalPodAutoscaler')) {
        const ref = (hpa.spec as JsonObject).scaleTargetRef as JsonObject;
        expect(find(objs, text(ref.kind), text(ref.name)), `HPA ${hpa.metadata.name}`).toBeDefined();
      }
      for (const pdb of objs.filter((o) => o.kind === 'PodDisruptionBudget')) {
        const sel = ((pdb.spec as JsonObject).selector as JsonObject).matchLabels as Record<string, string>;
        expect(
          workloads(objs).filter((w) => matches(sel, podLabels(w))).length,
          `PDB ${pdb.metadata.name}`,
        ).toBe(1);
      }
      for (const sm of objs.filter((o) => o.kind === 'ServiceMonitor')) {
        const spec = sm.spec as JsonObject;
        const sel = (spec.selector as JsonObject).matchLabels as Record<string, string>;
        const svcs = objs.filter((o) => o.kind === 'Service' && matches(sel, o.metadata.labels ?? {}));
        expect(svcs.length, `ServiceMonitor ${sm.metadata.name} selects no Service`).toBeGreaterThan(0);
        for (const ep of spec.endpoints as JsonObject[]) {
          for (const svc of svcs) {
            const names = ((svc.spec as JsonObject).ports as JsonObject[]).map((p) => p.name);
            expect(names, `ServiceMonitor ${sm.metadata.name} endpoint port`).toContain(ep.port);
          }
        }
      }
    });

    it('probes use ports the container declares; every container has requests and limits', () => {
      for (const w of workloads(objs)) {
        for (const c of mainContainers(w)) {
          for (const [kind, probe] of probes(c)) {
            const action = (probe.httpGet ?? probe.tcpSocket) as JsonObject | undefined;
            if (action === undefined) continue;
            expect(
              containerPort(c, action.port as string | number),
              `${w.metadata.name}/${c.name} ${kind}`,
            ).toBeDefined();
          }
          expect(c.livenessProbe, `${w.metadata.name}/${c.name} liveness`).toBeDefined();
          expect(c.readinessProbe ?? {}, `${w.metadata.name}/${c.name} readiness`).not.toEqual({});
          const res = c.resources as { requests?: JsonObject; limits?: JsonObject } | undefined;
          for (const k of ['cpu', 'memory']) {
            expect(res?.requests?.[k], `${w.metadata.name}/${c.name} requests.${k}`).toBeDefined();
            expect(res?.limits?.[k], `${w.metadata.name}/${c.name} limits.${k}`).toBeDefined();
          }
        }
      }
    });

    it('volumes name ConfigMaps in the build and only the documented external Secrets; mounts name volumes', () => {
      for (const w of workloads(objs)) {
        const vols = (podSpecOf(w)!.volumes ?? []) as JsonObject[];
        for (const v of vols) {
          const cm = (v.configMap as JsonObject | undefined)?.name;
          if (cm !== undefined)
            expect(
              find(objs, 'ConfigMap', text(cm)),
              `${w.metadata.name} volume ${text(v.name)}`,
            ).toBeDefined();
          const secret = (v.secret as JsonObject | undefined)?.secretName;
          if (secret !== undefined) {
            expect(
              EXTERNAL_SECRETS.includes(text(secret)) || find(objs, 'Secret', text(secret)) !== undefined,
            ).toBe(true);
          }
        }
        const names = vols.map((v) => v.name);
        const claims = (((w.spec as JsonObject).volumeClaimTemplates ?? []) as JsonObject[]).map(
          (t) => (t.metadata as JsonObject).name,
        );
        for (const c of containers(w)) {
          for (const m of (c.volumeMounts ?? []) as JsonObject[]) {
            expect([...names, ...claims], `${w.metadata.name}/${c.name} mount ${text(m.name)}`).toContain(
              m.name,
            );
          }
        }
      }
      expect(objs.filter((o) => o.kind === 'Secret')).toEqual([]);
      expect([...build.configMapNames.values()].every((n) => /-[0-9a-f]{10}$/.test(n))).toBe(true);
    });

    it('the relayer container ports and probes are the listen addresses of the config it mounts', () => {
      const relayer = must(objs, 'Deployment', 'relayer');
      const c = mainContainers(relayer).find((x) => x.name === 'relayer')!;
      expect(c.args).toEqual(expect.arrayContaining(['relayer', '--config']));
      const path = configArg(c);
      const cfg = validateRelayerConfig(mountedFile(objs, relayer, c, path), path);
      const port = (addr: string) => splitListenAddr(addr).port;
      expect(containerPort(c, 'relay')).toBe(port(cfg.listen_addr));
      expect(containerPort(c, 'health')).toBe(port(cfg.health_check.addr));
      expect(containerPort(c, 'metrics')).toBe(port(cfg.metrics.addr));
      expect(containerPort(c, 'grpc')).toBe(port(cfg.grpc.listen_addr));
      expect(containerPort(c, 'websocket')).toBe(port(cfg.websocket.listen_addr));
      expect(
        cfg.health_check.enabled && cfg.metrics.enabled && cfg.grpc.enabled && cfg.websocket.enabled,
      ).toBe(true);
      const http = (p: JsonObject | undefined) => p?.httpGet as JsonObject;
      expect(http(c.livenessProbe as JsonObject)).toMatchObject({ path: '/health', port: 'health' });
      expect(http(c.readinessProbe as JsonObject)).toMatchObject({ path: '/ready', port: 'health' });
      expect(cfg.keys.keys_file).toBeDefined();
      expect(mountPathsOf(c)).toContain(dirname(cfg.keys.keys_file!));
      const svc = must(objs, 'Service', 'relayer');
      expect(((svc.spec as JsonObject).ports as JsonObject[]).map((p) => p.port).sort()).toEqual([
        8080, 8082, 8083,
      ]);
      const drain = cfg.shutdown.drain_timeout_seconds;
      expect(Number(podSpecOf(relayer)!.terminationGracePeriodSeconds)).toBeGreaterThan(drain);
    });

    it('the miner runs 2 replicas; its metrics port and probes are the ops address of the config it mounts', () => {
      const miner = must(objs, 'Deployment', 'miner');
      expect((miner.spec as JsonObject).replicas).toBe(2);
      const c = mainContainers(miner).find((x) => x.name === 'miner')!;
      expect(c.args).toEqual(expect.arrayContaining(['miner', '--config']));
      const path = configArg(c);
      const cfg = validateMinerConfig(mountedFile(objs, miner, c, path), path);
      expect(cfg.metrics.enabled).toBe(true);
      expect(containerPort(c, 'metrics')).toBe(splitListenAddr(cfg.metrics.addr).port);
      expect((c.livenessProbe as JsonObject).httpGet).toMatchObject({ path: '/health', port: 'metrics' });
      expect((c.readinessProbe as JsonObject).httpGet).toMatchObject({ path: '/ready', port: 'metrics' });
      expect(mountPathsOf(c)).toContain(dirname(cfg.keys.keys_file!));
    });

    it('relayer and miner share one Redis and one key namespace', () => {
      const rc = mainContainers(must(objs, 'Deployment', 'relayer'))[0]!;
      const mc = mainContainers(must(objs, 'Deployment', 'miner'))[0]!;
      const r = validateRelayerConfig(
        mountedFile(objs, must(objs, 'Deployment', 'relayer'), rc, configArg(rc)),
      );
      const m = validateMinerConfig(mountedFile(objs, must(objs, 'Deployment', 'miner'), mc, configArg(mc)));
      expect(r.redis.url).toBe(m.redis.url);
      expect(r.redis.namespace).toEqual(m.redis.namespace);
      expect(r.pocket_node.query_node_rpc_url).toBe(m.pocket_node.query_node_rpc_url);
    });
  });
}

describe('kustomize base', () => {
  const objs = kustomizeBuild(BASE).objects;

  it('scales the relayer on CPU, keeps one relayer and one miner through disruptions, scrapes both', () => {
    const hpa = must(objs, 'HorizontalPodAutoscaler', 'relayer').spec as JsonObject;
    expect(hpa.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'relayer' });
    expect(hpa.metrics).toEqual([
      expect.objectContaining({ type: 'Resource', resource: expect.objectContaining({ name: 'cpu' }) }),
    ]);
    expect(Number(hpa.minReplicas)).toBeGreaterThanOrEqual(2);
    expect(find(objs, 'PodDisruptionBudget', 'relayer')).toBeDefined();
    expect(find(objs, 'PodDisruptionBudget', 'miner')).toBeDefined();
    expect(
      objs
        .filter((o) => o.kind === 'ServiceMonitor')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['miner', 'relayer']);
  });

  it('mounts the supplier keys from the supplier-keys Secret, read-only', () => {
    for (const name of ['relayer', 'miner']) {
      const w = must(objs, 'Deployment', name);
      const vol = ((podSpecOf(w)!.volumes ?? []) as JsonObject[]).find((v) => v.name === 'supplier-keys');
      expect(vol?.secret).toMatchObject({ secretName: 'supplier-keys' });
      const mount = ((mainContainers(w)[0]!.volumeMounts ?? []) as JsonObject[]).find(
        (m) => m.name === 'supplier-keys',
      );
      expect(mount).toMatchObject({ mountPath: '/keys', readOnly: true });
    }
  });

  it('the base configs keep every section of the example configs', () => {
    const sections = (f: string) => Object.keys(parse(readFileSync(f, 'utf8')) as object);
    const dropped = ['suppliers', 'known_applications', 'service_factors'];
    expect(sections(join(BASE, 'config/relayer.yaml'))).toEqual(
      sections(join(ROOT, 'config.relayer.example.yaml')),
    );
    expect(sections(join(BASE, 'config/miner.yaml'))).toEqual(
      sections(join(ROOT, 'config.miner.example.yaml')).filter((s) => !dropped.includes(s)),
    );
  });

  it('runs the containers as a non-root user on a read-only root filesystem', () => {
    for (const w of workloads(objs)) {
      expect((podSpecOf(w)!.securityContext as JsonObject).runAsNonRoot).toBe(true);
      for (const c of containers(w)) {
        expect(c.securityContext).toMatchObject({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
        });
        expect(c.image).toBe('pocket-relay-miner:latest');
      }
    }
  });
});

describe('kustomize dev overlay', () => {
  const objs = kustomizeBuild(DEV).objects;
  const cfgOf = (name: string) => {
    const w = must(objs, 'Deployment', name);
    const c = mainContainers(w)[0]!;
    return mountedFile(objs, w, c, configArg(c));
  };

  it('adds Redis (StatefulSet), localnet and the demo backends, and drops the ServiceMonitors', () => {
    expect(find(objs, 'StatefulSet', 'redis')).toBeDefined();
    expect(find(objs, 'Deployment', 'localnet')).toBeDefined();
    expect(find(objs, 'Deployment', 'demo-backends')).toBeDefined();
    expect(objs.filter((o) => o.kind === 'ServiceMonitor')).toEqual([]);
  });

  it('points the relayer and the miner at the in-cluster Redis, localnet and demo backends', () => {
    const r = validateRelayerConfig(cfgOf('relayer'));
    const m = validateMinerConfig(cfgOf('miner'));
    for (const url of [
      r.redis.url,
      m.redis.url,
      r.pocket_node.query_node_rpc_url,
      m.pocket_node.query_node_rpc_url,
    ]) {
      expectServiceFor(objs, url);
    }
    for (const svc of Object.values(r.services)) {
      for (const b of Object.values(svc.backends)) {
        const urls = [b?.url, ...(b?.urls ?? []).map((e) => (typeof e === 'string' ? e : e.url))];
        for (const url of urls) if (url !== undefined) expectServiceFor(objs, url);
      }
    }
  });

  it('runs localnet on the genesis file the image carries, listening beyond loopback', () => {
    const c = mainContainers(must(objs, 'Deployment', 'localnet'))[0]!;
    const args = c.args as string[];
    expect(args[0]).toBe('localnet');
    const genesis = args[args.indexOf('--genesis') + 1]!;
    expect(genesis.startsWith('/app/')).toBe(true);
    expect(existsSync(join(ROOT, genesis.slice('/app/'.length)))).toBe(true);
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toContain(
      `COPY ${genesis.slice('/app/'.length)} ./${genesis.slice('/app/'.length)}`,
    );
    expect(args[args.indexOf('--host') + 1]).toBe('0.0.0.0');
    expect(containerPort(c, 'rpc')).toBe(Number(args[args.indexOf('--port') + 1]));
    const m = validateMinerConfig(cfgOf('miner'));
    const blockMs = Number(args[args.indexOf('--block-time-ms') + 1]);
    expect(m.block_time_seconds * 1000).toBe(blockMs);
  });

  it('replaces the supplier-keys Secret with keys written by an init container into memory', () => {
    for (const name of ['relayer', 'miner']) {
      const w = must(objs, 'Deployment', name);
      const vol = ((podSpecOf(w)!.volumes ?? []) as JsonObject[]).find((v) => v.name === 'supplier-keys')!;
      expect(vol.secret).toBeUndefined();
      expect(vol.emptyDir).toEqual({ medium: 'Memory' });
      const init = ((podSpecOf(w)!.initContainers ?? []) as Container[]).find(
        (c) => c.name === 'localnet-keys',
      )!;
      const cmd = init.command as string[];
      expect(cmd.slice(0, 2)).toEqual(['node', '/scripts/localnet-keys.mjs']);
      expect(mountPathsOf(init)).toEqual(expect.arrayContaining(['/keys', '/scripts']));
      expect(cmd[2]).toBe(validateRelayerConfig(cfgOf('relayer')).keys.keys_file);
    }
  });
});

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', (code) => res({ code, out }));
  });
}

describe('dev scripts', () => {
  it('localnet-keys.mjs writes the genesis supplier keys in the keys_file format the relayer loads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'localnet-keys-'));
    try {
      const file = join(dir, 'supplier-keys.yaml');
      const r = await run([join(DEV, 'scripts/localnet-keys.mjs'), file]);
      expect(r.code, r.out).toBe(0);
      const keys = loadSupplierKeys({ keys_file: file });
      const expected = ['supplier-1', 'supplier-2'].map((n) =>
        privateKeyFromSecret(new TextEncoder().encode(`localnet/${n}`)),
      );
      expect(keys).toEqual(expected);
      const genesis = parse(readFileSync(join(ROOT, 'localnet/genesis.sample.yaml'), 'utf8')) as {
        suppliers: { operator_address: string }[];
      };
      expect(keys.map((k) => addressFromPublicKey(publicKeyFromPrivate(k)))).toEqual(
        genesis.suppliers.map((s) => s.operator_address),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('demo-backends.mjs imports what the localnet backends module exports, on the ports of the Service', () => {
    const script = readFileSync(join(DEV, 'scripts/demo-backends.mjs'), 'utf8');
    const index = readFileSync(join(ROOT, 'localnet/backends/index.ts'), 'utf8');
    expect(script).toContain('/dist/localnet/backends/index.js');
    expect(index).toMatch(/export \{ startDemoBackends/);
    const ports = JSON.parse(/PORTS = (\{[^}]*\})/.exec(script)![1]!.replace(/(\w+):/g, '"$1":')) as Record<
      string,
      number
    >;
    const iface = readFileSync(join(ROOT, 'localnet/backends/demo-backends.ts'), 'utf8');
    for (const k of Object.keys(ports)) expect(iface).toMatch(new RegExp(`^\\s+${k}: \\w+Backend;`, 'm'));
    const svc = must(kustomizeBuild(DEV).objects, 'Service', 'demo-backends');
    const svcPorts = Object.fromEntries(
      ((svc.spec as JsonObject).ports as JsonObject[]).map((p) => [p.name, p.port]),
    );
    expect(svcPorts).toEqual(ports);
  });

  it.skipIf(!existsSync(join(ROOT, 'dist/localnet/backends/index.js')))(
    'demo-backends.mjs serves JSON-RPC on its forwarded port (needs `npm run build`)',
    async () => {
      const offset = 10_000 + Math.floor(Math.random() * 4_000);
      const p = spawn(process.execPath, [join(DEV, 'scripts/demo-backends.mjs')], {
        env: { ...process.env, APP_DIR: ROOT, PORT_OFFSET: `${offset}` },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        let out = '';
        await new Promise<void>((res, rej) => {
          const t = setTimeout(() => rej(new Error(`demo backends did not start: ${out}`)), 20_000);
          const onData = (d: Buffer) => {
            out += d.toString();
            if ((out.match(/^demo backend /gm) ?? []).length === 5) {
              clearTimeout(t);
              res();
            }
          };
          p.stdout.on('data', onData);
          p.stderr.on('data', onData);
          p.on('exit', (code) => rej(new Error(`exited ${code}: ${out}`)));
        });
        const r = await fetch(`http://127.0.0.1:${8545 + offset}/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] }),
        });
        expect(r.status).toBe(200);
        expect(((await r.json()) as { result?: string }).result).toMatch(/^0x/);
      } finally {
        p.kill('SIGTERM');
      }
    },
  );
});
