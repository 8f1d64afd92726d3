/**
 * The simulator's genesis file (YAML or JSON): chain id, start height and time, every module's
 * params, accounts with balances and public keys, services, applications, gateways and suppliers.
 * Parsing checks every field, rejects unknown keys and reports every problem at once with its
 * dotted path (`suppliers[0].services[0].endpoints[0].rpc_type: …`).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { MAX_YAML_NESTING, yamlNestingDepth } from '../core/config/index.js';
import { hexToBytes } from '../core/index.js';
import { addressFromPublicKey, isCompressedPublicKey, isValidAddress } from '../protocol/index.js';
import { GenesisInvalidError, type GenesisIssue } from './errors.js';

export const RPC_TYPES = ['GRPC', 'WEBSOCKET', 'JSON_RPC', 'REST', 'COMET_BFT'] as const;
export type RpcTypeName = (typeof RPC_TYPES)[number];

export interface GenesisSharedParams {
  num_blocks_per_session: number;
  grace_period_end_offset_blocks: number;
  claim_window_open_offset_blocks: number;
  claim_window_close_offset_blocks: number;
  proof_window_open_offset_blocks: number;
  proof_window_close_offset_blocks: number;
  supplier_unbonding_period_sessions: number;
  application_unbonding_period_sessions: number;
  gateway_unbonding_period_sessions: number;
  compute_units_to_tokens_multiplier: bigint;
  compute_unit_cost_granularity: bigint;
  session_grid_anchor_height: number;
  session_number_at_anchor: number;
}

export interface GenesisParams {
  shared: GenesisSharedParams;
  session: { num_suppliers_per_session: number };
  proof: {
    proof_request_probability: number;
    proof_requirement_threshold_upokt: bigint;
    proof_missing_penalty_upokt: bigint;
    proof_submission_fee_upokt: bigint;
  };
  service: { add_service_fee_upokt: bigint; target_num_relays: bigint };
  application: { max_delegated_gateways: bigint; min_stake_upokt: bigint };
  supplier: { min_stake_upokt: bigint; staking_fee_upokt: bigint };
  gateway: { min_stake_upokt: bigint };
  tokenomics: {
    mint_allocation_percentages: TokenomicsShares;
    dao_reward_address: string;
    global_inflation_per_claim: number;
    mint_equals_burn_claim_distribution: TokenomicsShares;
    mint_ratio: number;
    overservicing_bonus_multiplier: bigint;
  };
}

export interface TokenomicsShares {
  dao: number;
  proposer: number;
  supplier: number;
  source_owner: number;
  application: number;
}

export interface GenesisAccount {
  address: string;
  /** 33-byte compressed key, when known at genesis (apps and gateways need it for rings). */
  pub_key?: Uint8Array;
  balance_upokt: bigint;
}

export interface GenesisService {
  id: string;
  name: string;
  compute_units_per_relay: bigint;
  owner_address: string;
}

export interface GenesisApplication {
  address: string;
  stake_upokt: bigint;
  service_ids: string[];
  delegatee_gateway_addresses: string[];
}

export interface GenesisGateway {
  address: string;
  stake_upokt: bigint;
}

export interface GenesisSupplierService {
  service_id: string;
  endpoints: { url: string; rpc_type: RpcTypeName }[];
  rev_share: { address: string; rev_share_percentage: bigint }[];
}

export interface GenesisSupplier {
  operator_address: string;
  owner_address: string;
  stake_upokt: bigint;
  services: GenesisSupplierService[];
}

export interface Genesis {
  chain_id: string;
  /** RFC 3339; absent → the wall clock when the chain starts. */
  genesis_time?: Date;
  initial_height: number;
  /** Minimum gas price in upokt per gas unit (decimal, e.g. 0.000001); 0 accepts fee-less txs. */
  min_gas_price_upokt: number;
  params: GenesisParams;
  accounts: GenesisAccount[];
  services: GenesisService[];
  applications: GenesisApplication[];
  gateways: GenesisGateway[];
  suppliers: GenesisSupplier[];
}

