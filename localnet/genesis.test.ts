import { describe, expect, it } from 'vitest';
import { hexToBytes } from '../core/index.js';
import { GenesisInvalidError } from './errors.js';
import { loadGenesisFile, parseGenesis } from './genesis.js';

const APP = 'pokt1jcfv7s7y0f8re2khpghjlyvn2khf6mxhnhz864';
const APP_KEY = '02981939ecd8e9a6a366a62f0919dd6eb27916b92953bb89012002060c290a463f';
const GW = 'pokt1zsjkl2qcy8dntqs05ga7kz84ymagznkls0e52q';

function issuesOf(doc: unknown): unknown {
  try {
    parseGenesis(doc);
  } catch (err) {
    if (err instanceof GenesisInvalidError) return err.issues;
    throw err;
  }
  return [];
}

describe('genesis', () => {
  it('loads the sample genesis with its short sessions and every entity', () => {
    const g = loadGenesisFile('localnet/genesis.sample.yaml');
    expect({
      chain_id: g.chain_id,
      initial_height: g.initial_height,
      shared: g.params.shared,
      proof: g.params.proof,
      services: g.services.map((s) => [s.id, s.compute_units_per_relay]),
      applications: g.applications,
      gateways: g.gateways.map((x) => x.address),
      suppliers: g.suppliers.map((s) => [
        s.operator_address,
        s.owner_address,
        s.services.map((x) => x.service_id),
      ]),
    }).toEqual({
      chain_id: 'pocket',
      initial_height: 1,
      shared: {
        num_blocks_per_session: 4,
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
      },
      proof: {
        proof_request_probability: 0.25,
        proof_requirement_threshold_upokt: 20_000_000n,
        proof_missing_penalty_upokt: 320_000_000n,
        proof_submission_fee_upokt: 1n,
      },
      services: [
        ['anvil', 1n],
        ['rest-demo', 3n],
      ],
      applications: [
        {
          address: APP,
          stake_upokt: 100_000_000n,
          service_ids: ['anvil', 'rest-demo'],
          delegatee_gateway_addresses: [GW],
        },
      ],
      gateways: [GW],
      suppliers: [
        [
          'pokt104jgjxja9ruuvnr4zcdhxgvw35la06w8jwkejg',
          'pokt1kx9p04hhvvx8xmtwjx93p6x3ecqfjegfwr2qpn',
          ['anvil', 'rest-demo'],
        ],
        [
          'pokt1ml8lljajq93759j9k0kc4um2uems7v7wql4ylg',
          'pokt1ml8lljajq93759j9k0kc4um2uems7v7wql4ylg',
          ['anvil'],
        ],
      ],
    });
  });

  it('derives an account address from its pub_key and rejects a key that belongs to another address', () => {
    const g = parseGenesis({ accounts: [{ pub_key: APP_KEY, balance: '5upokt' }] });
    expect(g.accounts).toEqual([{ address: APP, pub_key: hexToBytes(APP_KEY), balance_upokt: 5n }]);
    expect(issuesOf({ accounts: [{ address: GW, pub_key: APP_KEY }] })).toEqual([
      { path: 'accounts[0].pub_key', message: `expected the key of ${GW}, got the key of ${APP}` },
    ]);
  });

  it('reports unresolved references with their dotted paths', () => {
    expect(
      issuesOf({
        accounts: [{ address: APP, balance: 1 }],
        applications: [{ address: APP, stake: 1, service_ids: ['nope'], delegatee_gateway_addresses: [GW] }],
        suppliers: [
          {
            operator_address: GW,
            stake: 1,
            services: [{ service_id: 'nope', endpoints: [{ url: 'not a url', rpc_type: 'REST' }] }],
          },
        ],
      }),
    ).toEqual([
      {
        path: 'suppliers[0].services[0].endpoints[0].url',
        message: 'expected an absolute URL, got "not a url"',
      },
      {
        path: 'applications[0].service_ids[0]',
        message: 'expected a service defined in services, got "nope"',
      },
      {
        path: 'applications[0].delegatee_gateway_addresses[0]',
        message: `expected a gateway defined in gateways, got ${GW}`,
      },
      {
        path: 'suppliers[0].operator_address',
        message: `expected an entry in accounts for ${GW} (it signs claims and proofs)`,
      },
      {
        path: 'suppliers[0].services[0].service_id',
        message: 'expected a service defined in services, got "nope"',
      },
    ]);
  });

  it('says what a malformed file is', () => {
    expect(() => loadGenesisFile('localnet/does-not-exist.yaml')).toThrow(/\(file\): cannot be read/);
    expect(() => parseGenesis([1, 2])).toThrow(GenesisInvalidError);
    expect(issuesOf([1, 2])).toEqual([{ path: '(root)', message: 'expected a mapping, got a list' }]);
  });
});
