#!/usr/bin/python3
"""An independent Sparkplug B 3.0 host for the tests: it shares no code with the gateway.

Payloads are decoded with the specification's own sparkplug_b.proto, compiled here by protoc for
Python (Debian: protobuf-compiler, python3-protobuf); MQTT is paho-mqtt (python3-paho-mqtt). It
follows one edge node (--group, --node) and checks the specification's edge-node rules as the
messages arrive, the way a host that keeps state per node and device does:

  seq        NBIRTH has seq 0; every later message of the node (NDEATH aside) has seq + 1 mod 256
  bdseq      NBIRTH carries bdSeq (Int64); an NDEATH counts only with the bdSeq of the node's
             current NBIRTH (an older one is a stale Will, ignored as the specification says);
             a rebirth in the same session keeps the bdSeq
  order      DBIRTH only after NBIRTH; DDATA and DDEATH only for a device born and not dead in
             the node's session; nothing from the node after its NDEATH until the next NBIRTH
  births     every metric with name, alias (unique across the node), datatype and timestamp;
             NBIRTH with bdSeq and Node Control/Rebirth (Boolean)
  data       metrics by a known alias of that device, with a timestamp and the value field of
             the datatype given in the birth (or is_null)
  qos        NBIRTH, DBIRTH, DDEATH, DDATA at QoS 0 (DDATA: --data-qos), NDEATH at QoS 1; no retain
  once       a device's metric value at one timestamp arrives once (no duplicates; a second copy
             flagged is_historical is counted apart, as a resend after a connection was lost)
  rbe        with --rbe: a live DDATA value is never the value (and quality) the host holds already

Commands, one JSON object per line on stdin:
  {"op": "state", "online": true}   publish this host's STATE (retained, QoS 1) as --host-id
  {"op": "rebirth"}                  NCMD Node Control/Rebirth = true
  {"op": "report"}                   print the counts and every violation (with "keys": true,
                                     every received device/metric@timestamp too)
  {"op": "quit"}
Output, one JSON object per line on stdout: {"e": "connected"}, {"e": "msg", ...} for every
message of the node, {"e": "violation", ...} as each is found, {"e": "report", ...}.
"""
import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

PEER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'peers', 'sparkplug')