// ---------------------------------------------------------------------------------------------
// Defaults: poktroll DefaultParams (chain.md §1), except where noted.

const DEFAULT_SHARED: GenesisSharedParams = {
  num_blocks_per_session: 10,
  grace_period_end_offset_blocks: 1,
  claim_window_open_offset_blocks: 1,
  claim_window_close_offset_blocks: 4,
  proof_window_open_offset_blocks: 0,
  proof_window_close_offset_blocks: 4,
  supplier_unbonding_period_sessions: 1,
  application_unbonding_period_sessions: 1,
  gateway_unbonding_period_sessions: 1,
  compute_units_to_tokens_multiplier: 42_000_000n,
  compute_unit_cost_granularity: 1_000_000n,
  session_grid_anchor_height: 0,
  session_number_at_anchor: 0,
};

const DEFAULT_SHARES: TokenomicsShares = {
  dao: 0.1,
  proposer: 0.05,
  supplier: 0.7,
  source_owner: 0.15,
  application: 0,
};

// ---------------------------------------------------------------------------------------------
// A small checker that walks the parsed document, collecting issues with dotted paths.

type Obj = Record<string, unknown>;

class Checker {
  readonly issues: GenesisIssue[] = [];

  issue(path: string, message: string): void {
    this.issues.push({ path: path === '' ? '(root)' : path, message });
  }

  /** The object at `path`, checking that it has only `allowed` keys; undefined if not an object. */
  object(value: unknown, path: string, allowed: readonly string[]): Obj | undefined {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.issue(path, `expected a mapping, got ${describe(value)}`);
      return undefined;
    }
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) {
        this.issue(join(path, key), `unknown field; expected one of ${allowed.join(', ')}`);
      }
    }
    return value as Obj;
  }

  array(value: unknown, path: string): unknown[] | undefined {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      this.issue(path, `expected a list, got ${describe(value)}`);
      return undefined;
    }
    return value as unknown[];
  }

  string(value: unknown, path: string, opts: { pattern?: RegExp; what?: string } = {}): string | undefined {
    if (typeof value !== 'string' || value.length === 0) {
      this.issue(path, `expected a non-empty string, got ${describe(value)}`);
      return undefined;
    }
    if (opts.pattern !== undefined && !opts.pattern.test(value)) {
      this.issue(
        path,
        `expected ${opts.what ?? `a string matching ${String(opts.pattern)}`}, got "${value}"`,
      );
      return undefined;
    }
    return value;
  }

  address(value: unknown, path: string): string | undefined {
    const s = this.string(value, path);
    if (s === undefined) return undefined;
    if (!isValidAddress(s)) {
      this.issue(path, `expected a bech32 address with prefix "pokt", got "${s}"`);
      return undefined;
    }
    return s;
  }

  /** A non-negative integer (number, bigint or decimal string) that fits in a safe integer. */
  int(value: unknown, path: string, min = 0): number | undefined {
    const b = this.uint(value, path);
    if (b === undefined) return undefined;
    if (b > BigInt(Number.MAX_SAFE_INTEGER)) {
      this.issue(path, `expected an integer ≤ ${Number.MAX_SAFE_INTEGER}, got ${b}`);
      return undefined;
    }
    if (b < BigInt(min)) {
      this.issue(path, `expected an integer ≥ ${min}, got ${b}`);
      return undefined;
    }
    return Number(b);
  }

  /** A uint64: a non-negative integer as number, bigint or decimal string. */
  uint(value: unknown, path: string): bigint | undefined {
    let b: bigint | undefined;
    if (typeof value === 'bigint') b = value;
    else if (typeof value === 'number' && Number.isSafeInteger(value)) b = BigInt(value);
    else if (typeof value === 'string' && /^\d+$/.test(value)) b = BigInt(value);
    if (b === undefined || b < 0n || b >= 1n << 64n) {
      this.issue(path, `expected a non-negative integer (uint64), got ${describe(value)}`);
      return undefined;
    }
    return b;
  }

  /** An amount of upokt: an integer, or a string such as "1000upokt". */
  upokt(value: unknown, path: string): bigint | undefined {
    if (typeof value === 'string') {
      const m = /^(\d+)(upokt)?$/.exec(value);
      if (m === null) {
        this.issue(path, `expected an amount of upokt such as 1000 or "1000upokt", got "${value}"`);
        return undefined;
      }
      return BigInt(m[1]!);
    }
    return this.uint(value, path);
  }

  fraction(value: unknown, path: string): number | undefined {
    const n = toNumber(value);
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 1) {
      this.issue(path, `expected a number between 0 and 1, got ${describe(value)}`);
      return undefined;
    }
    return n;
  }

  nonNegative(value: unknown, path: string): number | undefined {
    const n = toNumber(value);
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
      this.issue(path, `expected a non-negative number, got ${describe(value)}`);
      return undefined;
    }
    return n;
  }
}

