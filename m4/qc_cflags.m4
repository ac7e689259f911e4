dnl QC_CHECK_CFLAG(FLAG, ACTION-IF-OK, [ACTION-IF-NOT], [EXTRA-FLAGS])
dnl Compiles an empty program with FLAG (and EXTRA-FLAGS) added to CFLAGS.
AC_DEFUN([QC_CHECK_CFLAG], [
  AC_MSG_CHECKING([whether $CC accepts $1])
  qc_cflag_save=$CFLAGS
  CFLAGS="$CFLAGS $4 $1"
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
    [AC_MSG_RESULT([yes]); CFLAGS=$qc_cflag_save; $2],
    [AC_MSG_RESULT([no]); CFLAGS=$qc_cflag_save; $3])
])
