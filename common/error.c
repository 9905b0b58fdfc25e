/* error.c — text and names for the MW_E* codes, generated from MW_ERRNO_MAP and
 * MW_SERVER_ERRNO_MAP. */
#include "error.h"

const char *mw_strerror(int err)
{
    if (err == 0)
        return "success";
#define XX(name, value, msg)                                                                       \
    if (err == (value))                                                                            \
        return msg;
    MW_ERRNO_MAP(XX)
    MW_SERVER_ERRNO_MAP(XX)
#undef XX
    return "unknown error";
}

const char *mw_err_name(int err)
{
    if (err == 0)
        return "MW_OK";
#define XX(name, value, msg)                                                                       \
    if (err == (value))                                                                            \
        return "MW_" #name;
    MW_ERRNO_MAP(XX)
    MW_SERVER_ERRNO_MAP(XX)
#undef XX
    return "MW_UNKNOWN";
}
