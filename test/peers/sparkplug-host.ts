// The independent Sparkplug host (sparkplug_host.py: the specification's proto compiled by protoc
// for Python, paho-mqtt) as a child process: commands on its stdin, its findings as JSON lines.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { stopChild } from '../../simulators/stop-child.js';
import { PYTHON } from './peers.js';

export interface HostEvent {
  e: string;
  verb?: string;
  device?: string | null;
  seq?: number | null;
  n?: number;
  bdSeq?: number;
  stale?: boolean;
  hist?: number;
  live?: number;
  rule?: string;
  detail?: string;
}

export interface HostReport {
  messages: number;
  by_verb: Record<string, number>;
  seq_checks: number;
  wraps: number;
  violations: { rule: string; detail: string }[];
  values: number;
  historical: number;
  live: number;
  duplicates: number;
  /** Second copies flagged is_historical: rows sent again on a new connection. */
  duplicates_resent: number;
  outside_session: number;
  stale_ndeath: number;
  nbirth_bdseq: number[];
  ndeath_bdseq: number[];
  rebirths: number;
  keys?: string[];
}

export interface SparkplugHost {
  readonly events: HostEvent[];
  /** Resolves once `pred` holds for the events so far; fails after `ms` with what was awaited and the last events. */
  until(pred: (events: HostEvent[]) => boolean, ms: number, what: string): Promise<void>;
  state(online: boolean): void;
  rebirth(): void;
  report(keys?: boolean): Promise<HostReport>;
  stop(): Promise<void>;
}

export async function startSparkplugHost(
  broker: Mosquitto,
  dir: string,
  opts: { group: string; node: string; hostId?: string; rbe?: boolean; dataQos?: 0 | 1 },
): Promise<SparkplugHost> {
  const id = opts.hostId ?? 'scada1';
  const pair = broker.issueClient(id);
  writeFileSync(join(dir, `${id}.crt`), pair.cert);
  writeFileSync(join(dir, `${id}.key`), pair.key, { mode: 0o600 });
  const args = [
    join(import.meta.dirname, 'sparkplug_host.py'),
    '--port',
    String(broker.port),
    '--ca',
    broker.files.ca,
    '--cert',
    join(dir, `${id}.crt`),
    '--key',
    join(dir, `${id}.key`),
    '--group',
    opts.group,
    '--node',
    opts.node,
    '--host-id',
    id,
    '--data-qos',
    String(opts.dataQos ?? 0),
  ];
  if (opts.rbe) args.push('--rbe');
  const proc = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  const events: HostEvent[] = [];
  const reports: ((r: HostReport) => void)[] = [];
  let waiters: (() => void)[] = [];
  createInterface({ input: proc.stdout }).on('line', (line) => {
    const ev = JSON.parse(line) as HostEvent & HostReport;
    if (ev.e === 'report') return void reports.shift()?.(ev);
    events.push(ev);
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const send = (cmd: Record<string, unknown>) => proc.stdin.write(`${JSON.stringify(cmd)}\n`);
  const until = async (pred: (events: HostEvent[]) => boolean, ms: number, what: string) => {
    const deadline = Date.now() + ms;
    while (!pred(events)) {
      if (proc.exitCode !== null) throw new Error(`the Sparkplug host exited while waiting for ${what}:\n${stderr}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out after ${ms} ms waiting for ${what}; last host events:\n${events
            .slice(-8)
            .map((e) => JSON.stringify(e))
            .join('\n')}\n${stderr}`,
        );
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  };
  const host: SparkplugHost = {
    events,
    until,
    state: (online) => send({ op: 'state', online }),
    rebirth: () => send({ op: 'rebirth' }),
    report: (keys = false) =>
      new Promise<HostReport>((resolve) => {
        reports.push(resolve);
        send({ op: 'report', keys });
      }),
    stop: async () => {
      waiters = [];
      if (proc.exitCode === null) {
        send({ op: 'quit' });
        proc.stdin.end();
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000).unref())]);
      }
      await stopChild(proc);
    },
  };
  await until((all) => all.some((e) => e.e === 'connected'), 20_000, 'the host to connect (protoc, paho-mqtt)');
  return host;
}
