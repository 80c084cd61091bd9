"""Resolve guest user-space PCs to functions of the guest's static programs.

The programs in the initramfs (/init, /virtio-dma, /smp-stress) are
static and not position independent, so their symbol addresses are the
guest's virtual addresses: a PC that the reuse checker reports for a
user-space store is resolved with the binary's symbol table."""
import bisect
import subprocess


class Functions:
    """The functions (text symbols with a size) of one aarch64 binary."""

    def __init__(self, binary):
        out = subprocess.run(['aarch64-linux-gnu-nm', '-S', '--defined-only',
                              binary], capture_output=True, text=True,
                             check=True).stdout
        self.syms = sorted((int(f[0], 16), int(f[1], 16), f[3])
                           for f in (line.split() for line in
                                     out.splitlines())
                           if len(f) == 4 and f[2] in 'tT')
        self.starts = [s[0] for s in self.syms]

    def at(self, pc):
        """The name of the function containing @pc, or '?'"""
        i = bisect.bisect_right(self.starts, pc) - 1
        if i >= 0 and pc < self.syms[i][0] + self.syms[i][1]:
            return self.syms[i][2]
        return '?'
