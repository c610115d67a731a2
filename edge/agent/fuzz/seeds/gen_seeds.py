#!/usr/bin/env python3
"""Writes the seed corpora of the edge-agent fuzz targets from the repository's fixtures.

seeds/config/: every config the repository holds — cross/config.example.toml, the TOML
examples of README.md and cross/README.md (tables without `[store]` get a minimal one), the
configs the e2e tests (tests/tests/*.rs) and the agent's unit tests write (their format
strings, placeholders filled from the file's constants), the simulator's config.toml (when
`--store-edge BIN` is given), and one config per hardware profile naming it as a `.toml` file.
After a NUL comes what every file the config names reads as: the profile's text, or for TLS
tables a self-signed certificate and key (seeds/fuzz-only-tls.pem, made once by openssl; a
throwaway for the fuzzer, trusted nowhere).

seeds/mqtt_payload/: the payloads the e2e and unit tests publish — management requests,
`config/desired` envelopes, Milesight uplinks (JSON, raw, hex, base64), JSON interval counts,
and the counter fixtures of the HTTP dialects carried over MQTT.

Run from anywhere: `python3 edge/agent/fuzz/seeds/gen_seeds.py [--store-edge target/debug/store-edge]`.
Files are named by content, so running it again only adds what changed.
"""

import argparse
import base64
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "..", ".."))
STORE = '[store]\nstore_id = "seed"\ngateway_id = "gw-1"\ntimezone = "UTC"\n\n'


WRITTEN = set()


