/**
 * Configuration problems. Every check reports into one list so an operator sees all problems at
 * once, each with its dotted path (`services.eth.backends.jsonrpc.url`) and what to change.
 */
import { RelayMinerError } from '../errors.js';

export interface ConfigIssue {
  /** Dotted path of the offending key; `''` for the document itself. */
  path: string;
  /** What is wrong and what to change. */
  message: string;
}

/** Thrown by loadConfig when the text is not YAML or does not validate. */
export class ConfigError extends RelayMinerError {
  readonly issues: readonly ConfigIssue[];
  readonly source: string;

  constructor(source: string, issues: readonly ConfigIssue[]) {
    super(
      'CONFIG_INVALID',
      `${source}: ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n` +
        issues.map((i) => `  - ${formatIssue(i)}`).join('\n'),
    );
    this.source = source;
    this.issues = Object.freeze([...issues]);
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`;
}

/** Joins path segments the way operators write them: `a.b.c`, array indices as `a.b[2]`. */
export function dottedPath(segments: readonly PropertyKey[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? String(s) : `.${String(s)}`;
  }
  return out;
}

/** Collects issues during cross-field checks. */
export class IssueList {
  readonly items: ConfigIssue[] = [];
  add(path: string, message: string): void {
    this.items.push({ path, message });
  }
}
