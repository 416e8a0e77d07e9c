/* http.c: /metrics, /healthz and /readyz over libmicrohttpd. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hub/common.h"
#include "hub/http.h"
#include "hub/log.h"
#include "hub/metrics.h"

/* A scraper, a health probe and an operator's curl at once is the normal load; more is odd. */
#define CONNECTION_LIMIT   32
#define CONNECTION_TIMEOUT 10 /* seconds */

struct hub_http_s {
    struct MHD_Daemon *daemon;
    hub_metrics_t *metrics;
    int port;
    int64_t heartbeat_ms;
    _Atomic int64_t last_beat; /* hub_monotonic_ms() of the last heartbeat */
    pthread_mutex_t lock;      /* guards what follows */
    int ready;
    char reason[128];
    bool started;        /* after MHD_start_daemon returned: log instead of keeping */
    char start_err[256]; /* what libmicrohttpd said while starting, for errstr */
};

/* libmicrohttpd's complaints: kept for errstr while starting, logged afterwards. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    hub_http_t *h = cls;
    char msg[256];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
        msg[--n] = '\0';
    pthread_mutex_lock(&h->lock);
    bool started = h->started;
    if (!started)
        hub_strlcpy(h->start_err, msg, sizeof(h->start_err));
    pthread_mutex_unlock(&h->lock);
    if (started)
        hub_log_warn("event=http_error reason=\"%s\"", msg);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *ctype,
                             void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    enum MHD_Result ret;

    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned int status,
                                  const char *text)
{
    return reply(conn, status, "text/plain; charset=utf-8", (void *)text, strlen(text),
                 MHD_RESPMEM_MUST_COPY);
}

/* How long the loop has been silent, in ms, or -1 while it is within heartbeat_ms. */
static int64_t stalled_for(hub_http_t *h)
{
    int64_t silent = hub_monotonic_ms() - atomic_load_explicit(&h->last_beat, memory_order_relaxed);
    return silent > h->heartbeat_ms ? silent : -1;
}

static enum MHD_Result serve_metrics(hub_http_t *h, struct MHD_Connection *conn)
{
    char *text = NULL;
    size_t len = 0;

    if (hub_metrics_render(h->metrics, &text, &len) != HUB_OK)
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    /* Ownership of text moves to the response. */
    return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                 MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result serve_health(hub_http_t *h, struct MHD_Connection *conn, int readiness)
{
    char body[192];
    int64_t stalled = stalled_for(h);

    if (stalled >= 0) {
        snprintf(body, sizeof(body), "%sno heartbeat for %lld ms\n", readiness ? "not ready: " : "",
                 (long long)stalled);
        return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
    }
    if (!readiness)
        return reply_text(conn, MHD_HTTP_OK, "ok\n");
    pthread_mutex_lock(&h->lock);
    if (h->ready)
        snprintf(body, sizeof(body), "ready\n");
    else if (h->reason[0])
        snprintf(body, sizeof(body), "not ready: %s\n", h->reason);
    else
        snprintf(body, sizeof(body), "not ready\n");
    int ready = h->ready;
    pthread_mutex_unlock(&h->lock);
    return reply_text(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    hub_http_t *h = cls;

    /* Answering before any request body is read is allowed; MHD discards the body. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics") == 0 && h->metrics)
        return serve_metrics(h, conn);
    if (strcmp(url, "/healthz") == 0)
        return serve_health(h, conn, 0);
    if (strcmp(url, "/readyz") == 0)
        return serve_health(h, conn, 1);
    return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/*
 * Splits "host:port" or "[v6]:port" into host and port. 0, or HUB_EINVAL
 * with the reason in errstr.
 */
static int split_listen(const char *listen, char *host, size_t hsize, char *port, size_t psize,
                        char *errstr, size_t errstr_size)
{
    const char *colon, *h = listen;
    size_t hlen;

    if (*listen == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            goto bad;
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
            goto bad;
        hlen = (size_t)(colon - listen);
    }
    if (hlen == 0 || hlen >= hsize || !colon[1] || strlen(colon + 1) >= psize ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || strtol(colon + 1, NULL, 10) > 65535)
        goto bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    return HUB_OK;
bad:
    return hub_errf(errstr, errstr_size, HUB_EINVAL,
                    "http_listen '%s' is not host:port or [v6-address]:port", listen);
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

hub_http_t *hub_http_start(const hub_http_conf_t *conf, hub_metrics_t *metrics, char *errstr,
                           size_t errstr_size)
{
    hub_http_t *h = NULL;
    struct addrinfo hints = {0}, *ai = NULL;
    char host[256], port[8];
    const union MHD_DaemonInfo *info;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    int rc;

    if (!conf || !conf->listen || !*conf->listen) {
        hub_errf(errstr, errstr_size, HUB_EINVAL, "http_listen is empty");
        goto fail;
    }
    if (split_listen(conf->listen, host, sizeof(host), port, sizeof(port), errstr, errstr_size))
        goto fail;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
        hub_errf(errstr, errstr_size, HUB_EINVAL, "http_listen '%s': %s", conf->listen,
                 gai_strerror(rc));
        goto fail;
    }
    if (!conf->allow_remote && !is_loopback(ai->ai_addr)) {
        hub_errf(errstr, errstr_size, HUB_EINVAL,
                 "http_listen '%s' is not a loopback address; metrics reveal operational data, "
                 "so set http_allow_remote = true to serve them beyond this host",
                 conf->listen);
        goto fail;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;

    if (!(h = calloc(1, sizeof(*h)))) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "cannot create a mutex");
        free(h);
        h = NULL;
        goto fail;
    }
    h->metrics = metrics;
    h->heartbeat_ms = conf->heartbeat_ms > 0 ? conf->heartbeat_ms : 30000;
    atomic_init(&h->last_beat, hub_monotonic_ms());
    hub_strlcpy(h->reason, "starting", sizeof(h->reason));

    /* The server thread inherits a blocked signal mask, so SIGTERM and SIGHUP
       reach the service's own thread as the signal handling there expects. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    h->daemon = MHD_start_daemon(flags, (uint16_t)strtol(port, NULL, 10), NULL, NULL, handle, h,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, h, MHD_OPTION_SOCK_ADDR,
                                 ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)CONNECTION_TIMEOUT, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!h->daemon) {
        hub_errf(errstr, errstr_size, HUB_EIO, "http_listen '%s': %s", conf->listen,
                 h->start_err[0] ? h->start_err : "libmicrohttpd could not start");
        goto fail;
    }
    pthread_mutex_lock(&h->lock);
    h->started = true;
    pthread_mutex_unlock(&h->lock);
    info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    freeaddrinfo(ai);
    hub_log_info("event=http_listen address=%s port=%d", host, h->port);
    return h;

fail:
    if (ai)
        freeaddrinfo(ai);
    hub_http_stop(h);
    return NULL;
}

int hub_http_port(const hub_http_t *h)
{
    return h ? h->port : 0;
}

void hub_http_heartbeat(hub_http_t *h)
{
    if (h)
        atomic_store_explicit(&h->last_beat, hub_monotonic_ms(), memory_order_relaxed);
}

void hub_http_set_ready(hub_http_t *h, int ready, const char *reason)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->ready = ready != 0;
    hub_strlcpy(h->reason, reason ? reason : "", sizeof(h->reason));
    pthread_mutex_unlock(&h->lock);
}

void hub_http_stop(hub_http_t *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