def compile_proto(proto_dir):
    out = tempfile.mkdtemp(prefix='sparkplug-host-')
    subprocess.run(['protoc', f'--python_out={out}', f'-I{proto_dir}', os.path.join(proto_dir, 'sparkplug_b.proto')], check=True)
    sys.path.insert(0, out)
    return importlib.import_module('sparkplug_b_pb2')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--ca', required=True)
    ap.add_argument('--cert', required=True)
    ap.add_argument('--key', required=True)
    ap.add_argument('--group', required=True)
    ap.add_argument('--node', required=True)
    ap.add_argument('--host-id', default='scada1')
    ap.add_argument('--data-qos', type=int, default=0)
    ap.add_argument('--rbe', action='store_true')
    ap.add_argument('--proto-dir', default=os.environ.get('SPARKPLUG_PROTO_DIR', PEER_DIR))
    args = ap.parse_args()
    pb = compile_proto(os.path.abspath(args.proto_dir))
    Payload = pb.Payload
    DT = pb.DataType
    INT32 = {DT.Value(n) for n in ('Int8', 'Int16', 'Int32', 'UInt8', 'UInt16', 'UInt32')}
    INT64 = {DT.Value(n) for n in ('Int64', 'UInt64', 'DateTime')}

    lock = threading.Lock()
    out_lock = threading.Lock()

    def emit(obj):
        with out_lock:
            sys.stdout.write(json.dumps(obj, separators=(',', ':')) + '\n')
            sys.stdout.flush()

    prefix = f'spBv1.0/{args.group}/'
    st = {
        'messages': 0, 'by_verb': {}, 'seq_checks': 0, 'wraps': 0, 'violations': [], 'values': 0,
        'historical': 0, 'live': 0, 'duplicates': 0, 'duplicates_resent': 0, 'outside_session': 0, 'stale_ndeath': 0,
        'nbirth_bdseq': [], 'ndeath_bdseq': [], 'rebirths': 0,
    }
    node = {'alive': False, 'bdseq': None, 'seq': None}
    devices = {}  # name -> {'alive': bool, 'metrics': {alias: (name, datatype)}}
    aliases = {}  # alias -> (device, name) in this node session
    held = {}  # (device, name) -> (value, quality) the host holds (rbe)
    seen = set()

    def violation(rule, detail):
        st['violations'].append({'rule': rule, 'detail': detail})
        emit({'e': 'violation', 'rule': rule, 'detail': detail})

    def value_of(m, datatype):
        if m.is_null:
            return None
        field = m.WhichOneof('value')
        if datatype in INT32:
            want = 'int_value'
        elif datatype in INT64:
            want = 'long_value'
        else:
            want = {DT.Value('Float'): 'float_value', DT.Value('Double'): 'double_value', DT.Value('Boolean'): 'boolean_value',
                    DT.Value('String'): 'string_value', DT.Value('Text'): 'string_value'}.get(datatype)
        if field != want:
            return ('mismatch', field, want)
        return getattr(m, field)

    def quality_of(m):
        for k, v in zip(m.properties.keys, m.properties.values):
            if k == 'Quality':
                return v.int_value
        return 192

    def check_seq(verb, p):
        if verb == 'NBIRTH':
            if p.seq != 0:
                violation('seq', f'NBIRTH with seq {p.seq}')
            node['seq'] = 0
            return
        if node['seq'] is None:
            return
        want = (node['seq'] + 1) % 256
        st['seq_checks'] += 1
        if p.seq != want:
            violation('seq', f'{verb} seq {p.seq}, expected {want}')
        if p.seq == 0:
            st['wraps'] += 1
        node['seq'] = p.seq

    def on_message(client, userdata, msg):
        if not msg.topic.startswith(prefix):
            return
        parts = msg.topic.split('/')
        if len(parts) < 4 or parts[3] != args.node:
            return
        verb = parts[2]
        if verb in ('NCMD', 'DCMD'):
            return  # a host's commands to the node (ours among them), not the node's messages
        device = parts[4] if len(parts) > 4 else None
        with lock:
            handle(verb, device, msg)

    def handle(verb, device, msg):
        st['messages'] += 1
        st['by_verb'][verb] = st['by_verb'].get(verb, 0) + 1
        p = Payload()
        try:
            p.ParseFromString(msg.payload)
        except Exception as err:  # noqa: BLE001 - any undecodable payload is a violation
            violation('decode', f'{verb} {device}: {err}')
            return
        if msg.retain:
            violation('qos', f'{verb} {device or ""} retained')
        want_qos = 1 if verb == 'NDEATH' else (args.data_qos if verb == 'DDATA' else 0)
        if msg.qos != want_qos:
            violation('qos', f'{verb} {device or ""} at QoS {msg.qos}, expected {want_qos}')
        if not p.HasField('timestamp'):
            violation('data', f'{verb} {device or ""} without a payload timestamp')
        info = {'e': 'msg', 'verb': verb, 'device': device, 'seq': p.seq if p.HasField('seq') else None, 'n': st['messages']}

        if verb == 'NDEATH':
            bd = next((m.long_value for m in p.metrics if m.name == 'bdSeq'), None)
            st['ndeath_bdseq'].append(bd)
            info['bdSeq'] = bd
            if node['alive'] and bd == node['bdseq']:
                node['alive'] = False
                node['seq'] = None
                for d in devices.values():
                    d['alive'] = False
            else:
                st['stale_ndeath'] += 1
                info['stale'] = True
            emit(info)
            return

        if verb == 'NBIRTH':
            check_seq(verb, p)
            names = {m.name: m for m in p.metrics}
            bd = names.get('bdSeq')
            if bd is None or bd.datatype != DT.Value('Int64'):
                violation('bdseq', 'NBIRTH without an Int64 bdSeq')
            rb = names.get('Node Control/Rebirth')
            if rb is None or rb.datatype != DT.Value('Boolean'):
                violation('births', 'NBIRTH without a Boolean Node Control/Rebirth')
            bdv = bd.long_value if bd is not None else None
            if node['alive'] and bdv == node['bdseq']:
                # Born again in the same session (a Rebirth): the same bdSeq. A new bdSeq is a new
                # session (the old connection's Will, if it still comes, is stale by its bdSeq).
                st['rebirths'] += 1
            st['nbirth_bdseq'].append(bdv)
            info['bdSeq'] = bdv
            node.update(alive=True, bdseq=bdv)
            devices.clear()
            aliases.clear()
            held.clear()
            emit(info)
            return

        if not node['alive']:
            violation('order', f'{verb} {device or ""} seq {p.seq} while the node is dead or unborn')
            emit(info)
            return
        check_seq(verb, p)

        if verb == 'DBIRTH':
            metrics = {}
            for m in p.metrics:
                if not m.name or not m.HasField('alias') or not m.HasField('datatype') or not m.HasField('timestamp'):
                    violation('births', f'DBIRTH {device}: metric {m.name or m.alias} without name, alias, datatype or timestamp')
                    continue
                owner = aliases.get(m.alias)
                if owner is not None and owner != (device, m.name):
                    violation('births', f'DBIRTH {device}: alias {m.alias} of {m.name} already names {owner}')
                aliases[m.alias] = (device, m.name)
                metrics[m.alias] = (m.name, m.datatype)
                v = value_of(m, m.datatype)
                if isinstance(v, tuple):
                    violation('data', f'DBIRTH {device}/{m.name}: {v[1]} for datatype {m.datatype} (expected {v[2]})')
                held[(device, m.name)] = (v, quality_of(m))
            devices[device] = {'alive': True, 'metrics': metrics}
            emit(info)
            return

        d = devices.get(device)
        if verb == 'DDEATH':
            if d is None or not d['alive']:
                violation('order', f'DDEATH {device} seq {p.seq} for a device not alive')
            else:
                d['alive'] = False
            emit(info)
            return

        if verb == 'DDATA':
            if d is None or not d['alive']:
                st['outside_session'] += 1
                violation('order', f'DDATA {device} seq {p.seq} outside a device session (no DBIRTH since its DDEATH)')
                emit(info)
                return
            hist = live = 0
            for m in p.metrics:
                meta = d['metrics'].get(m.alias) if m.HasField('alias') else None
                if meta is None and m.name:
                    meta = next(((n, t) for n, t in d['metrics'].values() if n == m.name), None)
                if meta is None:
                    violation('data', f'DDATA {device}: metric {m.alias if m.HasField("alias") else m.name} not in its birth')
                    continue
                name, datatype = meta
                if not m.HasField('timestamp'):
                    violation('data', f'DDATA {device}/{name} without a timestamp')
                v = value_of(m, datatype)
                if isinstance(v, tuple):
                    violation('data', f'DDATA {device}/{name}: {v[1]} for datatype {datatype} (expected {v[2]})')
                    continue
                key = f'{device}/{name}@{m.timestamp}'
                st['values'] += 1
                if key in seen:
                    st['duplicates'] += 1
                    if m.is_historical:
                        st['duplicates_resent'] += 1
                    violation('once', f'{key} received again (seq {p.seq}{", historical" if m.is_historical else ""})')
                seen.add(key)
                q = quality_of(m)
                if m.is_historical:
                    hist += 1
                else:
                    live += 1
                    if args.rbe and held.get((device, name)) == (v, q):
                        violation('rbe', f'DDATA {device}/{name} = {v!r} (quality {q}) unchanged')
                    held[(device, name)] = (v, q)
            st['historical'] += hist
            st['live'] += live
            info.update(hist=hist, live=live)
            emit(info)
            return

        if verb not in ('NDATA',):
            violation('order', f'unexpected verb {verb}')
        emit(info)

    def publish_state(client, online):
        payload = json.dumps({'online': online, 'timestamp': int(time.time() * 1000)})
        client.publish(f'spBv1.0/STATE/{args.host_id}', payload, qos=1, retain=True)

    def on_connect(client, userdata, flags, rc):
        if rc != 0:
            emit({'e': 'refused', 'rc': rc})
            return
        client.subscribe(f'spBv1.0/{args.group}/#', qos=1)
        if userdata.get('online') is not None:
            publish_state(client, userdata['online'])
        emit({'e': 'connected'})

    def on_disconnect(client, userdata, rc):
        # What happened meanwhile is unknown to us: the node is unborn until its next NBIRTH.
        with lock:
            node.update(alive=False, seq=None)
            devices.clear()
        emit({'e': 'disconnected', 'rc': rc})

    userdata = {'online': None}
    client = mqtt.Client(client_id=f'sparkplug-host-{args.host_id}-{os.getpid()}', clean_session=True, userdata=userdata)
    client.tls_set(ca_certs=args.ca, certfile=args.cert, keyfile=args.key)
    client.will_set(f'spBv1.0/STATE/{args.host_id}', json.dumps({'online': False, 'timestamp': int(time.time() * 1000)}), qos=1, retain=True)
    client.on_message = on_message
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.reconnect_delay_set(0.1, 0.5)
    client.connect_async(args.host, args.port, keepalive=5)
    client.loop_start()

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        op = cmd.get('op')
        if op == 'state':
            userdata['online'] = bool(cmd['online'])
            publish_state(client, userdata['online'])
        elif op == 'rebirth':
            p = Payload()
            p.timestamp = int(time.time() * 1000)
            m = p.metrics.add()
            m.name = 'Node Control/Rebirth'
            m.timestamp = p.timestamp
            m.datatype = DT.Value('Boolean')
            m.boolean_value = True
            client.publish(f'spBv1.0/{args.group}/NCMD/{args.node}', p.SerializeToString(), qos=0)
        elif op == 'report':
            with lock:
                rep = dict(st, e='report')
                if cmd.get('keys'):
                    rep['keys'] = sorted(seen)
            emit(rep)
        elif op == 'quit':
            break
    client.loop_stop()
    client.disconnect()


if __name__ == '__main__':
    main()
