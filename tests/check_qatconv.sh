#!/bin/sh
# check_qatconv.sh - runs tests/check_qatconv (the Check unit suites, built by make
# check with the other check programs) as a script test, so that make -j starts it
# where TESTS puts it (see tests/cuda_parity_emu.sh for why a program in TESTS can
# be deferred to the end of the run).
exec "${top_builddir:-.}/tests/check_qatconv" "$@"
