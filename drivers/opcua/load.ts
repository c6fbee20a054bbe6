// node-opcua is large (a second or two to load on a small box) and prints its own warnings to
// stdout. It is loaded on first use only — `edgeferry check` and Modbus-only gateways never pay
// for it — with its loggers routed into ours first, so nothing bypasses the JSON log.
import type { Logger } from 'pino';

type NodeOpcua = typeof import('node-opcua');
let loading: Promise<NodeOpcua> | undefined;

export function loadOpcua(log: Logger): Promise<NodeOpcua> {
  loading ??= (async () => {
    const dbg = await import('node-opcua-debug');
    const text = (args: unknown[]) =>
      args
        .map((a) => (typeof a === 'string' ? a : a instanceof Error ? a.message : JSON.stringify(a)))
        .join(' ')
        .trim();
    dbg.setWarningLogger((...args: unknown[]) => log.debug({ lib: 'node-opcua' }, text(args)));
    dbg.setErrorLogger((...args: unknown[]) => {
      const line = text(args);
      // A transport-level error message from the server (a refused secure channel, say) is
      // reported by the link with what to do about it; node-opcua's own line would say it twice.
      if (line.includes('message_builder_base')) log.debug({ lib: 'node-opcua' }, line);
      else log.warn({ lib: 'node-opcua' }, line);
    });
    dbg.setTraceLogger(() => undefined);
    dbg.setDebugLogger(() => undefined);
    return import('node-opcua');
  })();
  return loading;
}
