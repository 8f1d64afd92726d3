/** `redis submissions`: claim/proof submission records and messages awaiting inclusion. */
import pino from 'pino';
import {
  SessionStore,
  decodeStoredMessage,
  type StoredMessage,
  type SubmissionRecord,
} from '../../miner/index.js';
import type { RebroadcastPhase } from '../../transport/index.js';
import { RedisCliUsageError, formatTable, scanKeys, type Out, type RedisCli } from './context.js';

export interface SubmissionsQuery {
  supplier?: string;
  service?: string;
  app?: string;
  session?: string;
  sessionEnd?: number;
  failedOnly?: boolean;
  successOnly?: boolean;
  /** 0 = all. */
  limit: number;
}

export type SubmissionStatus = 'included' | 'failed' | 'pending';

export interface SubmissionRow extends SubmissionRecord {
  key: string;
  status: SubmissionStatus;
  service_id?: string;
  application_address?: string;
  relay_count?: number;
  compute_units?: bigint;
}

export interface PendingMessage extends Omit<StoredMessage, 'msg'> {
  phase: RebroadcastPhase;
  supplier: string;
  session_end_height: number;
  msg_bytes: number;
}

export interface SubmissionsReport {
  records: SubmissionRow[];
  /** Messages still in the rebroadcast store (not yet seen on chain). */
  pending: PendingMessage[];
}

export function submissionStatus(r: SubmissionRecord): SubmissionStatus {
  if (r.outcome === 'found') return 'included';
  if (r.outcome === 'missing' || r.outcome === 'invalid') return 'failed';
  return 'pending';
}

export async function submissionsReport(cli: RedisCli, q: SubmissionsQuery): Promise<SubmissionsReport> {
  if (q.failedOnly === true && q.successOnly === true) {
    throw new RedisCliUsageError('--failed-only and --success-only are mutually exclusive');
  }
  if ((q.session === undefined) !== (q.sessionEnd === undefined)) {
    throw new RedisCliUsageError('--session and --session-end go together');
  }
  if (q.session !== undefined && q.supplier === undefined) {
    throw new RedisCliUsageError('--session needs --supplier');
  }
  const keys =
    q.session !== undefined
      ? [cli.keys.txTrack(q.supplier!, q.sessionEnd!, q.session)]
      : await scanKeys(
          cli.redis,
          q.supplier !== undefined ? cli.keys.txTrackPattern(q.supplier) : cli.keys.txTrackAllPattern(),
        );
  const snaps = new SessionStore(
    { redis: cli.redis, keys: cli.keys, log: pino({ level: 'silent' }) },
    { ttl_seconds: 0 },
  );
  const records: SubmissionRow[] = [];
  for (const key of keys) {
    const raw = await cli.redis.get(key);
    if (raw === null) continue;
    let rec: SubmissionRecord;
    try {
      rec = JSON.parse(raw) as SubmissionRecord;
    } catch {
      continue;
    }
    const status = submissionStatus(rec);
    if (q.failedOnly === true && status !== 'failed') continue;
    if (q.successOnly === true && status !== 'included') continue;
    const snap = await snaps.get(rec.supplier, rec.session_id).catch(() => undefined);
    if (q.service !== undefined && snap?.service_id !== q.service) continue;
    if (q.app !== undefined && snap?.application_address !== q.app) continue;
    records.push({
      ...rec,
      key,
      status,
      ...(snap !== undefined
        ? {
            service_id: snap.service_id,
            application_address: snap.application_address,
            relay_count: snap.relay_count,
            compute_units: snap.total_compute_units,
          }
        : {}),
    });
  }
  records.sort(
    (a, b) => b.session_end_height - a.session_end_height || (a.session_id < b.session_id ? -1 : 1),
  );
  const pending: PendingMessage[] = [];
  for (const phase of ['claim', 'proof'] as const) {
    for (const member of await cli.redis.smembers(cli.keys.rebroadcastIndex(phase))) {
      const [supplier, end] = member.split('|');
      const endHeight = Number(end);
      if (supplier === undefined || !Number.isSafeInteger(endHeight)) continue;
      if (q.supplier !== undefined && supplier !== q.supplier) continue;
      const hash = await cli.redis.hgetall(cli.keys.rebroadcast(phase, supplier, endHeight));
      for (const [sessionId, text] of Object.entries(hash)) {
        const m = decodeStoredMessage(sessionId, text);
        if (m === undefined) continue;
        if (q.session !== undefined && sessionId !== q.session) continue;
        const { msg, ...rest } = m;
        pending.push({ ...rest, phase, supplier, session_end_height: endHeight, msg_bytes: msg.length });
      }
    }
  }
  return { records: q.limit > 0 ? records.slice(0, q.limit) : records, pending };
}

export function printSubmissions(r: SubmissionsReport, out: Out): void {
  if (r.records.length === 0) out('No submission records\n');
  else {
    out(
      formatTable(
        [
          'SESSION',
          'END',
          'PHASE',
          'STATUS',
          'SUBMIT H',
          'OUTCOME H',
          'RESENDS',
          'RELAYS',
          'CU',
          'SERVICE',
          'TX HASH',
        ],
        r.records.map((x) => [
          x.session_id,
          x.session_end_height,
          x.phase,
          x.status,
          x.submit_height,
          x.outcome_height,
          x.resends,
          x.relay_count,
          x.compute_units,
          x.service_id,
          x.tx_hash,
        ]),
      ),
    );
  }
  if (r.pending.length > 0) {
    out('\nAwaiting inclusion (rebroadcast store)\n');
    out(
      formatTable(
        ['PHASE', 'SUPPLIER', 'END', 'SESSION', 'SUBMIT H', 'RESENDS', 'TX HASH'],
        r.pending.map((p) => [
          p.phase,
          p.supplier,
          p.session_end_height,
          p.sessionId,
          p.submitHeight,
          p.resends,
          p.txHash,
        ]),
      ),
    );
  }
}
