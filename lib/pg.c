/* pg.c: PostgreSQL connection with capped back-off, and an ordered migrations runner. */
#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/log.h"
#include "hub/pg.h"
#include "hub/signals.h"

/* Any 64-bit constant unique to this project serialises concurrent migrators. */
#define HUB_MIGRATION_LOCK 0x4c4c5248554231LL

/* Copies libpq's message without its trailing newline. */
static void copy_pg_message(char *dst, size_t size, const char *msg)
{
    hub_strlcpy(dst, msg ? msg : "unknown error", size);
    size_t n = strlen(dst);
    while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == '\r'))
        dst[--n] = '\0';
}

PGconn *hub_pg_connect(const char *conninfo, const char *password, int max_wait_ms, char *errstr,
                       size_t errstr_size)
{
    int64_t deadline = hub_monotonic_ms() + max_wait_ms;
    int64_t delay = 100;
    int attempt = 0;
    const char *keys[] = {"dbname", "password", "application_name", NULL};
    const char *vals[] = {conninfo, password, "llr-hub", NULL};
    char msg[512];

    for (;;) {
        PGconn *conn;
        attempt++;
        /* expand_dbname=1: conninfo may be a key=value string or a URI. */
        conn = PQconnectdbParams(keys, vals, 1);
        if (conn && PQstatus(conn) == CONNECTION_OK) {
            if (attempt > 1)
                hub_log_info("event=pg_connected attempts=%d", attempt);
            return conn;
        }
        copy_pg_message(msg, sizeof(msg), conn ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);
        if (hub_monotonic_ms() + delay > deadline || hub_stop_requested()) {
            hub_errf(errstr, errstr_size, HUB_EPG, "cannot connect to PostgreSQL: %s", msg);
            return NULL;
        }
        hub_log_warn("event=pg_connect_retry attempt=%d delay_ms=%lld error=\"%s\"", attempt,
                     (long long)delay, msg);
        if (hub_sleep_ms(delay) != HUB_OK) {
            hub_errf(errstr, errstr_size, HUB_ESTOPPED, "stopped while connecting to PostgreSQL");
            return NULL;
        }
        delay = delay * 2 > 5000 ? 5000 : delay * 2;
    }
}

int hub_pg_exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int err = HUB_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[512];
        copy_pg_message(msg, sizeof(msg), PQerrorMessage(conn));
        err = hub_errf(errstr, errstr_size, HUB_EPG, "%s", msg);
    }
    PQclear(res);
    return err;
}

int hub_pg_is_connection_error(PGconn *conn)
{
    return !conn || PQstatus(conn) != CONNECTION_OK;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A migration file name: four or more digits, an underscore, ending .sql. */
static int is_migration_name(const char *n)
{
    size_t len = strlen(n), digits = strspn(n, "0123456789");
    return digits >= 4 && n[digits] == '_' && len > 4 && strcmp(n + len - 4, ".sql") == 0;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Applies one file unless already recorded; *did is set when applied now. */
static int apply_one(PGconn *conn, const char *dir, const char *name, int *did, char *errstr,
                     size_t errstr_size)
{
    char path[4096], sum[65], msg[512];
    char *sql = NULL;
    size_t len = 0;
    PGresult *res = NULL;
    int err = HUB_OK;
    const char *params[2];

    *did = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    sql = hub_read_file(path, &len, errstr, errstr_size);
    if (!sql)
        return HUB_EIO;
    sha256_hex(sql, len, sum);

    params[0] = name;
    res = PQexecParams(conn, "SELECT checksum FROM hub_schema_migrations WHERE version = $1", 1,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        copy_pg_message(msg, sizeof(msg), PQerrorMessage(conn));
        err = hub_errf(errstr, errstr_size, HUB_EPG, "%s: %s", path, msg);
        goto out;
    }
    if (PQntuples(res) == 1) {
        if (strcmp(PQgetvalue(res, 0, 0), sum) != 0)
            err = hub_errf(errstr, errstr_size, HUB_EPG,
                           "%s: changed after it was applied (checksum %s, recorded %s); add a "
                           "new migration instead of editing an applied one",
                           path, sum, PQgetvalue(res, 0, 0));
        goto out;
    }
    PQclear(res);
    res = NULL;

    if ((err = hub_pg_exec(conn, "BEGIN", msg, sizeof(msg))) != HUB_OK ||
        (err = hub_pg_exec(conn, sql, msg, sizeof(msg))) != HUB_OK) {
        hub_errf(errstr, errstr_size, HUB_EPG, "%s: %s", path, msg);
        hub_pg_exec(conn, "ROLLBACK", NULL, 0);
        goto out;
    }
    params[1] = sum;
    res =
        PQexecParams(conn, "INSERT INTO hub_schema_migrations (version, checksum) VALUES ($1, $2)",
                     2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        copy_pg_message(msg, sizeof(msg), PQerrorMessage(conn));
        err = hub_errf(errstr, errstr_size, HUB_EPG, "%s: recording: %s", path, msg);
        hub_pg_exec(conn, "ROLLBACK", NULL, 0);
        goto out;
    }
    if ((err = hub_pg_exec(conn, "COMMIT", msg, sizeof(msg))) != HUB_OK) {
        hub_errf(errstr, errstr_size, HUB_EPG, "%s: commit: %s", path, msg);
        goto out;
    }
    *did = 1;
    hub_log_info("event=migration_applied version=%s", name);
out:
    PQclear(res);
    free(sql);
    return err;
}

int hub_pg_migrate(PGconn *conn, const char *dir, int *applied, char *errstr, size_t errstr_size)
{
    DIR *d = NULL;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int err = HUB_OK, count = 0, locked = 0;
    char msg[512], lock_sql[128];

    if (applied)
        *applied = 0;
    d = opendir(dir);
    if (!d)
        return hub_errf(errstr, errstr_size, HUB_EIO, "%s: cannot open migrations directory", dir);
    while ((e = readdir(d)) != NULL) {
        if (!is_migration_name(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (!nn) {
                err = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
                goto out;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            err = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    qsort(names, n, sizeof(*names), name_cmp);

    snprintf(lock_sql, sizeof(lock_sql), "SELECT pg_advisory_lock(%lld)", HUB_MIGRATION_LOCK);
    if ((err = hub_pg_exec(conn, lock_sql, msg, sizeof(msg))) != HUB_OK) {
        hub_errf(errstr, errstr_size, err, "migration lock: %s", msg);
        goto out;
    }
    locked = 1;
    err = hub_pg_exec(conn,
                      "CREATE TABLE IF NOT EXISTS hub_schema_migrations ("
                      " version text PRIMARY KEY,"
                      " checksum text NOT NULL,"
                      " applied_at timestamptz NOT NULL DEFAULT now())",
                      msg, sizeof(msg));
    if (err) {
        hub_errf(errstr, errstr_size, err, "creating hub_schema_migrations: %s", msg);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int did;
        err = apply_one(conn, dir, names[i], &did, errstr, errstr_size);
        if (err)
            goto out;
        count += did;
    }
    if (applied)
        *applied = count;
out:
    if (locked) {
        snprintf(lock_sql, sizeof(lock_sql), "SELECT pg_advisory_unlock(%lld)", HUB_MIGRATION_LOCK);
        hub_pg_exec(conn, lock_sql, NULL, 0);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return err;
}
