/** `redis smst`: every supplier's session trie of one session (nodes, roots, claimed count/sum). */
import { parseMerkleSumRoot } from '../../protocol/smst/index.js';
import { formatTable, printable, scanKeys, ttlText, type Out, type RedisCli } from './context.js';

export interface RootInfo {
  hex: string;
  sum: bigint;
  count: bigint;
}

export interface SmstTree {
  supplier: string;
  nodes_key: string;
  node_count: number;
  ttl_seconds: number;
  /** The root sealed for the claim, absent until the claim. */
  root?: RootInfo;
  live_root?: RootInfo;
  /** `…:stats` = `{count}:{sum}`, written with the claimed root. */
  stats?: { count: bigint; sum: bigint };
  sample_nodes: { key: string; value: string }[];
  flush_command: string;
}

function rootInfo(b: Buffer | null): RootInfo | undefined {
  if (b === null || b.length === 0) return undefined;
  try {
    const r = parseMerkleSumRoot(new Uint8Array(b));
    return { hex: b.toString('hex'), sum: r.sum, count: r.count };
  } catch {
    return { hex: b.toString('hex'), sum: -1n, count: -1n };
  }
}

function supplierOfNodesKey(cli: RedisCli, key: string, sessionId: string): string {
  const rest = key.slice(cli.keys.smstPrefix().length, key.length - `:${sessionId}:nodes`.length);
  return /^\{[^{}]+\}$/.test(rest) ? rest.slice(1, -1) : rest;
}

export async function smstTrees(
  cli: RedisCli,
  sessionId: string,
  limit: number,
  supplier?: string,
): Promise<SmstTree[]> {
  const nodesKeys =
    supplier !== undefined
      ? [cli.keys.smstNodes(supplier, sessionId)]
      : await scanKeys(cli.redis, cli.keys.smstSessionNodesPattern(sessionId));
  const out: SmstTree[] = [];
  for (const nodesKey of nodesKeys) {
    const sup = supplier ?? supplierOfNodesKey(cli, nodesKey, sessionId);
    const k = cli.keys.sessionTree(sup, sessionId);
    const [count, ttl, root, live, stats] = await Promise.all([
      cli.redis.hlen(k.nodes),
      cli.redis.ttl(k.nodes),
      cli.redis.getBuffer(k.root),
      cli.redis.getBuffer(k.liveRoot),
      cli.redis.get(k.stats),
    ]);
    if (count === 0 && root === null && live === null) continue;
    const sample: SmstTree['sample_nodes'] = [];
    if (limit > 0) {
      let cursor = '0';
      do {
        const [next, flat] = await cli.redis.hscanBuffer(k.nodes, cursor, 'COUNT', Math.max(limit, 10));
        cursor = next.toString();
        for (let i = 0; i + 1 < flat.length && sample.length < limit; i += 2) {
          sample.push({ key: flat[i]!.toString('utf8'), value: printable(flat[i + 1]!, 64) });
        }
      } while (cursor !== '0' && sample.length < limit);
    }
    const m = stats !== null ? /^(\d+):(\d+)$/.exec(stats) : null;
    const r = rootInfo(root);
    const l = rootInfo(live);
    out.push({
      supplier: sup,
      nodes_key: k.nodes,
      node_count: count,
      ttl_seconds: ttl,
      ...(r !== undefined ? { root: r } : {}),
      ...(l !== undefined ? { live_root: l } : {}),
      ...(m !== null ? { stats: { count: BigInt(m[1]!), sum: BigInt(m[2]!) } } : {}),
      sample_nodes: sample,
      flush_command: `pocket-relay-miner redis flush --pattern '${cli.keys.smstSessionAllPattern(sup, sessionId)}'`,
    });
  }
  return out;
}

export function printSmst(sessionId: string, trees: readonly SmstTree[], out: Out): void {
  if (trees.length === 0) {
    out(`No session trie for session ${sessionId}\n`);
    return;
  }
  for (const t of trees) {
    out(`Tree:         ${t.nodes_key}\n`);
    out(`Supplier:     ${t.supplier}\n`);
    out(`Nodes:        ${t.node_count} (TTL ${ttlText(t.ttl_seconds)})\n`);
    out(
      `Claimed root: ${t.root !== undefined ? `${t.root.hex} (count ${t.root.count}, sum ${t.root.sum})` : 'none (not claimed yet)'}\n`,
    );
    out(
      `Live root:    ${t.live_root !== undefined ? `${t.live_root.hex} (count ${t.live_root.count}, sum ${t.live_root.sum})` : 'none'}\n`,
    );
    if (t.stats !== undefined) out(`Stats:        count ${t.stats.count}, sum ${t.stats.sum}\n`);
    if (t.sample_nodes.length > 0) {
      out(
        formatTable(
          ['NODE (DIGEST)', 'VALUE'],
          t.sample_nodes.map((n) => [n.key, n.value]),
        ),
      );
    }
    out(`Delete with:  ${t.flush_command}\n\n`);
  }
}
