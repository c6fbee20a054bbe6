import pino, { type DestinationStream, type Logger } from 'pino';

/** The one root logger; components get children with bindings (STYLE rule 11). JSON to stdout. */
export function createLogger(level: string, dest?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'edgeferry' },
      // Secrets must never reach logs, even if someone logs a whole options object.
      redact: { paths: ['password', '*.password', '*.key', 'key', 'opts.password'], censor: '[redacted]' },
    },
    dest ?? pino.destination(1),
  );
}
