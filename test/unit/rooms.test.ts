import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SqliteBuffer } from '../../src/buffer/sqlite-buffer.js';
import { startRooms, stopRooms, type Room } from '../../src/core/rooms.js';
import { GatewayEvents } from '../../src/core/events.js';

describe('rooms', () => {
  it('stop in reverse order; a room whose stop throws or rejects is logged and the buffer is still closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeferry-rooms-'));
    const buffer = new SqliteBuffer(join(dir, 'b.db'), { synchronous: 'normal', maxBytes: 1 << 20, maxAgeS: 3600 });
    const order: string[] = [];
    const logged: { room?: string; msg?: string }[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line) as { room?: string; msg?: string }) });
    const rooms: Room[] = [
      { name: 'buffer', start: () => buffer.open(), stop: () => (order.push('buffer'), buffer.close()) },
      { name: 'outputs', start: () => order.push('start outputs'), stop: () => (order.push('outputs'), Promise.reject(new Error('drain broke'))) },
      { name: 'links', start: () => order.push('start links'), stop: () => (order.push('links'), undefined) },
      {
        name: 'scheduler',
        stop: () => {
          order.push('scheduler');
          throw new Error('timer broke');
        },
      },
    ];
    await startRooms(rooms);
    buffer.append([{ ts: 1, device: 'd', point: 'p', value: 1, quality: 'good', channel: 'c' }]);
    await stopRooms(log, rooms);
    expect(order).toEqual(['start outputs', 'start links', 'scheduler', 'links', 'outputs', 'buffer']);
    expect(logged.map((l) => [l.room, l.msg])).toEqual([
      ['scheduler', 'stopping a room failed; the others go on stopping'],
      ['outputs', 'stopping a room failed; the others go on stopping'],
    ]);
    // Closed: the file is whole and opens again with what was appended.
    const again = new SqliteBuffer(join(dir, 'b.db'), { synchronous: 'normal', maxBytes: 1 << 20, maxAgeS: 3600 });
    again.open();
    expect(again.depth()).toBe(1);
    again.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a start that fails ends the start with its error; the rooms after it are not started', async () => {
    const started: string[] = [];
    const rooms: Room[] = [
      { name: 'a', start: () => started.push('a') },
      { name: 'health', start: () => Promise.reject(new Error('port 9100 in use')) },
      { name: 'scheduler', start: () => started.push('scheduler') },
    ];
    await expect(startRooms(rooms)).rejects.toThrow('port 9100 in use');
    expect(started).toEqual(['a']);
  });
});

describe('gateway events', () => {
  it('run every listener in order with typed arguments; one that throws is reported and the rest still run', () => {
    const faults: [string, string][] = [];
    const events = new GatewayEvents((event, err) => faults.push([event, (err as Error).message]));
    const seen: string[] = [];
    events.on('device-changed', (d) => seen.push(`first ${d}`));
    events.on('device-changed', () => {
      throw new Error('publisher gone');
    });
    events.on('device-changed', (d) => seen.push(`third ${d}`));
    events.emit('device-changed', 'plc-1');
    events.emit('buffered'); // no listener: nothing happens
    expect(seen).toEqual(['first plc-1', 'third plc-1']);
    expect(faults).toEqual([['device-changed', 'publisher gone']]);
  });
});
