/**
 * The subset of kustomize that k8s/ uses, enough to expand an overlay offline in tests: resources
 * (files and directories), configMapGenerator (files, literals; create/replace/merge; content-hash
 * name suffix with references rewritten), strategic-merge patches (including `$patch: delete` and
 * `null` deletion), namespace, labels and images. Any other kustomization field fails the build, so
 * a manifest change that needs more is noticed here instead of silently ignored.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface K8sObject extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject & { name: string; namespace?: string; labels?: Record<string, string> };
}

export interface KustomizeBuild {
  objects: K8sObject[];
  /** Every file the build read (kustomizations, resources, generator sources, patches). */
  files: string[];
  /** Logical ConfigMap name → generated name (with hash suffix). */
  configMapNames: Map<string, string>;
}

const KNOWN_FIELDS = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'labels',
  'resources',
  'configMapGenerator',
  'patches',
  'images',
]);

/** Kinds without a namespace (the namespace transformer leaves them alone). */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
]);

interface Generated {
  obj: K8sObject;
}

interface Level {
  objects: K8sObject[];
  generated: Generated[];
  files: string[];
}

export class KustomizeError extends Error {}

function fail(dir: string, message: string): never {
  throw new KustomizeError(`${dir}: ${message}`);
}

function asObject(v: unknown, what: string): JsonObject {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new KustomizeError(`${what}: not a mapping`);
  return v as JsonObject;
}

export function loadYamlObjects(path: string): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  const out: K8sObject[] = [];
  for (const d of docs) {
    if (d.errors.length > 0)
      throw new KustomizeError(`${path}: ${d.errors.map((e) => e.message).join('; ')}`);
    const v = d.toJS() as unknown;
    if (v === null || v === undefined) continue;
    const o = asObject(v, path);
    if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') {
      throw new KustomizeError(`${path}: every document needs apiVersion and kind`);
    }
    const md = asObject(o.metadata, `${path} metadata`);
    if (typeof md.name !== 'string' || md.name === '')
      throw new KustomizeError(`${path}: metadata.name missing`);
    out.push(o as K8sObject);
  }
  return out;
}

const clone = <T>(v: T): T => structuredClone(v);

/** A YAML scalar as text (strings as they are, anything else as JSON). */
export function text(v: unknown): string {
  return typeof v === 'string' ? v : (JSON.stringify(v) ?? 'undefined');
}

function podSpecOf(o: K8sObject): JsonObject | undefined {
  const spec = o.spec as JsonObject | undefined;
  const tpl = spec?.template as JsonObject | undefined;
  return tpl?.spec as JsonObject | undefined;
}

function containersOf(o: K8sObject): JsonObject[] {
  const ps = podSpecOf(o);
  if (ps === undefined) return [];
  return [
    ...((ps.initContainers as JsonObject[] | undefined) ?? []),
    ...((ps.containers as JsonObject[] | undefined) ?? []),
  ];
}

