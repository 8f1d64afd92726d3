/**
 * Supplier ECDSA (RFC 6979, low-S, 64-byte r‖s) sign and verify: native libsecp256k1 vs noble.
 * Ratio: native ÷ noble. Env: RINGS_BENCH_MS (per measurement, default 2000).
 */
import { sha256 } from '../../protocol/hash.js';
import { nobleBackend, selectBackend, type EcBackend } from '../../rings/index.js';
import { envNumber, measureOpsPerSecond, type BenchReporter } from '../report.js';

const BENCH = 'rings';

export default async function ecdsaBench(reporter: BenchReporter): Promise<void> {
  const durationMs = envNumber('RINGS_BENCH_MS', 2_000);
  const backends: EcBackend[] = [nobleBackend, selectBackend('native')];
  const priv = sha256(new TextEncoder().encode('bench supplier key'));
  const pub = nobleBackend.encodePoint(
    nobleBackend.mulBase(BigInt('0x' + Buffer.from(priv).toString('hex'))),
  );
  const digests = Array.from({ length: 64 }, (_, i) => sha256(new TextEncoder().encode(`bench digest ${i}`)));
  const sigs = digests.map((d) => nobleBackend.ecdsaSign(d, priv));

  for (const op of ['sign', 'verify'] as const) {
    let noble = 0;
    for (const b of backends) {
      let i = 0;
      const r = await measureOpsPerSecond(
        op === 'sign'
          ? () => b.ecdsaSign(digests[i++ % digests.length]!, priv)
          : () => {
              const k = i++ % digests.length;
              if (!b.ecdsaVerify(sigs[k]!, digests[k]!, pub)) throw new Error('bench signature rejected');
            },
        { durationMs },
      );
      if (b.name === 'noble') noble = r.opsPerSecond;
      reporter.emit({
        bench: BENCH,
        name: `supplier_ecdsa_${op}_${b.name}`,
        ...(b.name === 'native'
          ? { ratio: r.opsPerSecond / noble, baseline: `supplier_ecdsa_${op}_noble` }
          : {}),
        ops_per_second: r.opsPerSecond,
        backend: b.name,
      });
    }
  }
}
