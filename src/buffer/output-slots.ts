// One durable cursor per output (MQTT, InfluxDB, …) in the buffer file. Each output holds one bit
// of a row's `pending` mask, set for every enabled output when the row is appended; an output's
// acknowledgement clears its bit, and a row leaves the table once no bit is left — so an output
// that is down or slow holds only its own backlog, never the others' delivery. The bits are kept
// by name in the `outputs` table: a restart, a reload or a new output never moves another
// output's bit, so each output goes on exactly where it was. An output removed from the config
// gives its bit back at the next open: rows only it still needed leave with an `output_removed`
// event that counts them. An output added to a buffer that already holds rows receives what is
// appended from then on (the rows before it were taken for the outputs that existed).
//
// With one output (the default: MQTT alone) nothing of this costs anything: acknowledged rows are
// deleted directly, as before there were outputs.
import type { Db } from './sqlite.js';

/** Bits 0..30: a mask stays a small positive integer in SQLite and in JavaScript. */
export const MAX_OUTPUTS = 31;

export interface SlotChange {
  event: 'output_added' | 'output_removed';
  output: string;
  /** output_removed: rows only that output still needed, deleted with it. */
  undelivered?: number;
}

export class OutputSlots {
  /** Output name → its bit (1 << n). */
  readonly bits = new Map<string, number>();
  /** Every configured output's bit together: a new row's `pending`. */
  all = 0;

  constructor(readonly names: readonly string[]) {
    if (!names.length) throw new Error('the buffer needs at least one output');
    if (names.length > MAX_OUTPUTS) throw new Error(`at most ${MAX_OUTPUTS} outputs`);
    if (new Set(names).size !== names.length) throw new Error(`outputs named twice: ${names.join(', ')}`);
  }

  /** One output: acknowledgements delete rows directly. */
  get single(): boolean {
    return this.names.length === 1;
  }

  bit(name: string): number {
    const b = this.bits.get(name);
    if (b === undefined) throw new Error(`no output "${name}" in this buffer (outputs: ${this.names.join(', ')})`);
    return b;
  }

  /** Names of the outputs whose bits are set in `mask`. */
  namesOf(mask: number): string[] {
    const out: string[] = [];
    for (const [name, b] of this.bits) if (mask & b) out.push(name);
    return out;
  }

  /**
   * Reads, adds and gives back bits against the file (in one transaction) and returns what changed.
   * A file of a release without outputs has rows with pending 1 (its default): they were MQTT's,
   * so a new table gives "mqtt" bit 0 first.
   */
  open(db: Db): SlotChange[] {
    const changes: SlotChange[] = [];
    db.transaction(() => {
      const known = new Map((db.prepare('SELECT name, bit FROM outputs').all() as { name: string; bit: number }[]).map((r) => [r.name, r.bit]));
      const add = db.prepare('INSERT INTO outputs (name, bit) VALUES (?, ?)');
      if (!known.size) {
        add.run('mqtt', 0);
        known.set('mqtt', 0);
      }
      for (const [name, n] of known) {
        if (this.names.includes(name)) continue;
        const b = 2 ** n;
        db.prepare('UPDATE samples SET pending = pending & ? WHERE pending & ? != 0').run(~b & 0x7fffffff, b);
        const undelivered = db.prepare('DELETE FROM samples WHERE pending = 0').run().changes;
        db.prepare('DELETE FROM outputs WHERE name = ?').run(name);
        known.delete(name);
        changes.push({ event: 'output_removed', output: name, undelivered });
      }
      const used = new Set(known.values());
      for (const name of this.names) {
        if (known.has(name)) continue;
        let n = 0;
        while (used.has(n)) n++;
        add.run(name, n);
        used.add(n);
        known.set(name, n);
        changes.push({ event: 'output_added', output: name });
      }
      this.bits.clear();
      this.all = 0;
      for (const name of this.names) {
        const b = 2 ** known.get(name)!;
        this.bits.set(name, b);
        this.all |= b;
      }
    })();
    return changes;
  }
}
