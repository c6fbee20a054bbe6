// A link is one transport to one endpoint — a TCP host:port or a serial port — shared by every
// device (unit id) behind it. Only the link runner (src/core/link-runner.ts) opens, probes, drops
// and reopens links; drivers use an open link to exchange requests and never reconnect.

export interface Link {
  /** e.g. `tcp://10.0.0.5:502` or `serial:/dev/ttyUSB0@19200`. Used in logs and status. */
  readonly endpoint: string;
  /**
   * network: a silent peer means the path is dead, so the runner drops and reopens the link when
   * every device behind it stopped answering. bus: a local port; silent slaves do not make the
   * port bad, only its disappearing does.
   */
  readonly kind: 'network' | 'bus';
  /**
   * Opens the transport. Called by the link runner only, never concurrently, retried with backoff.
   * Rejects with NotConnectedError or TimeoutError. `onLost` is called at most once, when the
   * transport closes underneath (peer reset, USB adapter unplugged); the runner then reopens it.
   */
  open(signal: AbortSignal, onLost: (reason: string) => void): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** Liveness settings of a device (the `link:` block of a device map entry). */
export interface LinkSettings {
  probe_interval_ms: number;
  failures_before_down: number;
  backoff_min_ms: number;
  backoff_max_ms: number;
}
