// buffer.replay_rate: a token bucket for backlog messages after an outage, so that a day of
// buffered data does not flood the broker and the consumers at once. Live data is not limited.
export class ReplayGate {
  private tokens = 0;
  private at = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `rate`: most backlog messages per second, 0 = unlimited; `retry` runs when a token is due. */
  constructor(
    private readonly rate: number,
    private readonly retry: () => void,
  ) {}

  /** A new connection starts with a full bucket (one second's worth). */
  refill(): void {
    this.tokens = this.rate;
    this.at = performance.now();
  }

  /** True if one backlog message may be sent now; otherwise arms `retry` for when one may. */
  take(): boolean {
    if (this.rate <= 0) return true;
    const now = performance.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.timer ??= setTimeout(
      () => {
        this.timer = undefined;
        this.retry();
      },
      Math.ceil(1000 / this.rate),
    );
    return false;
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
