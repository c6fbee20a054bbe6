// Value generators for simulated registers. Time-based (from the simulator's start), so values
// change continuously whether or not anyone polls.
import type { Value } from '../../src/core/driver.js';

export type GeneratorSpec =
  | { kind: 'constant'; value: Value }
  | { kind: 'ramp'; min: number; max: number; period_s: number }
  | { kind: 'sine'; min: number; max: number; period_s: number }
  | { kind: 'counter'; step: number; every_ms: number; wrap?: number }
  | { kind: 'square'; period_s: number }
  | { kind: 'random_walk'; min: number; max: number; step: number; start?: number };

export interface Generator {
  value(elapsedMs: number): Value;
}

export function makeGenerator(spec: GeneratorSpec, random: () => number = Math.random): Generator {
  switch (spec.kind) {
    case 'constant':
      return { value: () => spec.value };
    case 'ramp':
      return { value: (t) => spec.min + (spec.max - spec.min) * (((t / 1000) % spec.period_s) / spec.period_s) };
    case 'sine':
      return {
        value: (t) => {
          const mid = (spec.min + spec.max) / 2;
          return mid + ((spec.max - spec.min) / 2) * Math.sin((2 * Math.PI * (t / 1000)) / spec.period_s);
        },
      };
    case 'counter':
      return {
        value: (t) => {
          const n = Math.floor(t / spec.every_ms) * spec.step;
          return spec.wrap ? n % spec.wrap : n;
        },
      };
    case 'square':
      return { value: (t) => Math.floor((t / 1000 / spec.period_s) * 2) % 2 === 1 };
    case 'random_walk': {
      let v = spec.start ?? (spec.min + spec.max) / 2;
      let lastStep = 0;
      return {
        value: (t) => {
          // One step per 100 ms of elapsed time, at most 100 at once after a long pause.
          const steps = Math.min(100, Math.floor(t / 100) - lastStep);
          lastStep = Math.floor(t / 100);
          for (let i = 0; i < steps; i++) v = Math.min(spec.max, Math.max(spec.min, v + (random() * 2 - 1) * spec.step));
          return v;
        },
      };
    }
  }
}