/** YAML numbers arrive as bigint (integers) or number; decimal strings are accepted too. */
function toNumber(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value.trim() !== '') return Number(value);
  return value;
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (field missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `"${value}"`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  return typeof value;
}

/** field(obj, key, default): the value or the default when the key is absent. */
function field<T>(obj: Obj, key: string, dflt: T): unknown {
  return key in obj ? obj[key] : dflt;
}

const SERVICE_ID_RE = /^[a-zA-Z0-9_-]{1,42}$/;
const CHAIN_ID_RE = /^[a-zA-Z0-9_.-]{1,50}$/;

// ---------------------------------------------------------------------------------------------

function readParams(c: Checker, raw: unknown, path: string): GenesisParams | undefined {
  const p = c.object(raw ?? {}, path, [
    'shared',
    'session',
    'proof',
    'service',
    'application',
    'supplier',
    'gateway',
    'tokenomics',
  ]);
  if (p === undefined) return undefined;

  const sharedPath = join(path, 'shared');
  const s = c.object(p['shared'] ?? {}, sharedPath, Object.keys(DEFAULT_SHARED));
  const shared = { ...DEFAULT_SHARED };
  if (s !== undefined) {
    for (const key of Object.keys(DEFAULT_SHARED) as (keyof GenesisSharedParams)[]) {
      const v = field(s, key, DEFAULT_SHARED[key]);
      const at = join(sharedPath, key);
      if (key === 'compute_units_to_tokens_multiplier' || key === 'compute_unit_cost_granularity') {
        const b = c.uint(v, at);
        if (b !== undefined) {
          if (b === 0n) c.issue(at, 'expected a positive integer, got 0');
          else shared[key] = b;
        }
      } else {
        const n = c.int(v, at, key === 'num_blocks_per_session' ? 1 : 0);
        if (n !== undefined) shared[key] = n;
      }
    }
  }

  const sessPath = join(path, 'session');
  const sess = c.object(p['session'] ?? {}, sessPath, ['num_suppliers_per_session']);
  const numSuppliers = sess
    ? c.int(field(sess, 'num_suppliers_per_session', 50), join(sessPath, 'num_suppliers_per_session'), 1)
    : undefined;

  const proofPath = join(path, 'proof');
  const pr = c.object(p['proof'] ?? {}, proofPath, [
    'proof_request_probability',
    'proof_requirement_threshold',
    'proof_missing_penalty',
    'proof_submission_fee',
  ]);
  const proof = {
    proof_request_probability: 0.25,
    proof_requirement_threshold_upokt: 20_000_000n,
    proof_missing_penalty_upokt: 320_000_000n,
    proof_submission_fee_upokt: 0n,
  };
  if (pr) {
    proof.proof_request_probability =
      c.fraction(
        field(pr, 'proof_request_probability', 0.25),
        join(proofPath, 'proof_request_probability'),
      ) ?? 0;
    proof.proof_requirement_threshold_upokt =
      c.upokt(
        field(pr, 'proof_requirement_threshold', '20000000upokt'),
        join(proofPath, 'proof_requirement_threshold'),
      ) ?? 0n;
    proof.proof_missing_penalty_upokt =
      c.upokt(
        field(pr, 'proof_missing_penalty', '320000000upokt'),
        join(proofPath, 'proof_missing_penalty'),
      ) ?? 0n;
    proof.proof_submission_fee_upokt =
      c.upokt(field(pr, 'proof_submission_fee', '0upokt'), join(proofPath, 'proof_submission_fee')) ?? 0n;
  }

  const svcPath = join(path, 'service');
  const sv = c.object(p['service'] ?? {}, svcPath, ['add_service_fee', 'target_num_relays']);
  const service = { add_service_fee_upokt: 1_000_000_000n, target_num_relays: 100_000n };
  if (sv) {
    service.add_service_fee_upokt =
      c.upokt(field(sv, 'add_service_fee', '1000000000upokt'), join(svcPath, 'add_service_fee')) ?? 0n;
    const t = c.uint(field(sv, 'target_num_relays', 100_000), join(svcPath, 'target_num_relays'));
    if (t === 0n) c.issue(join(svcPath, 'target_num_relays'), 'expected a positive integer, got 0');
    service.target_num_relays = t ?? 1n;
  }

  const appPath = join(path, 'application');
  const ap = c.object(p['application'] ?? {}, appPath, ['max_delegated_gateways', 'min_stake']);
  const application = {
    max_delegated_gateways: ap
      ? (c.uint(field(ap, 'max_delegated_gateways', 7), join(appPath, 'max_delegated_gateways')) ?? 0n)
      : 7n,
    min_stake_upokt: ap
      ? (c.upokt(field(ap, 'min_stake', '1000000upokt'), join(appPath, 'min_stake')) ?? 0n)
      : 0n,
  };

  const supPath = join(path, 'supplier');
  const su = c.object(p['supplier'] ?? {}, supPath, ['min_stake', 'staking_fee']);
  const supplier = {
    min_stake_upokt: su
      ? (c.upokt(field(su, 'min_stake', '1000000upokt'), join(supPath, 'min_stake')) ?? 0n)
      : 0n,
    staking_fee_upokt: su
      ? (c.upokt(field(su, 'staking_fee', '1upokt'), join(supPath, 'staking_fee')) ?? 0n)
      : 0n,
  };

  const gwPath = join(path, 'gateway');
  const gw = c.object(p['gateway'] ?? {}, gwPath, ['min_stake']);
  const gateway = {
    min_stake_upokt: gw
      ? (c.upokt(field(gw, 'min_stake', '1000000upokt'), join(gwPath, 'min_stake')) ?? 0n)
      : 0n,
  };

  const tokPath = join(path, 'tokenomics');
  const tk = c.object(p['tokenomics'] ?? {}, tokPath, [
    'mint_allocation_percentages',
    'dao_reward_address',
    'global_inflation_per_claim',
    'mint_equals_burn_claim_distribution',
    'mint_ratio',
    'overservicing_bonus_multiplier',
  ]);
  const shares = (raw: unknown, at: string): TokenomicsShares => {
    const o = c.object(raw ?? {}, at, Object.keys(DEFAULT_SHARES));
    const out = { ...DEFAULT_SHARES };
    if (o === undefined) return out;
    for (const key of Object.keys(DEFAULT_SHARES) as (keyof TokenomicsShares)[]) {
      out[key] = c.fraction(field(o, key, DEFAULT_SHARES[key]), join(at, key)) ?? 0;
    }
    const total = Object.values(out).reduce((a, b) => a + b, 0);
    if (Math.abs(total - 1) > 1e-9) c.issue(at, `expected the shares to add up to 1, got ${total}`);
    return out;
  };
  const tokenomics = {
    mint_allocation_percentages: shares(
      tk?.['mint_allocation_percentages'],
      join(tokPath, 'mint_allocation_percentages'),
    ),
    dao_reward_address:
      tk && 'dao_reward_address' in tk
        ? (c.address(tk['dao_reward_address'], join(tokPath, 'dao_reward_address')) ?? '')
        : '',
    global_inflation_per_claim: tk
      ? (c.nonNegative(
          field(tk, 'global_inflation_per_claim', 0),
          join(tokPath, 'global_inflation_per_claim'),
        ) ?? 0)
      : 0,
    mint_equals_burn_claim_distribution: shares(
      tk?.['mint_equals_burn_claim_distribution'],
      join(tokPath, 'mint_equals_burn_claim_distribution'),
    ),
    mint_ratio: tk ? (c.fraction(field(tk, 'mint_ratio', 1), join(tokPath, 'mint_ratio')) ?? 1) : 1,
    overservicing_bonus_multiplier: tk
      ? (c.uint(
          field(tk, 'overservicing_bonus_multiplier', 0),
          join(tokPath, 'overservicing_bonus_multiplier'),
        ) ?? 0n)
      : 0n,
  };

  if (tokenomics.global_inflation_per_claim !== 0) {
    c.issue(
      join(tokPath, 'global_inflation_per_claim'),
      `expected 0: localnet settles with the relay burn = mint module only, got ${tokenomics.global_inflation_per_claim}`,
    );
  }
  return {
    shared,
    session: { num_suppliers_per_session: numSuppliers ?? 1 },
    proof,
    service,
    application,
    supplier,
    gateway,
    tokenomics,
  };
}

