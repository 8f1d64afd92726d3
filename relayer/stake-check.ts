/**
 * `relayer validate --check-stake` (relayer.md §12): compares what the suppliers whose keys this
 * relayer holds have staked on chain with the backends configured locally. A staked
 * (service, transport) with no local backend is an error (gateways will send relays this relayer
 * cannot serve); a local backend nobody stakes is a warning; staked endpoints of an RPC type that
 * maps to no backend type are listed.
 */
import type { RelayerConfig } from './config.js';
import { rpcTypeToBackendType } from './backends/index.js';
import { BACKEND_TYPES } from './config.js';

/** The part of an on-chain Supplier the check reads. */
export interface StakedSupplier {
  operatorAddress: string;
  services: readonly { serviceId: string; endpoints: readonly { rpcType: number }[] }[];
}

export interface StakeCheckReport {
  errors: string[];
  warnings: string[];
  /** `service/rpc_type` pairs whose RPC type maps to no backend type. */
  unmappable: string[];
}

export function checkStakes(cfg: RelayerConfig, suppliers: readonly StakedSupplier[]): StakeCheckReport {
  const report: StakeCheckReport = { errors: [], warnings: [], unmappable: [] };
  const staked = new Set<string>();
  for (const s of suppliers) {
    for (const svc of s.services) {
      for (const ep of svc.endpoints) {
        const type = rpcTypeToBackendType(String(ep.rpcType));
        if (!(BACKEND_TYPES as readonly string[]).includes(type)) {
          report.unmappable.push(`${svc.serviceId}/rpc_type ${ep.rpcType} (supplier ${s.operatorAddress})`);
          continue;
        }
        const key = `${svc.serviceId}:${type}`;
        if (staked.has(key)) continue;
        staked.add(key);
        if (cfg.services[svc.serviceId]?.backends[type] === undefined) {
          report.errors.push(
            `services.${svc.serviceId}.backends.${type}: supplier ${s.operatorAddress} is staked for ${svc.serviceId} over ${type} but no ${type} backend is configured`,
          );
        }
      }
    }
  }
  for (const [id, svc] of Object.entries(cfg.services)) {
    for (const type of Object.keys(svc.backends)) {
      if (!staked.has(`${id}:${type}`)) {
        report.warnings.push(
          `services.${id}.backends.${type}: no supplier of this relayer is staked for ${id} over ${type}; nothing will reach it`,
        );
      }
    }
  }
  return report;
}
