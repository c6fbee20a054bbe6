// The serial port of the MS/TP data link thread. The serialport package cannot run on a worker
// thread (its poller calls back on the main thread's loop and aborts the process), so the thread
// opens the device itself: stty sets the line (baud rate, 8N1, raw, no flow control), a
// tty.ReadStream delivers octets on the thread's own loop, and frames are written straight to the
// non-blocking descriptor — no hop through an event loop between the node deciding to send and
// the octets reaching the driver.
import { execFile } from 'node:child_process';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { promisify } from 'node:util';
import { NotConnectedError } from '../../src/errors.js';
import type { MstpSerial } from './port.js';

const run = promisify(execFile);

export async function openTty(path: string, baudRate: number, onData: (chunk: Buffer) => void, onClose: (reason: string) => void): Promise<MstpSerial> {
  try {
    await run('stty', [
      '-F',
      path,
      String(baudRate),
      'raw',
      '-echo',
      'cs8',
      '-parenb',
      '-cstopb',
      'clocal',
      'cread',
      '-crtscts',
      '-ixon',
      '-ixoff',
      'min',
      '1',
      'time',
      '0',
    ]);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new NotConnectedError(`cannot open ${path}: ${(e.stderr || e.message).trim()}`);
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch (err) {
    throw new NotConnectedError(`cannot open ${path}: ${(err as Error).message}`);
  }
  const rs = new ReadStream(fd);
  let open = true;
  let pending: Buffer[] = [];
  let retry: NodeJS.Timeout | undefined;
  const lost = (reason: string) => {
    if (!open) return;
    open = false;
    clearTimeout(retry);
    rs.destroy();
    onClose(reason);
  };
  rs.on('data', (chunk: Buffer) => onData(chunk));
  rs.on('error', (err) => lost(`serial port ${path}: ${err.message}`));
  rs.on('end', () => lost(`serial port ${path} closed`));
  // Writes that the driver's buffer could not take at once (EAGAIN) wait a millisecond, in order.
  const flush = () => {
    retry = undefined;
    while (open && pending.length) {
      const b = pending[0]!;
      let n: number;
      try {
        n = writeSync(fd, b);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          retry = setTimeout(flush, 1);
          return;
        }
        return lost(`serial port ${path}: ${(err as Error).message}`);
      }
      if (n < b.length) pending[0] = b.subarray(n);
      else pending.shift();
    }
  };
  return {
    write: (frame) => {
      if (!open) return;
      pending.push(frame);
      if (!retry) flush();
    },
    close: async () => {
      if (!open) return;
      open = false;
      clearTimeout(retry);
      pending = [];
      await new Promise<void>((resolve) => {
        rs.once('close', () => resolve());
        rs.destroy();
      });
      try {
        closeSync(fd);
      } catch {
        /* the stream closed it */
      }
    },
  };
}