function readAccount(c: Checker, raw: unknown, path: string): GenesisAccount | undefined {
  const o = c.object(raw, path, ['address', 'pub_key', 'balance']);
  if (o === undefined) return undefined;
  let pubKey: Uint8Array | undefined;
  if ('pub_key' in o) {
    const hex = c.string(o['pub_key'], join(path, 'pub_key'), {
      pattern: /^(02|03)[0-9a-fA-F]{64}$/,
      what: 'a 33-byte compressed secp256k1 public key in hex (66 characters starting 02 or 03)',
    });
    if (hex !== undefined) {
      const bytes = hexToBytes(hex);
      if (!isCompressedPublicKey(bytes)) c.issue(join(path, 'pub_key'), 'expected a point on secp256k1');
      else pubKey = bytes;
    }
  }
  let address: string | undefined;
  if ('address' in o) address = c.address(o['address'], join(path, 'address'));
  else if (pubKey !== undefined) address = addressFromPublicKey(pubKey);
  else c.issue(join(path, 'address'), 'expected an address (or a pub_key to derive it from), got nothing');
  if (address !== undefined && pubKey !== undefined && addressFromPublicKey(pubKey) !== address) {
    c.issue(
      join(path, 'pub_key'),
      `expected the key of ${address}, got the key of ${addressFromPublicKey(pubKey)}`,
    );
  }
  const balance = c.upokt(field(o, 'balance', 0), join(path, 'balance'));
  if (address === undefined || balance === undefined) return undefined;
  return { address, ...(pubKey ? { pub_key: pubKey } : {}), balance_upokt: balance };
}

