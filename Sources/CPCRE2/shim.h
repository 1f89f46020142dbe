#ifndef ALGATE_CPCRE2_SHIM_H
#define ALGATE_CPCRE2_SHIM_H
// pcre2.h needs the code unit width before it is included; algate matches bytes, so 8.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif
