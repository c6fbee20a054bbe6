// edgeferry run --config FILE: the daemon — load and check, start, reload on SIGHUP, stop on
// SIGINT/SIGTERM (or after an uncaught exception), with systemd's notify protocol throughout.
import { parseArgs } from 'node:util';
import { DRIVERS } from '../../drivers/registry.js';
import { ConfigLoader } from '../config/load.js';
import { loadConfigOffThread } from '../config/load-off-thread.js';
import { formatProblem } from '../config/yaml-file.js';
import { excerpt } from '../core/bounded.js';
import { buildGateway } from '../gateway.js';
import { createLogger } from '../log.js';
import { systemdNotifier } from '../systemd.js';
import { EXIT, type CliIo } from './io.js';

/** `text` cut to `max` characters, control characters escaped: safe to put in one log line. */
export async function cmdRun(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  if (!values.config) {
    io.err('edgeferry run: expected --config FILE, got none');
    return EXIT.USAGE;
  }
  io.err(`edgeferry run: loading ${values.config}`);
  let stopAsked = false;
  void io.stopRequested.then(() => (stopAsked = true));
  // On this thread: a worker would add about 0.35 s to every start (a second copy of the drivers'
  // modules), and a start-up has no polling to protect. A stop that came during the load is
  // honoured before anything starts: two immediates span a full turn of the event loop, whose poll
  // phase delivers the pending signal to its handler.
  const { config, problems } = new ConfigLoader(DRIVERS, io.cwd).loadGatewayConfig(values.config);
  for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
  if (stopAsked) {
    io.err('edgeferry run: stop requested while loading the configuration; nothing was started');
    return EXIT.OK;
  }
  if (!config) {
    io.err(`Refusing to start [GW_ERR_CONFIG_INVALID]: ${problems.length} problem${problems.length === 1 ? '' : 's'} in the configuration:`);
    for (const p of problems) io.err(formatProblem(p));
    return EXIT.CONFIG_INVALID;
  }
  const log = createLogger(config.gateway.logging.level, undefined, config.gateway.logging.format);
  const notify = systemdNotifier(io.env ?? {}, log);
  const gw = buildGateway(config, { log, drivers: DRIVERS });
  try {
    await gw.start();
  } catch (err) {
    log.fatal({ err }, 'start failed');
    await gw.stop().catch(() => undefined);
    notify.close();
    return EXIT.FAILURE;
  }
  let enabledDevices = config.devices.filter((d) => d.enabled).length;
  const running = (extra = '') => `running: ${enabledDevices} devices${extra}`;
  notify.ready(running());
  if (notify.watchdogMs) log.info({ watchdog_ms: notify.watchdogMs }, 'systemd watchdog on');

  // SIGHUP (systemctl reload): read the config again, check it, apply the devices' differences;
  // reload the EL model too. A config with problems is refused and the running one stays.
  let reloading: Promise<void> = Promise.resolve();
  const reloadOnce = async () => {
    notify.reloading('reloading configuration');
    const at = new Date().toISOString();
    gw.reportGatewayStatus({ config: { reloading: true, since: at, file: values.config } });
    // Off the event loop: a large map must not stop polling, keep-alives or the watchdog.
    const { config: next, problems } = await loadConfigOffThread(io.cwd, values.config!);
    if (!next) {
      // At most 20 problems of at most 300 characters each in the log line and the status.
      const lines = problems.slice(0, 20).map((p) => excerpt(formatProblem(p), 300));
      if (problems.length > lines.length) lines.push(`… and ${problems.length - lines.length} more (edgeferry check ${values.config} lists them all)`);
      log.error(
        { audit: 'reload', file: values.config, problems: lines },
        `reload refused [GW_ERR_CONFIG_INVALID]: ${problems.length} problem${problems.length === 1 ? '' : 's'}; the running configuration stays`,
      );
      gw.reportGatewayStatus({ config: { ok: false, at, file: values.config, problems: lines } });
      notify.ready(running(`; last reload refused (${problems.length} problems)`));
      return;
    }
    const report = await gw.reload(next);
    log.info({ audit: 'reload', ...report }, 'configuration reloaded');
    if (report.restartNeeded.length) log.warn({ keys: report.restartNeeded }, 'these gateway settings changed and take effect only after a restart');
    gw.reportGatewayStatus({ config: { ok: true, at, file: values.config, ...report } });
    enabledDevices = next.devices.filter((d) => d.enabled).length;
    await gw.inference?.reload();
    notify.ready(running(`; reloaded ${at}`));
  };
  const offReload = io.onReload?.(() => {
    log.info('reload requested');
    reloading = reloading.then(reloadOnce).catch((err: unknown) => {
      log.error({ audit: 'reload', err }, 'reload failed');
      gw.reportGatewayStatus({
        config: { ok: false, at: new Date().toISOString(), file: values.config, error: excerpt((err as Error).message ?? String(err), 300) },
      });
      notify.ready(running('; last reload failed'));
    });
  });
  // The last boundary. A rejected promise nobody awaited left no half-done work behind (every
  // buffer write is a transaction): count it, log it, carry on. An uncaught exception may have
  // stopped anything half-way: stop as cleanly as possible (the buffer keeps what it has) and exit
  // non-zero, so that systemd starts a fresh process.
  let fatal: unknown;
  let onFatal = () => undefined as void;
  const fatalStop = new Promise<void>((r) => (onFatal = r));
  const offFault = io.onProcessFault?.((kind, err) => {
    gw.fault('process', err);
    if (kind !== 'uncaughtException' || fatal !== undefined) return;
    fatal = err;
    log.fatal({ err }, 'uncaught exception: state unknown, stopping [GW_ERR_INTERNAL]');
    onFatal();
  });
  await Promise.race([io.stopRequested, fatalStop]);
  offReload?.();
  log.info(fatal === undefined ? 'stop requested' : 'stopping after an uncaught exception');
  notify.stopping('stopping: draining the buffer');
  await reloading;
  await gw.stop();
  offFault?.();
  notify.close();
  log.flush(); // what the log held back as repeats, counted
  return fatal === undefined ? EXIT.OK : EXIT.FAILURE;
}
