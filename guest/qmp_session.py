"""A QMP session with a QEMU that is starting up, through QEMU's own client.

The guest runners start QEMU with '-qmp unix:PATH,server=on,wait=off'
and poll it until the guest powers off.  This connects to that socket
with the qemu.qmp package of the prepared QEMU tree (build/src/python,
or $BUILD_ROOT/src/python), the client QEMU's own tests use, retrying
while QEMU creates the socket.

Replies are returned whole ({'return': ...} or {'error': ...}), as the
runners judge errors themselves; events are kept until asked for.
"""
import asyncio
import logging
import os
import sys
import time

_TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_PYTHON = os.path.join(os.environ.get('BUILD_ROOT',
                                          os.path.join(_TOP, 'build')),
                           'src', 'python')
sys.path.insert(0, QEMU_PYTHON)
try:
    # pylint: disable=wrong-import-position
    from qemu.qmp import QMPError
    from qemu.qmp.legacy import QEMUMonitorProtocol
except ImportError as e:
    sys.exit('error: no qemu.qmp in %s (run make prepare): %s'
             % (QEMU_PYTHON, e))

# The client logs a lost connection; a runner reports it itself
logging.getLogger('qemu.qmp').addHandler(logging.NullHandler())

# What a session may raise when QEMU goes away or misbehaves
ERRORS = (QMPError, OSError, ValueError, EOFError)


class Session:
    """QMP session with the QEMU listening on the UNIX socket @path"""

    def __init__(self, path, deadline, proc=None):
        """Connect by time.time() @deadline, while @proc (if given) runs"""
        while True:
            self.mon = QEMUMonitorProtocol(path)
            try:
                self.mon.connect()
                return
            except ERRORS:
                if time.time() > deadline or \
                        (proc is not None and proc.poll() is not None):
                    raise
                time.sleep(0.05)

    def cmd(self, name, **args):
        """Run command @name; its reply, whole"""
        return self.mon.cmd_raw(name, args)

    def event(self, timeout):
        """The next event, or None after @timeout seconds (0: no wait)"""
        try:
            return self.mon.pull_event(wait=float(timeout) if timeout
                                       else False)
        except asyncio.TimeoutError:
            return None

    def events(self):
        """All the events received so far and not taken yet"""
        return self.mon.get_events()

    def quit(self):
        """Make QEMU quit, which may close the connection before replying"""
        try:
            self.cmd('quit')
        except ERRORS:
            pass
        try:
            self.mon.close()
        except ERRORS:
            pass