def write(target, name, data):
    """Writes `target/<name>-<digest>`, once per content."""
    if isinstance(data, str):
        data = data.encode()
    digest = hashlib.sha1(data).hexdigest()[:10]
    if (target, digest) in WRITTEN:
        return
    WRITTEN.add((target, digest))
    path = os.path.join(HERE, target, f"{name}-{digest}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def read(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


# Rust string literals: "…" (escapes, `\` line continuations) and r#"…"#.
LITERAL = re.compile(r'r(#*)"(.*?)"\1|"((?:[^"\\]|\\.)*)"', re.S)


def unescape(body):
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = body[i + 1]
        if n == "\n":  # continuation: skip the newline and the next line's indentation
            i += 2
            while i < len(body) and body[i] in " \t\n":
                i += 1
            continue
        out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0", '"': '"', "\\": "\\", "'": "'"}.get(n, n))
        i += 2
    return "".join(out)


def constants(src):
    consts = {}
    for name, value in re.findall(r'const ([A-Z_][A-Z0-9_]*): &str = "([^"\\]*)";', src):
        consts[name] = value
    for name, value in re.findall(r"const ([A-Z_][A-Z0-9_]*): u\d+ = ([0-9_]+);", src):
        consts[name] = value.replace("_", "")
    return consts


def render(text, consts):
    """Fills a format string's placeholders: constants, then plausible values by name."""

    def fill(m):
        name = m.group(1)
        if name in consts:
            return consts[name]
        before = text[max(0, m.start() - 24) : m.start()]
        low = name.lower()
        if "port" in low or before.endswith("127.0.0.1:"):
            return "1883"
        if "broker" in low:
            return "127.0.0.1:1883"
        if name == "":
            if "timezone" in before:
                return "UTC"
            if "port = " in before:
                return "/dev/ttyUSB0"
            if "url = " in before:
                return "http://127.0.0.1:8080"
            if "listen = " in before:
                return "127.0.0.1:0"
            return "x"
        if low in ("gateway", "name"):
            return "gw-2" if low == "gateway" else "door-x"
        # Fragments spliced in (`extra`, `sources`, `global`, …) are left out.
        return ""

    text = text.replace("{{", "\x01").replace("}}", "\x02")
    text = re.sub(r"\{([A-Za-z_0-9]*)(?::[^}]*)?\}", fill, text)
    return text.replace("\x01", "{").replace("\x02", "}")


# Profile files the tests write next to their configs, and the shipped profile each starts from.
TEST_PROFILES = {
    "fast-beam.toml": "hardware-profiles/counter/generic-ir-beam-modbus.toml",
    "ax.toml": "hardware-profiles/counter/axis-people-counter.toml",
    "ax-fast.toml": "hardware-profiles/counter/axis-people-counter.toml",
    "hik.toml": "hardware-profiles/counter/hikvision-ds-2cd6825g0-search.toml",
}


def with_files(text, pem):
    """The config, and after a NUL what the files it names read as: TLS material for a config
    with TLS tables, the profile a test's `profile = "….toml"` starts from."""
    data = text.encode() if isinstance(text, str) else text
    if pem and ("[mqtt.tls]" in text or "[sync.tls]" in text):
        return data + b"\0" + pem
    for name, rel in TEST_PROFILES.items():
        if f'profile = "{name}"' in text:
            return data + b"\0" + read(rel)
    return data


def config_seeds(store_edge):
    pem = tls_bundle()
    write("config", "example", read("cross/config.example.toml"))
    # README examples: fenced TOML blocks that are config tables (not secrets files).
    for rel in ("README.md", "cross/README.md"):
        text = read(rel).decode()
        for i, block in enumerate(re.findall(r"```toml\n(.*?)```", text, re.S)):
            if "device_key_secret" in block:
                continue
            if "[store]" not in block:
                block = STORE + block
            write("config", f"readme-{os.path.basename(os.path.dirname(rel) or 'top')}-{i}", with_files(block, pem))
    # The [mqtt] example in the agent's module docs.
    src = read("edge/agent/src/mgmt/config.rs").decode()
    doc = re.search(r"//! ```toml\n(.*?)//! ```", src, re.S).group(1)
    write("config", "mqtt-doc", with_files(STORE + re.sub(r"^//! ?", "", doc, flags=re.M), pem))
    # Configs written by the tests.
    files = sorted(glob.glob(os.path.join(ROOT, "tests/tests/*.rs")))
    files += [os.path.join(ROOT, p) for p in ("edge/agent/src/config/mod.rs", "edge/agent/src/supervise.rs")]
    keys = ("[store]", "[[sources.", "[mqtt]", "[sync]", "[privacy]", "[storage]", "[metrics]")
    for path in files:
        src = open(path).read()
        consts = constants(src)
        stem = os.path.relpath(path, ROOT).replace("/", "-")[:-3]
        for m in LITERAL.finditer(src):
            raw = m.group(2) if m.group(2) is not None else None
            text = raw if raw is not None else unescape(m.group(3))
            if not any(k in text for k in keys):
                continue
            if raw is None:
                text = render(text, consts)
            if "[store]" not in text:
                text = STORE + text
            write("config", f"test-{stem}", with_files(text, pem))
    # The simulator's config.
    if store_edge:
        for zones in ("1", "6"):
            with tempfile.TemporaryDirectory() as d:
                subprocess.run(
                    [store_edge, "simulate", "--out", d, "--zones", zones, "--visitors", "5"],
                    check=True,
                    stderr=subprocess.DEVNULL,
                )
                write("config", f"sim-{zones}-zones", open(os.path.join(d, "config.toml"), "rb").read())
    # Hardware profiles given as files.
    for path in sorted(glob.glob(os.path.join(ROOT, "hardware-profiles/*/*.toml"))):
        kind = os.path.basename(os.path.dirname(path))
        profile = open(path, "rb").read()
        text = profile.decode()
        if kind == "wifi":
            table = '[[sources.wifi]]\nzone = "entrance"\ninterface = "mon0"\nprofile = "p.toml"\nhop = true\n'
        elif kind == "pos":
            table = '[[sources.pos]]\nname = "till-1"\nprofile = "p.toml"\nport = "/dev/ttyUSB0"\n'
        else:
            transport = re.search(r'^transport = "([^"]+)"', text, re.M).group(1)
            device = {
                "http-push": 'listen = "127.0.0.1:8081"',
                "http-poll": 'url = "http://192.0.2.9"\ninterval = "30s"',
                "modbus-rtu": 'port = "/dev/ttyUSB1"\nslave = 7',
                "mqtt": 'broker = "127.0.0.1:1883"',
            }[transport]
            table = f'[[sources.counter]]\nprofile = "p.toml"\ndoor = "main"\n{device}\n'
        name = os.path.basename(path)[:-5]
        write("config", f"profile-{kind}-{name}", (STORE + table).encode() + b"\0" + profile)
    # A password file, and TLS material (one PEM bundle: certificate and key).
    write(
        "config",
        "mqtt-password-file",
        STORE.encode()
        + b'[mqtt]\nbroker = "127.0.0.1:1883"\nusername = "gw-1"\npassword_file = "mqtt-password"\n\0s3cret\n',
    )
    if pem:
        write(
            "config",
            "mqtt-tls",
            STORE.encode()
            + b'[mqtt]\nbroker = "fleet.example.net:8883"\n[mqtt.tls]\nca_file = "ca.pem"\n'
            + b'cert_file = "gw.pem"\nkey_file = "gw.key"\n\0'
            + pem,
        )
        write(
            "config",
            "sync-tls",
            STORE.encode()
            + b'[sync]\nlisten = "0.0.0.0:50051"\n[sync.tls]\ncert = "gw.pem"\nkey = "gw.key"\n'
            + b'client_ca = "ca.pem"\n\0'
            + pem,
        )


def tls_bundle():
    """A self-signed certificate and its key (PEM), made once by openssl and kept in
    seeds/fuzz-only-tls.pem so that the seeds stay the same; None without openssl."""
    kept = os.path.join(HERE, "fuzz-only-tls.pem")
    if os.path.exists(kept):
        return open(kept, "rb").read()
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        try:
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-days", "3650", "-subj", "/CN=fleet.example.net", "-keyout", key, "-out", cert],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        pem = open(cert, "rb").read() + open(key, "rb").read()
    with open(kept, "wb") as f:
        f.write(pem)
    return pem


def mqtt_seeds():
    requests = [
        {"id": "p-1"},
        {"id": "s-1"},
        {"id": "r-1"},
        {"id": "u-1"},
        {"id": "l-1", "level": "loud"},
        {"id": "l-2", "level": "debug"},
        {"id": "l-3", "filter": "info"},
        {"id": "l-4", "filter": "info,edge_agent=trace"},
        {"id": "l-5", "level": "info", "filter": "info"},
        {"id": "l-6", "level": 3},
        {"id": "flush-1"},
        {"id": "reload-1"},
        {"hello": 1},
        {"id": 7},
        {"id": ""},
    ]
    for i, r in enumerate(requests):
        write("mqtt_payload", f"request-{i}", json.dumps(r))
    for i, raw in enumerate([b'{"id": "m-1", ', b"[1, 2]", b"", b"\xff\xfe", b'{"id": "13800138000", oops}']):
        write("mqtt_payload", f"request-bad-{i}", raw)
    config = read("cross/config.example.toml").decode()
    minimal = STORE + '[mqtt]\nbroker = "127.0.0.1:1883"\nkeep_alive = "5s"\ntelemetry_interval = "1s"\n'
    for i, d in enumerate(
        [
            {"version": 1, "config": minimal},
            {"version": 7, "config": config},
            {"version": 3},
            {"version": 0, "config": ""},
            {"version": 1.5, "config": ""},
            {"version": "2", "config": ""},
            {"version": 3, "config": {"store": {}}},
            {"config": minimal},
        ]
    ):
        write("mqtt_payload", f"desired-{i}", json.dumps(d))
    write("mqtt_payload", "desired-bad", b'{"version": 7, "config": "[store]\\n')
    # Milesight VS133 uplinks (tests/tests/counter_mqtt.rs `uplink`), and the TLV on its own.
    def tlv(ins, outs):
        return (bytes([0x01, 0x75, 0x5A, 0x03, 0xD2]) + ins.to_bytes(4, "little") + bytes([0x04, 0xD2])
                + outs.to_bytes(4, "little") + bytes([0x05, 0xCC, 0x01, 0x00, 0x01, 0x00]))

    for fcnt, ins, outs in [(1, 72, 60), (3, 3, 1), (9, 0xFFFFFFFF, 400)]:
        raw = tlv(ins, outs)
        uplink = {"applicationID": "1", "deviceName": "VS133 main door", "devEUI": "24e1240000000133",
                  "fCnt": fcnt, "fPort": 85, "data": base64.b64encode(raw).decode()}
        write("mqtt_payload", f"milesight-uplink-{fcnt}", json.dumps(uplink))
        write("mqtt_payload", f"milesight-raw-{fcnt}", raw)
        write("mqtt_payload", f"milesight-hex-{fcnt}", raw.hex().upper())
    write("mqtt_payload", "milesight-bad-base64", b'{"devEUI": "24e1240000000133", "fPort": 85, "data": "A9JI!AAAB#I8AAAA"}')
    for i, raw in enumerate([b"0ECC05000700", bytes([0x01, 0x75, 0x5A]), b"03D248000000"]):
        write("mqtt_payload", f"milesight-unit-{i}", raw)
    # JSON interval counts (counter_mqtt.rs `interval`) and running totals.
    for i, (start, ins, outs) in enumerate([("10:00", 14, 9), ("10:15", 6, 4)]):
        h, m = start.split(":")
        end = f"{h}:{int(m) + 15:02d}" if int(m) < 45 else f"{int(h) + 1:02d}:00"
        write("mqtt_payload", f"json-interval-{i}", json.dumps(
            {"device": "bridge-1", "line": "entrance", "from": f"2026-11-20T{start}:00+00:00",
             "to": f"2026-11-20T{end}:00+00:00", "counts": {"in": ins, "out": outs}}))
    write("mqtt_payload", "json-interval-cut", b'{"line": "entrance", "from":')
    write("mqtt_payload", "json-interval-string-count", json.dumps(
        {"line": "entrance", "from": "2026-11-20T10:00:00+08:00", "to": "2026-11-20T10:15:00+08:00",
         "counts": {"in": "14", "out": 9}}))
    write("mqtt_payload", "json-totals", json.dumps(
        {"sensor": {"line": 2}, "ts": 1795252504, "counts": [{"in": 1200, "out": 1100}]}))
    write("mqtt_payload", "json-totals-ms", json.dumps(
        {"sensor": {"line": "Entrance"}, "ts": 1795252504123, "counts": [{"in": 1201, "out": 1100}]}))
    # Counter fixtures: the Milesight and JSON bridge messages, and the HTTP dialects.
    for path in sorted(glob.glob(os.path.join(ROOT, "hardware-profiles/counter/fixtures/*"))):
        name = os.path.basename(path)
        if name.endswith(".hex"):
            continue
        write("mqtt_payload", "fixture-" + name.rsplit(".", 1)[0], open(path, "rb").read())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store-edge", help="a built store-edge binary, for the simulator's config")
    args = ap.parse_args()
    config_seeds(args.store_edge)
    mqtt_seeds()
    for t in ("config", "mqtt_payload"):
        print(t, len(os.listdir(os.path.join(HERE, t))), "seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
