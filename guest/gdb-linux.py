#!/usr/bin/python3
"""gdb (>= 16, $MTS_GDB) against the Linux guest with tag-storage=on: stop
on the MTE suite's first tag check fault (in user space), read the fault
through the monitor and the tags through gdb's memory-tag commands, then
detach; the guest must still finish with PASS.  Prints TAP lines."""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

GDB_SCRIPT = r'''
set pagination off
set confirm off
target remote 127.0.0.1:%d
monitor mte-tag-fault-stop on
continue
printf "stopped in user space: %%d\n", $pc < 0x1000000000000
python
import re
out = gdb.execute('monitor info mte-tag-fault', to_string=True)
print(out)
addr = int(re.search(r'fault at (0x[0-9a-f]+)', out).group(1), 16)
alloc = int(re.search(r'allocation tag\s+(0x[0-9a-f]+)', out).group(1), 16)
logical = int(re.search(r'logical tag\s+(0x[0-9a-f]+)', out).group(1), 16)
tpa = int(re.search(r'guest PA (0x[0-9a-f]+)', out).group(1), 16)
got = gdb.execute('memory-tag print-allocation-tag 0x%%x' %% addr,
                  to_string=True)
print('allocation tag from gdb: ' + got.strip())
print('ALLOC-MATCHES %%d' %% (int(got.split('=')[1], 16) == alloc))
print('TAGS-DIFFER %%d' %% (logical != alloc))
print(gdb.execute('memory-tag check 0x%%x' %% addr, to_string=True))
byte = gdb.execute('monitor xp /1xb 0x%%x' %% tpa, to_string=True)
nib = (int(byte.split(':')[1], 16) >> (4 * ((addr >> 4) & 1))) & 0xf
print('CARVEOUT-NIBBLE-MATCHES %%d' %% (nib == alloc))
end
monitor mte-tag-fault-stop off
detach
'''


def main():
    qemu, kernel, initrd, log = sys.argv[1:5]
    gdb = os.environ.get('MTS_GDB')
    if not gdb:
        print('not ok gdb-linux: no gdb >= 16 (set MTS_GDB)')
        return 1
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    q = subprocess.Popen([qemu, '-M', 'virt,mte=on,tag-storage=on',
                          '-cpu', 'max,pauth-impdef=on', '-m', '2G',
                          '-nic', 'none', '-display', 'none', '-S',
                          '-gdb', 'tcp:127.0.0.1:%d' % port, '-no-reboot',
                          '-serial', 'file:' + log, '-kernel', kernel,
                          '-initrd', initrd, '-append',
                          'console=ttyAMA0 panic=-1 quiet'])
    tmp = tempfile.NamedTemporaryFile('w', suffix='.gdb', delete=False)
    tmp.write(GDB_SCRIPT % port)
    tmp.close()
    args = [gdb, '-batch', '-nx']
    if os.environ.get('MTS_GDB_DATA_DIR'):
        args.append('--data-directory=' + os.environ['MTS_GDB_DATA_DIR'])
    time.sleep(0.5)
    try:
        out = subprocess.run(args + ['-x', tmp.name], capture_output=True,
                             text=True, timeout=240)
        text = out.stdout + out.stderr
        q.wait(timeout=240)
    finally:
        if q.poll() is None:
            q.kill()
        os.unlink(tmp.name)
    console = open(log, errors='replace').read()
    for line in text.splitlines():
        print('# ' + line)
    ok = True
    for name, pattern in (
            ('gdb-linux/stop-in-user-space', 'stopped in user space: 1'),
            ('gdb-linux/monitor-info', r'logical tag\s+0x'),
            ('gdb-linux/print-allocation-tag', 'ALLOC-MATCHES 1'),
            ('gdb-linux/logical-differs', 'TAGS-DIFFER 1'),
            ('gdb-linux/check-mismatch', r'does not match the allocation'),
            ('gdb-linux/carveout-byte', 'CARVEOUT-NIBBLE-MATCHES 1')):
        good = re.search(pattern, text) is not None
        ok &= good
        print('%s %s' % ('ok' if good else 'not ok', name))
    good = re.search(r'^PASS$', console, re.M) is not None
    ok &= good
    print('%s gdb-linux/guest-passes-after-detach' % ('ok' if good else
                                                      'not ok'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
