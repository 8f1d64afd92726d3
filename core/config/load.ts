/**
 * YAML text → parsed object → schema check (unknown keys rejected, defaults applied) → cross-field
 * checks → deeply frozen object (STYLE.md §6). Every problem of every stage that can run is
 * reported at once in one ConfigError.
 */
import { Parser, parseDocument, type CST } from 'yaml';
import type { z } from 'zod';
import { ConfigError, IssueList, dottedPath, type ConfigIssue } from './issues.js';

export type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

export interface LoadOptions<S extends z.ZodType> {
  schema: S;
  /** Checks that span fields; runs only when the schema check passed. */
  crossCheck?: (cfg: z.output<S>, issues: IssueList) => void;
  /** Named in the error message (a file path or `<inline>`). */
  source?: string;
}

/** Freezes an object graph in place and returns it. */
export function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value as DeepReadonly<T>;
}

/** Turns zod issues into operator-facing ones: dotted path plus what to change. */
export function zodIssues(error: z.ZodError): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const base = dottedPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        out.push({
          path: base === '' ? key : `${base}.${key}`,
          message: 'unknown key; remove it or check its spelling against config.relayer.example.yaml',
        });
      }
      continue;
    }
    out.push({ path: base, message: issue.message });
  }
  return out;
}

/**
 * Deepest nesting of collections accepted in a YAML document. The yaml composer recurses once per
 * level; a document thousands of levels deep overflows the stack, and a second such document in
 * the same process can abort it (V8 fails fatally compiling a regular expression at that depth).
 */
export const MAX_YAML_NESTING = 64;

/** Deepest collection nesting of a YAML text, measured on its CST without recursion. */
export function yamlNestingDepth(text: string): number {
  let deepest = 0;
  const stack: [CST.Token, number][] = [];
  for (const token of new Parser().parse(text)) stack.push([token, 0]);
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [token, depth] = top;
    if (token.type === 'document') {
      if (token.value !== undefined) stack.push([token.value, depth]);
    } else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      const inner = depth + 1;
      if (inner > deepest) deepest = inner;
      for (const item of token.items) {
        if (item.key !== undefined && item.key !== null) stack.push([item.key, inner]);
        if (item.value !== undefined) stack.push([item.value, inner]);
      }
    }
  }
  return deepest;
}

/** Parses YAML text; returns the plain value or the syntax issues with their line numbers. */
export function parseYaml(text: string): { value: unknown; issues: ConfigIssue[] } {
  const depth = yamlNestingDepth(text);
  if (depth > MAX_YAML_NESTING) {
    return {
      value: undefined,
      issues: [
        {
          path: '',
          message: `the document nests ${depth} levels deep; at most ${MAX_YAML_NESTING} are accepted`,
        },
      ],
    };
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const issues: ConfigIssue[] = doc.errors.map((e) => ({
    path: '',
    message: `YAML syntax error at line ${e.linePos?.[0].line ?? '?'}: ${e.message.split('\n')[0] ?? e.code}`,
  }));
  if (issues.length > 0) return { value: undefined, issues };
  try {
    return { value: doc.toJS({ maxAliasCount: 100 }) ?? {}, issues: [] };
  } catch (err) {
    // An alias to an unknown anchor, or more alias expansions than allowed (a "billion laughs").
    return { value: undefined, issues: [{ path: '', message: `YAML error: ${(err as Error).message}` }] };
  }
}

/** The whole pipeline on an already-parsed value (used by loadConfigText and by tests). */
export function validateConfigValue<S extends z.ZodType>(
  value: unknown,
  opts: LoadOptions<S>,
): DeepReadonly<z.output<S>> {
  const source = opts.source ?? '<inline>';
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(source, [{ path: '', message: 'the document must be a YAML mapping of keys' }]);
  }
  const parsed = opts.schema.safeParse(value);
  if (!parsed.success) throw new ConfigError(source, zodIssues(parsed.error));
  const cfg = parsed.data;
  const issues = new IssueList();
  opts.crossCheck?.(cfg, issues);
  if (issues.items.length > 0) throw new ConfigError(source, issues.items);
  return deepFreeze(cfg);
}

/** YAML text → frozen config, or ConfigError listing every problem. */
export function loadConfigText<S extends z.ZodType>(
  text: string,
  opts: LoadOptions<S>,
): DeepReadonly<z.output<S>> {
  const { value, issues } = parseYaml(text);
  if (issues.length > 0) throw new ConfigError(opts.source ?? '<inline>', issues);
  return validateConfigValue(value, opts);
}
