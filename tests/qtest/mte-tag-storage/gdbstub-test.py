#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""gdbstub memory tagging with tag-storage=on: raw remote-protocol packets
(edge cases gdb never sends; one reply each, QEMU still serving after), and
a scripted session of gdb >= 16 that stops on a tag check fault, inspects
and changes tags, and continues.  TAP output.

Environment: QTEST_QEMU_BINARY, MTS_GUEST_ELF, MTS_GDB (gdb >= 16 with
aarch64 support; MTS_GDB_DATA_DIR for its --data-directory)."""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time

RAM = 0x40000000
RAM_SIZE = 512 << 20
CARVEOUT = RAM + RAM_SIZE
MAILBOX = 0x40400000
MAGIC = 0x4d54532d54450000
FLAG_TAG_STORAGE, FLAG_GDB, FLAG_R4 = 1, 4, 1024
BUF = RAM + RAM_SIZE // 2 + 6 * 0x10000     # gdb_buf in the guest program
results = []


def tap(ok, name, diag=''):
    results.append(ok)
    print('%s %d - %s' % ('ok' if ok else 'not ok', len(results), name))
    if diag and not ok:
        for line in diag.splitlines():
            print('# ' + line)
    sys.stdout.flush()


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_qemu(tmp, port, machine='', flags=0):
    serial = os.path.join(tmp, 'serial.log')
    cmd = [os.environ['QTEST_QEMU_BINARY'], '-accel', 'tcg',
           '-M', 'virt,mte=on,tag-storage=on' + machine, '-cpu', 'max',
           '-m', '512M',
           '-nic', 'none', '-display', 'none', '-S',
           '-gdb', 'tcp:127.0.0.1:%d' % port,
           '-kernel', os.environ['MTS_GUEST_ELF'],
           '-serial', 'file:' + serial,
           '-device', 'loader,addr=%#x,data=%#x,data-len=8'
           % (MAILBOX, MAGIC | FLAG_TAG_STORAGE | FLAG_GDB | flags)]
    for i, v in enumerate((RAM, RAM_SIZE, CARVEOUT)):
        cmd += ['-device', 'loader,addr=%#x,data=%#x,data-len=8'
                % (MAILBOX + 8 * (i + 1), v)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while True:
        try:
            return proc, serial, socket.create_connection(('127.0.0.1', port))
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.05)


class Remote:
    """Minimal gdb remote protocol client."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b''

    def _read(self, timeout):
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(65536)
        except socket.timeout:
            return False
        if not data:
            raise EOFError('gdbstub closed the connection')
        self.buf += data
        return True

    def _packet(self, timeout):
        while True:
            self.buf = self.buf.lstrip(b'+')
            m = re.match(rb'\$([^#]*)#([0-9a-fA-F]{2})', self.buf)
            if m:
                self.buf = self.buf[m.end():]
                self.s.sendall(b'+')
                return m.group(1).decode()
            if not self._read(timeout):
                return None

    def send(self, payload):
        data = payload.encode()
        self.s.sendall(b'$%s#%02x' % (data, sum(data) & 0xff))

    def cmd(self, payload, timeout=10):
        """Send a packet; return (reply, extra replies within 0.2 s)."""
        self.send(payload)
        reply = self._packet(timeout)
        extra = []
        while True:
            more = self._packet(0.2)
            if more is None:
                return reply, extra
            extra.append(more)


def carveout_byte(addr):
    return CARVEOUT + (addr - RAM) // 32