function readService(c: Checker, raw: unknown, path: string): GenesisService | undefined {
  const o = c.object(raw, path, ['id', 'name', 'compute_units_per_relay', 'owner_address']);
  if (o === undefined) return undefined;
  const id = c.string(o['id'], join(path, 'id'), {
    pattern: SERVICE_ID_RE,
    what: 'a service id of 1-42 characters from [a-zA-Z0-9_-]',
  });
  const name = 'name' in o ? c.string(o['name'], join(path, 'name')) : id;
  const cupr = c.uint(field(o, 'compute_units_per_relay', 1), join(path, 'compute_units_per_relay'));
  if (cupr === 0n) c.issue(join(path, 'compute_units_per_relay'), 'expected a positive integer, got 0');
  const owner = c.address(o['owner_address'], join(path, 'owner_address'));
  if (id === undefined || name === undefined || cupr === undefined || cupr === 0n || owner === undefined)
    return undefined;
  return { id, name, compute_units_per_relay: cupr, owner_address: owner };
}

function readStringList(
  c: Checker,
  raw: unknown,
  path: string,
  item: (v: unknown, p: string) => string | undefined,
): string[] {
  const list = c.array(raw, path) ?? [];
  const out: string[] = [];
  list.forEach((v, i) => {
    const s = item(v, join(path, i));
    if (s !== undefined) out.push(s);
  });
  return out;
}

