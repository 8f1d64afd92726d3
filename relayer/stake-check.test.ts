import { describe, expect, it } from 'vitest';
import { validateRelayerConfig } from './config.js';
import { checkStakes } from './stake-check.js';

const cfg = validateRelayerConfig(
  JSON.stringify({
    pocket_node: { query_node_rpc_url: 'http://n:26657', query_node_grpc_url: 'n:9090' },
    keys: { keys_file: '/k.yaml' },
    services: {
      eth: { backends: { jsonrpc: { url: 'http://a' }, websocket: { url: 'ws://a' } } },
      sol: { backends: { rest: { url: 'http://b' } } },
    },
  }),
);

describe('checkStakes', () => {
  it('errors on staked transports without a backend, warns on unstaked backends, lists unmappable types', () => {
    expect(
      checkStakes(cfg, [
        {
          operatorAddress: 'pokt1a',
          services: [
            { serviceId: 'eth', endpoints: [{ rpcType: 3 }, { rpcType: 5 }, { rpcType: 0 }] },
            { serviceId: 'btc', endpoints: [{ rpcType: 3 }] },
          ],
        },
        { operatorAddress: 'pokt1b', services: [{ serviceId: 'eth', endpoints: [{ rpcType: 3 }] }] },
      ]),
    ).toEqual({
      errors: [
        'services.eth.backends.cometbft: supplier pokt1a is staked for eth over cometbft but no cometbft backend is configured',
        'services.btc.backends.jsonrpc: supplier pokt1a is staked for btc over jsonrpc but no jsonrpc backend is configured',
      ],
      warnings: [
        'services.eth.backends.websocket: no supplier of this relayer is staked for eth over websocket; nothing will reach it',
        'services.sol.backends.rest: no supplier of this relayer is staked for sol over rest; nothing will reach it',
      ],
      unmappable: ['eth/rpc_type 0 (supplier pokt1a)'],
    });
  });
});
