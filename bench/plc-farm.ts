// Simulated PLCs in a process of their own, so that a benchmark measures the gateway and not the
// devices' CPU in its own process: N Modbus TCP simulators, each with P float32 holding registers
// (sine waves, new values every poll), on ephemeral loopback ports. Prints {"ports":[…]} on one
// line when they listen; stops on SIGTERM, SIGINT or when its parent's pipe closes.
//
//   node dist/bench/plc-farm.js --plcs 137 --points 50
import { scriptArgs } from '../src/core/script-args.js';
import { start, type ModbusSimulator } from '../simulators/modbus/index.js';
import { sineRegisters } from './lib.js';

const values = scriptArgs('plc-farm', 'Simulated Modbus TCP PLCs in their own process (for benchmarks).', {
  plcs: { type: 'string', default: '137' },
  points: { type: 'string', default: '50' },
});
const PLCS = Number(values.plcs);
const POINTS = Number(values.points);

const sims: ModbusSimulator[] = [];
for (let i = 0; i < PLCS; i++) {
  sims.push(
    await start({
      registers: sineRegisters(POINTS),
    }),
  );
}
process.stdout.write(`${JSON.stringify({ ports: sims.map((s) => s.port) })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void Promise.all(sims.map((s) => s.stop())).finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
