#!/bin/sh
# cuda_parity_emu.sh - runs tests/cuda_parity_emu (CPU against emulated-CUDA parity of
# the kernels and models, built by make check with the other check programs) as a
# script test.  Why a script: a program listed in TESTS makes its log depend on the
# program and so on config.h, whose no-op stamp recipe runs in every make; make -j
# passes over a test whose prerequisites are still being made and comes back to it
# only after starting every later one, so this 5-minute test ran alone at the end.
# A script's log depends on the script only and starts where TESTS puts it.
exec "${top_builddir:-.}/tests/cuda_parity_emu" "$@"
