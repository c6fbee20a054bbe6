// When a device's health is worth a status message and a log line: a change of state, or — while
// it is down — a change of cause (the advice an operator acts on), but not a reason that differs
// only in its numbers from one failed attempt to the next.
import { describe, expect, it } from 'vitest';
import { DeviceHealth } from '../../src/core/device-health.js';

describe('device health', () => {
  it('reports a down device again when its cause changes, not when only numbers in the reason do', () => {
    const h = new DeviceHealth('opc.tcp://plc:4840', 1);
    expect(h.linkDown('opc.tcp://plc:4840: the server certificate (SHA-1 thumbprint 3f9c) is not trusted; move it')).toBe(true);
    expect(h.linkDown('opc.tcp://plc:4840: the server certificate (SHA-1 thumbprint 3f9c) is not trusted; move it')).toBe(false);
    // The operator moved it; now the server refuses the gateway: a new cause, a new status.
    expect(h.linkDown("opc.tcp://plc:4840: the server does not trust the gateway's certificate")).toBe(true);
    expect(h.snapshot()).toMatchObject({ state: 'down', reason: "opc.tcp://plc:4840: the server does not trust the gateway's certificate" });
    // Attempt counters and addresses in a library's message are the same cause.
    expect(h.linkDown('opc.tcp://plc:4840: ClientTCP_transport3: socket has been disconnected by third party')).toBe(true);
    expect(h.linkDown('opc.tcp://plc:4840: ClientTCP_transport5: socket has been disconnected by third party')).toBe(false);
    // The latest text is kept all the same.
    expect(h.snapshot().reason).toContain('transport5');
    // Up again, then down for the same reason as before: a state change.
    expect(h.ok(3)).toBe(true);
    expect(h.linkDown('opc.tcp://plc:4840: ClientTCP_transport7: socket has been disconnected by third party')).toBe(true);
  });
});