function readApplication(c: Checker, raw: unknown, path: string): GenesisApplication | undefined {
  const o = c.object(raw, path, ['address', 'stake', 'service_ids', 'delegatee_gateway_addresses']);
  if (o === undefined) return undefined;
  const address = c.address(o['address'], join(path, 'address'));
  const stake = c.upokt(o['stake'], join(path, 'stake'));
  const serviceIds = readStringList(c, o['service_ids'], join(path, 'service_ids'), (v, p) =>
    c.string(v, p, { pattern: SERVICE_ID_RE, what: 'a service id' }),
  );
  if (serviceIds.length === 0 && Array.isArray(o['service_ids'] ?? [])) {
    c.issue(join(path, 'service_ids'), 'expected at least one service id');
  }
  const gateways = readStringList(
    c,
    o['delegatee_gateway_addresses'],
    join(path, 'delegatee_gateway_addresses'),
    (v, p) => c.address(v, p),
  );
  if (address === undefined || stake === undefined) return undefined;
  return { address, stake_upokt: stake, service_ids: serviceIds, delegatee_gateway_addresses: gateways };
}

function readGateway(c: Checker, raw: unknown, path: string): GenesisGateway | undefined {
  const o = c.object(raw, path, ['address', 'stake']);
  if (o === undefined) return undefined;
  const address = c.address(o['address'], join(path, 'address'));
  const stake = c.upokt(o['stake'], join(path, 'stake'));
  if (address === undefined || stake === undefined) return undefined;
  return { address, stake_upokt: stake };
}

function readSupplier(c: Checker, raw: unknown, path: string): GenesisSupplier | undefined {
  const o = c.object(raw, path, ['operator_address', 'owner_address', 'stake', 'services']);
  if (o === undefined) return undefined;
  const operator = c.address(o['operator_address'], join(path, 'operator_address'));
  const owner = 'owner_address' in o ? c.address(o['owner_address'], join(path, 'owner_address')) : operator;
  const stake = c.upokt(o['stake'], join(path, 'stake'));
  const servicesPath = join(path, 'services');
  const list = c.array(o['services'], servicesPath) ?? [];
  if (list.length === 0 && Array.isArray(o['services'] ?? []))
    c.issue(servicesPath, 'expected at least one service');
  const services: GenesisSupplierService[] = [];
  list.forEach((svcRaw, i) => {
    const sp = join(servicesPath, i);
    const so = c.object(svcRaw, sp, ['service_id', 'endpoints', 'rev_share']);
    if (so === undefined) return;
    const serviceId = c.string(so['service_id'], join(sp, 'service_id'), {
      pattern: SERVICE_ID_RE,
      what: 'a service id',
    });
    const epPath = join(sp, 'endpoints');
    const eps = c.array(so['endpoints'], epPath) ?? [];
    if (eps.length === 0 && Array.isArray(so['endpoints'] ?? []))
      c.issue(epPath, 'expected at least one endpoint');
    const endpoints: GenesisSupplierService['endpoints'] = [];
    eps.forEach((epRaw, j) => {
      const ep = join(epPath, j);
      const eo = c.object(epRaw, ep, ['url', 'rpc_type']);
      if (eo === undefined) return;
      const url = c.string(eo['url'], join(ep, 'url'));
      if (url !== undefined && !URL.canParse(url))
        c.issue(join(ep, 'url'), `expected an absolute URL, got "${url}"`);
      const rpcType = eo['rpc_type'];
      if (typeof rpcType !== 'string' || !(RPC_TYPES as readonly string[]).includes(rpcType)) {
        c.issue(join(ep, 'rpc_type'), `expected one of ${RPC_TYPES.join(', ')}, got ${describe(rpcType)}`);
        return;
      }
      if (url !== undefined) endpoints.push({ url, rpc_type: rpcType as RpcTypeName });
    });
    const rsPath = join(sp, 'rev_share');
    const rsList = c.array(so['rev_share'], rsPath) ?? [];
    const revShare: GenesisSupplierService['rev_share'] = [];
    rsList.forEach((rsRaw, j) => {
      const rp = join(rsPath, j);
      const ro = c.object(rsRaw, rp, ['address', 'rev_share_percentage']);
      if (ro === undefined) return;
      const a = c.address(ro['address'], join(rp, 'address'));
      const pct = c.uint(ro['rev_share_percentage'], join(rp, 'rev_share_percentage'));
      if (a !== undefined && pct !== undefined) revShare.push({ address: a, rev_share_percentage: pct });
    });
    if (revShare.length > 0) {
      const total = revShare.reduce((acc, r) => acc + r.rev_share_percentage, 0n);
      if (total !== 100n)
        c.issue(rsPath, `expected rev_share_percentage values adding up to 100, got ${total}`);
    }
    if (serviceId !== undefined) services.push({ service_id: serviceId, endpoints, rev_share: revShare });
  });
  if (operator === undefined || owner === undefined || stake === undefined) return undefined;
  return { operator_address: operator, owner_address: owner, stake_upokt: stake, services };
}

