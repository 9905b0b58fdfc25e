/* kafka_conf.c — librdkafka configuration from the shared `kafka:` config section. */
#include "kafka_conf.h"

#include "alloc.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

char *mw_kafka_read_small_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int too_big = !feof(f);
    fclose(f);
    if (too_big) {
        errno = EFBIG;
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    return mw_strndup(buf, n);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool mw_kafka_property_secret(const char *name)
{
    if (ends_with(name, "_file"))
        return false;
    return strstr(name, "password") || strstr(name, "secret") || strstr(name, "token") ||
           strcmp(name, "ssl.key.pem") == 0 || strcmp(name, "sasl.oauthbearer.config") == 0;
}

enum mw_cfg_path mw_kafka_property_path(const char *name, const char *value)
{
    static const char *const files[] = {"ssl.certificate.location", "ssl.key.location",
                                        "ssl.keystore.location", "ssl.crl.location",
                                        "sasl.kerberos.keytab"};
    if (ends_with(name, "_file"))
        return MW_CFG_PATH_FILE;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (strcmp(name, files[i]) == 0)
            return MW_CFG_PATH_FILE;
    /* a CA file or directory; "probe" asks librdkafka to look in the usual places */
    if (strcmp(name, "ssl.ca.location") == 0 && strcmp(value, "probe") != 0)
        return MW_CFG_PATH_FILE_OR_DIR;
    return MW_CFG_PATH_NONE;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char quoted[512];
    (void)rk;
    enum mw_log_level lvl = level <= 3   ? MW_LOG_LEVEL_ERROR
                            : level <= 5 ? MW_LOG_LEVEL_WARN
                            : level <= 6 ? MW_LOG_LEVEL_INFO
                                         : MW_LOG_LEVEL_DEBUG;
    MW_LOG(lvl, "rdkafka", "librdkafka log", "fac=%s detail=%s", fac,
           mw_log_quote(buf, quoted, sizeof quoted));
}

static int set_prop(rd_kafka_conf_t *conf, const char *name, const char *value, char *errbuf,
                    size_t errbuf_size)
{
    char rderr[256];
    if (rd_kafka_conf_set(conf, name, value, rderr, sizeof rderr) != RD_KAFKA_CONF_OK) {
        snprintf(errbuf, errbuf_size, "kafka.properties.%s: %s", name, rderr);
        return MW_ECONFIG;
    }
    return 0;
}

/* A property named `x_file` sets `x` to the contents of the file it names. */
static int set_passthrough(rd_kafka_conf_t *conf, const char *name, const char *value, char *errbuf,
                           size_t errbuf_size)
{
    size_t len = strlen(name);
    if (len <= 5 || strcmp(name + len - 5, "_file") != 0)
        return set_prop(conf, name, value, errbuf, errbuf_size);
    char *secret = mw_kafka_read_small_file(value);
    if (!secret) {
        snprintf(errbuf, errbuf_size, "kafka.properties.%s: cannot read %s: %s", name, value,
                 strerror(errno));
        return MW_EIO;
    }
    char real_name[256];
    snprintf(real_name, sizeof real_name, "%.*s", (int)(len - 5), name);
    int rc = set_prop(conf, real_name, secret, errbuf, errbuf_size);
    memset(secret, 0, strlen(secret));
    mw_free(secret);
    return rc;
}

static int set_bootstrap(rd_kafka_conf_t *conf, const struct mw_kafka_settings *s, char *errbuf,
                         size_t errbuf_size)
{
    if (s->bootstrap_file && *s->bootstrap_file) {
        char *servers = mw_kafka_read_small_file(s->bootstrap_file);
        if (!servers) {
            snprintf(errbuf, errbuf_size, "kafka.bootstrap_file: cannot read %s: %s",
                     s->bootstrap_file, strerror(errno));
            return MW_EIO;
        }
        int rc = set_prop(conf, "bootstrap.servers", servers, errbuf, errbuf_size);
        mw_free(servers);
        return rc;
    }
    return set_prop(conf, "bootstrap.servers", s->bootstrap_servers, errbuf, errbuf_size);
}

int mw_kafka_conf_build(const struct mw_kafka_settings *s, const char *const *fixed,
                        rd_kafka_conf_t **out, char *errbuf, size_t errbuf_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = set_bootstrap(conf, s, errbuf, errbuf_size);
    for (size_t i = 0; rc == 0 && i < s->properties.n; i++)
        rc = set_passthrough(conf, s->properties.keys[i], s->properties.values[i], errbuf,
                             errbuf_size);
    for (size_t i = 0; rc == 0 && fixed && fixed[i]; i += 2)
        rc = set_prop(conf, fixed[i], fixed[i + 1], errbuf, errbuf_size);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    *out = conf;
    return 0;
}
