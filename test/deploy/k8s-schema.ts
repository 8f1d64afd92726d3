/**
 * Offline validation of Kubernetes objects: the OpenAPI validators bundled in `kubernetes-models`
 * (and `@kubernetes-models/prometheus-operator` for ServiceMonitor), plus an unknown-field check the
 * bundled validators do not make (the API server's strict field validation does), driven by the
 * property lists of the packages' type declarations.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { K8sObject } from './kustomize.js';

const require = createRequire(import.meta.url);

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/** Import specifier (without extension) of the model for an apiVersion/kind. */
export function modelSpecifier(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/')) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  }
  return `kubernetes-models/${apiVersion}/${kind}`;
}

export async function validateSchema(o: K8sObject): Promise<string[]> {
  const spec = modelSpecifier(o.apiVersion, o.kind);
  let mod: Record<string, ModelClass>;
  try {
    mod = (await import(spec)) as Record<string, ModelClass>;
  } catch {
    return [`${o.kind} ${o.metadata.name}: no schema for ${o.apiVersion} ${o.kind}`];
  }
  const Model = mod[o.kind];
  if (Model === undefined) return [`${o.kind} ${o.metadata.name}: model ${spec} has no class ${o.kind}`];
  const errors: string[] = [];
  try {
    new Model(o).validate();
  } catch (err) {
    errors.push(`${o.kind} ${o.metadata.name}: ${(err as Error).message}`);
  }
  errors.push(
    ...unknownFields(o, declarationFile(spec)).map((p) => `${o.kind} ${o.metadata.name}: unknown field ${p}`),
  );
  return errors;
}

function declarationFile(specifier: string): string {
  const pkg = specifier.startsWith('@')
    ? specifier.split('/').slice(0, 2).join('/')
    : specifier.split('/')[0]!;
  const pkgJson = require.resolve(`${pkg}/package.json`);
  return join(dirname(pkgJson), specifier.slice(pkg.length + 1) + '.d.ts');
}

interface Shape {
  props: Map<string, { iface?: string; array: boolean }>;
  imports: Map<string, string>;
}

const shapes = new Map<string, Shape | undefined>();

/** Properties of the first interface declared in a .d.ts file (undefined when it has none). */
function shapeOf(file: string): Shape | undefined {
  if (shapes.has(file)) return shapes.get(file);
  let shape: Shape | undefined;
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8');
    const imports = new Map<string, string>();
    for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) imports.set(m[1]!, m[2]!);
    const start = text.search(/^export interface \w+/m);
    if (start >= 0) {
      const end = text.indexOf('\n}', start);
      const body = text.slice(start, end);
      const props = new Map<string, { iface?: string; array: boolean }>();
      for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.*?);?$/gm)) {
        const type = m[2]!;
        const arr = /^Array<(\w+)>$/.exec(type);
        const one = /^(\w+)$/.exec(type);
        const name = arr?.[1] ?? one?.[1];
        props.set(m[1]!, {
          ...(name !== undefined && imports.has(name) ? { iface: name } : {}),
          array: arr !== null,
        });
      }
      shape = { props, imports };
    }
  }
  shapes.set(file, shape);
  return shape;
}

function resolveImport(fromFile: string, spec: string): string {
  if (spec.startsWith('.')) return resolve(dirname(fromFile), spec.replace(/\.js$/, '.d.ts'));
  return declarationFile(spec);
}

function unknownFields(value: unknown, file: string, path = ''): string[] {
  const shape = shapeOf(file);
  if (shape === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const p = shape.props.get(k);
    const here = `${path}.${k}`;
    if (p === undefined) {
      out.push(here.slice(1));
      continue;
    }
    if (p.iface === undefined) continue;
    const child = resolveImport(file, shape.imports.get(p.iface)!);
    if (p.array && Array.isArray(v))
      v.forEach((x, i) => out.push(...unknownFields(x, child, `${here}[${i}]`)));
    else out.push(...unknownFields(v, child, here));
  }
  return out;
}
