#!/usr/bin/python3
"""A Modbus TCP or RTU server on pymodbus (Debian's python3-pymodbus), for edgeferry's interop tests.

Register images come from pymodbus's own BinaryPayloadBuilder, so the words a value becomes in
each byte order are pymodbus's, not edgeferry's. Usage:

    pymodbus_server.py tcp SPEC.json          # listens on 127.0.0.1, an ephemeral port
    pymodbus_server.py rtu SPEC.json TTY BAUD # a serial slave on TTY

SPEC.json: {"units": {"1": [{"area": "holding", "address": 0, "type": "float32",
"order": "CDAB", "value": -1234.5}, {"area": "holding", "address": 9, "words": [1, 2]},
{"area": "coil", "address": 7, "bits": [true]}, {"area": "holding", "address": 20,
"string": "OK-1"}]}}. Prints "listening PORT" (tcp) or "listening TTY" (rtu) once it serves.
"""
import asyncio
import json
import sys

from pymodbus.constants import Endian
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.payload import BinaryPayloadBuilder
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer

SIZE = 1000
ORDERS = {  # (byte order inside a word, word order)
    "ABCD": (Endian.Big, Endian.Big),
    "CDAB": (Endian.Big, Endian.Little),
    "BADC": (Endian.Little, Endian.Big),
    "DCBA": (Endian.Little, Endian.Little),
}
ADD = {
    "int16": "add_16bit_int", "uint16": "add_16bit_uint",
    "int32": "add_32bit_int", "uint32": "add_32bit_uint", "float32": "add_32bit_float",
    "int64": "add_64bit_int", "uint64": "add_64bit_uint", "float64": "add_64bit_float",
}


def words_of(entry):
    if "words" in entry:
        return entry["words"]
    if "string" in entry:
        b = BinaryPayloadBuilder(byteorder=Endian.Big)
        b.add_string(entry["string"])
        return b.to_registers()
    byte_order, word_order = ORDERS[entry.get("order", "ABCD")]
    b = BinaryPayloadBuilder(byteorder=byte_order, wordorder=word_order)
    value = entry["value"]
    getattr(b, ADD[entry["type"]])(int(value) if "float" not in entry["type"] else float(value))
    return b.to_registers()


def unit_context(entries):
    areas = {a: [0] * SIZE for a in ("holding", "input")}
    bits = {a: [False] * SIZE for a in ("coil", "discrete")}
    for e in entries:
        if e["area"] in bits:
            for i, v in enumerate(e["bits"]):
                bits[e["area"]][e["address"] + i] = bool(v)
        else:
            for i, w in enumerate(words_of(e)):
                areas[e["area"]][e["address"] + i] = w
    # zero_mode: request address N is element N (pymodbus adds 1 otherwise).
    return ModbusSlaveContext(
        hr=ModbusSequentialDataBlock(0, areas["holding"]),
        ir=ModbusSequentialDataBlock(0, areas["input"]),
        co=ModbusSequentialDataBlock(0, bits["coil"]),
        di=ModbusSequentialDataBlock(0, bits["discrete"]),
        zero_mode=True,
    )


async def main():
    mode, spec_file = sys.argv[1], sys.argv[2]
    with open(spec_file, encoding="utf-8") as f:
        spec = json.load(f)
    slaves = {int(u): unit_context(entries) for u, entries in spec["units"].items()}
    context = ModbusServerContext(slaves=slaves, single=False)
    if mode == "tcp":
        server = ModbusTcpServer(context, ModbusSocketFramer, address=("127.0.0.1", 0), defer_start=True)
        task = asyncio.create_task(server.serve_forever())
        await server.serving
        port = server.server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        await task
    else:
        tty, baud = sys.argv[3], int(sys.argv[4])
        server = ModbusSerialServer(context, ModbusRtuFramer, port=tty, baudrate=baud, timeout=0.005)
        await server.start()
        print(f"listening {tty}", flush=True)
        await server.serve_forever()


asyncio.run(main())
