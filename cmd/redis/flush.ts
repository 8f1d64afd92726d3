/** `redis flush`: delete keys of a pattern inside the namespace, after confirmation. */
import { RedisCliUsageError, scanKeys, type Out, type RedisCli } from './context.js';

export interface FlushPlan {
  pattern: string;
  keys: string[];
  sample: string[];
  warnings: string[];
}

/** Patterns outside `{base}:` (or the relay meter's prefix) are refused. */
export async function planFlush(
  cli: RedisCli,
  pattern: string | undefined,
  all: boolean,
): Promise<FlushPlan> {
  if ((pattern === undefined) === !all)
    throw new RedisCliUsageError('give exactly one of --pattern and --all');
  const p = all ? cli.keys.allKeysPattern() : pattern!;
  const roots = [
    ...new Set([`${cli.keys.namespace.base_prefix}:`, `${cli.meterKeys.namespace.base_prefix}:`]),
  ];
  const root = roots.find((r) => p.startsWith(r));
  if (root === undefined) {
    throw new RedisCliUsageError(
      `--pattern ${p} is outside the namespace; it must start with ${roots.join(' or ')}`,
    );
  }
  const keys = (await scanKeys(cli.redis, p)).filter((k) => k.startsWith(root));
  const warnings: string[] = [];
  if (p === cli.keys.allKeysPattern())
    warnings.push('this deletes ALL data of the namespace, revenue data included');
  if (p.startsWith(cli.keys.smstPrefix()))
    warnings.push('session tries hold unclaimed or unproven relays: deleting them loses rewards');
  if (p.startsWith(cli.keys.minerSessionsPrefix()))
    warnings.push('session snapshots drive claims and proofs: deleting them stops their lifecycle');
  if (p.startsWith(cli.keys.streamPrefix())) warnings.push('relay streams hold relays not yet mined');
  return { pattern: p, keys, sample: keys.slice(0, 10), warnings };
}

export async function executeFlush(cli: RedisCli, plan: FlushPlan): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < plan.keys.length; i += 500) {
    deleted += await cli.redis.unlink(...plan.keys.slice(i, i + 500));
  }
  return deleted;
}

export function printPlan(plan: FlushPlan, out: Out): void {
  out(`Pattern:  ${plan.pattern}\nMatches:  ${plan.keys.length} key(s)\n`);
  for (const k of plan.sample) out(`  ${k}\n`);
  if (plan.keys.length > plan.sample.length) out(`  … and ${plan.keys.length - plan.sample.length} more\n`);
  for (const w of plan.warnings) out(`WARNING: ${w}\n`);
}
