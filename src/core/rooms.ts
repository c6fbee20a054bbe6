// The parts of the gateway (buffer, health server, outputs, links, scheduler, …) as rooms with a
// uniform start and stop. They start in list order — sinks before sources — and stop in the
// reverse order, each inside its own error boundary: a room whose stop throws is logged and the
// others still stop, so the buffer (first to start, last to stop) is always closed.
import type { Logger } from 'pino';

export interface Room {
  name: string;
  start?(): unknown;
  stop?(): unknown;
}

/** Starts each room in order, waiting for each; the first that fails ends the start with its error. */
export async function startRooms(rooms: readonly Room[]): Promise<void> {
  for (const room of rooms) await room.start?.();
}

/** Stops the rooms in reverse order; one that throws (or rejects) does not keep the others from stopping. */
export async function stopRooms(log: Logger, rooms: readonly Room[]): Promise<void> {
  for (const room of [...rooms].reverse()) {
    try {
      await room.stop?.();
    } catch (err) {
      log.error({ err, room: room.name }, 'stopping a room failed; the others go on stopping');
    }
  }
}
