/**
 * Per-endpoint circuit breaker (relayer.md §8, upstream pool/circuit_breaker.go + endpoint.go).
 *
 * closed ──(threshold consecutive failures)──▶ open ──(recovery_timeout elapsed)──▶ half_open
 * half_open ──success──▶ closed;  half_open ──failure──▶ open (timer restarts)
 * Any success resets the failure count and closes the breaker. Failures are HTTP 5xx and hard
 * transport errors; timeouts, caller cancellations and 1xx–4xx are not failures (the caller
 * decides what to record). `recoveryTimeoutMs` 0 disables auto-recovery (only health checks heal).
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerConfig {
  failureThreshold: number;
  recoveryTimeoutMs: number;
}

export class CircuitBreaker {
  private stateValue: BreakerState = 'closed';
  private consecutiveFailures = 0;
  private openedAtMs = 0;

  constructor(
    private readonly cfg: CircuitBreakerConfig,
    private readonly nowMs: () => number,
    private readonly onTransition: (to: BreakerState, from: BreakerState) => void = () => undefined,
  ) {}

  get state(): BreakerState {
    return this.stateValue;
  }

  get failures(): number {
    return this.consecutiveFailures;
  }

  /** May traffic go to this endpoint now? Moves open → half_open when the recovery time is up. */
  isAvailable(): boolean {
    if (
      this.stateValue === 'open' &&
      this.cfg.recoveryTimeoutMs > 0 &&
      this.nowMs() - this.openedAtMs >= this.cfg.recoveryTimeoutMs
    ) {
      this.move('half_open');
    }
    return this.stateValue !== 'open';
  }

  recordSuccess(): void {
    this.consecutiveFailures = 0;
    if (this.stateValue !== 'closed') this.move('closed');
  }

  recordFailure(): void {
    this.consecutiveFailures++;
    if (
      this.stateValue === 'half_open' ||
      (this.stateValue === 'closed' && this.consecutiveFailures >= this.cfg.failureThreshold)
    ) {
      this.trip();
    }
  }

  /** Opens now (a health check decided the endpoint is down). */
  trip(): void {
    this.openedAtMs = this.nowMs();
    if (this.stateValue !== 'open') this.move('open');
  }

  private move(to: BreakerState): void {
    const from = this.stateValue;
    this.stateValue = to;
    this.onTransition(to, from);
  }
}
