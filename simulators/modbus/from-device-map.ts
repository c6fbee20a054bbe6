// Builds a simulator register map from device-map points, so a simulated PLC always serves what
// the gateway expects. Generators are picked from the type; a point's `unit` does not matter.
import type { ModbusPointConfig } from '../../drivers/modbus/schema.js';
import type { GeneratorSpec } from './generators.js';
import type { RegisterSpec } from './index.js';

export function generatorFor(p: ModbusPointConfig, i: number): GeneratorSpec {
  const period = 20 + (i % 7) * 5;
  switch (p.type) {
    case 'bool':
      return { kind: 'square', period_s: 10 + (i % 5) * 3 };
    case 'string':
      return { kind: 'constant', value: `SIM-${p.name}`.slice(0, (p.count ?? 1) * 2) };
    case 'float32':
    case 'float64':
      return { kind: 'sine', min: 10 + i, max: 90 + i, period_s: period };
    case 'int16':
      return { kind: 'random_walk', min: -500, max: 500, step: 5 };
    case 'uint16':
      return { kind: 'ramp', min: 0, max: 1000, period_s: period };
    default:
      return { kind: 'counter', step: 1, every_ms: 100 };
  }
}

export function registersFromPoints(points: ModbusPointConfig[]): RegisterSpec[] {
  return points.map((p, i) => ({
    area: p.area,
    address: p.address,
    type: p.type,
    byte_order: p.byte_order,
    count: p.count,
    bit: p.bit,
    // A writable point holds what was last written (raw 0 until then), as a PLC's setpoint does.
    ...(p.writable
      ? { value: p.type === 'bool' ? false : p.type === 'string' ? '' : 0 }
      : // The simulator holds raw values; undo the point's scale/offset so the gateway decodes the generator's value.
        { generator: unscale(generatorFor(p, i), p.scale, p.offset) }),
  }));
}

function unscale(g: GeneratorSpec, scale: number, offset: number): GeneratorSpec {
  if ((scale === 1 && offset === 0) || (g.kind !== 'sine' && g.kind !== 'ramp' && g.kind !== 'random_walk')) return g;
  const f = (v: number) => (v - offset) / scale;
  const [a, b] = [f(g.min), f(g.max)].sort((x, y) => x - y) as [number, number];
  return g.kind === 'random_walk' ? { ...g, min: a, max: b, step: g.step / Math.abs(scale) } : { ...g, min: a, max: b };
}
