// The serial port under an MS/TP node: serialport in raw mode at the bus's baud rate. Octets go to
// the node as they arrive; the node's frames are written in order.
import type { SerialPort as SerialPortType } from 'serialport';
import { NotConnectedError } from '../../src/errors.js';

export interface MstpSerial {
  write(frame: Buffer): void;
  close(): Promise<void>;
}

export async function openMstpSerial(path: string, baudRate: number, onData: (chunk: Buffer) => void, onClose: (reason: string) => void): Promise<MstpSerial> {
  const { SerialPort } = await import('serialport');
  const port: SerialPortType = new SerialPort({ path, baudRate, dataBits: 8, parity: 'none', stopBits: 1, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(new NotConnectedError(`cannot open ${path}: ${err.message}`)) : resolve())));
  let closing = false;
  port.on('data', onData);
  port.on('error', () => undefined);
  port.on('close', () => {
    if (!closing) onClose(`serial port ${path} closed`);
  });
  return {
    write: (frame) => {
      if (port.isOpen) port.write(frame);
    },
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        if (!port.isOpen) return resolve();
        port.close(() => resolve());
      }),
  };
}
