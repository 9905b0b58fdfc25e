/*
 * error.h — modelwatch's error codes for internal code: the public ones of libmodelwatch
 * (MW_ERRNO_MAP, include/modelwatch.h) and those only the agent, the aggregator and the tools
 * return (MW_SERVER_ERRNO_MAP), in one numbering. mw_strerror and mw_err_name know both.
 */
#ifndef MW_COMMON_ERROR_H
#define MW_COMMON_ERROR_H

#include "modelwatch.h"

#define MW_SERVER_ERRNO_MAP(XX)                                                                    \
    XX(EIO, -5, "input/output error")                                                              \
    XX(EPARSE, -7, "malformed input")                                                              \
    XX(ECONFIG, -8, "invalid configuration")                                                       \
    XX(ENOTFOUND, -9, "not found")                                                                 \
    XX(EKAFKA, -10, "Kafka error")                                                                 \
    XX(EREDIS, -11, "Redis error")                                                                 \
    XX(ECOMPRESS, -12, "compression error")                                                        \
    XX(ECLOSED, -14, "closed")                                                                     \
    XX(ECORRUPT, -15, "data corrupt")                                                              \
    XX(ESYS, -16, "system call failed")

enum mw_server_errno {
#define MW__SERVER_ERRNO_ENUM(name, value, msg) MW_##name = (value),
    MW_SERVER_ERRNO_MAP(MW__SERVER_ERRNO_ENUM)
#undef MW__SERVER_ERRNO_ENUM
};

#endif
