dnl QC_CHECK_BLAS - find OpenBLAS (pkg-config openblas, else -lopenblas / -lblas)
dnl with a CBLAS header.  Sets BLAS_CFLAGS, BLAS_LIBS, HAVE_OPENBLAS_SET_NUM_THREADS.
AC_DEFUN([QC_CHECK_BLAS], [
  PKG_CHECK_MODULES([BLAS], [openblas], [], [
    BLAS_CFLAGS=""
    qc_save_LIBS=$LIBS
    AC_SEARCH_LIBS([cblas_sgemm], [openblas blas], [BLAS_LIBS="$ac_cv_search_cblas_sgemm"],
      [AC_MSG_ERROR([OpenBLAS not found (Debian: libopenblas-dev)])])
    LIBS=$qc_save_LIBS
  ])
  qc_save_CFLAGS=$CFLAGS
  qc_save_LIBS=$LIBS
  CFLAGS="$CFLAGS $BLAS_CFLAGS"
  LIBS="$LIBS $BLAS_LIBS"
  AC_CHECK_HEADER([cblas.h], [], [AC_MSG_ERROR([cblas.h not found (Debian: libopenblas-dev)])])
  AC_CHECK_FUNCS([openblas_set_num_threads])
  CFLAGS=$qc_save_CFLAGS
  LIBS=$qc_save_LIBS
  AC_SUBST([BLAS_CFLAGS])
  AC_SUBST([BLAS_LIBS])
])
