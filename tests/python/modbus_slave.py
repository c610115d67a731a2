#!/usr/bin/env python3
"""A Modbus RTU slave standing in for an RS-485 IR beam door counter in the integration tests.

It is pymodbus 3.8.6 (an implementation independent of store-edge's) serving the register map
of the profile `counter/generic-ir-beam-modbus` on a serial device, normally one end of a socat
pseudo-terminal pair: holding registers 0-1 hold the entries and 2-3 the exits, each a u32 with
the high word first. The test drives it through stdin, one command per line, and every command
is acknowledged with one line on stdout starting with "ok" (or "error ..."):

  set INS OUTS      the counter's running totals (a drop to small numbers is a power-loss reset)
  exception on|off  answer every read with exception 2, illegal data address, meanwhile
  corrupt N         flip a bit in the next N replies (line noise: their CRC fails)
  status            "ok replies=R corrupted=C exception=on|off"

Usage: modbus_slave.py PORT [--slave 1] [--baud 9600] [--ins N] [--outs N]

It prints "ready" once the port is open, and exits when stdin closes: the test that started it
ended, however it ended.
"""

import argparse
import asyncio
import os
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer

# Registers served: entries (2) and exits (2).
REGISTERS = 4
U32_MAX = 0xFFFFFFFF


class CounterBlock(ModbusSequentialDataBlock):
    """The counter's four holding registers; refuses every read while `failing` is set."""

    def __init__(self):
        # pymodbus adds 1 to protocol addresses before asking the block, so protocol
        # addresses 0-3 are block addresses 1-4.
        super().__init__(1, [0] * REGISTERS)
        self.failing = False

    def validate(self, address, count=1):
        # A refused range is answered with exception 2 (illegal data address).
        return not self.failing and super().validate(address, count)

    def set_totals(self, ins, outs):
        words = []
        for v in (ins, outs):
            words += [(v >> 16) & 0xFFFF, v & 0xFFFF]
        self.setValues(1, words)


class Line:
    """Counts the replies sent and flips one bit in the next `corrupt` ones, as line noise
    does: the CRC no longer matches. In a register reply the flipped bit is the lowest of the
    entries (byte 6), so a master that took the reply anyway would store a wrong count."""

    def __init__(self):
        self.replies = 0
        self.corrupted = 0
        self.corrupt = 0

    def trace_packet(self, sending, data):
        if not sending or not data:
            return data
        self.replies += 1
        if self.corrupt > 0:
            self.corrupt -= 1
            self.corrupted += 1
            at = 6 if len(data) > 8 else len(data) - 1
            data = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
        return data


def parse_count(text):
    v = int(text)
    if not 0 <= v <= U32_MAX:
        raise ValueError(f"{v} is not a u32")
    return v


def command(line, block, wire):
    """Applies one command line; returns the acknowledgement."""
    words = line.split()
    if not words:
        return "error empty command"
    try:
        if words[0] == "set" and len(words) == 3:
            ins, outs = parse_count(words[1]), parse_count(words[2])
            block.set_totals(ins, outs)
            return f"ok set {ins} {outs}"
        if words[0] == "exception" and len(words) == 2 and words[1] in ("on", "off"):
            block.failing = words[1] == "on"
            return f"ok exception {words[1]}"
        if words[0] == "corrupt" and len(words) == 2:
            n = int(words[1])
            if n < 0:
                raise ValueError("negative count")
            wire.corrupt = n
            return f"ok corrupt {n}"
        if words[0] == "status" and len(words) == 1:
            state = "on" if block.failing else "off"
            return f"ok replies={wire.replies} corrupted={wire.corrupted} exception={state}"
    except ValueError as e:
        return f"error {e}"
    return f"error unknown command {line.strip()!r}"


async def serve(args):
    block = CounterBlock()
    block.set_totals(args.ins, args.outs)
    wire = Line()
    slave = ModbusSlaveContext(hr=block)
    context = ModbusServerContext(slaves={args.slave: slave}, single=False)
    server = ModbusSerialServer(
        context,
        framer=FramerType.RTU,
        port=args.port,
        baudrate=args.baud,
        bytesize=8,
        parity="N",
        stopbits=1,
        # A read for another slave address gets no answer, as on a shared RS-485 bus.
        ignore_missing_slaves=True,
        trace_packet=wire.trace_packet,
    )
    if not await server.listen():
        print(f"error cannot open {args.port}", flush=True)
        return 2
    print("ready", flush=True)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        print(command(line.decode("utf-8", "replace"), block, wire), flush=True)
    await server.shutdown()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("port", help="serial device (a socat pty link)")
    p.add_argument("--slave", type=int, default=1)
    p.add_argument("--baud", type=int, default=9600)
    p.add_argument("--ins", type=parse_count, default=0)
    p.add_argument("--outs", type=parse_count, default=0)
    args = p.parse_args()
    try:
        code = asyncio.run(serve(args))
    except KeyboardInterrupt:
        code = 0
    sys.stdout.flush()
    # pymodbus may leave a reconnect task behind after a lost port: leave without waiting.
    os._exit(code)


if __name__ == "__main__":
    main()