def raw_packet_tests(tmp):
    port = free_port()
    proc, serial, sock = start_qemu(tmp, port)
    r = Remote(sock)
    try:
        r.cmd('qSupported:multiprocess+;memory-tagging+')
        # stop on the tag fault, so the MMU is on and gdb_buf is tagged
        hexcmd = 'mte-tag-fault-stop on'.encode().hex()
        r.cmd('qRcmd,' + hexcmd)
        stop, _ = r.cmd('c', timeout=60)
        tap(stop is not None and stop.startswith('T05'),
            'continue stops on the tag check fault', str(stop))

        b = BUF
        cases = [
            # (packet, expected reply or regexp)
            ('qMemTags:%x,1:1' % b, 'm03'),
            ('qMemTags:%x,20:1' % b, 'm0300'),
            ('qMemTags:%x,10:1' % (b + 8), 'm0300'),
            ('qMemTags:%x,2:1' % b, 'm03'),
            ('QMemTags:%x,30:1:0a0b0c' % (b + 0x10), 'OK'),
            ('qMemTags:%x,40:1' % b, 'm030a0b0c'),
            ('m%x,2' % carveout_byte(b), 'a3cb'),
            ('QMemTags:%x,40:1:05' % (b + 0x40), 'OK'),
            ('qMemTags:%x,40:1' % (b + 0x40), 'm05050505'),
            ('QMemTags:%x,20:1:0102' % (b + 0xfff0), 'OK'),
            ('qMemTags:%x,20:1' % (b + 0xfff0), 'm0102'),
            ('qIsAddressTagged:%x' % b, '01'),
            ('qIsAddressTagged:0', '00'),
            ('qIsAddressTagged:%x' % CARVEOUT, '00'),
            ('qIsAddressTagged:%x' % (0x80000000 + RAM_SIZE), '00'),
            ('qMemTags:', 'E01'),
            ('qMemTags:%x' % b, 'E01'),
            ('qMemTags:%x,1' % b, 'E01'),
            ('qMemTags:%x,0:1' % b, 'E02'),
            ('qMemTags:%x,1:2' % b, 'E03'),
            ('qMemTags:%x,1:0' % b, 'E03'),
            ('qMemTags:%x,100000:1' % b, 'E02'),
            ('qMemTags:ffffffffffffffff,20:1', 'E02'),
            ('qMemTags:0,1:1', 'E04'),
            ('qMemTags:c0000000,1:1', 'E04'),
            ('qMemTags:%x,1:1' % (0x80000000 + RAM_SIZE), 'E04'),
            ('qIsAddressTagged:', 'E01'),
            ('QMemTags:', 'E01'),
            ('QMemTags:%x,10:1' % b, 'E01'),
            ('QMemTags:%x,10:1:' % b, 'E01'),
            ('QMemTags:%x,10:1:0' % b, 'E01'),
            ('QMemTags:%x,20:1:010' % b, 'E01'),
            ('QMemTags:%x,10:1:zz' % b, 'E01'),
            ('QMemTags:%x,10:1:10' % b, 'E01'),
            ('QMemTags:%x,10:1:0g' % b, 'E01'),
            ('QMemTags:%x,10:2:01' % b, 'E02'),
            ('QMemTags:%x,0:1:01' % b, 'E03'),
            ('QMemTags:%x,100000:1:01' % b, 'E03'),
            ('QMemTags:ffffffffffffff00,200:1:01', 'E03'),
            ('QMemTags:0,10:1:01', 'E04'),
            ('QMemTags:c0000000,10:1:01', 'E04'),
            ('QMemTags:%x,20:1:0909' % (0x80000000 + RAM_SIZE), 'E04'),
            # an error changes nothing
            ('qMemTags:%x,40:1' % b, 'm030a0b0c'),
            # restore gdb_buf's tags
            ('QMemTags:%x,80:1:03000000000000000000' % b, 'OK'),
            ('qMemTags:%x,20:1' % b, 'm0300'),
        ]
        for packet, want in cases:
            reply, extra = r.cmd(packet)
            ok = reply == want and not extra
            tap(ok, 'packet %s -> %s' % (packet, want),
                'got %r, then %r' % (reply, extra))
        # malformed numbers: any single reply, and the stub survives
        for packet in ('qMemTags:zz,1:1', 'qMemTags:%x,1:1:junk' % b,
                       'QMemTags:%x,10:1:01:02' % b):
            reply, extra = r.cmd(packet)
            tap(reply is not None and not extra, 'packet %s: one reply'
                % packet, 'got %r, then %r' % (reply, extra))
        reply, _ = r.cmd('m%x,8' % b)
        tap(reply == '3412000000000000', 'stub still serves memory reads',
            str(reply))
        reply, extra = r.cmd('qRcmd,' + 'info mte-tag-fault'.encode().hex())
        text = ''
        for part in [reply] + extra:
            if part and part.startswith('O') and part != 'OK':
                text += bytes.fromhex(part[1:]).decode()
        tap('logical tag     0x5' in text and 'allocation tag  0x3' in text
            and 'guest PA 0x%x' % carveout_byte(b) in text,
            'monitor info mte-tag-fault', text)
    finally:
        proc.kill()
        proc.wait()
    tap(proc.returncode == -9, 'QEMU alive until killed (no crash)',
        'exit %s: %s' % (proc.returncode, proc.stderr.read()))


def r4_debugger_test(tmp):
    """gdb reading tags nothing wrote, with tag-storage-init=random: R4"""
    port = free_port()
    proc, serial, sock = start_qemu(tmp, port, ',tag-storage-check=log,'
                                    'tag-storage-init=random,'
                                    'tag-storage-init-seed=5', FLAG_R4)
    r = Remote(sock)
    unwritten = BUF + 0x100000
    try:
        r.cmd('qSupported:multiprocess+;memory-tagging+')
        r.cmd('qRcmd,' + 'mte-tag-fault-stop on'.encode().hex())
        stop, _ = r.cmd('c', timeout=60)
        tap(stop is not None and stop.startswith('T05'),
            'init=random: continue stops on the tag check fault', str(stop))
        reply, _ = r.cmd('qMemTags:%x,10:1' % BUF)
        tap(reply == 'm03', 'init=random: tags the guest wrote', str(reply))
        reply, _ = r.cmd('qMemTags:%x,10:1' % unwritten)
        garbage, _ = r.cmd('m%x,1' % carveout_byte(unwritten))
        tap(reply is not None and garbage is not None and
            reply == 'm0%s' % garbage[1],
            'init=random: gdb reads the garbage tag', '%r %r'
            % (reply, garbage))
    finally:
        proc.kill()
        proc.wait()
    err = proc.stderr.read()
    r4 = re.findall(r'mte-tag-storage: R4 .*', err)
    tap(len(r4) == 1 and 'pa 0x%x ' % unwritten in r4[0] and
        r4[0].endswith(' debugger'),
        'init=random: exactly one R4, the debugger reading the unwritten '
        'tag', err)


