/* common.c: error names, clocks, file reading and small string helpers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/common.h"
#include "hub/signals.h"

const char *hub_strerror(int err)
{
    switch (err) {
    case HUB_OK:
        return "OK";
    case HUB_EINVAL:
        return "EINVAL";
    case HUB_ENOMEM:
        return "ENOMEM";
    case HUB_EIO:
        return "EIO";
    case HUB_ECONFIG:
        return "ECONFIG";
    case HUB_EKAFKA:
        return "EKAFKA";
    case HUB_EPG:
        return "EPG";
    case HUB_EDECODE:
        return "EDECODE";
    case HUB_EVALID:
        return "EVALID";
    case HUB_ESCHEMA:
        return "ESCHEMA";
    case HUB_ETIMEOUT:
        return "ETIMEOUT";
    case HUB_ENOTFOUND:
        return "ENOTFOUND";
    case HUB_ESTOPPED:
        return "ESTOPPED";
    default:
        return "EUNKNOWN";
    }
}

int hub_errf(char *errstr, size_t errstr_size, int err, const char *fmt, ...)
{
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

int64_t hub_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hub_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hub_sleep_ms(int64_t ms)
{
    /* Sleep in short slices so a SIGTERM is noticed promptly. */
    int64_t end = hub_monotonic_ms() + ms;
    for (;;) {
        if (hub_stop_requested())
            return HUB_ESTOPPED;
        int64_t left = end - hub_monotonic_ms();
        if (left <= 0)
            return HUB_OK;
        if (left > 100)
            left = 100;
        struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

char *hub_read_file(const char *path, size_t *len, char *errstr, size_t errstr_size)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;

    f = fopen(path, "rb");
    if (!f) {
        hub_errf(errstr, errstr_size, HUB_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - n < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                hub_errf(errstr, errstr_size, HUB_ENOMEM, "%s: out of memory", path);
                goto fail;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                hub_errf(errstr, errstr_size, HUB_EIO, "%s: cannot read: %s", path,
                         strerror(errno));
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;

fail:
    free(buf);
    fclose(f);
    return NULL;
}

size_t hub_strlcpy(char *dst, const char *src, size_t dstsize)
{
    size_t n = strlen(src);
    if (dstsize > 0) {
        size_t c = n < dstsize - 1 ? n : dstsize - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

const char *hub_data_dir(void)
{
    const char *d = getenv("HUB_DATA_DIR");
    return (d && *d) ? d : HUB_DATA_DIR;
}
