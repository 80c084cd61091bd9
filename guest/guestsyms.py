"""Resolve guest PCs to functions: the guest's static programs and kernels.

Functions: the programs in the initramfs (/init, /virtio-dma,
/smp-stress, /reuse-workload) are static and not position independent,
so their symbol addresses are the guest's virtual addresses: a PC that
the reuse checker reports for a user-space store is resolved with the
binary's symbol table.

KernelSymbols: a kernel's text symbols from its System.map (plain or
.xz) or from a vmlinux (through aarch64-linux-gnu-nm), for a kernel
booted with nokaslr (the map's addresses are then the running ones).
PCs below the kernel's lowest symbol are user space: they are resolved
with the Functions of a program, if one is given.  Names come as
"function+0xoff", or None where no symbol covers the PC."""
import bisect
import lzma
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

    def find(self, pc):
        """(name, offset) of the function containing @pc, or None"""
        i = bisect.bisect_right(self.starts, pc) - 1
        if i >= 0 and pc < self.syms[i][0] + self.syms[i][1]:
            return self.syms[i][2], pc - self.syms[i][0]
        return None

    def at(self, pc):
        """The name of the function containing @pc, or '?'"""
        f = self.find(pc)
        return f[0] if f else '?'


class KernelSymbols:
    """A kernel's text symbols, and a user program's for lower PCs."""

    # nm / System.map types of code: text, weak, and local text
    TEXT = set('tTwW')

    def __init__(self, system_map=None, vmlinux=None, program=None):
        """From @system_map (System.map or System.map.xz) or @vmlinux;
        @program (a static aarch64 binary) for user-space PCs.  Raises
        OSError, ValueError or subprocess.CalledProcessError when a file
        cannot be read as what it should be."""
        self.syms = []
        if system_map:
            opener = lzma.open if system_map.endswith('.xz') else open
            with opener(system_map, 'rt', errors='replace') as f:
                self._parse(f)
        elif vmlinux:
            out = subprocess.run(['aarch64-linux-gnu-nm', '--defined-only',
                                  vmlinux], capture_output=True, text=True,
                                 check=True).stdout
            self._parse(out.splitlines())
        self.syms.sort()
        if (system_map or vmlinux) and not self.syms:
            raise ValueError('%s has no text symbols'
                             % (system_map or vmlinux))
        self.starts = [s[0] for s in self.syms]
        # the kernel's text ends at _etext where the map has it
        ends = [a for a, n in self.syms if n == '_etext']
        self.end = ends[0] if ends else (self.starts[-1] + 0x100000
                                         if self.starts else 0)
        self.user = Functions(program) if program else None

    def _parse(self, lines):
        for line in lines:
            f = line.split()
            # "ADDR TYPE NAME [module]"; skip absolute and data symbols
            if len(f) >= 3 and f[1] in self.TEXT:
                try:
                    self.syms.append((int(f[0], 16), f[2]))
                except ValueError:
                    raise ValueError('not a symbol table line: %r'
                                     % line[:60]) from None

    def is_kernel(self, pc):
        """Is @pc at or above the kernel's lowest text symbol?"""
        return bool(self.starts) and pc >= self.starts[0]

    def resolve(self, pc):
        """"function+0xoff" for @pc, or None when nothing covers it"""
        if pc is None:
            return None
        if self.starts and self.starts[0] <= pc < self.end:
            i = bisect.bisect_right(self.starts, pc) - 1
            return '%s+0x%x' % (self.syms[i][1], pc - self.syms[i][0])
        if self.user and not self.is_kernel(pc):
            f = self.user.find(pc)
            if f:
                return '%s+0x%x' % f
        return None

    def name(self, pc):
        """The function alone (no offset), or '?'"""
        r = self.resolve(pc)
        return r.split('+')[0] if r else '?'
