#
# Test that the gdbstub answers malformed or unusual qMemTags, QMemTags
# and qIsAddressTagged packets exactly once, without crashing, and that
# QMemTags sets the tags of exactly the granules its range covers.
#
# Runs on tests/tcg/aarch64/system/mte.S, stopped at main_end with x0
# pointing at an MTE-enabled page.  Launched via
# tests/guest-debug/run-test.py.
#
# Copyright (c) 2026 The mte-tag-storage authors
#
# SPDX-License-Identifier: GPL-2.0-or-later
#

try:
    import gdb
except ModuleNotFoundError:
    from sys import exit
    exit("This script must be launched via tests/guest-debug/run-test.py!")
import re
from test_gdbstub import main, report


def packet(text):
    """Send one remote packet and return the reply gdb received"""
    out = gdb.execute(f"maint packet {text}", False, True)
    m = re.search(r'received: "(.*)"', out)
    return m[1] if m else None


def tag(addr):
    """Allocation tag of the granule at addr, read with qMemTags"""
    reply = packet(f"qMemTags:{addr:x},1:1")
    return int(reply[1:], 16) if reply and reply.startswith("m") else None


def expect(text, reply, what):
    got = packet(text)
    report(got == reply, f"{what}: {text} -> {got!r}, expected {reply!r}")


def run_test():
    gdb.execute("break main_end", False, True)
    gdb.execute("continue", False, True)

    # Untagged address of the MTE-enabled page (x0 in mte.S)
    page = int(gdb.parse_and_eval("$x0")) & ((1 << 56) - 1)

    # Each packet gets exactly one reply: a second one would be read as
    # the reply to the next packet, so each is followed by a known query.
    for text, reply in [("qMemTags:", "E01"),
                        (f"qMemTags:{page:x}", "E01"),
                        (f"qMemTags:{page:x},0:1", "E02"),
                        (f"qMemTags:{page:x},1:2", "E03"),
                        ("qIsAddressTagged:", "E01"),
                        ("QMemTags:", "E01"),
                        (f"QMemTags:{page:x},10:1", "E01"),
                        (f"QMemTags:{page:x},10:1:", "E01"),
                        (f"QMemTags:{page:x},10:1:0", "E01"),
                        (f"QMemTags:{page:x},10:1:zz", "E01"),
                        (f"QMemTags:{page:x},10:1:1f", "E01"),
                        (f"QMemTags:{page:x},10:2:01", "E02"),
                        (f"QMemTags:{page:x},0:1:01", "E03")]:
        expect(text, reply, "one reply")
        expect(f"qIsAddressTagged:{page:x}", "01", "next packet in step")

    # A rejected QMemTags changes nothing
    expect(f"QMemTags:{page:x},20:1:0102", "OK", "set two tags")
    packet(f"QMemTags:{page:x},10:1:1f")
    report(tag(page) == 1, "rejected tag 0x1f leaves the tag alone")

    # A range that starts at an odd granule sets that granule and the
    # next, not the one before
    expect(f"QMemTags:{page:x},30:1:03040506", "OK", "set three tags")
    expect(f"QMemTags:{page + 0x10:x},20:1:0708", "OK", "odd start")
    got = [tag(page + i * 0x10) for i in range(3)]
    report(got == [3, 7, 8], f"odd start sets granules 1, 2: {got}")

    # A range that starts inside a granule covers that whole granule
    expect(f"QMemTags:{page + 8:x},10:1:09", "OK", "unaligned start")
    got = [tag(page + i * 0x10) for i in range(3)]
    report(got == [9, 9, 8], f"[+8, +0x18) sets granules 0, 1: {got}")


main(run_test, expected_arch="aarch64")