/** Merge keys of the strategic-merge-patch lists this repository patches. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  env: 'name',
  ports: 'containerPort',
  imagePullSecrets: 'name',
};

export function strategicMerge(base: Json, patch: Json, field = ''): Json {
  if (patch === null) return null;
  if (Array.isArray(patch)) {
    const key = MERGE_KEYS[field];
    if (key === undefined || !Array.isArray(base)) return clone(patch);
    const out = clone(base) as JsonObject[];
    for (const item of patch as JsonObject[]) {
      const idx = out.findIndex((b) => b[key] === item[key]);
      if (item.$patch === 'delete') {
        if (idx >= 0) out.splice(idx, 1);
      } else if (idx >= 0) out[idx] = strategicMerge(out[idx]!, item) as JsonObject;
      else out.push(stripNulls(item) as JsonObject);
    }
    return out;
  }
  if (typeof patch === 'object') {
    if (base === null || typeof base !== 'object' || Array.isArray(base)) return stripNulls(patch);
    const out = clone(base);
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = k in out ? strategicMerge(out[k]!, v, k) : stripNulls(v);
    }
    return out;
  }
  return patch;
}

function stripNulls(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripNulls);
  if (v !== null && typeof v === 'object') {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = stripNulls(x);
    return out;
  }
  return v;
}

function generatorConfigMap(dir: string, g: JsonObject, files: string[]): K8sObject {
  const data: Record<string, string> = {};
  for (const spec of (g.files as string[] | undefined) ?? []) {
    const eq = spec.indexOf('=');
    const key = eq >= 0 ? spec.slice(0, eq) : basename(spec);
    const rel = eq >= 0 ? spec.slice(eq + 1) : spec;
    const path = resolve(dir, rel);
    if (!path.startsWith(resolve(dir) + '/')) {
      fail(
        dir,
        `configMapGenerator file ${rel} is outside the kustomization directory (kustomize refuses it)`,
      );
    }
    if (!existsSync(path)) fail(dir, `configMapGenerator file ${rel} does not exist`);
    files.push(path);
    data[key] = readFileSync(path, 'utf8');
  }
  for (const lit of (g.literals as string[] | undefined) ?? []) {
    const eq = lit.indexOf('=');
    if (eq <= 0) fail(dir, `configMapGenerator literal ${lit} is not key=value`);
    data[lit.slice(0, eq)] = lit.slice(eq + 1);
  }
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: text(g.name) }, data };
}

function buildLevel(dirIn: string, seen: Set<string>): Level {
  const dir = resolve(dirIn);
  if (seen.has(dir)) fail(dir, 'kustomization cycle');
  seen.add(dir);
  const kfile = join(dir, 'kustomization.yaml');
  if (!existsSync(kfile)) fail(dir, 'no kustomization.yaml');
  const k = asObject(parse(readFileSync(kfile, 'utf8')), kfile);
  for (const f of Object.keys(k))
    if (!KNOWN_FIELDS.has(f)) fail(dir, `kustomization field ${f} is not supported here`);
  if (k.kind !== 'Kustomization') fail(dir, 'kind must be Kustomization');

  const level: Level = { objects: [], generated: [], files: [kfile] };
  for (const r of (k.resources as string[] | undefined) ?? []) {
    const path = resolve(dir, r);
    if (!existsSync(path)) fail(dir, `resource ${r} does not exist`);
    if (statSync(path).isDirectory()) {
      const sub = buildLevel(path, seen);
      level.objects.push(...sub.objects);
      level.generated.push(...sub.generated);
      level.files.push(...sub.files);
    } else {
      level.files.push(path);
      level.objects.push(...loadYamlObjects(path));
    }
  }

  for (const gRaw of (k.configMapGenerator as Json[] | undefined) ?? []) {
    const g = asObject(gRaw, `${kfile} configMapGenerator`);
    const cm = generatorConfigMap(dir, g, level.files);
    const behavior = (g.behavior as string | undefined) ?? 'create';
    const existing = level.generated.find((x) => x.obj.metadata.name === cm.metadata.name);
    if (behavior === 'create') {
      if (existing !== undefined)
        fail(dir, `configMapGenerator ${cm.metadata.name} already exists (use behavior)`);
      level.generated.push({ obj: cm });
      level.objects.push(cm);
    } else if (behavior === 'replace' || behavior === 'merge') {
      if (existing === undefined) fail(dir, `configMapGenerator ${cm.metadata.name}: nothing to ${behavior}`);
      const data =
        behavior === 'replace'
          ? (cm.data as JsonObject)
          : { ...(existing.obj.data as JsonObject), ...(cm.data as JsonObject) };
      existing.obj.data = data;
    } else fail(dir, `configMapGenerator behavior ${behavior} unknown`);
  }

  for (const pRaw of (k.patches as Json[] | undefined) ?? []) {
    const p = asObject(pRaw, `${kfile} patches`);
    if (typeof p.path !== 'string' || p.target !== undefined)
      fail(dir, 'only `patches: - path:` is supported');
    const path = resolve(dir, p.path);
    if (!existsSync(path)) fail(dir, `patch ${p.path} does not exist`);
    level.files.push(path);
    for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
      const patch = asObject(doc.toJS(), path);
      const name = (patch.metadata as JsonObject | undefined)?.name;
      const idx = level.objects.findIndex(
        (o) => o.kind === patch.kind && o.apiVersion === patch.apiVersion && o.metadata.name === name,
      );
      if (idx < 0) fail(dir, `patch ${p.path}: no ${text(patch.kind)} ${text(name)} to patch`);
      if (patch.$patch === 'delete') {
        const [removed] = level.objects.splice(idx, 1);
        level.generated = level.generated.filter((g) => g.obj !== removed);
      } else {
        const merged = strategicMerge(level.objects[idx]!, patch) as K8sObject;
        const gen = level.generated.find((g) => g.obj === level.objects[idx]);
        if (gen !== undefined) gen.obj = merged;
        level.objects[idx] = merged;
      }
    }
  }

  if (typeof k.namespace === 'string') {
    for (const o of level.objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  }

  for (const lRaw of (k.labels as Json[] | undefined) ?? []) {
    const l = asObject(lRaw, `${kfile} labels`);
    const pairs = asObject(l.pairs, `${kfile} labels.pairs`) as Record<string, string>;
    for (const o of level.objects) {
      o.metadata.labels = { ...(o.metadata.labels ?? {}), ...pairs };
      const spec = o.spec as JsonObject | undefined;
      const tpl = spec?.template as JsonObject | undefined;
      if (l.includeTemplates === true || l.includeSelectors === true) {
        if (tpl !== undefined) {
          const md = (tpl.metadata ?? {}) as JsonObject;
          md.labels = { ...((md.labels as JsonObject | undefined) ?? {}), ...pairs };
          tpl.metadata = md;
        }
      }
      if (l.includeSelectors === true) fail(dir, 'labels.includeSelectors is not supported here');
    }
  }

  for (const iRaw of (k.images as Json[] | undefined) ?? []) {
    const img = asObject(iRaw, `${kfile} images`);
    for (const o of level.objects) {
      for (const c of containersOf(o)) {
        const ref = text(c.image);
        const name = ref.replace(/[:@].*$/, '');
        if (name !== img.name) continue;
        const newName = (img.newName as string | undefined) ?? name;
        const tag = (img.newTag as string | undefined) ?? (ref.includes(':') ? ref.split(':')[1] : undefined);
        c.image = tag === undefined ? newName : `${newName}:${tag}`;
      }
    }
  }
  seen.delete(dir);
  return level;
}

function configMapRefs(o: K8sObject): { get(): string; set(v: string): void }[] {
  const ps = podSpecOf(o);
  if (ps === undefined) return [];
  const refs: { get(): string; set(v: string): void }[] = [];
  const field = (holder: JsonObject, key: string) => ({
    get: () => text(holder[key]),
    set: (v: string) => {
      holder[key] = v;
    },
  });
  for (const v of (ps.volumes as JsonObject[] | undefined) ?? []) {
    if (v.configMap !== undefined) refs.push(field(v.configMap as JsonObject, 'name'));
  }
  for (const c of containersOf(o)) {
    for (const e of (c.envFrom as JsonObject[] | undefined) ?? []) {
      if (e.configMapRef !== undefined) refs.push(field(e.configMapRef as JsonObject, 'name'));
    }
    for (const e of (c.env as JsonObject[] | undefined) ?? []) {
      const ref = (e.valueFrom as JsonObject | undefined)?.configMapKeyRef as JsonObject | undefined;
      if (ref !== undefined) refs.push(field(ref, 'name'));
    }
  }
  return refs;
}

/** Content hash suffix (10 hex chars of SHA-256 over the data; not kustomize's exact encoding). */
export function contentHash(cm: K8sObject): string {
  const data = (cm.data ?? {}) as Record<string, string>;
  const canonical = JSON.stringify(
    Object.keys(data)
      .sort()
      .map((k) => [k, data[k]]),
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 10);
}

export function kustomizeBuild(dir: string): KustomizeBuild {
  const level = buildLevel(dir, new Set());
  const names = new Map<string, string>();
  for (const g of level.generated) {
    const logical = g.obj.metadata.name;
    const hashed = `${logical}-${contentHash(g.obj)}`;
    names.set(logical, hashed);
    g.obj.metadata.name = hashed;
  }
  for (const o of level.objects) {
    for (const ref of configMapRefs(o)) {
      const hashed = names.get(ref.get());
      if (hashed !== undefined) ref.set(hashed);
    }
  }
  return { objects: level.objects, files: [...new Set(level.files)], configMapNames: names };
}

export { containersOf, podSpecOf };
