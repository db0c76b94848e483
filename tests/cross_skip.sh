#!/bin/sh
# tests/cross_skip.sh SUITE - stands in a cross build for the tests of SUITE (tests/meson.build),
# so that a plain `meson test` there is green and says what it did not run: exit 77 is SKIP.
echo "the $1 suite is not run in a cross build: its drivers start the board's programs from this"
echo "machine (Python, shell, benchmark children) and time real links, which under qemu-user"
echo "neither runs nor means what it does on a board. Run it in a native build on the board;"
echo "tools/cross/cross-test ARCH runs the unit suite and a master+slave pair under qemu."
exit 77
