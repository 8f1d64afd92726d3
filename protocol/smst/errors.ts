/**
 * Faults raised by the SMST code. Expected rejections of a proof are values (see verify.ts);
 * these exceptions cover malformed bytes, a broken node store and misuse.
 */
import { RelayMinerError } from '../../core/index.js';

/** Proof bytes that are not a decodable gob stream of a compact closest proof. */
export class SmstProofMalformedError extends RelayMinerError {
  constructor(why: string, opts: { cause?: unknown } = {}) {
    super('SMST_PROOF_MALFORMED', `closest proof bytes: ${why}`, opts);
  }
}

/** A decoded proof whose fields break the structural rules the chain checks before hashing. */
export class SmstProofInvalidError extends RelayMinerError {
  constructor(why: string) {
    super('SMST_PROOF_INVALID', `closest proof: ${why}`);
  }
}

/** The trie could not produce a proof the chain would accept (upstream fails the same way). */
export class SmstProofUnprovableError extends RelayMinerError {
  constructor(why: string) {
    super('SMST_PROOF_UNPROVABLE', `closest proof cannot be built: ${why}`);
  }
}

/** A root whose length or fields cannot be read as a Merkle sum root. */
export class SmstRootInvalidError extends RelayMinerError {
  constructor(why: string) {
    super('SMST_ROOT_INVALID', `SMST root: ${why}`);
  }
}

/** Delete of a key the trie does not hold; the trie is left unchanged. */
export class SmstKeyNotFoundError extends RelayMinerError {
  constructor(pathHex: string) {
    super('SMST_KEY_NOT_FOUND', `SMST delete: no leaf at path ${pathHex}`);
  }
}

/** The node store has no entry for a digest the trie references. */
export class SmstNodeMissingError extends RelayMinerError {
  constructor(digestHex: string, where = 'node store', opts: { cause?: unknown } = {}) {
    super('SMST_NODE_MISSING', `${where}: trie node ${digestHex} is absent`, opts);
  }
}

/** The node store returned bytes that are not a valid encoding of the node with that digest. */
export class SmstNodeCorruptError extends RelayMinerError {
  constructor(digestHex: string, why: string) {
    super('SMST_NODE_CORRUPT', `trie node ${digestHex}: ${why}`);
  }
}
