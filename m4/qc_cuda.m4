dnl QC_CHECK_CUDA - --with-cuda[=DIR] (default: guess /usr/local/cuda).
dnl A missing toolkit is a warning when guessing and an error when asked for.
dnl Sets CUDA_HOME, NVCC, CUDA_CFLAGS, CUDA_LIBS, NVCC_FLAGS, HAVE_CUDA.
AC_DEFUN([QC_CHECK_CUDA], [
  AC_ARG_WITH([cuda],
    [AS_HELP_STRING([--with-cuda@<:@=DIR@:>@], [build the CUDA backend (default: guess /usr/local/cuda)])],
    [], [with_cuda=guess])
  AC_ARG_WITH([nvcc-gencode],
    [AS_HELP_STRING([--with-nvcc-gencode=FLAGS], [nvcc architecture flags (default: sm_80, sm_90 and PTX)])],
    [NVCC_GENCODE="$withval"],
    [NVCC_GENCODE="-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90"])
  qc_have_cuda=no
  AS_CASE([$with_cuda],
    [no], [],
    [yes|guess], [CUDA_HOME=/usr/local/cuda],
    [CUDA_HOME=$with_cuda])
  AS_IF([test "x$with_cuda" != xno], [
    qc_save_CPPFLAGS=$CPPFLAGS
    qc_save_LDFLAGS=$LDFLAGS
    qc_save_LIBS=$LIBS
    CPPFLAGS="$CPPFLAGS -I$CUDA_HOME/include"
    LDFLAGS="$LDFLAGS -L$CUDA_HOME/lib64"
    AC_PATH_PROG([NVCC], [nvcc], [], [$CUDA_HOME/bin:$PATH])
    qc_cuda_ok=yes
    AS_IF([test -z "$NVCC"], [qc_cuda_ok=no])
    AC_CHECK_HEADERS([cuda_runtime.h cublas_v2.h], [], [qc_cuda_ok=no])
    AC_CHECK_LIB([cudart], [cudaGetDeviceCount], [:], [qc_cuda_ok=no])
    AC_CHECK_LIB([cublas], [cublasCreate_v2], [:], [qc_cuda_ok=no])
    CPPFLAGS=$qc_save_CPPFLAGS
    LDFLAGS=$qc_save_LDFLAGS
    LIBS=$qc_save_LIBS
    AS_IF([test "x$qc_cuda_ok" = xyes], [
      qc_have_cuda=yes
      CUDA_CFLAGS="-I$CUDA_HOME/include"
      CUDA_LIBS="-L$CUDA_HOME/lib64 -Wl,-rpath,$CUDA_HOME/lib64 -lcublas -lcudart -lstdc++"
      NVCC_FLAGS="-O3 -std=c++17 $NVCC_GENCODE"
      AC_DEFINE([HAVE_CUDA], [1], [Define to build the CUDA backend])
    ], [
      AS_IF([test "x$with_cuda" = xguess],
        [AC_MSG_WARN([CUDA toolkit not found in $CUDA_HOME: building the CPU backend only])],
        [AC_MSG_ERROR([CUDA support was requested but the toolkit (nvcc, cudart, cuBLAS) was not found in $CUDA_HOME])])
    ])
  ])
  AC_SUBST([CUDA_HOME])
  AC_SUBST([CUDA_CFLAGS])
  AC_SUBST([CUDA_LIBS])
  AC_SUBST([NVCC_FLAGS])
  AM_CONDITIONAL([HAVE_CUDA], [test "x$qc_have_cuda" = xyes])
])
