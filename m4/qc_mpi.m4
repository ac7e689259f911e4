dnl qc_mpi.m4 - QC_CHECK_MPI: --with-mpi (data-parallel training, src/dist/).
dnl Sets MPI_CFLAGS, MPI_LIBS, HAVE_MPI (define and conditional); under CUDA
dnl also NCCL_LIBS and HAVE_NCCL.  Auto: on where `mpicc --showme` or the
dnl ompi-c pkg-config file answers; --without-mpi: off; --with-mpi: required.
AC_DEFUN([QC_CHECK_MPI], [
  AC_ARG_WITH([mpi],
    [AS_HELP_STRING([--with-mpi], [data-parallel training over MPI (default: auto)])],
    [], [with_mpi=auto])
  qc_have_mpi=no
  MPI_CFLAGS=
  MPI_LIBS=
  AS_IF([test "x$with_mpi" != xno], [
    AC_PATH_PROG([MPICC], [mpicc])
    AS_IF([test -n "$MPICC" && $MPICC --showme:compile >/dev/null 2>&1],
      [MPI_CFLAGS=`$MPICC --showme:compile`
       MPI_LIBS=`$MPICC --showme:link`],
      [PKG_CHECK_MODULES([MPI], [ompi-c], [], [MPI_CFLAGS=; MPI_LIBS=])])
    AS_IF([test -n "$MPI_LIBS"], [
      qc_mpi_save_CFLAGS=$CFLAGS
      qc_mpi_save_LIBS=$LIBS
      CFLAGS="$CFLAGS $MPI_CFLAGS"
      LIBS="$MPI_LIBS $LIBS"
      AC_MSG_CHECKING([whether MPI programs link])
      AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <mpi.h>]],
                                      [[MPI_Request q; float v = 0;
                                        return MPI_Iallreduce(MPI_IN_PLACE, &v, 1, MPI_FLOAT,
                                                              MPI_SUM, MPI_COMM_WORLD, &q);]])],
        [qc_have_mpi=yes], [qc_have_mpi=no])
      AC_MSG_RESULT([$qc_have_mpi])
      CFLAGS=$qc_mpi_save_CFLAGS
      LIBS=$qc_mpi_save_LIBS])
    AS_IF([test "x$qc_have_mpi" = xno && test "x$with_mpi" = xyes],
      [AC_MSG_ERROR([--with-mpi: no MPI found (Debian: libopenmpi-dev openmpi-bin)])])
  ])
  AS_IF([test "x$qc_have_mpi" = xno], [MPI_CFLAGS=; MPI_LIBS=])
  AS_IF([test "x$qc_have_mpi" = xyes],
    [AC_DEFINE([HAVE_MPI], [1], [Data-parallel training over MPI (src/dist/)])])
  AC_SUBST([MPI_CFLAGS])
  AC_SUBST([MPI_LIBS])
  AM_CONDITIONAL([HAVE_MPI], [test "x$qc_have_mpi" = xyes])

  dnl NCCL: the CUDA backend's all-reduce, under CUDA and MPI
  qc_have_nccl=no
  NCCL_LIBS=
  AS_IF([test "x$qc_have_mpi" = xyes && test "x$qc_have_cuda" = xyes], [
    qc_nccl_save_CFLAGS=$CFLAGS
    qc_nccl_save_LIBS=$LIBS
    CFLAGS="$CFLAGS $CUDA_CFLAGS"
    LIBS="-L$CUDA_HOME/lib64 -lnccl $CUDA_LIBS $LIBS"
    AC_MSG_CHECKING([for NCCL])
    AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <nccl.h>]],
                                    [[ncclUniqueId id; return (int)ncclGetUniqueId(&id);]])],
      [qc_have_nccl=yes], [qc_have_nccl=no])
    AC_MSG_RESULT([$qc_have_nccl])
    CFLAGS=$qc_nccl_save_CFLAGS
    LIBS=$qc_nccl_save_LIBS])
  AS_IF([test "x$qc_have_nccl" = xyes],
    [NCCL_LIBS="-L$CUDA_HOME/lib64 -Wl,-rpath,$CUDA_HOME/lib64 -lnccl"
     AC_DEFINE([HAVE_NCCL], [1], [NCCL all-reduce of the CUDA backend (src/dist/)])])
  AC_SUBST([NCCL_LIBS])
  AM_CONDITIONAL([HAVE_NCCL], [test "x$qc_have_nccl" = xyes])
])