GDB_SCRIPT = '''
set pagination off
set confirm off
target remote 127.0.0.1:{port}
monitor mte-tag-fault-stop on
continue
printf "stopped at tag_fault_insn: %d\\n", $pc == (long)&tag_fault_insn
monitor info mte-tag-fault
set $buf = (char *)gdb_buf
set $bad = (char *)(gdb_buf | (5ull << 56))
memory-tag print-allocation-tag $buf
memory-tag print-logical-tag $bad
memory-tag check $bad
x/1xb {tagbyte:#x}
memory-tag set-allocation-tag $buf 1 05
memory-tag print-allocation-tag $buf
memory-tag check $bad
x/1xb {tagbyte:#x}
continue
printf "stopped at async_fault_insn: %d\\n", $pc == (long)&async_fault_insn
monitor info mte-tag-fault
monitor mte-tag-fault-stop off
detach
'''


def gdb_session(tmp):
    gdb = os.environ.get('MTS_GDB')
    if not gdb:
        tap(False, 'gdb session: no gdb >= 16 (set MTS_GDB)')
        return
    port = free_port()
    proc, serial, sock = start_qemu(tmp, port)
    sock.close()
    script = os.path.join(tmp, 'session.gdb')
    with open(script, 'w') as f:
        f.write(GDB_SCRIPT.format(port=port, tagbyte=carveout_byte(BUF)))
    args = [gdb, '-batch', '-nx']
    if os.environ.get('MTS_GDB_DATA_DIR'):
        args.append('--data-directory=' + os.environ['MTS_GDB_DATA_DIR'])
    args += ['-x', script, os.environ['MTS_GUEST_ELF']]
    try:
        out = subprocess.run(args, capture_output=True, text=True,
                             timeout=120)
        text = out.stdout + out.stderr
        deadline = time.time() + 30
        console = ''
        while time.time() < deadline and 'END' not in console:
            time.sleep(0.1)
            console = open(serial).read()
    finally:
        proc.kill()
        proc.wait()
    print('# gdb transcript:')
    for line in text.splitlines():
        print('#   ' + line)
    checks = [
        ('stops at the faulting instruction', r'stopped at tag_fault_insn: 1'),
        ('monitor shows the logical tag', r'logical tag\s+0x5'),
        ('monitor shows the allocation tag', r'allocation tag\s+0x3'),
        ('monitor shows the carveout byte',
         r'tag byte\s+guest PA 0x%x, low nibble' % carveout_byte(BUF)),
        ('print-allocation-tag reads the carveout', r'\$1 = 0x3\n'),
        ('print-logical-tag', r'\$2 = 0x5\n'),
        ('check reports the mismatch',
         r'Logical tag \(0x5\) does not match the allocation tag \(0x3\)'),
        ('x/ shows the tag as carveout data', r':\s+0x03\n'),
        ('set-allocation-tag', r'Allocation tag\(s\) updated successfully'),
        ('the new tag reads back', r'(?s)updated successfully.*\$3 = 0x5'),
        ('check passes after the change', r'Memory tags for address .* match'),
        ('x/ shows the new tag in the carveout', r':\s+0x05\n'),
    ]
    for name, pattern in checks:
        tap(re.search(pattern, text) is not None, 'gdb: ' + name)
    tap('GDB no fault, loaded 0x0000000000001234' in console,
        'guest continues with the tag set from gdb', console)
    tap(re.search(r'stopped at async_fault_insn: 1', text) is not None,
        'gdb: stops where an asynchronous fault is recorded')
    tap(re.search(r'tag check fault at 0x0700000050060010', text)
        is not None, 'monitor shows the asynchronous fault')
    tap('GDB async tfsr 0x0000000000000001' in console,
        'the asynchronous fault reaches TFSR_EL1 after the stop', console)
    tap(re.search(r'GDB async adr 0x[0-9a-f]+ right', console) is not None,
        'the rest of the TB runs with the right PC after the stop', console)


def main():
    if 'MTS_GUEST_ELF' not in os.environ:
        print('1..0 # SKIP no guest program: install an aarch64 cross '
              'compiler (gcc-aarch64-linux-gnu) and reconfigure')
        return 0
    tmp = tempfile.mkdtemp(prefix='mts-gdb-')
    try:
        raw_packet_tests(tmp)
        r4_debugger_test(tmp)
        gdb_session(tmp)
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    print('1..%d' % len(results))
    return 0 if all(results) else 1


if __name__ == '__main__':
    sys.exit(main())
