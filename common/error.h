/*
 * error.h — modelwatch's error codes for internal code.
 *
 * The codes themselves (MW_ERRNO_MAP) live in the public header so that libmodelwatch's users
 * and the binaries share one table; this header adds nothing but the include, so internal code
 * does not reach into agent/client/ by name.
 */
#ifndef MW_COMMON_ERROR_H
#define MW_COMMON_ERROR_H

#include "modelwatch.h"

#endif