/** Cross-field checks: references resolve, nothing is listed twice. */
function crossCheck(c: Checker, g: Omit<Genesis, 'params'> & { params?: GenesisParams }): void {
  const seen = new Map<string, string>();
  g.accounts.forEach((a, i) => {
    const prev = seen.get(a.address);
    if (prev !== undefined)
      c.issue(`accounts[${i}].address`, `expected a unique address; ${a.address} is also ${prev}`);
    else seen.set(a.address, `accounts[${i}]`);
  });
  const services = new Set<string>();
  g.services.forEach((s, i) => {
    if (services.has(s.id))
      c.issue(`services[${i}].id`, `expected a unique service id; "${s.id}" is listed twice`);
    services.add(s.id);
  });
  const gateways = new Set(g.gateways.map((gw) => gw.address));
  g.applications.forEach((app, i) => {
    if (!seen.has(app.address)) {
      c.issue(
        `applications[${i}].address`,
        `expected an entry in accounts for ${app.address} (give it a pub_key so rings resolve)`,
      );
    }
    app.service_ids.forEach((id, j) => {
      if (!services.has(id))
        c.issue(
          `applications[${i}].service_ids[${j}]`,
          `expected a service defined in services, got "${id}"`,
        );
    });
    app.delegatee_gateway_addresses.forEach((gw, j) => {
      if (!gateways.has(gw)) {
        c.issue(
          `applications[${i}].delegatee_gateway_addresses[${j}]`,
          `expected a gateway defined in gateways, got ${gw}`,
        );
      }
    });
    const max = g.params?.application.max_delegated_gateways;
    if (max !== undefined && BigInt(app.delegatee_gateway_addresses.length) > max) {
      c.issue(
        `applications[${i}].delegatee_gateway_addresses`,
        `expected at most ${max} gateways (params.application.max_delegated_gateways)`,
      );
    }
  });
  g.gateways.forEach((gw, i) => {
    if (!seen.has(gw.address)) {
      c.issue(
        `gateways[${i}].address`,
        `expected an entry in accounts for ${gw.address} (give it a pub_key so rings resolve)`,
      );
    }
  });
  const operators = new Set<string>();
  g.suppliers.forEach((s, i) => {
    if (operators.has(s.operator_address))
      c.issue(`suppliers[${i}].operator_address`, 'expected a unique operator address');
    operators.add(s.operator_address);
    if (!seen.has(s.operator_address)) {
      c.issue(
        `suppliers[${i}].operator_address`,
        `expected an entry in accounts for ${s.operator_address} (it signs claims and proofs)`,
      );
    }
    s.services.forEach((svc, j) => {
      if (!services.has(svc.service_id)) {
        c.issue(
          `suppliers[${i}].services[${j}].service_id`,
          `expected a service defined in services, got "${svc.service_id}"`,
        );
      }
    });
  });
}

/** Checks a parsed genesis document; throws GenesisInvalidError listing every problem. */
export function parseGenesis(doc: unknown, source = '(inline)'): Genesis {
  const c = new Checker();
  const root = c.object(doc, '', [
    'chain_id',
    'genesis_time',
    'initial_height',
    'min_gas_price_upokt',
    'params',
    'accounts',
    'services',
    'applications',
    'gateways',
    'suppliers',
  ]);
  if (root === undefined) throw new GenesisInvalidError(source, c.issues);

  const chainId = c.string(field(root, 'chain_id', 'pocket'), 'chain_id', {
    pattern: CHAIN_ID_RE,
    what: 'a chain id of 1-50 characters from [a-zA-Z0-9_.-]',
  });
  let genesisTime: Date | undefined;
  if ('genesis_time' in root) {
    const raw = root['genesis_time'];
    const t = raw instanceof Date ? raw : typeof raw === 'string' ? new Date(raw) : undefined;
    if (t === undefined || Number.isNaN(t.getTime())) {
      c.issue(
        'genesis_time',
        `expected an RFC 3339 time such as "2026-01-01T00:00:00Z", got ${describe(raw)}`,
      );
    } else genesisTime = t;
  }
  const initialHeight = c.int(field(root, 'initial_height', 1), 'initial_height', 1);
  const minGas = c.nonNegative(field(root, 'min_gas_price_upokt', 0), 'min_gas_price_upokt');
  const params = readParams(c, root['params'], 'params');

  const list = <T>(key: string, read: (c: Checker, raw: unknown, path: string) => T | undefined): T[] => {
    const items = c.array(root[key], key) ?? [];
    const out: T[] = [];
    items.forEach((raw, i) => {
      const v = read(c, raw, join(key, i));
      if (v !== undefined) out.push(v);
    });
    return out;
  };
  const accounts = list('accounts', readAccount);
  const services = list('services', readService);
  const applications = list('applications', readApplication);
  const gateways = list('gateways', readGateway);
  const suppliers = list('suppliers', readSupplier);

  const partial = {
    chain_id: chainId ?? '',
    initial_height: initialHeight ?? 1,
    min_gas_price_upokt: minGas ?? 0,
    accounts,
    services,
    applications,
    gateways,
    suppliers,
    ...(params ? { params } : {}),
  };
  crossCheck(c, partial);
  if (c.issues.length > 0 || params === undefined) throw new GenesisInvalidError(source, c.issues);
  return { ...partial, params, ...(genesisTime ? { genesis_time: genesisTime } : {}) };
}

/** Reads a genesis file (YAML, of which JSON is a subset) and checks it. */
export function loadGenesisFile(path: string): Genesis {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new GenesisInvalidError(
      path,
      [{ path: '(file)', message: `cannot be read: ${(err as Error).message}` }],
      {
        cause: err,
      },
    );
  }
  const depth = yamlNestingDepth(text);
  if (depth > MAX_YAML_NESTING) {
    throw new GenesisInvalidError(path, [
      { path: '(file)', message: `nests ${depth} levels deep; at most ${MAX_YAML_NESTING} are accepted` },
    ]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { intAsBigInt: true });
  } catch (err) {
    throw new GenesisInvalidError(
      path,
      [{ path: '(file)', message: `is not valid YAML/JSON: ${(err as Error).message}` }],
      {
        cause: err,
      },
    );
  }
  return parseGenesis(doc, path);
}
